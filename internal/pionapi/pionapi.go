// Package pionapi builds the pion WebRTC API that the ingest server and
// the WHIP client share: codecs, interceptors (NACK, RTCP reports,
// congestion-control feedback, send-side bandwidth estimation) and ICE
// settings, from one small Options.
package pionapi

import (
	"fmt"
	"log/slog"
	"net"
	"time"

	"github.com/pion/ice/v4"
	"github.com/pion/interceptor"
	"github.com/pion/interceptor/pkg/nack"
	"github.com/pion/interceptor/pkg/report"
	"github.com/pion/webrtc/v4"
)

// Options say what an API negotiates and where its ICE runs.
type Options struct {
	// Video and Audio are the codecs negotiated, in order of preference.
	// NACK and PLI feedback are added to the video codecs.
	Video, Audio []webrtc.RTPCodecParameters
	// TWCC sends transport-wide congestion control feedback on the
	// media received, for the sender's bandwidth estimate.
	TWCC bool
	// Estimate, when its Max is set, stamps transport-wide sequence
	// numbers on the media sent and estimates each connection's send
	// bandwidth, within Estimate, from the peer's TWCC feedback (Google
	// congestion control); BandwidthEstimate reads it.
	Estimate Bitrates
	// OwnSenderReports leaves the RTCP sender reports of the media sent
	// to the caller (a forwarder translates its sources' own); pion then
	// makes only receiver reports.
	OwnSenderReports bool
	// Loopback keeps ICE on 127.0.0.1: IPv4 only, the loopback
	// candidate included (tests).
	Loopback bool
	// TCPOnly keeps ICE on TCP, as behind a firewall that drops UDP.
	TCPOnly bool
	// UDPMux and TCPMux, when set, carry every connection's ICE on one
	// shared socket each (a server). ICE runs over TCP only with a
	// TCPMux or TCPOnly.
	UDPMux ice.UDPMux
	TCPMux ice.TCPMux
	// NAT1To1IPs are public addresses advertised as host candidates in
	// place of the local ones.
	NAT1To1IPs []string
	// Logger receives pion's logs; nil is slog.Default().
	Logger *slog.Logger
}

// nackInterval is how often missing packets are asked for again: a
// retransmission then comes within about a round trip of the loss, soon
// enough for the compositor's 100 ms playout delay (pion's default,
// 100 ms, lets one come up to 100 ms later; browsers ask at once).
const nackInterval = 20 * time.Millisecond

// New builds the API.
func New(o Options) (*webrtc.API, error) {
	var me webrtc.MediaEngine
	for _, c := range o.Video {
		if err := me.RegisterCodec(c, webrtc.RTPCodecTypeVideo); err != nil {
			return nil, fmt.Errorf("video codec %s: %w", c.MimeType, err)
		}
	}
	for _, c := range o.Audio {
		if err := me.RegisterCodec(c, webrtc.RTPCodecTypeAudio); err != nil {
			return nil, fmt.Errorf("audio codec %s: %w", c.MimeType, err)
		}
	}
	logger := o.Logger
	if logger == nil {
		logger = slog.Default()
	}
	logs := slogFactory{log: logger}
	ir := &interceptor.Registry{}
	// Interceptors registered later run first on the way out and see the
	// RTCP read after those registered earlier.
	if o.Estimate.Max > 0 {
		// The estimator notes each packet sent with the transport-wide
		// sequence number the header-extension interceptor stamps on
		// it just before; both come after the NACK responder on the way
		// out, so that a retransmission gets a number of its own.
		ir.Add(estimatorFactory{bounds: o.Estimate, logs: logs})
		if err := webrtc.ConfigureTWCCHeaderExtensionSender(&me, ir); err != nil {
			return nil, fmt.Errorf("TWCC header extension: %w", err)
		}
	}
	// NACK generator (to senders) and responder (to receivers), sender
	// and receiver reports.
	if err := webrtc.ConfigureNackWithOptions(&me, ir, []nack.GeneratorOption{nack.GeneratorInterval(nackInterval)}); err != nil {
		return nil, fmt.Errorf("NACK interceptors: %w", err)
	}
	if err := configureReports(ir, o.OwnSenderReports); err != nil {
		return nil, fmt.Errorf("RTCP report interceptors: %w", err)
	}
	if o.TWCC {
		if err := webrtc.ConfigureTWCCSender(&me, ir); err != nil {
			return nil, fmt.Errorf("TWCC interceptor: %w", err)
		}
	}

	var se webrtc.SettingEngine
	se.LoggerFactory = logs
	se.SetICEMulticastDNSMode(ice.MulticastDNSModeDisabled)
	if o.UDPMux != nil {
		se.SetICEUDPMux(o.UDPMux)
	}
	if o.TCPMux != nil {
		se.SetICETCPMux(o.TCPMux)
	}
	se.SetNetworkTypes(networkTypes(o))
	if o.Loopback {
		se.SetIncludeLoopbackCandidate(true)
		se.SetIPFilter(func(ip net.IP) bool { return ip.IsLoopback() })
	}
	if len(o.NAT1To1IPs) > 0 {
		err := se.SetICEAddressRewriteRules(webrtc.ICEAddressRewriteRule{
			External:        o.NAT1To1IPs,
			AsCandidateType: webrtc.ICECandidateTypeHost,
			Mode:            webrtc.ICEAddressRewriteReplace,
		})
		if err != nil {
			return nil, fmt.Errorf("public IPs: %w", err)
		}
	}
	return webrtc.NewAPI(webrtc.WithMediaEngine(&me), webrtc.WithInterceptorRegistry(ir), webrtc.WithSettingEngine(se)), nil
}

// configureReports registers the receiver reports, and the sender
// reports unless the caller makes its own.
func configureReports(ir *interceptor.Registry, ownSenderReports bool) error {
	if !ownSenderReports {
		return webrtc.ConfigureRTCPReports(ir)
	}
	receiver, err := report.NewReceiverInterceptor()
	if err != nil {
		return err
	}
	ir.Add(receiver)
	return nil
}

// networkTypes are where ICE runs: UDP unless TCPOnly, TCP with a TCPMux
// or TCPOnly; IPv4, and IPv6 too unless Loopback.
func networkTypes(o Options) []webrtc.NetworkType {
	var types []webrtc.NetworkType
	add := func(v4, v6 webrtc.NetworkType) {
		types = append(types, v4)
		if !o.Loopback {
			types = append(types, v6)
		}
	}
	if !o.TCPOnly {
		add(webrtc.NetworkTypeUDP4, webrtc.NetworkTypeUDP6)
	}
	if o.TCPOnly || o.TCPMux != nil {
		add(webrtc.NetworkTypeTCP4, webrtc.NetworkTypeTCP6)
	}
	return types
}

// H264 is H264 in packetization mode 1, the mode browsers use, with
// profile-level-id (e.g. "42e01f", constrained baseline 3.1).
func H264(pt webrtc.PayloadType, profileLevelID string, feedback []webrtc.RTCPFeedback) webrtc.RTPCodecParameters {
	return webrtc.RTPCodecParameters{RTPCodecCapability: webrtc.RTPCodecCapability{
		MimeType:     webrtc.MimeTypeH264,
		ClockRate:    90000,
		SDPFmtpLine:  "level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=" + profileLevelID,
		RTCPFeedback: feedback,
	}, PayloadType: pt}
}

// VP8 is VP8 video.
func VP8(pt webrtc.PayloadType, feedback []webrtc.RTCPFeedback) webrtc.RTPCodecParameters {
	return webrtc.RTPCodecParameters{RTPCodecCapability: webrtc.RTPCodecCapability{
		MimeType: webrtc.MimeTypeVP8, ClockRate: 90000, RTCPFeedback: feedback,
	}, PayloadType: pt}
}

// Opus is stereo Opus with in-band FEC, as browsers offer it.
func Opus(pt webrtc.PayloadType) webrtc.RTPCodecParameters {
	return webrtc.RTPCodecParameters{RTPCodecCapability: webrtc.RTPCodecCapability{
		MimeType: webrtc.MimeTypeOpus, ClockRate: 48000, Channels: 2,
		SDPFmtpLine: "minptime=10;useinbandfec=1",
	}, PayloadType: pt}
}
