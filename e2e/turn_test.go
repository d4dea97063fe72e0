package e2e

import (
	"net"
	"net/url"
	"sync/atomic"
	"testing"

	"github.com/pion/turn/v5"
)

// The TURN user of the tests. The password holds what a Link header must
// quote and a URL must escape, so the credentials' whole way (flag,
// header, page) is checked.
const (
	turnUser     = "singer"
	turnPassword = `p@ss:w;rd, "quoted" \ too`
)

// turnRelay is pion's TURN server on loopback. It counts the allocations
// its user made and the bytes it carried to and from its clients, and
// can cut its clients off: every packet dropped both ways, as when a
// singer's network goes down while the path through the relay is the
// only one the page has.
type turnRelay struct {
	// iceServer is the relay as singoff's --ice-server takes it.
	iceServer   string
	conn        *cutConn
	allocations atomic.Int64
}

func startTURN(t testing.TB) *turnRelay {
	t.Helper()
	pc, err := net.ListenPacket("udp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	r := &turnRelay{conn: &cutConn{PacketConn: pc}}
	const realm = "singoff-e2e"
	key := turn.GenerateAuthKey(turnUser, realm, turnPassword)
	srv, err := turn.NewServer(turn.ServerConfig{
		Realm: realm,
		AuthHandler: func(ra *turn.RequestAttributes) (string, []byte, bool) {
			if ra.Username != turnUser {
				return "", nil, false
			}
			return ra.Username, key, true
		},
		PacketConnConfigs: []turn.PacketConnConfig{{
			PacketConn: r.conn,
			RelayAddressGenerator: &turn.RelayAddressGeneratorStatic{
				RelayAddress: net.IPv4(127, 0, 0, 1),
				Address:      "127.0.0.1",
			},
		}},
		EventHandler: turn.EventHandler{
			OnAllocationCreated: func(_, _ net.Addr, _, user, _ string, _ net.Addr, _ int) {
				if user == turnUser {
					r.allocations.Add(1)
				}
			},
		},
	})
	if err != nil {
		_ = pc.Close()
		t.Fatalf("starting the TURN server: %v", err)
	}
	t.Cleanup(func() { _ = srv.Close() })
	u := url.URL{Scheme: "turn", User: url.UserPassword(turnUser, turnPassword), Host: pc.LocalAddr().String(), RawQuery: "transport=udp"}
	r.iceServer = u.String()
	return r
}

// cut stops (true) or resumes (false) everything between the relay and
// its clients.
func (r *turnRelay) cut(on bool) { r.conn.cut.Store(on) }

// carried is the bytes the relay has passed to and from its clients.
func (r *turnRelay) carried() int64 { return r.conn.carried.Load() }

// cutConn is the relay's socket towards its clients, with a switch that
// drops every packet.
type cutConn struct {
	net.PacketConn
	cut     atomic.Bool
	carried atomic.Int64
}

func (c *cutConn) ReadFrom(p []byte) (int, net.Addr, error) {
	for {
		n, addr, err := c.PacketConn.ReadFrom(p)
		if err != nil || !c.cut.Load() {
			c.carried.Add(int64(n))
			return n, addr, err
		}
	}
}

func (c *cutConn) WriteTo(p []byte, addr net.Addr) (int, error) {
	if c.cut.Load() {
		return len(p), nil
	}
	c.carried.Add(int64(len(p)))
	return c.PacketConn.WriteTo(p, addr)
}
