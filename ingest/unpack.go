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
// as they come (one RTP packet each).
type unpacker struct {
	codec     media.Codec
	clockRate uint32
	builder   *samplebuilder.SampleBuilder
	// arrivals remembers when the last packet of each recent timestamp
	// arrived, since samples come out of the builder later.
	arrivals [64]arrival
	next     int
	// Opus only: the last sequence number seen.
	lastSeq uint16
	started bool
}

type arrival struct {
	ts uint32
	at time.Time
}

// maxLatePackets bounds the samplebuilder's reorder buffer: enough for a
// 720p keyframe.
const maxLatePackets = 512

func newUnpacker(codec media.Codec, clockRate uint32) *unpacker {
	u := &unpacker{codec: codec, clockRate: clockRate}
	switch codec {
	case media.CodecH264:
		u.builder = samplebuilder.New(maxLatePackets, &codecs.H264Packet{}, clockRate)
	case media.CodecVP8:
		u.builder = samplebuilder.New(maxLatePackets, &codecs.VP8Packet{}, clockRate)
	}
	return u
}

// push takes one RTP packet that arrived at at and emits the units it
// completes.
func (u *unpacker) push(pkt *rtp.Packet, at time.Time, emit func(media.AccessUnit)) {
	if u.builder == nil {
		u.pushOpus(pkt, at, emit)
		return
	}
	u.remember(pkt.Timestamp, at)
	u.builder.Push(pkt)
	for s := u.builder.Pop(); s != nil; s = u.builder.Pop() {
		if len(s.Data) == 0 {
			continue
		}
		emit(media.AccessUnit{
			Codec:     u.codec,
			Data:      s.Data,
			Keyframe:  media.IsKeyframe(u.codec, s.Data),
			RTPTime:   s.PacketTimestamp,
			ClockRate: u.clockRate,
			Arrival:   u.arrivalOf(s.PacketTimestamp, at),
			Loss:      s.PrevDroppedPackets > 0,
		})
	}
}

func (u *unpacker) pushOpus(pkt *rtp.Packet, at time.Time, emit func(media.AccessUnit)) {
	loss := false
	if u.started {
		d := int16(pkt.SequenceNumber - u.lastSeq)
		if d <= 0 {
			return // duplicate or too late to play
		}
		loss = d > 1
	}
	u.started, u.lastSeq = true, pkt.SequenceNumber
	if len(pkt.Payload) == 0 {
		return
	}
	emit(media.AccessUnit{
		Codec:     u.codec,
		Data:      pkt.Payload,
		RTPTime:   pkt.Timestamp,
		ClockRate: u.clockRate,
		Arrival:   at,
		Loss:      loss,
		Keyframe:  true,
	})
}

func (u *unpacker) remember(ts uint32, at time.Time) {
	last := (u.next + len(u.arrivals) - 1) % len(u.arrivals)
	if !u.arrivals[last].at.IsZero() && u.arrivals[last].ts == ts {
		u.arrivals[last].at = at
		return
	}
	u.arrivals[u.next] = arrival{ts: ts, at: at}
	u.next = (u.next + 1) % len(u.arrivals)
}

func (u *unpacker) arrivalOf(ts uint32, fallback time.Time) time.Time {
	for _, a := range u.arrivals {
		if a.ts == ts && !a.at.IsZero() {
			return a.at
		}
	}
	return fallback
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
