package freeport

import (
	"net"
	"strconv"
	"testing"
)

// The ports found are below the ephemeral range, not among those
// taken, and free: a server can listen on them.
func TestFound(t *testing.T) {
	cases := []struct {
		name string
		find func(taken ...int) (int, error)
		udp  bool
	}{
		{"tcp", TCP, false},
		{"tcp and udp", TCPAndUDP, true},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var taken []int
			for range 20 {
				port, err := c.find(taken...)
				if err != nil {
					t.Fatal(err)
				}
				if port >= ephemeralLow() || port < ephemeralLow()-span {
					t.Fatalf("port %d is not in the %d ports below the ephemeral range (%d)", port, span, ephemeralLow())
				}
				for _, p := range taken {
					if p == port {
						t.Fatalf("port %d found again though taken", port)
					}
				}
				taken = append(taken, port)
				addr := "127.0.0.1:" + strconv.Itoa(port)
				l, err := net.Listen("tcp", addr)
				if err != nil {
					t.Fatalf("listening on the port found: %v", err)
				}
				l.Close()
				if c.udp {
					u, err := net.ListenPacket("udp", addr)
					if err != nil {
						t.Fatalf("listening for UDP on the port found: %v", err)
					}
					u.Close()
				}
			}
		})
	}
}
