// Package freeport finds loopback ports for the servers tests start as
// processes of their own (singoff, PostgreSQL, SeaweedFS, nginx).
//
// A port the kernel hands out for listening on port 0 comes from its
// ephemeral range, and once that listener is closed the kernel may give
// it to any outgoing loopback connection before the server binds it (a
// busy test machine makes hundreds a second): the server then fails with
// "address already in use". The ports here come from below that range,
// which the kernel never hands out by itself; each is checked to be free
// when it is chosen.
package freeport

import (
	"errors"
	"math/rand/v2"
	"net"
	"os"
	"slices"
	"strconv"
	"strings"
)

// span is how many ports below the ephemeral range are drawn from.
const span = 12_000

// TCP returns a loopback port free for TCP now, not in taken.
func TCP(taken ...int) (int, error) { return find(false, taken) }

// TCPAndUDP returns a loopback port free for both now (WebRTC's ICE
// takes both), not in taken.
func TCPAndUDP(taken ...int) (int, error) { return find(true, taken) }

func find(udp bool, taken []int) (int, error) {
	low := ephemeralLow() - span
	for range 100 {
		port := low + rand.IntN(span)
		if slices.Contains(taken, port) {
			continue
		}
		addr := "127.0.0.1:" + strconv.Itoa(port)
		l, err := net.Listen("tcp", addr)
		if err != nil {
			continue
		}
		l.Close()
		if udp {
			u, err := net.ListenPacket("udp", addr)
			if err != nil {
				continue
			}
			u.Close()
		}
		return port, nil
	}
	return 0, errors.New("freeport: no free loopback port found in 100 tries")
}

// ephemeralLow is the first port of the kernel's ephemeral range
// (Linux's default when it cannot be read), at least span above 1024.
func ephemeralLow() int {
	low := 32768
	if b, err := os.ReadFile("/proc/sys/net/ipv4/ip_local_port_range"); err == nil {
		if f := strings.Fields(string(b)); len(f) == 2 {
			if n, err := strconv.Atoi(f[0]); err == nil {
				low = n
			}
		}
	}
	return max(low, 1024+span)
}
