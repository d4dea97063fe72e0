package ingest

import (
	"sync/atomic"
	"time"

	"github.com/pion/rtp"
	"github.com/pion/rtp/codecs"
	"github.com/pion/webrtc/v4/pkg/media/samplebuilder"
	"github.com/singoff/singoff/media"
)

// unpacker turns one publisher track's RTP into media units: whole H264
// access units and VP8 frames through pion's samplebuilder, Opus packets
// as they come (one RTP packet each, reordered ones too: the compositor
// places audio by its timestamp).
//
// Loss is read from the sequence numbers the unpacker saw, not from the
// samplebuilder's count of dropped packets: that count includes the
// padding-only packets browsers send to probe bandwidth (on the media
// SSRC, when RTX is not negotiated), which lose nothing.
type unpacker struct {
	codec     media.Codec
	clockRate uint32
	builder   *samplebuilder.SampleBuilder
	seen      seqWindow
	// arrivals remembers, for each recent timestamp, when its last
	// packet arrived and its highest sequence number, since samples come
	// out of the builder later.
	arrivals [64]arrival
	next     int
	// lastEnd is the highest sequence number of the last unit emitted.
	lastEnd uint64
	emitted bool
}

type arrival struct {
	ts  uint32
	at  time.Time
	end uint64 // the highest extended sequence number seen
}

// maxLatePackets bounds the samplebuilder's reorder buffer: enough for a
// 720p keyframe.
const maxLatePackets = 512

// maxFrameDelay bounds how long a frame with a missing packet holds up
// the frames after it (measured in RTP time between the oldest packet
// held and the newest): a retransmission has this long to come (two
// NACK rounds on a home link), then the frame is given up, the next one
// carries Loss and the compositor asks for a keyframe. Without it one
// lost packet held a track for 512 packets, seconds of video.
const maxFrameDelay = 200 * time.Millisecond

func newUnpacker(codec media.Codec, clockRate uint32) *unpacker {
	u := &unpacker{codec: codec, clockRate: clockRate}
	switch codec {
	case media.CodecH264:
		u.builder = samplebuilder.New(maxLatePackets, &codecs.H264Packet{}, clockRate, samplebuilder.WithMaxTimeDelay(maxFrameDelay))
	case media.CodecVP8:
		u.builder = samplebuilder.New(maxLatePackets, &codecs.VP8Packet{}, clockRate, samplebuilder.WithMaxTimeDelay(maxFrameDelay))
	}
	return u
}

// push takes one RTP packet that arrived at at and emits the units it
// completes.
func (u *unpacker) push(pkt *rtp.Packet, at time.Time, emit func(media.AccessUnit)) {
	seq, duplicate := u.seen.add(pkt.SequenceNumber)
	if duplicate {
		return // a retransmission that came twice, or a copy
	}
	if u.builder == nil {
		u.pushOpus(pkt, at, emit)
		return
	}
	if u.emitted && seq <= u.lastEnd {
		return // of a frame older than one emitted: given up already
	}
	if len(pkt.Payload) > 0 {
		u.remember(pkt.Timestamp, seq, at)
	}
	u.builder.Push(pkt)
	for s := u.builder.Pop(); s != nil; s = u.builder.Pop() {
		if len(s.Data) == 0 {
			continue
		}
		// Lost is what never came from the end of the last unit to
		// the end of this one: before it, or inside it (a unit whose
		// first NAL units are missing still comes out of the builder).
		a, known := u.arrivalOf(s.PacketTimestamp)
		loss := s.PrevDroppedPackets > 0 // the arrival is forgotten: the builder's word
		if known {
			loss = u.emitted && u.seen.missing(u.lastEnd+1, a.end+1)
			u.lastEnd = a.end
		} else {
			a.at = at
		}
		u.emitted = true
		emit(media.AccessUnit{
			Codec:     u.codec,
			Data:      s.Data,
			Keyframe:  media.IsKeyframe(u.codec, s.Data),
			RTPTime:   s.PacketTimestamp,
			ClockRate: u.clockRate,
			Arrival:   a.at,
			Loss:      loss,
		})
	}
}

// pushOpus emits an Opus packet, reordered or not: only a copy, or one
// too old to tell from a copy, is dropped. Opus units carry no Loss: a
// gap may be a packet overtaken, and the compositor finds what is
// missing by timestamp when its audio is due.
func (u *unpacker) pushOpus(pkt *rtp.Packet, at time.Time, emit func(media.AccessUnit)) {
	if len(pkt.Payload) == 0 {
		return
	}
	emit(media.AccessUnit{
		Codec:     u.codec,
		Data:      pkt.Payload,
		RTPTime:   pkt.Timestamp,
		ClockRate: u.clockRate,
		Arrival:   at,
		Keyframe:  true,
	})
}

func (u *unpacker) remember(ts uint32, seq uint64, at time.Time) {
	last := (u.next + len(u.arrivals) - 1) % len(u.arrivals)
	if a := &u.arrivals[last]; !a.at.IsZero() && a.ts == ts {
		a.at = at
		a.end = max(a.end, seq)
		return
	}
	for i := range u.arrivals { // a late packet of an older frame
		if a := &u.arrivals[i]; !a.at.IsZero() && a.ts == ts {
			a.end = max(a.end, seq)
			return
		}
	}
	u.arrivals[u.next] = arrival{ts: ts, at: at, end: seq}
	u.next = (u.next + 1) % len(u.arrivals)
}

func (u *unpacker) arrivalOf(ts uint32) (arrival, bool) {
	for _, a := range u.arrivals {
		if a.ts == ts && !a.at.IsZero() {
			return a, true
		}
	}
	return arrival{}, false
}

// seqWindowSize is how many recent sequence numbers a seqWindow
// remembers: seconds of video.
const seqWindowSize = 4096

// seqWindow remembers which recent RTP sequence numbers arrived, by
// extended (unwrapped) number.
type seqWindow struct {
	started bool
	highest uint64
	got     [seqWindowSize]uint64 // got[n%size] == n+1 when n arrived
}

// add records seq and returns its extended number, and whether it had
// arrived already (or is too old to tell).
func (w *seqWindow) add(seq uint16) (uint64, bool) {
	if !w.started {
		// Far from zero, so that numbers before the first one extend
		// without going below it.
		w.started, w.highest = true, 1<<32+uint64(seq)
	}
	ext := uint64(int64(w.highest) + int64(int16(seq-uint16(w.highest))))
	if ext+seqWindowSize <= w.highest {
		return ext, true
	}
	w.highest = max(w.highest, ext)
	slot := &w.got[ext%seqWindowSize]
	if *slot == ext+1 {
		return ext, true
	}
	*slot = ext + 1
	return ext, false
}

// missing tells whether any number from from up to (not including) to
// has not arrived.
func (w *seqWindow) missing(from, to uint64) bool {
	if to <= from {
		return false
	}
	if to-from > seqWindowSize || from+seqWindowSize <= w.highest {
		return true
	}
	for n := from; n < to; n++ {
		if w.got[n%seqWindowSize] != n+1 {
			return true
		}
	}
	return false
}

// senderClock maps a track's RTP timestamps to the sender's wall clock
// through its latest RTCP sender report.
type senderClock struct {
	report atomic.Pointer[senderReport]
}

type senderReport struct {
	ntp time.Time
	rtp uint32
}

func (c *senderClock) update(ntp uint64, rtpTime uint32) {
	c.report.Store(&senderReport{ntp: ntpTime(ntp), rtp: rtpTime})
}

// at is the sender's wall-clock time of rtpTime; zero before a report.
func (c *senderClock) at(rtpTime, clockRate uint32) time.Time {
	r := c.report.Load()
	if r == nil || clockRate == 0 {
		return time.Time{}
	}
	d := int64(int32(rtpTime - r.rtp))
	return r.ntp.Add(time.Duration(d * int64(time.Second) / int64(clockRate)))
}

// ntpEpochOffset is the seconds from 1900 (NTP) to 1970 (Unix).
const ntpEpochOffset = 2208988800

func ntpTime(ntp uint64) time.Time {
	secs := int64(ntp>>32) - ntpEpochOffset
	nanos := int64((ntp & 0xffffffff) * uint64(time.Second) >> 32)
	return time.Unix(secs, nanos)
}
