package pionapi

import (
	"slices"
	"strings"
	"testing"

	"github.com/pion/ice/v4"
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
