package pionapi

import (
	"context"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/pion/ice/v4"
	"github.com/pion/rtcp"
	"github.com/pion/rtp"
	"github.com/pion/sdp/v3"
	"github.com/pion/webrtc/v4"
)

func TestNetworkTypes(t *testing.T) {
	const (
		udp4, udp6 = webrtc.NetworkTypeUDP4, webrtc.NetworkTypeUDP6
		tcp4, tcp6 = webrtc.NetworkTypeTCP4, webrtc.NetworkTypeTCP6
	)
	// Only whether there is a TCP mux matters here.
	var mux ice.TCPMux = (*ice.TCPMuxDefault)(nil)
	cases := []struct {
		name string
		opts Options
		want []webrtc.NetworkType
	}{
		{"client", Options{}, []webrtc.NetworkType{udp4, udp6}},
		{"client on loopback", Options{Loopback: true}, []webrtc.NetworkType{udp4}},
		{"client over TCP", Options{TCPOnly: true}, []webrtc.NetworkType{tcp4, tcp6}},
		{"client over TCP on loopback", Options{TCPOnly: true, Loopback: true}, []webrtc.NetworkType{tcp4}},
		{"server", Options{TCPMux: mux}, []webrtc.NetworkType{udp4, udp6, tcp4, tcp6}},
		{"server on loopback", Options{Loopback: true, TCPMux: mux}, []webrtc.NetworkType{udp4, tcp4}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if got := networkTypes(c.opts); !slices.Equal(got, c.want) {
				t.Errorf("network types %v, want %v", got, c.want)
			}
		})
	}
}

// An offer made with the API carries the codecs in order, the feedback
// the interceptors add, and transport-cc only with TWCC.
func TestNewOffers(t *testing.T) {
	fir := []webrtc.RTCPFeedback{{Type: "ccm", Parameter: "fir"}}
	cases := []struct {
		name string
		opts Options
		want []string
		not  []string
	}{
		{
			"H264 then VP8, TWCC",
			Options{Video: []webrtc.RTPCodecParameters{H264(102, "42e01f", fir), VP8(96, fir)}, Audio: []webrtc.RTPCodecParameters{Opus(111)}, TWCC: true, Loopback: true},
			[]string{"m=video 9 UDP/TLS/RTP/SAVPF 102 96", "a=fmtp:102 level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=42e01f", "a=rtcp-fb:102 nack pli", "a=rtcp-fb:96 ccm fir", "transport-cc", "a=rtpmap:111 opus/48000/2"},
			nil,
		},
		{
			"estimating sends transport-wide numbers without asking for feedback",
			Options{Video: []webrtc.RTPCodecParameters{VP8(96, nil)}, Audio: []webrtc.RTPCodecParameters{Opus(111)}, Estimate: Bitrates{Min: 1, Max: 2}, Loopback: true},
			[]string{"transport-wide-cc-extensions-01"},
			[]string{"transport-cc"},
		},
		{
			"VP8 alone, no TWCC",
			Options{Video: []webrtc.RTPCodecParameters{VP8(96, nil)}, Audio: []webrtc.RTPCodecParameters{Opus(111)}, Loopback: true},
			[]string{"m=video 9 UDP/TLS/RTP/SAVPF 96", "a=rtcp-fb:96 nack"},
			[]string{"H264", "transport-cc"},
		},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			api, err := New(c.opts)
			if err != nil {
				t.Fatal(err)
			}
			pc, err := api.NewPeerConnection(webrtc.Configuration{})
			if err != nil {
				t.Fatal(err)
			}
			defer pc.Close()
			for _, kind := range []webrtc.RTPCodecType{webrtc.RTPCodecTypeVideo, webrtc.RTPCodecTypeAudio} {
				if _, err := pc.AddTransceiverFromKind(kind, webrtc.RTPTransceiverInit{Direction: webrtc.RTPTransceiverDirectionRecvonly}); err != nil {
					t.Fatal(err)
				}
			}
			offer, err := pc.CreateOffer(nil)
			if err != nil {
				t.Fatal(err)
			}
			for _, w := range c.want {
				if !strings.Contains(offer.SDP, w) {
					t.Errorf("offer lacks %q:\n%s", w, offer.SDP)
				}
			}
			for _, n := range c.not {
				if strings.Contains(offer.SDP, n) {
					t.Errorf("offer has %q:\n%s", n, offer.SDP)
				}
			}
		})
	}
}

// What a sending connection adds to its media, by the options: sender
// reports (unless the caller makes its own), and with Estimate,
// transport-wide sequence numbers on each packet and a bandwidth
// estimate from the receiver's TWCC feedback, read with the RTCP.
func TestSendSide(t *testing.T) {
	cases := []struct {
		name      string
		opts      Options
		reports   bool // the receiver gets sender reports
		estimated bool // the packets carry transport-wide numbers and the sender an estimate
	}{
		{"default", Options{}, true, false},
		{"estimate, own sender reports", Options{Estimate: Bitrates{Min: 100_000, Max: 5_000_000}, OwnSenderReports: true}, false, true},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got := runSendSide(t, c.opts, 3*time.Second)
			if got.reports != c.reports {
				t.Errorf("receiver got sender reports: %v, want %v", got.reports, c.reports)
			}
			if got.numbered != c.estimated {
				t.Errorf("packets carried transport-wide sequence numbers: %v, want %v", got.numbered, c.estimated)
			}
			if got.estimate != c.estimated {
				t.Errorf("sender read an estimate: %v, want %v", got.estimate, c.estimated)
			} else if c.estimated && (got.bps < c.opts.Estimate.Min || got.bps > c.opts.Estimate.Max) {
				t.Errorf("estimate %d bit/s, outside %+v", got.bps, c.opts.Estimate)
			}
		})
	}
}

// sendSide is what runSendSide saw.
type sendSide struct {
	reports, numbered, estimate bool
	bps                         int
}

// runSendSide connects a sender made with opts to a receiver that sends
// TWCC feedback, both on loopback, sends VP8-labelled packets for d and
// reports what each side saw.
func runSendSide(t *testing.T, opts Options, d time.Duration) sendSide {
	t.Helper()
	vp8 := VP8(96, nil)
	opts.Video, opts.Loopback = []webrtc.RTPCodecParameters{vp8}, true
	sender := newPC(t, opts)
	receiver := newPC(t, Options{Video: []webrtc.RTPCodecParameters{vp8}, TWCC: true, Loopback: true})
	track, err := webrtc.NewTrackLocalStaticRTP(vp8.RTPCodecCapability, "video", "test")
	if err != nil {
		t.Fatal(err)
	}
	rtpSender, err := sender.AddTrack(track)
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var got sendSide
	receiver.OnTrack(func(tr *webrtc.TrackRemote, recv *webrtc.RTPReceiver) {
		twccID := 0
		for _, e := range recv.GetParameters().HeaderExtensions {
			if e.URI == sdp.TransportCCURI {
				twccID = e.ID
			}
		}
		go func() {
			for {
				pkts, _, err := recv.ReadRTCP()
				if err != nil {
					return
				}
				for _, p := range pkts {
					if _, ok := p.(*rtcp.SenderReport); ok {
						mu.Lock()
						got.reports = true
						mu.Unlock()
					}
				}
			}
		}()
		for {
			p, _, err := tr.ReadRTP()
			if err != nil {
				return
			}
			var tcc rtp.TransportCCExtension
			if twccID != 0 && tcc.Unmarshal(p.GetExtension(uint8(twccID))) == nil {
				mu.Lock()
				got.numbered = true
				mu.Unlock()
			}
		}
	})
	go func() {
		for {
			_, attrs, err := rtpSender.ReadRTCP()
			if err != nil {
				return
			}
			if bps, ok := BandwidthEstimate(attrs); ok {
				mu.Lock()
				got.estimate, got.bps = true, bps
				mu.Unlock()
			}
		}
	}()
	connect(t, sender, receiver)
	payload := make([]byte, 1000)
	deadline := time.Now().Add(d)
	for seq := uint16(0); time.Now().Before(deadline); seq++ {
		payload[0] = 0x10 // VP8: start of a partition
		if err := track.WriteRTP(&rtp.Packet{Header: rtp.Header{Version: 2, SequenceNumber: seq, Timestamp: uint32(seq) * 3000, Marker: true}, Payload: payload}); err != nil {
			t.Fatal(err)
		}
		time.Sleep(10 * time.Millisecond)
	}
	mu.Lock()
	defer mu.Unlock()
	return got
}

func newPC(t *testing.T, opts Options) *webrtc.PeerConnection {
	t.Helper()
	api, err := New(opts)
	if err != nil {
		t.Fatal(err)
	}
	pc, err := api.NewPeerConnection(webrtc.Configuration{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = pc.Close() })
	return pc
}

// connect negotiates offerer with answerer and waits until both are
// connected.
func connect(t *testing.T, offerer, answerer *webrtc.PeerConnection) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	var done []<-chan struct{}
	for _, pc := range []*webrtc.PeerConnection{offerer, answerer} {
		ch := make(chan struct{})
		var once sync.Once
		pc.OnConnectionStateChange(func(s webrtc.PeerConnectionState) {
			if s == webrtc.PeerConnectionStateConnected {
				once.Do(func() { close(ch) })
			}
		})
		done = append(done, ch)
	}
	complete := func(pc *webrtc.PeerConnection, sdp webrtc.SessionDescription) webrtc.SessionDescription {
		gathered := webrtc.GatheringCompletePromise(pc)
		if err := pc.SetLocalDescription(sdp); err != nil {
			t.Fatal(err)
		}
		<-gathered
		return *pc.LocalDescription()
	}
	offer, err := offerer.CreateOffer(nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := answerer.SetRemoteDescription(complete(offerer, offer)); err != nil {
		t.Fatal(err)
	}
	answer, err := answerer.CreateAnswer(nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := offerer.SetRemoteDescription(complete(answerer, answer)); err != nil {
		t.Fatal(err)
	}
	for _, ch := range done {
		select {
		case <-ch:
		case <-ctx.Done():
			t.Fatal("the peer connections did not connect")
		}
	}
}
