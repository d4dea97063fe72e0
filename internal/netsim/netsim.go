// Package netsim is an impairment relay for tests: a UDP proxy between one
// WebRTC client and the server that drops, delays (and so reorders) and
// blacks out media packets, and caps their rate (a bottleneck with a
// drop-tail queue), each direction on its own terms, seeded so that a
// run repeats. ICE (STUN) and DTLS pass unharmed, so that the
// session comes up; RTP and RTCP (SRTP, SRTCP) are impaired.
//
// The relay goes into the path by rewriting the candidates of the
// client's offer and the server's answer (Relay.Offer, Relay.Answer): the
// server sees the relay's server side as the client, the client sees the
// relay's client side as the server.
package netsim

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// Impairment is what happens to the media packets of one direction.
type Impairment struct {
	// Loss is the probability that a packet is dropped.
	Loss float64
	// Delay is the most extra delay a packet gets, uniformly from
	// nothing: packets overtake each other when it exceeds their spacing.
	Delay time.Duration
	// Blackout drops every packet for Blackout at the end of each
	// Period, counted from the first media packet: a link that stalls
	// now and then.
	Blackout, Period time.Duration
	// Rate, when set, is the link's capacity in bit/s: packets leave
	// one after another, each taking its size's time, and wait behind
	// those before them; one that would wait longer than Queue is
	// dropped (a drop-tail queue, as a home link's bottleneck). A delay
	// then comes after the queue and keeps the order.
	Rate  int
	Queue time.Duration
}

// Config is a relay's impairments and seed.
type Config struct {
	Up   Impairment // client to server
	Down Impairment // server to client
	// Seed makes the random drops and delays; the same seed repeats them
	// packet for packet.
	Seed uint64
}

// Stats count one direction's media packets.
type Stats struct {
	Media    int64 // RTP and RTCP packets that came in
	Dropped  int64 // of which lost at random
	Blackout int64 // of which dropped in a blackout
	Delayed  int64 // of which sent later than they came
	Overflow int64 // of which dropped by the full queue (Rate)
	Other    int64 // ICE and DTLS packets, passed on at once
}

// Relay is a running impairment relay for one client.
type Relay struct {
	client *net.UDPConn // faces the client: what it takes for the server
	server *net.UDPConn // faces the server: what it takes for the client
	up     *direction
	down   *direction

	mu         sync.Mutex
	clientAddr *net.UDPAddr // learnt from the client's first packet
	serverAddr *net.UDPAddr // from the answer
	closed     bool
	wg         sync.WaitGroup
}

// Start opens the relay's two loopback sockets and starts relaying.
func Start(cfg Config) (*Relay, error) {
	client, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		return nil, fmt.Errorf("netsim: client side: %w", err)
	}
	server, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		_ = client.Close()
		return nil, fmt.Errorf("netsim: server side: %w", err)
	}
	r := &Relay{client: client, server: server}
	r.up = newDirection(cfg.Up, rand.New(rand.NewPCG(cfg.Seed, 1)), server, r.serverPeer)
	r.down = newDirection(cfg.Down, rand.New(rand.NewPCG(cfg.Seed, 2)), client, r.clientPeer)
	r.wg.Add(2)
	go r.relay(client, r.up, true)
	go r.relay(server, r.down, false)
	return r, nil
}

// Close stops relaying; packets still delayed are dropped.
func (r *Relay) Close() error {
	r.mu.Lock()
	r.closed = true
	r.mu.Unlock()
	err := errors.Join(r.client.Close(), r.server.Close())
	r.wg.Wait()
	r.up.stop()
	r.down.stop()
	return err
}

// SetUp and SetDown change a direction's impairment from now on: a link
// that worsens mid-session. Packets already queued or delayed keep their
// times.
func (r *Relay) SetUp(imp Impairment)   { r.up.set(imp) }
func (r *Relay) SetDown(imp Impairment) { r.down.set(imp) }

// Up and Down return what each direction did so far.
func (r *Relay) Up() Stats   { return r.up.statsNow() }
func (r *Relay) Down() Stats { return r.down.statsNow() }

// ClientSide is the address the client sends to, in the server's stead.
func (r *Relay) ClientSide() *net.UDPAddr { return r.client.LocalAddr().(*net.UDPAddr) }

// ServerSide is the address the server sends to, in the client's stead.
func (r *Relay) ServerSide() *net.UDPAddr { return r.server.LocalAddr().(*net.UDPAddr) }

// Offer rewrites the client's offer: its UDP candidates become the
// relay's server side, and the others are left out.
func (r *Relay) Offer(sdp string) string {
	return rewriteCandidates(sdp, r.ServerSide(), nil)
}

// Answer rewrites the server's answer: its UDP candidates become the
// relay's client side (the others are left out), and the relay sends to
// the first of them.
func (r *Relay) Answer(sdp string) string {
	return rewriteCandidates(sdp, r.ClientSide(), func(addr *net.UDPAddr) {
		r.mu.Lock()
		defer r.mu.Unlock()
		if r.serverAddr == nil {
			r.serverAddr = addr
		}
	})
}

// rewriteCandidates puts to in place of the address of every UDP
// candidate of sdp, tells found each address replaced, and leaves out
// the other candidates (TCP: out of the relay's reach).
func rewriteCandidates(sdp string, to *net.UDPAddr, found func(*net.UDPAddr)) string {
	var out []string
	for _, line := range strings.SplitAfter(sdp, "\n") {
		// a=candidate:<foundation> <component> <transport> <priority> <address> <port> typ …
		f := strings.Fields(line)
		if len(f) < 8 || !strings.HasPrefix(f[0], "a=candidate:") {
			out = append(out, line)
			continue
		}
		if !strings.EqualFold(f[2], "udp") {
			continue
		}
		if port, err := strconv.Atoi(f[5]); found != nil && err == nil && net.ParseIP(f[4]) != nil {
			found(&net.UDPAddr{IP: net.ParseIP(f[4]), Port: port})
		}
		f[4], f[5] = to.IP.String(), strconv.Itoa(to.Port)
		end := line[len(strings.TrimRight(line, "\r\n")):]
		out = append(out, strings.Join(f, " ")+end)
	}
	return strings.Join(out, "")
}

func (r *Relay) clientPeer() *net.UDPAddr {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.clientAddr
}

func (r *Relay) serverPeer() *net.UDPAddr {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.serverAddr
}

// relay reads from one side and passes each packet through d to the
// other.
func (r *Relay) relay(from *net.UDPConn, d *direction, fromClient bool) {
	defer r.wg.Done()
	buf := make([]byte, 1<<16)
	for {
		n, addr, err := from.ReadFromUDP(buf)
		if err != nil {
			return
		}
		if fromClient {
			r.mu.Lock()
			if r.clientAddr == nil {
				r.clientAddr = addr
			}
			r.mu.Unlock()
		}
		d.pass(append([]byte(nil), buf[:n]...), time.Now())
	}
}

// isMedia tells SRTP and SRTCP from STUN and DTLS by the first byte
// (RFC 7983): 128-191.
func isMedia(p []byte) bool { return len(p) > 0 && p[0] >= 128 && p[0] <= 191 }

// direction impairs one way's packets and sends them on.
type direction struct {
	imp  Impairment
	out  *net.UDPConn
	peer func() *net.UDPAddr

	mu      sync.Mutex
	rng     *rand.Rand
	first   time.Time // the first media packet
	timers  map[*time.Timer]struct{}
	stopped bool
	stats   struct{ media, dropped, blackout, delayed, overflow, other atomic.Int64 }

	// The bottleneck (Impairment.Rate): free is when the link is next
	// free; link holds the packets in order with their times to leave,
	// and one goroutine sends them, until done closes.
	free time.Time
	link chan timedPacket
	done chan struct{}
	wg   sync.WaitGroup
}

type timedPacket struct {
	p  []byte
	at time.Time
}

func newDirection(imp Impairment, rng *rand.Rand, out *net.UDPConn, peer func() *net.UDPAddr) *direction {
	d := &direction{imp: imp, rng: rng, out: out, peer: peer, timers: map[*time.Timer]struct{}{},
		link: make(chan timedPacket, 4096), done: make(chan struct{})}
	d.wg.Add(1)
	go d.drain()
	return d
}

func (d *direction) set(imp Impairment) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.imp = imp
}

// drain sends the bottleneck's packets in order, each at its time.
func (d *direction) drain() {
	defer d.wg.Done()
	for {
		select {
		case tp := <-d.link:
			if wait := time.Until(tp.at); wait > 0 {
				t := time.NewTimer(wait)
				select {
				case <-t.C:
				case <-d.done:
					t.Stop()
					return
				}
			}
			d.send(tp.p)
		case <-d.done:
			return
		}
	}
}

// queue puts p on the bottleneck at now, delay being the extra delay
// after it; false when the queue is full.
func (d *direction) queue(p []byte, now time.Time, delay time.Duration) bool {
	start := d.free
	if start.Before(now) {
		start = now
	}
	if start.Sub(now) > d.imp.Queue {
		return false
	}
	d.free = start.Add(time.Duration(len(p)) * 8 * time.Second / time.Duration(d.imp.Rate))
	select {
	case d.link <- timedPacket{p, d.free.Add(delay)}:
		return true
	default:
		return false
	}
}

func (d *direction) pass(p []byte, now time.Time) {
	if !isMedia(p) {
		d.stats.other.Add(1)
		d.send(p)
		return
	}
	d.stats.media.Add(1)
	d.mu.Lock()
	if d.first.IsZero() {
		d.first = now
	}
	// Draw both numbers for every packet, so that one packet's fate
	// does not shift the next one's.
	lost := d.rng.Float64() < d.imp.Loss
	delay := time.Duration(0)
	if d.imp.Delay > 0 {
		delay = time.Duration(d.rng.Int64N(int64(d.imp.Delay) + 1))
	} else {
		_ = d.rng.Int64()
	}
	black := false
	if d.imp.Blackout > 0 && d.imp.Period > 0 {
		black = now.Sub(d.first)%d.imp.Period >= d.imp.Period-d.imp.Blackout
	}
	switch {
	case black:
		d.stats.blackout.Add(1)
	case lost:
		d.stats.dropped.Add(1)
	case d.imp.Rate > 0 && !d.stopped:
		if !d.queue(p, now, delay) {
			d.stats.overflow.Add(1)
		} else if delay > 0 {
			d.stats.delayed.Add(1)
		}
	case delay > 0 && !d.stopped:
		d.stats.delayed.Add(1)
		var t *time.Timer
		t = time.AfterFunc(delay, func() {
			d.mu.Lock()
			_, live := d.timers[t]
			delete(d.timers, t)
			d.mu.Unlock()
			if live {
				d.send(p)
			}
		})
		d.timers[t] = struct{}{}
	default:
		d.mu.Unlock()
		d.send(p)
		return
	}
	d.mu.Unlock()
}

func (d *direction) send(p []byte) {
	if to := d.peer(); to != nil {
		_, _ = d.out.WriteToUDP(p, to)
	}
}

// stop drops the packets still delayed or queued.
func (d *direction) stop() {
	d.mu.Lock()
	d.stopped = true
	for t := range d.timers {
		t.Stop()
	}
	clear(d.timers)
	d.mu.Unlock()
	close(d.done)
	d.wg.Wait()
}

func (d *direction) statsNow() Stats {
	return Stats{
		Media: d.stats.media.Load(), Dropped: d.stats.dropped.Load(), Blackout: d.stats.blackout.Load(),
		Delayed: d.stats.delayed.Load(), Overflow: d.stats.overflow.Load(), Other: d.stats.other.Load(),
	}
}
