package ingest

import (
	"net/netip"
	"strings"

	"github.com/pion/ice/v4"
)

// maxRemoteCandidates bounds the ICE candidates a session takes from its
// client, in the offer and trickled together (an ICE restart starts the
// count again): the server sends connectivity checks to every one, to
// addresses the client chose, several times each.
const maxRemoteCandidates = 20

// maxSubscribers bounds the WHEP sessions of one slot: the other singer
// and the host watch it, a reload or two among them.
const maxSubscribers = 8

// cgnat is the shared address space of carrier-grade NAT (RFC 6598):
// no client's reachable address.
var cgnat = netip.MustParsePrefix("100.64.0.0/10")

// remoteCandidateAllowed tells whether the server takes a client's ICE
// candidate (the attribute's value after "candidate:"): one that parses
// and names a public unicast address. Private, loopback, link-local and
// mDNS (.local) candidates are left out: a client behind them reaches
// the server's own candidates, and the server learns its address from
// its checks (peer-reflexive). In loopback mode (tests) every candidate
// is taken.
func (s *Server) remoteCandidateAllowed(value string) bool {
	c, err := ice.UnmarshalCandidate(value)
	if err != nil {
		return false
	}
	if s.cfg.Loopback {
		return true
	}
	addr, err := netip.ParseAddr(c.Address())
	if err != nil {
		return false // a host name: mDNS, private by nature
	}
	addr = addr.Unmap()
	return addr.IsGlobalUnicast() && !addr.IsPrivate() && !cgnat.Contains(addr)
}

// takeCandidate counts a client's candidate against sess's bound and
// tells whether the session takes it. sess.mu is held, or sess is not
// shared yet.
func (s *Server) takeCandidate(sess *session, value string) bool {
	if sess.remoteCandidates >= maxRemoteCandidates || !s.remoteCandidateAllowed(value) {
		return false
	}
	sess.remoteCandidates++
	return true
}

// filterOfferCandidates leaves out of an offer the candidates sess does
// not take.
func (s *Server) filterOfferCandidates(sess *session, offer string) string {
	var b strings.Builder
	b.Grow(len(offer))
	for line := range strings.Lines(offer) {
		if v, ok := strings.CutPrefix(strings.TrimRight(line, "\r\n"), "a=candidate:"); ok && !s.takeCandidate(sess, v) {
			continue
		}
		b.WriteString(line)
	}
	return b.String()
}
