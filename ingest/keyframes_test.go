package ingest

import (
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

func TestKeyframeLimiter(t *testing.T) {
	// Long enough that a loaded machine does not let the deferred
	// request go before the check of what went at once.
	const interval = 300 * time.Millisecond
	always := func(int) bool { return true }
	cases := []struct {
		name string
		// ready tells whether send n (from 0) finds someone to ask.
		ready    func(n int) bool
		requests int
		stop     bool
		// Sends that asked someone right after the requests, and once
		// the interval is over.
		wantNow, wantLater int64
	}{
		{"one request goes at once", always, 1, false, 1, 1},
		{"a burst is one now and one deferred", always, 5, false, 1, 2},
		{"a send with no one to ask does not count", func(n int) bool { return n > 0 }, 2, false, 1, 1},
		{"stop drops the deferred request", always, 5, true, 1, 1},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			var attempts, sent atomic.Int64
			l := &keyframeLimiter{interval: interval, send: func() bool {
				if !c.ready(int(attempts.Add(1) - 1)) {
					return false
				}
				sent.Add(1)
				return true
			}}
			for range c.requests {
				l.request()
			}
			if c.stop {
				l.stop()
			}
			if got := sent.Load(); got != c.wantNow {
				t.Errorf("%d sent at once, want %d", got, c.wantNow)
			}
			time.Sleep(interval + 200*time.Millisecond)
			if got := sent.Load(); got != c.wantLater {
				t.Errorf("%d sent in all, want %d", got, c.wantLater)
			}
		})
	}
}

// Reports reach the hook in order, one at a time, also when the hook
// calls back into what queues them.
func TestReportQueue(t *testing.T) {
	var q reportQueue
	var mu sync.Mutex
	var got []slotReport
	var hook func(slot int, connected bool)
	hook = func(slot int, connected bool) {
		mu.Lock()
		got = append(got, slotReport{slot, connected})
		mu.Unlock()
		if connected {
			// As a hook that hangs up: it queues and delivers again.
			q.add(slotReport{slot, false})
			q.deliver(hook)
		}
	}
	q.add(slotReport{1, true})
	q.add(slotReport{2, true})
	q.deliver(hook)
	want := []slotReport{{1, true}, {2, true}, {1, false}, {2, false}}
	if !slices.Equal(got, want) {
		t.Errorf("reports %v, want %v", got, want)
	}
	q.deliver(nil) // nothing queued, no hook: fine
}
