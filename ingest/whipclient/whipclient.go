// Package whipclient is a pion WHIP publisher and WHEP subscriber, for
// tests, load tools and the synthetic singer.
package whipclient

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/pion/rtcp"
	"github.com/pion/rtp"
	"github.com/pion/webrtc/v4"
	"github.com/pion/webrtc/v4/pkg/media"
	"github.com/singoff/singoff/internal/pionapi"
)

// Options configure a publisher or subscriber.
type Options struct {
	// VideoCodec is webrtc.MimeTypeH264 (the default) or
	// webrtc.MimeTypeVP8: the only video codec a publisher offers.
	VideoCodec string
	// Loopback keeps ICE on 127.0.0.1, loopback candidate included.
	Loopback bool
	// TCP keeps ICE on TCP, as a singer behind a firewall that drops
	// UDP must.
	TCP bool
	// RewriteOffer and RewriteAnswer, when set, change the SDP on its way
	// to the server and back: tests put an impairment relay
	// (internal/netsim) in the path by rewriting the candidates.
	RewriteOffer, RewriteAnswer func(sdp string) string
}

// HTTPError is a WHIP/WHEP request the server did not accept.
type HTTPError struct {
	Status int
	Body   string
}

func (e *HTTPError) Error() string {
	return fmt.Sprintf("HTTP %d: %s", e.Status, strings.TrimSpace(e.Body))
}

// Codec payload types of the client; the server may map them to others.
const (
	ptVP8  = 96
	ptH264 = 102
	ptOpus = 111
)

// The client's codecs: each video codec alone is what a publisher offers
// (Options.VideoCodec); a subscriber takes both.
var (
	// The publisher's codec preferences keep only these: NACK and PLI
	// are named here, as browsers offer them.
	videoFeedback = []webrtc.RTCPFeedback{{Type: "nack"}, {Type: "nack", Parameter: "pli"}, {Type: "ccm", Parameter: "fir"}}
	h264Codec     = pionapi.H264(ptH264, "42e01f", videoFeedback)
	vp8Codec      = pionapi.VP8(ptVP8, videoFeedback)
	opusCodec     = pionapi.Opus(ptOpus)
)

func newPeerConnection(opts Options) (*webrtc.PeerConnection, error) {
	// Like a browser, the client acknowledges what it receives (TWCC),
	// so the server estimates a subscriber's downlink.
	api, err := pionapi.New(pionapi.Options{
		Video:    []webrtc.RTPCodecParameters{h264Codec, vp8Codec},
		Audio:    []webrtc.RTPCodecParameters{opusCodec},
		TWCC:     true,
		Loopback: opts.Loopback,
		TCPOnly:  opts.TCP,
	})
	if err != nil {
		return nil, err
	}
	return api.NewPeerConnection(webrtc.Configuration{})
}

// session is what publishers and subscribers share: the peer connection
// and its WHIP/WHEP resource.
type session struct {
	pc        *webrtc.PeerConnection
	opts      Options
	token     string
	location  string
	connected chan struct{}
	closeOnce sync.Once
}

func newSession(opts Options, token string) (*session, error) {
	pc, err := newPeerConnection(opts)
	if err != nil {
		return nil, err
	}
	s := &session{pc: pc, opts: opts, token: token, connected: make(chan struct{})}
	var once sync.Once
	pc.OnConnectionStateChange(func(st webrtc.PeerConnectionState) {
		if st == webrtc.PeerConnectionStateConnected {
			once.Do(func() { close(s.connected) })
		}
	})
	return s, nil
}

// httpClient follows the redirects a WHIP/WHEP server answers with (RFC
// 9725: 307 to the server that runs the session, another origin) with
// the bearer token, which Go's client would drop for another host; never
// from HTTPS down to HTTP.
var httpClient = &http.Client{CheckRedirect: func(req *http.Request, via []*http.Request) error {
	if len(via) >= 5 {
		return errors.New("stopped after 5 redirects")
	}
	first := via[0]
	if first.URL.Scheme == "https" && req.URL.Scheme != "https" {
		return fmt.Errorf("refusing a redirect from HTTPS to %s", req.URL.Redacted())
	}
	if auth := first.Header.Get("Authorization"); auth != "" {
		req.Header.Set("Authorization", auth)
	}
	return nil
}}

// negotiate posts the complete offer (candidates gathered) to endpoint
// and applies the answer.
func (s *session) negotiate(ctx context.Context, endpoint string) error {
	offer, err := s.pc.CreateOffer(nil)
	if err != nil {
		return fmt.Errorf("creating the offer: %w", err)
	}
	gathered := webrtc.GatheringCompletePromise(s.pc)
	if err := s.pc.SetLocalDescription(offer); err != nil {
		return fmt.Errorf("setting the offer: %w", err)
	}
	select {
	case <-gathered:
	case <-ctx.Done():
		return fmt.Errorf("gathering candidates: %w", ctx.Err())
	}
	sdp := s.pc.LocalDescription().SDP
	if s.opts.RewriteOffer != nil {
		sdp = s.opts.RewriteOffer(sdp)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, endpoint, strings.NewReader(sdp))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/sdp")
	s.authorize(req)
	resp, err := httpClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return fmt.Errorf("reading the answer: %w", err)
	}
	if resp.StatusCode != http.StatusCreated {
		return &HTTPError{Status: resp.StatusCode, Body: string(body)}
	}
	loc, err := resp.Location()
	if err != nil {
		return fmt.Errorf("answer without Location: %w", err)
	}
	s.location = loc.String()
	answer := string(body)
	if s.opts.RewriteAnswer != nil {
		answer = s.opts.RewriteAnswer(answer)
	}
	if err := s.pc.SetRemoteDescription(webrtc.SessionDescription{Type: webrtc.SDPTypeAnswer, SDP: answer}); err != nil {
		return fmt.Errorf("applying the answer: %w", err)
	}
	return nil
}

func (s *session) authorize(req *http.Request) {
	if s.token != "" {
		req.Header.Set("Authorization", "Bearer "+s.token)
	}
}

// Location is the session's resource URL on the server.
func (s *session) Location() string { return s.location }

// Connected is closed once ICE and DTLS are up.
func (s *session) Connected() <-chan struct{} { return s.connected }

// PeerConnection is the client's pion peer connection.
func (s *session) PeerConnection() *webrtc.PeerConnection { return s.pc }

// Close sends DELETE to the session's resource (when there is one) and
// closes the peer connection.
func (s *session) Close(ctx context.Context) error {
	var err error
	s.closeOnce.Do(func() {
		if s.location != "" {
			err = s.delete(ctx)
		}
		err = errors.Join(err, s.pc.Close())
	})
	return err
}

func (s *session) delete(ctx context.Context) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodDelete, s.location, nil)
	if err != nil {
		return err
	}
	s.authorize(req)
	resp, err := httpClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		body, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
		return &HTTPError{Status: resp.StatusCode, Body: string(body)}
	}
	return nil
}

// Patch sends a trickle-ICE fragment to the session and returns the
// response status and body.
func (s *session) Patch(ctx context.Context, frag string) (int, []byte, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPatch, s.location, bytes.NewReader([]byte(frag)))
	if err != nil {
		return 0, nil, err
	}
	req.Header.Set("Content-Type", "application/trickle-ice-sdpfrag")
	s.authorize(req)
	resp, err := httpClient.Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	return resp.StatusCode, body, err
}

// Publisher is a WHIP session sending one video and one audio track.
type Publisher struct {
	*session
	video, audio         *webrtc.TrackLocalStaticSample
	keyframeRequests     chan struct{}
	keyframeRequestCount atomic.Uint64
}

// Publish offers one video and one audio track to the WHIP endpoint.
func Publish(ctx context.Context, endpoint, token string, opts Options) (*Publisher, error) {
	s, err := newSession(opts, token)
	if err != nil {
		return nil, err
	}
	p := &Publisher{session: s, keyframeRequests: make(chan struct{}, 16)}
	if err := p.addTracks(opts); err != nil {
		_ = s.pc.Close()
		return nil, err
	}
	if err := s.negotiate(ctx, endpoint); err != nil {
		_ = s.pc.Close()
		return nil, err
	}
	return p, nil
}

func (p *Publisher) addTracks(opts Options) error {
	video := h264Codec
	if strings.EqualFold(opts.VideoCodec, webrtc.MimeTypeVP8) {
		video = vp8Codec
	}
	tracks := []struct {
		codec webrtc.RTPCodecParameters
		id    string
		local **webrtc.TrackLocalStaticSample
	}{{video, "video", &p.video}, {opusCodec, "audio", &p.audio}}
	for _, t := range tracks {
		local, err := webrtc.NewTrackLocalStaticSample(t.codec.RTPCodecCapability, t.id, "whipclient")
		if err != nil {
			return err
		}
		*t.local = local
		tr, err := p.pc.AddTransceiverFromTrack(local, webrtc.RTPTransceiverInit{Direction: webrtc.RTPTransceiverDirectionSendonly})
		if err != nil {
			return err
		}
		if err := tr.SetCodecPreferences([]webrtc.RTPCodecParameters{t.codec}); err != nil {
			return err
		}
		go p.readFeedback(tr.Sender())
	}
	return nil
}

func (p *Publisher) readFeedback(sender *webrtc.RTPSender) {
	for {
		pkts, _, err := sender.ReadRTCP()
		if err != nil {
			return
		}
		for _, pkt := range pkts {
			switch pkt.(type) {
			case *rtcp.PictureLossIndication, *rtcp.FullIntraRequest:
				p.keyframeRequestCount.Add(1)
				select {
				case p.keyframeRequests <- struct{}{}:
				default:
				}
			}
		}
	}
}

// KeyframeRequests receives a value for each PLI or FIR from the server
// (dropped when nobody reads).
func (p *Publisher) KeyframeRequests() <-chan struct{} { return p.keyframeRequests }

// KeyframeRequestCount counts the PLIs and FIRs received.
func (p *Publisher) KeyframeRequestCount() uint64 { return p.keyframeRequestCount.Load() }

// WriteVideo sends one video frame (H264 Annex-B access unit or VP8 frame).
func (p *Publisher) WriteVideo(s media.Sample) error { return p.video.WriteSample(s) }

// WriteAudio sends one Opus packet.
func (p *Publisher) WriteAudio(s media.Sample) error { return p.audio.WriteSample(s) }

// Packet is one RTP packet a subscriber received.
type Packet struct {
	Kind webrtc.RTPCodecType
	// MimeType is the track's codec, e.g. webrtc.MimeTypeH264.
	MimeType string
	RTP      *rtp.Packet
	Received time.Time
}

// Subscriber is a WHEP session receiving one video and one audio track.
type Subscriber struct {
	*session
	packets   chan Packet
	videoSSRC atomic.Uint32
	done      chan struct{}
	doneOnce  sync.Once
}

// subscriberBuffer is how many packets Packets holds before dropping.
const subscriberBuffer = 4096

// Subscribe offers to receive one video and one audio track from the
// WHEP endpoint.
func Subscribe(ctx context.Context, endpoint, token string, opts Options) (*Subscriber, error) {
	s, err := newSession(opts, token)
	if err != nil {
		return nil, err
	}
	sub := &Subscriber{session: s, packets: make(chan Packet, subscriberBuffer), done: make(chan struct{})}
	for _, kind := range []webrtc.RTPCodecType{webrtc.RTPCodecTypeVideo, webrtc.RTPCodecTypeAudio} {
		if _, err := s.pc.AddTransceiverFromKind(kind, webrtc.RTPTransceiverInit{Direction: webrtc.RTPTransceiverDirectionRecvonly}); err != nil {
			_ = s.pc.Close()
			return nil, err
		}
	}
	s.pc.OnTrack(sub.read)
	if err := s.negotiate(ctx, endpoint); err != nil {
		_ = s.pc.Close()
		return nil, err
	}
	return sub, nil
}

func (sub *Subscriber) read(track *webrtc.TrackRemote, _ *webrtc.RTPReceiver) {
	if track.Kind() == webrtc.RTPCodecTypeVideo {
		sub.videoSSRC.Store(uint32(track.SSRC()))
	}
	mime := track.Codec().MimeType
	for {
		pkt, _, err := track.ReadRTP()
		if err != nil {
			return
		}
		p := Packet{Kind: track.Kind(), MimeType: mime, RTP: pkt, Received: time.Now()}
		select {
		case sub.packets <- p:
		case <-sub.done:
			return
		default: // full: nobody reads
		}
	}
}

// Packets delivers received RTP of both tracks; packets are dropped when
// it is full.
func (sub *Subscriber) Packets() <-chan Packet { return sub.packets }

// RequestKeyframe sends a PLI for the video track.
func (sub *Subscriber) RequestKeyframe() error {
	ssrc := sub.videoSSRC.Load()
	if ssrc == 0 {
		return errors.New("no video track yet")
	}
	return sub.pc.WriteRTCP([]rtcp.Packet{&rtcp.PictureLossIndication{MediaSSRC: ssrc}})
}

// Close sends DELETE, closes the peer connection and stops reading.
func (sub *Subscriber) Close(ctx context.Context) error {
	err := sub.session.Close(ctx)
	sub.doneOnce.Do(func() { close(sub.done) })
	return err
}
