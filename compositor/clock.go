package compositor

import (
	"time"

	"github.com/singoff/singoff/media"
)

// Playout timing: each unit is played at its sender time plus the
// smallest transit delay seen plus playoutDelay, which absorbs jitter.
// playoutDelay is on the path to every watcher (ingest → part published
// is this plus a 200 ms part plus encoding, bar 400 ms p95); 100 ms
// still covers the frame a video unit waits in ingest for the next one
// to start, decoding and a loaded machine's jitter (e2e
// TestBenchIngestToPart counts the pictures that came too late).
const (
	playoutDelay = 100 * time.Millisecond
	// delayWindow is how often the smallest delay is re-measured, so a
	// path that got slower (or a drifting sender clock) is followed.
	delayWindow = 2 * time.Second
	// delayRaise is how far every unit of a window must exceed the
	// smallest delay before it is raised.
	delayRaise = 30 * time.Millisecond
	// delayJump is a delay increase taken as the sender's clock jumping
	// back rather than as network jitter.
	delayJump = time.Second
)

// rtpClock turns one track's wrapping RTP timestamps into sender time:
// from SenderNTP once RTCP reports map it, else from the RTP clock
// anchored at the track's first arrival.
type rtpClock struct {
	started   bool
	last      uint32
	ext       int64
	anchorExt int64
	anchor    time.Time
	own       delayTracker // for units without SenderNTP
}

// senderTime returns the sender's time of p and whether it is the
// sender's wall clock (shared by its audio and video).
func (c *rtpClock) senderTime(p *media.AccessUnit) (time.Time, bool) {
	if !c.started {
		c.started = true
		c.last = p.RTPTime
		c.ext = int64(p.RTPTime)
		c.anchorExt = c.ext
		c.anchor = p.Arrival
	} else {
		// int32 differences carry the unwrapping across 2^32 and back
		// over reordered units.
		c.ext += int64(int32(p.RTPTime - c.last))
		c.last = p.RTPTime
	}
	if !p.SenderNTP.IsZero() {
		return p.SenderNTP, true
	}
	rate := int64(p.ClockRate)
	if rate <= 0 { // the RTP clock rates WebRTC uses
		rate = media.VideoClockRate
		if p.Codec == media.CodecOpus {
			rate = media.AudioClockRate
		}
	}
	d := time.Duration((c.ext - c.anchorExt) * int64(time.Second) / rate)
	return c.anchor.Add(d), false
}

// delayTracker follows the smallest transit delay (arrival minus sender
// time) of the units of one sender clock.
type delayTracker struct {
	set         bool
	min         time.Duration
	windowMin   time.Duration
	windowStart time.Time
}

func (d *delayTracker) observe(arrival, sent time.Time) time.Duration {
	delay := arrival.Sub(sent)
	// Far above the smallest delay is no jitter but a jump of the
	// sender's clock: follow it at once.
	if !d.set || delay < d.min || delay > d.min+delayJump {
		d.set = true
		d.min = delay
	}
	if d.windowStart.IsZero() || delay < d.windowMin {
		d.windowMin = delay
	}
	if d.windowStart.IsZero() {
		d.windowStart = arrival
	}
	if arrival.Sub(d.windowStart) >= delayWindow {
		if d.windowMin > d.min+delayRaise {
			d.min = d.windowMin
		}
		d.windowStart = arrival
		d.windowMin = delay
	}
	return d.min
}

// playoutClock places one slot's units on the wall clock; it is reset
// when the publisher's session changes.
type playoutClock struct {
	video, audio rtpClock
	shared       delayTracker // SenderNTP: one clock for audio and video
}

// playAt returns when p is to be played.
func (c *playoutClock) playAt(p *media.AccessUnit) time.Time {
	track := &c.audio
	if p.Codec.IsVideo() {
		track = &c.video
	}
	sent, wall := track.senderTime(p)
	tracker := &track.own
	if wall {
		tracker = &c.shared
	}
	return sent.Add(tracker.observe(p.Arrival, sent) + playoutDelay)
}
