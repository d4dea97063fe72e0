// Package ingest receives the singers' WebRTC media: WHIP publish and WHEP
// subscribe per battle slot, forwarding between singers, keyframe requests,
// and the depacketized feed each slot hands the compositor. It is a Go API
// without HTTP: the web layer maps its requests and errors, and the room's
// owner learns what happens in the slots through Hooks.
package ingest

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"log/slog"
	"net"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/pion/ice/v4"
	"github.com/pion/webrtc/v4"
	"github.com/singoff/singoff/internal/pionapi"
)

// Config configures a Server.
type Config struct {
	// Port is the one UDP port (muxed) and the ICE-TCP port, the same
	// number; 0 picks an ephemeral one (tests).
	Port int
	// PublicIPs are the NAT 1:1 addresses advertised instead of local ones.
	PublicIPs []string
	// Loopback keeps ICE on 127.0.0.1 only, loopback candidate included,
	// for tests.
	Loopback bool
	Logger   *slog.Logger
}

// Server holds the WebRTC machinery shared by every room: one pion API
// whose ICE listens on one UDP and one TCP port.
type Server struct {
	cfg Config
	log *slog.Logger
	// publishAPI makes publishers' connections, subscribeAPI
	// subscribers', which estimate the subscriber's downlink.
	publishAPI, subscribeAPI *webrtc.API
	udp                      net.PacketConn
	tcp                      net.Listener
	udpMux                   ice.UDPMux
	tcpMux                   ice.TCPMux

	sessionSerial atomic.Uint64
	counters      counters

	// observeForward, when set (benchmarks), receives how long each
	// forwarded RTP packet took from being read to being written to every
	// subscriber.
	observeForward func(time.Duration)

	mu     sync.Mutex
	rooms  map[string]*Room
	closed bool
}

// NewServer opens the ICE ports and builds the pion API.
func NewServer(cfg Config) (*Server, error) {
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	s := &Server{cfg: cfg, log: cfg.Logger, rooms: map[string]*Room{}}
	if err := s.listen(); err != nil {
		return nil, err
	}
	var err error
	if s.publishAPI, err = s.newAPI(false); err == nil {
		s.subscribeAPI, err = s.newAPI(true)
	}
	if err != nil {
		s.closeListeners()
		return nil, err
	}
	return s, nil
}

// listen opens UDP and TCP on the same port number. With Port 0 the UDP
// port is ephemeral and TCP takes the same number, retried a few times in
// case it is taken.
func (s *Server) listen() error {
	host := ""
	udpNet, tcpNet := "udp", "tcp"
	if s.cfg.Loopback {
		host, udpNet, tcpNet = "127.0.0.1", "udp4", "tcp4"
	}
	attempts := 1
	if s.cfg.Port == 0 {
		attempts = 10
	}
	var lastErr error
	for range attempts {
		udp, err := net.ListenPacket(udpNet, net.JoinHostPort(host, strconv.Itoa(s.cfg.Port)))
		if err != nil {
			return fmt.Errorf("WebRTC UDP port: %w", err)
		}
		port := udp.LocalAddr().(*net.UDPAddr).Port
		tcp, err := net.Listen(tcpNet, net.JoinHostPort(host, strconv.Itoa(port)))
		if err != nil {
			_ = udp.Close()
			lastErr = err
			continue
		}
		s.udp, s.tcp = udp, tcp
		s.udpMux = webrtc.NewICEUDPMux(nil, udp)
		s.tcpMux = webrtc.NewICETCPMux(nil, tcp, 64)
		return nil
	}
	return fmt.Errorf("WebRTC TCP port: %w", lastErr)
}

func (s *Server) closeListeners() {
	if s.udpMux != nil {
		_ = s.udpMux.Close()
	}
	if s.tcpMux != nil {
		_ = s.tcpMux.Close()
	}
	if s.udp != nil {
		_ = s.udp.Close()
	}
	if s.tcp != nil {
		_ = s.tcp.Close()
	}
}

// Codecs the server negotiates: H264 packetization-mode 1 in the common
// browser profiles, VP8 and Opus. Order is preference: H264 first, since
// it is what most browsers send and receive in hardware.
var (
	// nack, nack pli and transport-cc are added by pionapi.
	videoFeedback = []webrtc.RTCPFeedback{{Type: "goog-remb"}, {Type: "ccm", Parameter: "fir"}}
	videoCodecs   = []webrtc.RTPCodecParameters{
		pionapi.H264(102, "42001f", videoFeedback),
		pionapi.H264(106, "42e01f", videoFeedback),
		pionapi.H264(112, "4d001f", videoFeedback),
		pionapi.H264(114, "64001f", videoFeedback),
		pionapi.VP8(96, videoFeedback),
	}
	audioCodecs = []webrtc.RTPCodecParameters{musicOpus}
	// musicOpus is Opus as the server answers it: stereo at up to
	// 128 kb/s for a singing show (a browser's default is speech, mono
	// at about 32 kb/s), with in-band FEC, which the compositor decodes.
	musicOpus = webrtc.RTPCodecParameters{RTPCodecCapability: webrtc.RTPCodecCapability{
		MimeType: webrtc.MimeTypeOpus, ClockRate: 48000, Channels: 2,
		SDPFmtpLine: "minptime=10;useinbandfec=1;stereo=1;sprop-stereo=1;maxaveragebitrate=128000",
	}, PayloadType: 111}
)

// newAPI builds the pion API of publishers' connections or, with
// subscribe, of subscribers': these estimate the subscriber's downlink
// (congestion.go) and send the publisher's sender reports, translated
// (forward.go), in place of pion's.
func (s *Server) newAPI(subscribe bool) (*webrtc.API, error) {
	o := pionapi.Options{
		Video:            videoCodecs,
		Audio:            audioCodecs,
		TWCC:             true,
		OwnSenderReports: true,
		Loopback:         s.cfg.Loopback,
		UDPMux:           s.udpMux,
		TCPMux:           s.tcpMux,
		NAT1To1IPs:       s.cfg.PublicIPs,
		Logger:           s.log,
	}
	if subscribe {
		o.Estimate = estimateBounds
	}
	return pionapi.New(o)
}

// Close closes every room and the ICE ports.
func (s *Server) Close() error {
	s.mu.Lock()
	s.closed = true
	rooms := make([]*Room, 0, len(s.rooms))
	for _, r := range s.rooms {
		rooms = append(rooms, r)
	}
	s.mu.Unlock()
	for _, r := range rooms {
		r.Close()
	}
	s.closeListeners()
	return nil
}

func (s *Server) forgetRoom(r *Room) {
	s.mu.Lock()
	if s.rooms[r.id] == r {
		delete(s.rooms, r.id)
	}
	s.mu.Unlock()
}

// randomID returns 16 random bytes in hex: session IDs and ETags.
func randomID() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}
