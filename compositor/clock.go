package compositor

import (
	"time"

	"github.com/singoff/singoff/media"
)

// Playout timing: each unit is played at its sender time plus an offset,
// the same for a sender's audio and video (lip sync). The offset starts at
// the smallest transit delay seen plus playoutDelay, which absorbs
// jitter. It rises at once when an audio unit would come too late to be
// heard (a path that got slower must not cost audio), and falls slowly
// back, once the late units are a window behind, so that a burst of
// jitter does not make it seesaw. Video does not raise it: a late picture
// is shown late (a short freeze), which costs less than delaying
// everything.
//
// playoutDelay is on the path to every watcher (ingest → part published
// is this plus a 200 ms part plus encoding, bar 400 ms p95); 100 ms
// still covers the frame a video unit waits in ingest for the next one
// to start, decoding and a loaded machine's jitter (e2e
// TestBenchIngestToPart counts the pictures that came too late).
const (
	playoutDelay = 100 * time.Millisecond
	// audioGuard is how long before its playout time an audio unit must
	// be in: the slot then decodes it, or conceals it when it is not.
	audioGuard = 10 * time.Millisecond
	// raiseHeadroom is how far above a late unit the offset is raised,
	// so that the next unit a little later still is on time.
	raiseHeadroom = 20 * time.Millisecond
	// delayWindow is how long a late unit holds the offset up: it falls
	// only once the units of a whole window and the one before it would
	// all be on time with less.
	delayWindow = 2 * time.Second
	// fallSlowdown is how much slower than real time the offset falls:
	// 20 ms per second, a 10 ms step of the audio every half second.
	fallSlowdown = 50
	// delayJump is a change of transit delay taken as the sender's clock
	// jumping rather than as network jitter.
	delayJump = time.Second
	// jumpUnits is how many audio units in a row must be delayJump late
	// before the offset follows them: one such unit is a straggler.
	jumpUnits = 5
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

// delayTracker keeps the playout offset (arrival minus sender time plus
// the time a unit waits to be played) of the units of one sender clock.
type delayTracker struct {
	set    bool
	min    time.Duration // the smallest transit delay seen
	offset time.Duration
	// peak is the largest transit delay of the audio units in the window
	// that began at windowStart, prevPeak that of the window before.
	peak, prevPeak time.Duration
	windowStart    time.Time
	last           time.Time // the latest arrival
	jumps          int       // audio units in a row delayJump late
}

// observe takes a unit's arrival and sender time and returns the offset
// to play it with; audio (raise) may raise the offset, video never does.
func (d *delayTracker) observe(arrival, sent time.Time, raise bool) time.Duration {
	delay := arrival.Sub(sent)
	if !d.set || delay < d.min-delayJump {
		// The first unit, or the sender's clock jumped ahead.
		d.reset(arrival, delay)
		return d.offset
	}
	if delay > d.offset+delayJump {
		// The sender's clock jumped back, or a straggler: only several
		// audio units in a row make it a jump.
		if raise {
			if d.jumps++; d.jumps >= jumpUnits {
				d.reset(arrival, delay)
			}
		}
		return d.offset
	}
	if raise {
		d.jumps = 0
	}
	d.min = min(d.min, delay)
	if since := arrival.Sub(d.windowStart); since >= delayWindow {
		d.prevPeak, d.peak, d.windowStart = d.peak, d.min, arrival
		if since >= 2*delayWindow {
			d.prevPeak = d.min
		}
	}
	if raise {
		d.peak = max(d.peak, delay)
	}
	if floor := max(d.min+playoutDelay, max(d.peak, d.prevPeak)+audioGuard+raiseHeadroom); d.offset > floor {
		if elapsed := arrival.Sub(d.last); elapsed > 0 {
			d.offset = max(floor, d.offset-elapsed/fallSlowdown)
		}
	}
	if raise && delay+audioGuard > d.offset {
		d.offset = delay + audioGuard + raiseHeadroom
	}
	if arrival.After(d.last) {
		d.last = arrival
	}
	return d.offset
}

func (d *delayTracker) reset(arrival time.Time, delay time.Duration) {
	*d = delayTracker{
		set: true, min: delay, offset: delay + playoutDelay,
		peak: delay, prevPeak: delay, windowStart: arrival, last: arrival,
	}
}

// playoutClock places one slot's units on the wall clock; it is reset
// when the publisher's session changes.
type playoutClock struct {
	video, audio rtpClock
	shared       delayTracker // SenderNTP: one clock for audio and video
}

// playAt returns when p is to be played, and its RTP timestamp unwrapped
// (audio's place in its stream).
func (c *playoutClock) playAt(p *media.AccessUnit) (time.Time, int64) {
	audio := !p.Codec.IsVideo()
	track := &c.video
	if audio {
		track = &c.audio
	}
	sent, wall := track.senderTime(p)
	tracker := &track.own
	if wall {
		tracker = &c.shared
	}
	return sent.Add(tracker.observe(p.Arrival, sent, audio)), track.ext
}
