package netsim

import (
	"encoding/binary"
	"fmt"
	"net"
	"slices"
	"strings"
	"testing"
	"time"
)

// peer is one end of a relayed path: a UDP socket that records what it
// receives (by the index written in the packet) and when.
type peer struct {
	conn *net.UDPConn
	got  chan arrival
}

type arrival struct {
	index int
	kind  byte
	at    time.Time
}

func newPeer(t *testing.T) *peer {
	t.Helper()
	c, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	p := &peer{conn: c, got: make(chan arrival, 100000)}
	go func() {
		buf := make([]byte, 1500)
		for {
			n, _, err := c.ReadFromUDP(buf)
			if err != nil {
				close(p.got)
				return
			}
			if n >= 5 {
				p.got <- arrival{int(binary.BigEndian.Uint32(buf[1:5])), buf[0], time.Now()}
			}
		}
	}()
	t.Cleanup(func() { c.Close() })
	return p
}

func (p *peer) addr() *net.UDPAddr { return p.conn.LocalAddr().(*net.UDPAddr) }

// packet is a packet whose first byte says what it is (0x80: RTP, 0x00:
// STUN, 0x16: DTLS) and whose next four its index.
func packet(kind byte, i int) []byte {
	b := make([]byte, 100)
	b[0] = kind
	binary.BigEndian.PutUint32(b[1:5], uint32(i))
	return b
}

// path is a relay between a client and a server peer, wired as a session
// would be by the offer and answer.
type path struct {
	relay          *Relay
	client, server *peer
}

func newPath(t *testing.T, cfg Config) *path {
	t.Helper()
	r, err := Start(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Close() })
	p := &path{relay: r, client: newPeer(t), server: newPeer(t)}
	offer := fmt.Sprintf("v=0\r\na=candidate:1 1 udp 2130706431 127.0.0.1 %d typ host\r\na=candidate:2 1 tcp 1671430143 127.0.0.1 9 typ host tcptype active\r\n", p.client.addr().Port)
	answer := fmt.Sprintf("v=0\r\na=candidate:3 1 udp 2130706431 127.0.0.1 %d typ host\r\na=end-of-candidates\r\n", p.server.addr().Port)
	gotOffer, gotAnswer := r.Offer(offer), r.Answer(answer)
	wantOffer := fmt.Sprintf("v=0\r\na=candidate:1 1 udp 2130706431 127.0.0.1 %d typ host\r\n", r.ServerSide().Port)
	wantAnswer := fmt.Sprintf("v=0\r\na=candidate:3 1 udp 2130706431 127.0.0.1 %d typ host\r\na=end-of-candidates\r\n", r.ClientSide().Port)
	if gotOffer != wantOffer || gotAnswer != wantAnswer {
		t.Fatalf("rewritten offer %q, want %q; answer %q, want %q", gotOffer, wantOffer, gotAnswer, wantAnswer)
	}
	return p
}

// run sends n packets of kind each way, one every gap, and returns what
// arrived at each end after the last had time to.
func (p *path) run(t *testing.T, kind byte, n int, gap time.Duration) (up, down []arrival, sent []time.Time) {
	t.Helper()
	// The client speaks first, as ICE does: the relay learns it.
	for i := range n {
		sent = append(sent, time.Now())
		if _, err := p.client.conn.WriteToUDP(packet(kind, i), p.relay.ClientSide()); err != nil {
			t.Fatal(err)
		}
		if i == 0 {
			time.Sleep(20 * time.Millisecond)
		}
		if _, err := p.server.conn.WriteToUDP(packet(kind, i), p.relay.ServerSide()); err != nil {
			t.Fatal(err)
		}
		time.Sleep(gap)
	}
	time.Sleep(200 * time.Millisecond)
	collect := func(ch chan arrival) []arrival {
		var out []arrival
		for {
			select {
			case a := <-ch:
				out = append(out, a)
			default:
				return out
			}
		}
	}
	return collect(p.server.got), collect(p.client.got), sent
}

func indexes(as []arrival) []int {
	var out []int
	for _, a := range as {
		out = append(out, a.index)
	}
	return out
}

func TestRelay(t *testing.T) {
	const n = 1000
	const rtp, stun, dtls = 0x80, 0x00, 0x16
	ms := time.Millisecond
	for _, c := range []struct {
		name string
		cfg  Config
		kind byte
		// check judges the indexes that arrived each way and the
		// relay's counts.
		check func(t *testing.T, up, down []arrival, sent []time.Time, r *Relay)
	}{
		{"clean", Config{}, rtp, func(t *testing.T, up, down []arrival, _ []time.Time, _ *Relay) {
			if !slices.Equal(indexes(up), seq(n)) || !slices.Equal(indexes(down), seq(n)) {
				t.Errorf("%d and %d packets arrived, or out of order; want %d in order", len(up), len(down), n)
			}
		}},
		{"3% loss each way", Config{Up: Impairment{Loss: 0.03}, Down: Impairment{Loss: 0.03}, Seed: 1}, rtp,
			func(t *testing.T, up, down []arrival, _ []time.Time, r *Relay) {
				for _, got := range [][]arrival{up, down} {
					if lost := n - len(got); lost < n*15/1000 || lost > n*45/1000 {
						t.Errorf("%d of %d lost, want about 3%%", lost, n)
					}
				}
				if st := r.Up(); st.Media != n || st.Dropped != int64(n-len(up)) {
					t.Errorf("up stats %+v, %d arrived", st, len(up))
				}
			}},
		{"0-40 ms delay reorders", Config{Down: Impairment{Delay: 40 * ms}, Seed: 2}, rtp,
			func(t *testing.T, up, down []arrival, sent []time.Time, _ *Relay) {
				if len(down) != n || !slices.Equal(indexes(up), seq(n)) {
					t.Fatalf("%d and %d arrived", len(up), len(down))
				}
				reordered, most := 0, time.Duration(0)
				for i, a := range down {
					if i > 0 && a.index < down[i-1].index {
						reordered++
					}
					most = max(most, a.at.Sub(sent[a.index]))
				}
				if reordered < n/20 || most < 30*ms || most > 100*ms {
					t.Errorf("%d packets overtaken, most delay %v: want many and 40 ms or a little more", reordered, most)
				}
			}},
		{"100 ms blackout every 400 ms, up only", Config{Up: Impairment{Blackout: 100 * ms, Period: 400 * ms}}, rtp,
			func(t *testing.T, up, down []arrival, sent []time.Time, r *Relay) {
				if len(down) != n {
					t.Errorf("down: %d of %d arrived", len(down), n)
				}
				// Counted from the first packet: none sent in the last
				// 100 ms of a period may arrive, allowing for the
				// scheduler at the edges.
				for _, a := range up {
					into := sent[a.index].Sub(sent[0]) % (400 * ms)
					if into > 305*ms && into < 395*ms {
						t.Fatalf("packet %d sent %v into a period arrived in the blackout", a.index, into)
					}
				}
				if st := r.Up(); st.Blackout < n/6 || st.Blackout > n/3 || int(st.Blackout)+len(up) != n {
					t.Errorf("up stats %+v, %d arrived", st, len(up))
				}
			}},
		{"400 kb/s bottleneck with 100 ms of queue, up only", Config{Up: Impairment{Rate: 400_000, Queue: 100 * ms}}, rtp,
			func(t *testing.T, up, down []arrival, sent []time.Time, r *Relay) {
				// 100-byte packets every millisecond or more offer up to
				// 800 kb/s: each takes 2 ms of the link, so about half
				// pass (more when a loaded machine sends slower: at most
				// a packet per 2 ms of the sending and the queue's 50),
				// in order, 2 ms apart, none queued over 100 ms.
				if len(down) != n {
					t.Errorf("down: %d of %d arrived", len(down), n)
				}
				st := r.Up()
				most := int(sent[n-1].Sub(sent[0])/(2*ms)) + 51
				if !slices.IsSorted(indexes(up)) || int(st.Overflow)+len(up) != n || st.Overflow == 0 || len(up) < n/4 || len(up) > most*105/100 {
					t.Fatalf("up: %d arrived (in order: %t; at most %d could in %v), stats %+v", len(up), slices.IsSorted(indexes(up)), most, sent[n-1].Sub(sent[0]), st)
				}
				if took, least := up[len(up)-1].at.Sub(up[0].at), time.Duration(len(up)-1)*2*ms; took < least*95/100 {
					t.Errorf("%d packets passed in %v, want at least %v at 400 kb/s", len(up), took, least)
				}
				for _, a := range up {
					if wait := a.at.Sub(sent[a.index]); wait > 130*ms {
						t.Fatalf("packet %d waited %v, more than the queue's 100 ms", a.index, wait)
					}
				}
			}},
		{"ICE passes a total loss", Config{Up: Impairment{Loss: 1}, Down: Impairment{Loss: 1}}, stun,
			func(t *testing.T, up, down []arrival, _ []time.Time, r *Relay) {
				if len(up) != n || len(down) != n || r.Up().Other != n {
					t.Errorf("%d and %d of %d STUN packets arrived: %+v", len(up), len(down), n, r.Up())
				}
			}},
		{"DTLS passes a total loss", Config{Up: Impairment{Loss: 1}, Down: Impairment{Loss: 1}}, dtls,
			func(t *testing.T, up, down []arrival, _ []time.Time, _ *Relay) {
				if len(up) != n || len(down) != n {
					t.Errorf("%d and %d of %d DTLS packets arrived", len(up), len(down), n)
				}
			}},
	} {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			p := newPath(t, c.cfg)
			up, down, sent := p.run(t, c.kind, n, time.Millisecond)
			c.check(t, up, down, sent, p.relay)
		})
	}
}

// A seed makes the same packets go missing; another seed, others.
func TestRelaySeedRepeats(t *testing.T) {
	const n = 1000
	lost := func(seed uint64) []int {
		p := newPath(t, Config{Up: Impairment{Loss: 0.05}, Seed: seed})
		up, _, _ := p.run(t, 0x80, n, 200*time.Microsecond)
		got := map[int]bool{}
		for _, a := range up {
			got[a.index] = true
		}
		var out []int
		for i := range n {
			if !got[i] {
				out = append(out, i)
			}
		}
		return out
	}
	a, b, other := lost(42), lost(42), lost(43)
	if len(a) == 0 || !slices.Equal(a, b) {
		t.Errorf("seed 42 lost %v, then %v", a, b)
	}
	if slices.Equal(a, other) {
		t.Errorf("seeds 42 and 43 lost the same packets %v", a)
	}
}

func TestRewriteLeavesOtherLinesAlone(t *testing.T) {
	sdp := "v=0\r\nm=audio 9 UDP/TLS/RTP/SAVPF 111\r\na=rtpmap:111 opus/48000/2\r\na=candidate:bad\r\n"
	r, err := Start(Config{})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	if got := r.Answer(sdp); got != sdp || !strings.HasSuffix(got, "\r\n") {
		t.Errorf("rewrote %q to %q", sdp, got)
	}
	if r.serverPeer() != nil {
		t.Error("learnt a server from no candidate")
	}
}

func seq(n int) []int {
	out := make([]int, n)
	for i := range out {
		out[i] = i
	}
	return out
}
