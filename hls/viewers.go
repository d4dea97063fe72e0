package hls

import (
	"net"
	"net/http"
	"strings"
	"sync"
	"time"
)

// viewerWindow is how long a client counts as watching after its last
// request. LL-HLS players ask for a playlist several times a second, so
// anyone still watching is seen far more often than this.
const viewerWindow = 30 * time.Second

// maxUserAgent bounds the part of a User-Agent kept in a viewer key.
const maxUserAgent = 200

// viewers counts distinct clients seen recently.
type viewers struct {
	mu        sync.Mutex
	lastSeen  map[string]time.Time
	lastPrune time.Time
}

func newViewers() *viewers {
	return &viewers{lastSeen: make(map[string]time.Time)}
}

// seen records a request of r's client at now.
func (v *viewers) seen(r *http.Request, now time.Time) {
	key := viewerKey(r)
	v.mu.Lock()
	defer v.mu.Unlock()
	v.lastSeen[key] = now
	// Prune now and then so that the map holds only recent clients
	// even when no one asks for the count.
	if now.Sub(v.lastPrune) > viewerWindow {
		v.pruneLocked(now)
	}
}

// count tells how many distinct clients were seen in the window before now.
func (v *viewers) count(now time.Time) int {
	v.mu.Lock()
	defer v.mu.Unlock()
	v.pruneLocked(now)
	return len(v.lastSeen)
}

func (v *viewers) pruneLocked(now time.Time) {
	for key, at := range v.lastSeen {
		if now.Sub(at) > viewerWindow {
			delete(v.lastSeen, key)
		}
	}
	v.lastPrune = now
}

// viewerKey names r's client: the original client address (the first
// X-Forwarded-For entry, set by an edge proxy, else the peer address)
// plus its User-Agent, so that several viewers behind one NAT count
// apart when their browsers differ.
func viewerKey(r *http.Request) string {
	addr := ""
	if fwd := r.Header.Get("X-Forwarded-For"); fwd != "" {
		first, _, _ := strings.Cut(fwd, ",")
		addr = strings.TrimSpace(first)
	}
	if addr == "" {
		addr = r.RemoteAddr
		if host, _, err := net.SplitHostPort(addr); err == nil {
			addr = host
		}
	}
	ua := r.UserAgent()
	if len(ua) > maxUserAgent {
		ua = ua[:maxUserAgent]
	}
	return addr + "\x00" + ua
}
