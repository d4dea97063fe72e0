package ingest

import (
	"net"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// relay is a UDP proxy between one WebRTC client and the server's
// loopback port, whose either direction may be a bottleneck: a link of a
// set rate with a drop-tail queue. It stands for a singer's home uplink
// or downlink. Only RTP and RTCP queue (first byte 128–191): ICE and DTLS
// pass at once, so that the session comes up and stays up however full
// the queue. Nothing in it is random: the same packets at the same times
// meet the same fate.
type relay struct {
	t      testing.TB
	client *net.UDPConn // where the client sends, as if it were the server
	server *net.UDPConn // connected to the server's port

	toServer, toClient *shaper

	mu   sync.Mutex
	peer *net.UDPAddr // the client, once it has sent
	done chan struct{}
	wg   sync.WaitGroup
}

// link shapes one direction: rate in bit/s, 0 for no limit.
type link struct {
	rate int
	// queue is the longest a packet may wait for the link; one that
	// would wait longer is dropped.
	queue time.Duration
}

// newRelay relays to the server's UDP port serverPort, up being the
// client's direction towards the server and down the other.
func newRelay(t testing.TB, serverPort int, up, down link) *relay {
	t.Helper()
	client, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	server, err := net.DialUDP("udp4", nil, &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1), Port: serverPort})
	if err != nil {
		t.Fatal(err)
	}
	r := &relay{t: t, client: client, server: server, done: make(chan struct{})}
	toServer := newShaper(up, func(b []byte) { _, _ = server.Write(b) })
	r.toServer = toServer
	toClient := newShaper(down, func(b []byte) {
		if peer := r.clientAddr(); peer != nil {
			_, _ = client.WriteToUDP(b, peer)
		}
	})
	r.toClient = toClient
	r.wg.Add(4)
	go r.pump(func(b []byte) (int, error) {
		n, from, err := client.ReadFromUDP(b)
		if err == nil {
			r.mu.Lock()
			r.peer = from
			r.mu.Unlock()
		}
		return n, err
	}, toServer)
	go r.pump(server.Read, toClient)
	go func() { defer r.wg.Done(); toServer.run(r.done) }()
	go func() { defer r.wg.Done(); toClient.run(r.done) }()
	t.Cleanup(r.close)
	return r
}

func (r *relay) clientAddr() *net.UDPAddr {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.peer
}

// setUp changes the client's direction's link.
func (r *relay) setUp(l link) { r.toServer.setLink(l) }

// port is where the client is to send.
func (r *relay) port() int { return r.client.LocalAddr().(*net.UDPAddr).Port }

func (r *relay) pump(read func([]byte) (int, error), s *shaper) {
	defer r.wg.Done()
	for {
		b := make([]byte, 1500)
		n, err := read(b)
		if err != nil {
			return
		}
		s.offer(b[:n], time.Now())
	}
}

func (r *relay) close() {
	close(r.done)
	_ = r.client.Close()
	_ = r.server.Close()
	r.wg.Wait()
}

// shaper is one direction of the relay.
type shaper struct {
	link    link
	deliver func([]byte)
	queue   chan timedPacket

	mu   sync.Mutex
	free time.Time // when the link is next free
	// dropped counts the packets the full queue refused.
	dropped int
}

type timedPacket struct {
	b  []byte
	at time.Time // when it leaves the link
}

func newShaper(l link, deliver func([]byte)) *shaper {
	return &shaper{link: l, deliver: deliver, queue: make(chan timedPacket, 4096)}
}

func (s *shaper) setLink(l link) {
	s.mu.Lock()
	s.link = l
	s.mu.Unlock()
}

// offer puts b on the link at now, or drops it.
func (s *shaper) offer(b []byte, now time.Time) {
	media := len(b) > 0 && b[0] >= 128 && b[0] < 192
	s.mu.Lock()
	if s.link.rate == 0 || !media {
		s.mu.Unlock()
		s.deliver(b)
		return
	}
	start := s.free
	if start.Before(now) {
		start = now
	}
	if start.Sub(now) > s.link.queue {
		s.dropped++
		s.mu.Unlock()
		return
	}
	s.free = start.Add(time.Duration(len(b)) * 8 * time.Second / time.Duration(s.link.rate))
	at := s.free
	s.mu.Unlock()
	s.queue <- timedPacket{b, at}
}

// run delivers the queued packets when they leave the link.
func (s *shaper) run(done <-chan struct{}) {
	for {
		select {
		case p := <-s.queue:
			if d := time.Until(p.at); d > 0 {
				select {
				case <-time.After(d):
				case <-done:
					return
				}
			}
			s.deliver(p.b)
		case <-done:
			return
		}
	}
}

// candidateLine matches a candidate attribute's transport, address and
// port.
var candidateLine = regexp.MustCompile(`(?m)^a=candidate:(\S+) (\d+) (\S+) (\d+) (\S+) (\d+) typ host(.*)\r?\n`)

// anyCandidate matches any candidate attribute.
var anyCandidate = regexp.MustCompile(`(?m)^a=candidate:.*\r?\n`)

// withoutCandidates is an offer without its candidates: a client behind
// a relay sends it, so that the server knows it only by the relay's
// address (else ICE may find the direct way around the relay).
func withoutCandidates(sdp string) string { return anyCandidate.ReplaceAllString(sdp, "") }

// throughRelay rewrites an SDP so that its UDP host candidates name the
// relay's port, and leaves out the TCP ones: a client that applies it
// reaches the server only through the relay.
func throughRelay(sdp string, r *relay) string {
	return candidateLine.ReplaceAllStringFunc(sdp, func(line string) string {
		m := candidateLine.FindStringSubmatch(line)
		if !strings.EqualFold(m[3], "udp") {
			return ""
		}
		return "a=candidate:" + m[1] + " " + m[2] + " " + m[3] + " " + m[4] + " " + m[5] + " " +
			strconv.Itoa(r.port()) + " typ host" + m[7] + "\r\n"
	})
}
