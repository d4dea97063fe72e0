package ingest

import (
	"context"
	"encoding/binary"
	"fmt"
	"io"
	"math"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/pion/rtcp"
	"github.com/pion/rtp"
	"github.com/pion/webrtc/v4"
	"github.com/singoff/singoff/internal/netsim"
	"github.com/singoff/singoff/internal/pionapi"
)

// The raw clients: pion peers that write and read RTP and RTCP
// themselves, for what whipclient does not show: padding, a sender's
// own clock mapping, the REMB and the bandwidth estimate a publisher
// gets, the sender reports a subscriber gets.

// Each packet's payload says which frame (or audio packet) it belongs to
// and which part of it it is, after a one-byte codec header: an H264
// non-IDR slice NAL header, or an Opus TOC byte.
const (
	rawNALHeader = 0x41
	rawOpusTOC   = 0xfc
)

// rawPayload is a packet payload of size bytes (at least 7) for part
// part of frame frame.
func rawPayload(header byte, frame uint32, part byte, size int) []byte {
	b := make([]byte, size)
	b[0] = header
	binary.BigEndian.PutUint32(b[1:], frame)
	b[5] = part
	return b
}

// rawFrameOf reads the frame and part of a payload made by rawPayload.
func rawFrameOf(payload []byte) (frame uint32, part byte, ok bool) {
	if len(payload) < 7 {
		return 0, 0, false
	}
	return binary.BigEndian.Uint32(payload[1:]), payload[5], true
}

// rawClock is a raw publisher's capture clock: frame n of a track was
// captured at start + n·step, its RTP timestamp is base + n·step in the
// track's clock rate, and it is sent delay after its capture, as a
// browser sends a frame after encoding (video) or framing (audio).
type rawClock struct {
	start     time.Time
	step      time.Duration
	clockRate uint32
	base      uint32
	delay     time.Duration
}

func (c rawClock) rtpTime(n uint32) uint32 {
	return c.base + uint32(uint64(n)*uint64(c.step)*uint64(c.clockRate)/uint64(time.Second))
}

// captureOf is the capture time of an RTP timestamp of the track: the
// publisher's own mapping, which its sender reports state.
func (c rawClock) captureOf(ts uint32) time.Time {
	d := int64(int32(ts - c.base))
	return c.start.Add(time.Duration(d * int64(time.Second) / int64(c.clockRate)))
}

// report is the sender report of the track ssrc at now: the RTP
// timestamp of the latest tick at or before now and its exact capture
// time, so that the report states the capture clock's mapping exactly.
func (c rawClock) report(ssrc uint32, now time.Time) *rtcp.SenderReport {
	ts := c.rtpAt(now)
	return &rtcp.SenderReport{SSRC: ssrc, NTPTime: toNTP(c.captureOf(ts)), RTPTime: ts}
}

// rtpAt is the RTP timestamp of wall time t on the capture clock.
func (c rawClock) rtpAt(t time.Time) uint32 {
	return c.base + uint32(t.Sub(c.start).Seconds()*float64(c.clockRate))
}

// rawPublisherConfig says what a raw publisher sends.
type rawPublisherConfig struct {
	// videoBitrate is the video's rate in bit/s, in 20 frames a second
	// of packets of at most 1,000 payload bytes (framePackets).
	videoBitrate int
	// videoDelay and audioDelay are the times from capture to send.
	videoDelay, audioDelay time.Duration
	// padding is the number of padding-only packets sent after each
	// frame, numbered with the media, as browsers probe.
	padding int
	// lateEvery makes every lateEvery-th frame's first padding packet
	// come after the next frame's first packet (0: never).
	lateEvery int
	// estimate runs a bandwidth estimator on the server's TWCC
	// feedback (the estimate the publisher's browser would make).
	estimate bool
	// adapt makes the video's rate behave as a browser's does: it
	// starts at rampFrom, rises by a tenth a second up to videoBitrate,
	// and is held to what the latest REMB and the publisher's own
	// estimate allow.
	adapt bool
	// relay, when set, is the way to the server.
	relay *netsim.Relay
}

const (
	rawFrameStep  = 50 * time.Millisecond // 20 fps
	rawAudioStep  = 20 * time.Millisecond
	rawAudioBytes = 160 // 64 kb/s
	rawMaxPayload = 1000
	// rampFrom is where an adapting publisher starts, as browsers do.
	rampFrom = 300_000
	// rawFirstSeq makes the video's sequence numbers wrap soon.
	rawFirstSeq = 65500
)

// rawPublisher publishes made-up H264 and Opus RTP and its own sender
// reports, and records the RTCP the server sends it.
type rawPublisher struct {
	cfg          rawPublisherConfig
	pc           *webrtc.PeerConnection
	video, audio *webrtc.TrackLocalStaticRTP
	videoSSRC    uint32
	audioSSRC    uint32
	videoClock   rawClock
	audioClock   rawClock
	stop         context.CancelFunc
	wg           sync.WaitGroup

	mu        sync.Mutex
	rembs     []timedValue
	estimates []timedValue
}

// timedValue is a bitrate seen at a time.
type timedValue struct {
	at  time.Time
	bps float64
}

func newRawPublisher(ctx context.Context, t testing.TB, h *harness, room string, slot int, cfg rawPublisherConfig) *rawPublisher {
	t.Helper()
	opts := pionapi.Options{
		Video:            []webrtc.RTPCodecParameters{pionapi.H264(102, "42e01f", nil)},
		Audio:            []webrtc.RTPCodecParameters{pionapi.Opus(111)},
		Loopback:         true,
		OwnSenderReports: true,
	}
	if cfg.estimate {
		opts.Estimate = pionapi.Bitrates{Min: 50_000, Max: 10_000_000}
	}
	api, err := pionapi.New(opts)
	if err != nil {
		t.Fatal(err)
	}
	pc, err := api.NewPeerConnection(webrtc.Configuration{})
	if err != nil {
		t.Fatal(err)
	}
	p := &rawPublisher{cfg: cfg, pc: pc}
	t.Cleanup(p.close)
	for _, tr := range []struct {
		codec webrtc.RTPCodecParameters
		track **webrtc.TrackLocalStaticRTP
		ssrc  *uint32
	}{{opts.Video[0], &p.video, &p.videoSSRC}, {opts.Audio[0], &p.audio, &p.audioSSRC}} {
		track, err := webrtc.NewTrackLocalStaticRTP(tr.codec.RTPCodecCapability, tr.codec.MimeType, "raw")
		if err != nil {
			t.Fatal(err)
		}
		sender, err := pc.AddTrack(track)
		if err != nil {
			t.Fatal(err)
		}
		*tr.track, *tr.ssrc = track, uint32(sender.GetParameters().Encodings[0].SSRC)
		go p.readRTCP(sender)
	}
	connected := connectedChan(pc)
	answer := postOffer(ctx, t, pc, h.url(room, slot, "whip"), cfg.relay)
	if err := pc.SetRemoteDescription(webrtc.SessionDescription{Type: webrtc.SDPTypeAnswer, SDP: answer}); err != nil {
		t.Fatal(err)
	}
	waitConnected(ctx, t, connected)

	start := time.Now()
	p.videoClock = rawClock{start: start, step: rawFrameStep, clockRate: 90000, base: 1_000_000, delay: cfg.videoDelay}
	p.audioClock = rawClock{start: start, step: rawAudioStep, clockRate: 48000, base: 2_000_000, delay: cfg.audioDelay}
	sendCtx, stop := context.WithCancel(context.Background())
	p.stop = stop
	p.wg.Add(3)
	go p.sendVideo(sendCtx)
	go p.sendAudio(sendCtx)
	go p.sendReports(sendCtx)
	return p
}

func (p *rawPublisher) close() {
	if p.stop != nil {
		p.stop()
		p.wg.Wait()
	}
	_ = p.pc.Close()
}

// sleepUntil waits for t; false when ctx ended first.
func sleepUntil(ctx context.Context, t time.Time) bool {
	select {
	case <-time.After(time.Until(t)):
		return true
	case <-ctx.Done():
		return false
	}
}

// videoRate is the video's bitrate now: as configured, or what the
// REMB and the estimate allow with the audio's share taken off.
func (p *rawPublisher) videoRate() int {
	rate := p.cfg.videoBitrate
	if !p.cfg.adapt {
		return rate
	}
	ramp := time.Since(p.videoClock.start).Seconds()
	rate = min(rate, int(rampFrom*math.Pow(1.1, ramp)))
	p.mu.Lock()
	defer p.mu.Unlock()
	const audio = rawAudioBytes * 8 * 50
	for _, v := range [][]timedValue{p.rembs, p.estimates} {
		if len(v) > 0 {
			rate = min(rate, max(50_000, int(v[len(v)-1].bps)-audio))
		}
	}
	return rate
}

// framePackets is how many packets of what payload size make a frame of
// video at rate.
func framePackets(rate int) (packets, size int) {
	bytes := rate / 8 / 20
	packets = max(1, (bytes+rawMaxPayload-1)/rawMaxPayload)
	return packets, max(7, bytes/packets)
}

func (p *rawPublisher) sendVideo(ctx context.Context) {
	defer p.wg.Done()
	seq := uint16(rawFirstSeq)
	next := func() uint16 { seq++; return seq - 1 }
	var late *rtp.Packet // a padding packet held back
	for n := uint32(0); ; n++ {
		c := p.videoClock
		if !sleepUntil(ctx, c.start.Add(time.Duration(n)*c.step+c.delay)) {
			return
		}
		ts := c.rtpTime(n)
		perFrame, size := framePackets(p.videoRate())
		for part := range perFrame {
			pkt := &rtp.Packet{
				Header:  rtp.Header{Version: 2, SequenceNumber: next(), Timestamp: ts, Marker: part == perFrame-1},
				Payload: rawPayload(rawNALHeader, n, byte(part), size),
			}
			_ = p.video.WriteRTP(pkt)
			if part == 0 && late != nil {
				_ = p.video.WriteRTP(late)
				late = nil
			}
		}
		for i := range p.cfg.padding {
			pad := &rtp.Packet{Header: rtp.Header{Version: 2, SequenceNumber: next(), Timestamp: ts, Padding: true, PaddingSize: 200}}
			if i == 0 && p.cfg.lateEvery > 0 && n%uint32(p.cfg.lateEvery) == 0 {
				late = pad
				continue
			}
			_ = p.video.WriteRTP(pad)
		}
	}
}

func (p *rawPublisher) sendAudio(ctx context.Context) {
	defer p.wg.Done()
	for n := uint32(0); ; n++ {
		c := p.audioClock
		if !sleepUntil(ctx, c.start.Add(time.Duration(n)*c.step+c.delay)) {
			return
		}
		_ = p.audio.WriteRTP(&rtp.Packet{
			Header:  rtp.Header{Version: 2, SequenceNumber: uint16(n), Timestamp: c.rtpTime(n), Marker: n == 0},
			Payload: rawPayload(rawOpusTOC, n, 0, rawAudioBytes),
		})
	}
}

// sendReports sends a sender report per track twice a second, mapping
// the capture clock: what a browser states.
func (p *rawPublisher) sendReports(ctx context.Context) {
	defer p.wg.Done()
	tick := time.NewTicker(500 * time.Millisecond)
	defer tick.Stop()
	for {
		select {
		case <-tick.C:
		case <-ctx.Done():
			return
		}
		now := time.Now()
		_ = p.pc.WriteRTCP([]rtcp.Packet{p.videoClock.report(p.videoSSRC, now), p.audioClock.report(p.audioSSRC, now)})
	}
}

func (p *rawPublisher) readRTCP(sender *webrtc.RTPSender) {
	for {
		pkts, attrs, err := sender.ReadRTCP()
		if err != nil {
			return
		}
		now := time.Now()
		p.mu.Lock()
		for _, pkt := range pkts {
			if r, ok := pkt.(*rtcp.ReceiverEstimatedMaximumBitrate); ok {
				p.rembs = append(p.rembs, timedValue{now, float64(r.Bitrate)})
			}
		}
		if bps, ok := pionapi.BandwidthEstimate(attrs); ok {
			p.estimates = append(p.estimates, timedValue{now, float64(bps)})
		}
		p.mu.Unlock()
	}
}

// received returns the REMBs and the publisher's own estimates so far.
func (p *rawPublisher) received() (rembs, estimates []timedValue) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]timedValue(nil), p.rembs...), append([]timedValue(nil), p.estimates...)
}

// rawSubscriber receives a slot's media and records every packet and
// sender report, acknowledging what it receives (TWCC) as a browser
// does.
type rawSubscriber struct {
	pc *webrtc.PeerConnection

	mu      sync.Mutex
	packets map[webrtc.RTPCodecType][]rawPacket
	reports map[webrtc.RTPCodecType][]rtcp.SenderReport
	ssrcs   map[uint32]webrtc.RTPCodecType
}

// rawPacket is one packet a raw subscriber received.
type rawPacket struct {
	seq     uint16
	ts      uint32
	padding bool
	frame   uint32
	part    byte
	at      time.Time
}

func newRawSubscriber(ctx context.Context, t testing.TB, h *harness, room string, slot int, via *netsim.Relay) *rawSubscriber {
	t.Helper()
	api, err := pionapi.New(pionapi.Options{
		Video:    []webrtc.RTPCodecParameters{pionapi.H264(102, "42e01f", nil)},
		Audio:    []webrtc.RTPCodecParameters{pionapi.Opus(111)},
		TWCC:     true,
		Loopback: true,
	})
	if err != nil {
		t.Fatal(err)
	}
	pc, err := api.NewPeerConnection(webrtc.Configuration{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = pc.Close() })
	s := &rawSubscriber{pc: pc,
		packets: map[webrtc.RTPCodecType][]rawPacket{},
		reports: map[webrtc.RTPCodecType][]rtcp.SenderReport{},
		ssrcs:   map[uint32]webrtc.RTPCodecType{},
	}
	for _, kind := range []webrtc.RTPCodecType{webrtc.RTPCodecTypeVideo, webrtc.RTPCodecTypeAudio} {
		if _, err := pc.AddTransceiverFromKind(kind, webrtc.RTPTransceiverInit{Direction: webrtc.RTPTransceiverDirectionRecvonly}); err != nil {
			t.Fatal(err)
		}
	}
	pc.OnTrack(s.read)
	connected := connectedChan(pc)
	answer := postOffer(ctx, t, pc, h.url(room, slot, "whep"), via)
	if err := pc.SetRemoteDescription(webrtc.SessionDescription{Type: webrtc.SDPTypeAnswer, SDP: answer}); err != nil {
		t.Fatal(err)
	}
	waitConnected(ctx, t, connected)
	return s
}

func (s *rawSubscriber) read(track *webrtc.TrackRemote, recv *webrtc.RTPReceiver) {
	kind := track.Kind()
	s.mu.Lock()
	s.ssrcs[uint32(track.SSRC())] = kind
	s.mu.Unlock()
	go func() {
		for {
			pkts, _, err := recv.ReadRTCP()
			if err != nil {
				return
			}
			s.mu.Lock()
			for _, p := range pkts {
				if sr, ok := p.(*rtcp.SenderReport); ok && s.ssrcs[sr.SSRC] == kind {
					s.reports[kind] = append(s.reports[kind], *sr)
				}
			}
			s.mu.Unlock()
		}
	}()
	for {
		pkt, _, err := track.ReadRTP()
		if err != nil {
			return
		}
		r := rawPacket{seq: pkt.SequenceNumber, ts: pkt.Timestamp, padding: len(pkt.Payload) == 0, at: time.Now()}
		r.frame, r.part, _ = rawFrameOf(pkt.Payload)
		s.mu.Lock()
		s.packets[kind] = append(s.packets[kind], r)
		s.mu.Unlock()
	}
}

// got returns the packets and sender reports of kind so far.
func (s *rawSubscriber) got(kind webrtc.RTPCodecType) ([]rawPacket, []rtcp.SenderReport) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]rawPacket(nil), s.packets[kind]...), append([]rtcp.SenderReport(nil), s.reports[kind]...)
}

// connectedChan is closed when pc connects.
func connectedChan(pc *webrtc.PeerConnection) <-chan struct{} {
	ch := make(chan struct{})
	var once sync.Once
	pc.OnConnectionStateChange(func(st webrtc.PeerConnectionState) {
		if st == webrtc.PeerConnectionStateConnected {
			once.Do(func() { close(ch) })
		}
	})
	return ch
}

// postOffer makes pc's complete offer, posts it to url and returns the
// answer; through the relay via when it is not nil.
func postOffer(ctx context.Context, t testing.TB, pc *webrtc.PeerConnection, url string, via *netsim.Relay) string {
	t.Helper()
	local := completeOffer(t, pc)
	if via != nil {
		local = via.Offer(local)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, strings.NewReader(local))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/sdp")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode != http.StatusCreated {
		t.Fatal(fmt.Errorf("offer to %s: %d %s %v", url, resp.StatusCode, body, err))
	}
	if via != nil {
		return via.Answer(string(body))
	}
	return string(body)
}

// startRelay starts an impairment relay for the test.
func startRelay(t testing.TB, cfg netsim.Config) *netsim.Relay {
	t.Helper()
	r, err := netsim.Start(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = r.Close() })
	return r
}
