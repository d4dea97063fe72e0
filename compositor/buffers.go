package compositor

import (
	"sync"
	"time"

	"github.com/asticode/go-astiav"
)

// picture is a decoded frame fitted to its half of the program, waiting
// for its playout time.
type picture struct {
	frame  *astiav.Frame
	playAt time.Time
}

// maxQueued bounds the pictures a slot holds ahead of the program clock
// (playoutDelay at 30 fps is ~3).
const maxQueued = 12

// pictureQueue hands pictures from a slot's decoder to the program clock,
// recycling their frames.
type pictureQueue struct {
	mu     sync.Mutex
	free   []*picture
	queued []*picture // in playout order
	// shown is the playout time of the latest picture due returned: a
	// picture older than it came too late and is not shown (the program
	// never steps back).
	shown time.Time
}

// get returns a picture to draw into: a free one, else the oldest queued
// one (the program is not keeping up with this slot).
func (q *pictureQueue) get() *picture {
	q.mu.Lock()
	defer q.mu.Unlock()
	if n := len(q.free); n > 0 {
		p := q.free[n-1]
		q.free = q.free[:n-1]
		return p
	}
	if len(q.queued) >= maxQueued {
		p := q.queued[0]
		q.queued = append(q.queued[:0], q.queued[1:]...)
		p.frame.Unref()
		return p
	}
	return &picture{frame: astiav.AllocFrame()}
}

// put queues p by its playout time; a picture older than one shown
// already is recycled instead.
func (q *pictureQueue) put(p *picture) {
	q.mu.Lock()
	defer q.mu.Unlock()
	if !q.shown.IsZero() && p.playAt.Before(q.shown) {
		q.recycle(p)
		return
	}
	i := len(q.queued)
	for i > 0 && q.queued[i-1].playAt.After(p.playAt) {
		i--
	}
	q.queued = append(q.queued, nil)
	copy(q.queued[i+1:], q.queued[i:])
	q.queued[i] = p
}

// due returns the latest picture whose time has come, recycling the ones
// it skips, or nil.
func (q *pictureQueue) due(now time.Time) *picture {
	q.mu.Lock()
	defer q.mu.Unlock()
	var latest *picture
	n := 0
	for n < len(q.queued) && !q.queued[n].playAt.After(now) {
		if latest != nil {
			q.recycle(latest)
		}
		latest = q.queued[n]
		n++
	}
	q.queued = append(q.queued[:0], q.queued[n:]...)
	if latest != nil {
		q.shown = latest.playAt
	}
	return latest
}

// release gives back a picture the program is done with.
func (q *pictureQueue) release(p *picture) {
	q.mu.Lock()
	defer q.mu.Unlock()
	q.recycle(p)
}

func (q *pictureQueue) recycle(p *picture) {
	p.frame.Unref()
	q.free = append(q.free, p)
}

// clear recycles every queued picture (a new session, whose times start
// over).
func (q *pictureQueue) clear() {
	q.mu.Lock()
	defer q.mu.Unlock()
	for _, p := range q.queued {
		q.recycle(p)
	}
	q.queued = q.queued[:0]
	q.shown = time.Time{}
}

func (q *pictureQueue) freeAll() {
	q.mu.Lock()
	defer q.mu.Unlock()
	for _, p := range append(q.free, q.queued...) {
		p.frame.Free()
	}
	q.free, q.queued = nil, nil
}

// audioRingSamples is how far ahead of the program a slot's audio may be
// written: a power of two over playoutDelay plus jitter.
const audioRingSamples = 1 << 16

// audioRing holds a slot's decoded stereo audio by program sample index
// until the mixer takes it; what nobody wrote reads as silence.
type audioRing struct {
	mu   sync.Mutex
	buf  [2][audioRingSamples]float32
	read int64 // next sample index the mixer takes
}

// write stores samples for program sample index at, dropping what is
// already played or too far ahead.
func (r *audioRing) write(at int64, left, right []float32) { r.blend(at, left, right, 0) }

// blend is write, crossfading the first fade samples from what the ring
// holds there into left and right: the seam where audio is written over
// audio (a stream that skips ahead) does not click.
func (r *audioRing) blend(at int64, left, right []float32, fade int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	done := 0 // samples of the fade already played
	if skip := r.read - at; skip > 0 {
		if skip >= int64(len(left)) {
			return
		}
		left, right, at = left[skip:], right[skip:], r.read
		done = int(skip)
	}
	if limit := r.read + audioRingSamples - at; int64(len(left)) > limit {
		if limit <= 0 {
			return
		}
		left, right = left[:limit], right[:limit]
	}
	for i := range left {
		j := (at + int64(i)) & (audioRingSamples - 1)
		if k := done + i; k < fade {
			a := float32(k+1) / float32(fade+1)
			r.buf[0][j] += a * (left[i] - r.buf[0][j])
			r.buf[1][j] += a * (right[i] - r.buf[1][j])
			continue
		}
		r.buf[0][j] = left[i]
		r.buf[1][j] = right[i]
	}
}

// readPosition is the next sample index the mixer takes: what is written
// before it is never heard.
func (r *audioRing) readPosition() int64 {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.read
}

// mixInto adds the samples from the read position into left and right,
// scaled by a gain going linearly from one value to another across them,
// clears them and advances.
func (r *audioRing) mixInto(left, right []float32, fromGain, toGain float32) {
	r.mu.Lock()
	defer r.mu.Unlock()
	step := (toGain - fromGain) / float32(len(left))
	for i := range left {
		j := (r.read + int64(i)) & (audioRingSamples - 1)
		g := fromGain + step*float32(i+1)
		left[i] += g * r.buf[0][j]
		right[i] += g * r.buf[1][j]
		r.buf[0][j], r.buf[1][j] = 0, 0
	}
	r.read += int64(len(left))
}
