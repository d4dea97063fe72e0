package ingest

import (
	"sync"
	"time"

	"github.com/pion/rtcp"
	"github.com/singoff/singoff/internal/pionapi"
)

// Congestion control on the WHEP leg. Every packet forwarded to a
// subscriber carries a transport-wide sequence number; the subscriber's
// browser acknowledges them in TWCC feedback, from which the server
// estimates that subscriber's downlink (pion's GCC, internal/pionapi).
// The publisher is told the least estimate among its slot's subscribers
// with REMB, which a browser takes as a cap on its sending bitrate, so a
// singer's encoder slows down when the opponent cannot receive it all.
// (The WHIP leg needs nothing more: the server's TWCC feedback lets the
// publisher's browser estimate its own uplink.)

// The bounds of what a publisher is told, in bit/s.
const (
	// rembFloor keeps the voice and a low-rate picture: the program
	// every watcher sees is made of this stream too, so one subscriber's
	// weak downlink must not take it below what still looks like video.
	rembFloor = 300_000
	// rembCeiling is no cap: more than a singer's camera sends.
	rembCeiling = 8_000_000
)

// estimateBounds are the subscribers' bandwidth estimators' bounds.
var estimateBounds = pionapi.Bitrates{Min: rembFloor, Max: rembCeiling}

// How often a publisher is told.
const (
	// rembInterval is the pace of REMB while a cap holds (RTCP may be
	// lost, so it is repeated), and of raising a cap.
	rembInterval = time.Second
	// rembDecreaseInterval is the least time between two lowerings,
	// which are sent as soon as the estimate falls by rembDecreaseStep.
	rembDecreaseInterval = 200 * time.Millisecond
	// rembLift is how long a lifted cap is repeated, in case the
	// message that lifted it was lost.
	rembLift = 5 * time.Second
)

// rembDecreaseStep is the fall in the estimate (3%) that is worth
// telling the publisher at once.
const rembDecreaseStep = 0.97

// bitrateCap decides what a slot's publisher is told: the least of the
// subscribers' latest estimates, within [rembFloor, rembCeiling].
type bitrateCap struct {
	mu        sync.Mutex
	estimates map[*session]int
	// sent is the last REMB sent, and to which publisher session.
	sent remb
	// cappedAt is when a value below the ceiling was last sent.
	cappedAt time.Time
}

// remb is one REMB sent.
type remb struct {
	to  *session
	bps int
	at  time.Time
}

// observe records the subscriber sub's estimate and returns the REMB to
// send to the publisher pub now, if any.
func (c *bitrateCap) observe(sub *session, bps int, pub *session, now time.Time) (int, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.estimates == nil {
		c.estimates = map[*session]int{}
	}
	c.estimates[sub] = bps
	return c.decideLocked(pub, now)
}

// forget drops the subscriber sub's estimate (it left) and returns the
// REMB to send to pub now, if any: a cap it alone set is lifted.
func (c *bitrateCap) forget(sub *session, pub *session, now time.Time) (int, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	delete(c.estimates, sub)
	return c.decideLocked(pub, now)
}

// tick returns the REMB due to pub now, if any.
func (c *bitrateCap) tick(pub *session, now time.Time) (int, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.decideLocked(pub, now)
}

func (c *bitrateCap) decideLocked(pub *session, now time.Time) (int, bool) {
	if pub == nil {
		return 0, false
	}
	target := rembCeiling
	for _, bps := range c.estimates {
		target = min(target, bps)
	}
	target = max(target, rembFloor)
	last := c.sent
	if last.to != pub {
		// A new publisher session starts uncapped.
		last, c.cappedAt = remb{to: pub, bps: rembCeiling}, time.Time{}
	}
	since := now.Sub(last.at)
	switch {
	case float64(target) <= float64(last.bps)*rembDecreaseStep && since >= rembDecreaseInterval:
	case since >= rembInterval && (len(c.estimates) > 0 || target < rembCeiling || now.Sub(c.cappedAt) < rembLift):
	default:
		c.sent = last
		return 0, false
	}
	c.sent = remb{to: pub, bps: target, at: now}
	if target < rembCeiling {
		c.cappedAt = now
	}
	return target, true
}

// capBitrate records the subscriber sub's bandwidth estimate and tells
// the publisher what is due.
func (sl *slot) capBitrate(sub *session, bps int) {
	pub := sl.rembTarget()
	if v, ok := sl.bitrate.observe(sub, bps, pub, time.Now()); ok {
		sl.sendREMB(pub, v)
	}
}

// uncapBitrate forgets the subscriber sub's estimate (it left) and
// tells the publisher what is due.
func (sl *slot) uncapBitrate(sub *session) {
	pub := sl.rembTarget()
	if v, ok := sl.bitrate.forget(sub, pub, time.Now()); ok {
		sl.sendREMB(pub, v)
	}
}

// remindBitrate sends the publisher pub the REMB due now, if any: the
// publisher's own RTCP paces this when no subscriber's feedback does.
func (sl *slot) remindBitrate(pub *session) {
	if sl.rembTarget() != pub {
		return
	}
	if v, ok := sl.bitrate.tick(pub, time.Now()); ok {
		sl.sendREMB(pub, v)
	}
}

// rembTarget is the slot's publisher once its video has started (REMB
// names the video's SSRC); nil before.
func (sl *slot) rembTarget() *session {
	pub := sl.publisher.Load()
	if pub == nil || pub.videoSSRC.Load() == 0 {
		return nil
	}
	return pub
}

func (sl *slot) sendREMB(pub *session, bps int) {
	sl.room.srv.counters.rembsOut.Add(1)
	_ = pub.pc.WriteRTCP([]rtcp.Packet{&rtcp.ReceiverEstimatedMaximumBitrate{
		Bitrate: float32(bps),
		SSRCs:   []uint32{pub.videoSSRC.Load()},
	}})
}
