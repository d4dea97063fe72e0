package ingest

import (
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/singoff/singoff/internal/pionapi"
)

// A client's candidates are taken only when they name a public unicast
// address (any in loopback mode).
func TestRemoteCandidateAllowed(t *testing.T) {
	public, loopback := &Server{}, &Server{cfg: Config{Loopback: true}}
	for _, tc := range []struct {
		name, candidate string
		public          bool
	}{
		{"public IPv4", "1 1 udp 2130706431 198.51.100.7 50000 typ host", true},
		{"public IPv4 srflx", "2 1 udp 1694498815 203.0.113.9 40000 typ srflx raddr 0.0.0.0 rport 0", true},
		{"public IPv6", "3 1 udp 2130706431 2a00:1450:4001::5 50000 typ host", true},
		{"public over TCP", "4 1 tcp 1518280447 198.51.100.7 9 typ host tcptype active", true},
		{"10/8", "5 1 udp 2130706431 10.1.2.3 50000 typ host", false},
		{"172.16/12", "6 1 udp 2130706431 172.20.0.1 50000 typ host", false},
		{"192.168/16", "7 1 udp 2130706431 192.168.1.10 50000 typ host", false},
		{"carrier-grade NAT", "8 1 udp 2130706431 100.64.1.1 50000 typ host", false},
		{"loopback", "9 1 udp 2130706431 127.0.0.1 50000 typ host", false},
		{"IPv6 loopback", "10 1 udp 2130706431 ::1 50000 typ host", false},
		{"link-local", "11 1 udp 2130706431 169.254.10.1 50000 typ host", false},
		{"IPv6 link-local", "12 1 udp 2130706431 fe80::1 50000 typ host", false},
		{"IPv6 unique local", "13 1 udp 2130706431 fd12:3456::1 50000 typ host", false},
		{"unspecified", "14 1 udp 2130706431 0.0.0.0 50000 typ host", false},
		{"multicast", "15 1 udp 2130706431 224.0.0.251 5353 typ host", false},
		{"mDNS", "16 1 udp 2130706431 3b4f2a10-aaaa-bbbb-cccc-123456789abc.local 50000 typ host", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := public.remoteCandidateAllowed(tc.candidate); got != tc.public {
				t.Errorf("taken %v, want %v", got, tc.public)
			}
			if !loopback.remoteCandidateAllowed(tc.candidate) {
				t.Error("refused in loopback mode")
			}
		})
	}
	if public.remoteCandidateAllowed("not a candidate") || loopback.remoteCandidateAllowed("not a candidate") {
		t.Error("an unparsable candidate taken")
	}
}

// candidateLines is n public host candidates as SDP attribute lines.
func candidateLines(n, from int) string {
	var b strings.Builder
	for i := range n {
		fmt.Fprintf(&b, "a=candidate:%d 1 udp 2130706431 198.51.100.%d %d typ host\r\n", from+i, 1+(from+i)%250, 40000+from+i)
	}
	return b.String()
}

// A session takes at most maxRemoteCandidates of its client's candidates,
// from the offer and trickled together; an ICE restart counts afresh.
func TestRemoteCandidatesBounded(t *testing.T) {
	s := &Server{}
	sess := &session{}
	offer := "v=0\r\nm=audio 9 UDP/TLS/RTP/SAVPF 111\r\n" + candidateLines(15, 0) + "a=candidate:x 1 udp 1 10.0.0.1 1 typ host\r\n"
	filtered := s.filterOfferCandidates(sess, offer)
	if n := strings.Count(filtered, "a=candidate:"); n != 15 || sess.remoteCandidates != 15 || strings.Contains(filtered, "10.0.0.1") {
		t.Fatalf("the offer kept %d candidates (counted %d):\n%s", n, sess.remoteCandidates, filtered)
	}
	taken := 0
	for i := range 30 {
		if s.takeCandidate(sess, strings.TrimPrefix(strings.TrimSpace(candidateLines(1, 100+i)), "a=candidate:")) {
			taken++
		}
	}
	if taken != maxRemoteCandidates-15 {
		t.Fatalf("%d trickled candidates taken after 15 in the offer, want %d", taken, maxRemoteCandidates-15)
	}
}

// Over PATCH on a real session: past the bound, candidates are left out
// and the PATCH still succeeds.
func TestTrickledCandidatesBounded(t *testing.T) {
	ctx := testContext(t, 20*time.Second)
	h := newHarness(t)
	room := h.room("cands")
	answer, err := room.Publish(ctx, 2, newOffer(t, true, pionapi.VP8(96, nil)))
	if err != nil {
		t.Fatal(err)
	}
	frag := "a=mid:0\r\n" + candidateLines(3*maxRemoteCandidates, 0) + "a=end-of-candidates\r\n"
	if _, err := room.Patch(ctx, 2, answer.Session, []byte(frag), ""); err != nil {
		t.Fatal(err)
	}
	sess, err := room.session(2, answer.Session)
	if err != nil {
		t.Fatal(err)
	}
	sess.mu.Lock()
	n := sess.remoteCandidates
	sess.mu.Unlock()
	if n != maxRemoteCandidates {
		t.Fatalf("the session took %d candidates, want %d", n, maxRemoteCandidates)
	}
}

// A slot takes at most maxSubscribers WHEP sessions; a hung-up one's
// place comes back.
func TestSubscribersPerSlotBounded(t *testing.T) {
	ctx := testContext(t, 30*time.Second)
	h := newHarness(t)
	room := h.room("subs")
	offer := newOffer(t, false, pionapi.VP8(96, nil))
	var first Answer
	for i := range maxSubscribers {
		a, err := room.Subscribe(ctx, 1, offer)
		if err != nil {
			t.Fatalf("subscriber %d: %v", i+1, err)
		}
		if i == 0 {
			first = a
		}
	}
	if _, err := room.Subscribe(ctx, 1, offer); !errors.Is(err, ErrTooMany) {
		t.Fatalf("a subscriber past the bound: %v", err)
	}
	if _, err := room.Subscribe(ctx, 2, offer); err != nil {
		t.Fatalf("the other slot: %v", err)
	}
	if _, err := room.Publish(ctx, 1, newOffer(t, true, pionapi.VP8(96, nil))); err != nil {
		t.Fatalf("the slot's publisher: %v", err)
	}
	if err := room.Hangup(1, first.Session); err != nil {
		t.Fatal(err)
	}
	if _, err := room.Subscribe(ctx, 1, offer); err != nil {
		t.Fatalf("after a hang-up: %v", err)
	}
}
