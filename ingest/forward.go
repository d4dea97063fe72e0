package ingest

import (
	"strings"
	"sync"
	"time"

	"github.com/pion/rtcp"
	"github.com/pion/rtp"
	"github.com/pion/webrtc/v4"
	"github.com/singoff/singoff/media"
)

// forwardTrack is a slot's outgoing track of one kind, shared by every
// subscriber of the slot and fed by whichever publisher is current. It
// rewrites sequence numbers and timestamps so that subscribers see one
// continuous stream across the publisher's reconnects (and no holes where
// the publisher padded), picks each subscriber's payload type for the
// publisher's codec, so that a publisher may switch between H264 and VP8
// without renegotiation, and translates the publisher's sender reports.
type forwardTrack struct {
	kind     webrtc.RTPCodecType
	streamID string
	counters *counters

	mu       sync.Mutex
	bindings map[string]*binding
	// The current source and the offsets that map it onto the output.
	codec      media.Codec
	clockRate  uint32
	source     uint64
	sourceSSRC uint32
	started    bool
	seq        seqRenumber
	tsDelta    uint32
	lastSeq    uint16
	lastTS     uint32
	lastAt     time.Time
	// report is the current source's latest sender report, translated
	// (valid is false before one).
	report translatedReport
}

// translatedReport is a publisher's sender report mapped onto the
// output: the publisher's wall-clock time, and the RTP timestamp it
// names moved by the forwarding offset. The reports sent from it state
// the same mapping at the time they are sent (reportLocked).
type translatedReport struct {
	valid bool
	ntp   time.Time
	rtp   uint32
}

// binding is the track as bound into one subscriber's peer connection.
type binding struct {
	ssrc         uint32
	payloadTypes map[media.Codec]uint8
	writer       webrtc.TrackLocalWriter
	sub          *session
	// What was sent, for the sender reports.
	packets, octets uint32
}

// subscription is a slot's forwardTrack as added to one subscriber's
// peer connection: its binding knows the subscriber.
type subscription struct {
	*forwardTrack
	sub *session
}

func (s subscription) Bind(ctx webrtc.TrackLocalContext) (webrtc.RTPCodecParameters, error) {
	return s.bind(ctx, s.sub)
}

func (t *forwardTrack) init(kind webrtc.RTPCodecType, streamID string, c *counters) {
	t.kind, t.streamID, t.counters = kind, streamID, c
	t.bindings = map[string]*binding{}
}

func (t *forwardTrack) ID() string                { return t.kind.String() }
func (t *forwardTrack) RID() string               { return "" }
func (t *forwardTrack) StreamID() string          { return t.streamID }
func (t *forwardTrack) Kind() webrtc.RTPCodecType { return t.kind }

// bind records the payload type the subscriber sub negotiated for each
// codec and answers with the current publisher's codec when there is
// one.
func (t *forwardTrack) bind(ctx webrtc.TrackLocalContext, sub *session) (webrtc.RTPCodecParameters, error) {
	params := ctx.CodecParameters()
	b := &binding{ssrc: uint32(ctx.SSRC()), payloadTypes: map[media.Codec]uint8{}, writer: ctx.WriteStream(), sub: sub}
	first := -1
	for i, p := range params {
		c := codecOfMime(p.MimeType)
		if c == media.CodecUnknown || (c == media.CodecH264 && !packetizationMode1(p.SDPFmtpLine)) {
			continue
		}
		if _, ok := b.payloadTypes[c]; !ok {
			b.payloadTypes[c] = uint8(p.PayloadType)
			if first < 0 {
				first = i
			}
		}
	}
	if first < 0 {
		return webrtc.RTPCodecParameters{}, webrtc.ErrUnsupportedCodec
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	t.bindings[ctx.ID()] = b
	chosen := params[first]
	if pt, ok := b.payloadTypes[t.codec]; ok {
		for _, p := range params {
			if uint8(p.PayloadType) == pt {
				chosen = p
			}
		}
	}
	return chosen, nil
}

func (t *forwardTrack) Unbind(ctx webrtc.TrackLocalContext) error {
	t.mu.Lock()
	defer t.mu.Unlock()
	delete(t.bindings, ctx.ID())
	return nil
}

// acceptedByAll returns the codecs of want that every current subscriber
// can receive, in want's order.
func (t *forwardTrack) acceptedByAll(want []media.Codec) []media.Codec {
	t.mu.Lock()
	defer t.mu.Unlock()
	var out []media.Codec
	for _, c := range want {
		ok := true
		for _, b := range t.bindings {
			if _, has := b.payloadTypes[c]; !has {
				ok = false
				break
			}
		}
		if ok {
			out = append(out, c)
		}
	}
	return out
}

// write forwards one packet of the publisher session source to every
// subscriber. A new source (session or SSRC) continues the output where
// the previous one stopped: the next sequence number, and the timestamp
// advanced by the wall-clock time in between. Padding-only packets are
// left out of the output's numbering (seqRenumber).
func (t *forwardTrack) write(source uint64, codec media.Codec, clockRate uint32, pkt *rtp.Packet, at time.Time) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if !t.started || source != t.source || pkt.SSRC != t.sourceSSRC {
		var seqDelta uint16
		if t.started {
			ticks := uint32(max(at.Sub(t.lastAt), time.Millisecond).Seconds() * float64(clockRate))
			seqDelta = t.lastSeq + 1 - pkt.SequenceNumber
			t.tsDelta = t.lastTS + ticks - pkt.Timestamp
		}
		t.seq.reset(seqDelta)
		t.started, t.source, t.sourceSSRC, t.codec, t.clockRate = true, source, pkt.SSRC, codec, clockRate
		t.report = translatedReport{}
		// The output stands just before the new source's first packet.
		t.lastSeq, t.lastTS, t.lastAt = pkt.SequenceNumber+seqDelta-1, pkt.Timestamp+t.tsDelta, at
	}
	seq, ok := t.seq.next(pkt.SequenceNumber, len(pkt.Payload) == 0)
	if !ok {
		return
	}
	ts := pkt.Timestamp + t.tsDelta
	if int16(seq-t.lastSeq) > 0 {
		t.lastSeq, t.lastTS, t.lastAt = seq, ts, at
	}
	for _, b := range t.bindings {
		pt, ok := b.payloadTypes[codec]
		if !ok {
			continue
		}
		h := rtp.Header{
			Version:        2,
			Marker:         pkt.Marker,
			PayloadType:    pt,
			SequenceNumber: seq,
			Timestamp:      ts,
			SSRC:           b.ssrc,
			CSRC:           pkt.CSRC,
		}
		if len(pkt.Payload) == 0 {
			// A late padding packet fills its place as it is.
			h.Padding, h.PaddingSize = pkt.Header.Padding, pkt.Header.PaddingSize
		}
		if _, err := b.writer.WriteRTP(&h, pkt.Payload); err == nil {
			b.packets++
			b.octets += uint32(len(pkt.Payload))
			t.counters.rtpPacketsOut.Add(1)
			t.counters.rtpBytesOut.Add(uint64(len(pkt.Payload)))
		}
	}
}

// senderReport translates the sender report sr of the publisher session
// source for every subscriber and sends it to them, if source is the
// current one.
func (t *forwardTrack) senderReport(source uint64, sr *rtcp.SenderReport) {
	t.mu.Lock()
	if !t.started || source != t.source || sr.SSRC != t.sourceSSRC {
		t.mu.Unlock()
		return
	}
	t.report = translatedReport{valid: true, ntp: ntpTime(sr.NTPTime), rtp: sr.RTPTime + t.tsDelta}
	now := time.Now()
	out := make([]reportFor, 0, len(t.bindings))
	for _, b := range t.bindings {
		out = append(out, reportFor{b.sub, t.reportLocked(b, now)})
	}
	t.mu.Unlock()
	for _, r := range out {
		r.send()
	}
}

// resendReport sends sub the latest translated sender report, if there
// is one: a new subscriber need not wait for the publisher's next.
func (t *forwardTrack) resendReport(sub *session) {
	t.mu.Lock()
	var out []reportFor
	if t.report.valid {
		now := time.Now()
		for _, b := range t.bindings {
			if b.sub == sub {
				out = append(out, reportFor{b.sub, t.reportLocked(b, now)})
			}
		}
	}
	t.mu.Unlock()
	for _, r := range out {
		r.send()
	}
}

// reportLocked is the sender report for binding b at now: the
// publisher's mapping of RTP to wall-clock time, stated at now, so that
// the receiver's reports (which echo the time of the last sender report)
// measure the round trip against the server's own clock. Publisher and
// server clocks need not agree: an offset between them moves the audio's
// and the video's mappings alike, and lip sync compares the two.
func (t *forwardTrack) reportLocked(b *binding, now time.Time) *rtcp.SenderReport {
	return &rtcp.SenderReport{
		SSRC: b.ssrc, NTPTime: toNTP(now), RTPTime: t.report.rtp + rtpTicks(now.Sub(t.report.ntp), t.clockRate),
		PacketCount: b.packets, OctetCount: b.octets,
	}
}

// rtpTicks is d in ticks of clockRate, to the nearest, modulo 2³² as
// RTP time wraps.
func rtpTicks(d time.Duration, clockRate uint32) uint32 {
	secs, frac := int64(d/time.Second), int64(d%time.Second)
	half := int64(time.Second / 2)
	if frac < 0 {
		half = -half
	}
	return uint32(secs*int64(clockRate) + (frac*int64(clockRate)+half)/int64(time.Second))
}

// toNTP is t in the NTP format of RTCP (the inverse of ntpTime).
func toNTP(t time.Time) uint64 {
	secs := uint64(t.Unix() + ntpEpochOffset)
	frac := uint64(t.Nanosecond()) << 32 / uint64(time.Second)
	return secs<<32 | frac
}

// reportFor is a sender report for one subscriber.
type reportFor struct {
	sub *session
	sr  *rtcp.SenderReport
}

func (r reportFor) send() {
	// A report that cannot go now (the connection is not up yet, or
	// closing) is followed by the next one.
	_ = r.sub.pc.WriteRTCP([]rtcp.Packet{r.sr})
}

func codecOfMime(mime string) media.Codec {
	switch strings.ToLower(mime) {
	case strings.ToLower(webrtc.MimeTypeH264):
		return media.CodecH264
	case strings.ToLower(webrtc.MimeTypeVP8):
		return media.CodecVP8
	case strings.ToLower(webrtc.MimeTypeOpus):
		return media.CodecOpus
	}
	return media.CodecUnknown
}

// packetizationMode1 tells whether an H264 fmtp line says
// packetization-mode=1, the only mode browsers use for real video.
func packetizationMode1(fmtp string) bool {
	for p := range strings.SplitSeq(fmtp, ";") {
		k, v, _ := strings.Cut(strings.TrimSpace(p), "=")
		if strings.EqualFold(k, "packetization-mode") {
			return strings.TrimSpace(v) == "1"
		}
	}
	return false
}
