package ingest

import (
	"sync"
	"time"
)

// keyframeInterval is the least time between two keyframe requests sent
// to one publisher.
const keyframeInterval = 500 * time.Millisecond

// keyframeLimiter passes keyframe requests on at most once per interval.
// A request that comes sooner is not dropped but sent when the interval
// is over, once however many came: browsers send keyframes only when
// asked, so a lost request would leave a viewer waiting.
type keyframeLimiter struct {
	interval time.Duration
	// send asks for a keyframe; false when there was no one to ask,
	// which does not count against the interval.
	send func() bool

	mu      sync.Mutex
	last    time.Time   // when send last asked
	pending *time.Timer // the deferred request, if any
	stopped bool
}

// request asks for a keyframe now, or at the end of the interval.
func (l *keyframeLimiter) request() {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.stopped || l.pending != nil {
		return // the deferred request will cover this one
	}
	if wait := l.interval - time.Since(l.last); wait > 0 {
		l.pending = time.AfterFunc(wait, l.deferred)
		return
	}
	l.sendLocked()
}

func (l *keyframeLimiter) deferred() {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.pending = nil
	if !l.stopped {
		l.sendLocked()
	}
}

func (l *keyframeLimiter) sendLocked() {
	if l.send() {
		l.last = time.Now()
	}
}

// stop drops a deferred request and every later one.
func (l *keyframeLimiter) stop() {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.stopped = true
	if l.pending != nil {
		l.pending.Stop()
		l.pending = nil
	}
}
