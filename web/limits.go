package web

import (
	"net/http"
	"net/netip"
	"strconv"
	"sync"
	"time"

	"github.com/gin-gonic/gin"
	"golang.org/x/time/rate"

	"github.com/singoff/singoff/internal/httpjson"
)

// Limits are the rate limits, per client network (IPv4 /24, IPv6 /64:
// one household or one server, whatever its number of addresses). The
// defaults leave room for a test suite run from one address.
type Limits struct {
	CreatesPerMinute int // default 60
	WebRTCPerMinute  int // WHIP/WHEP POSTs and PATCHes, default 120
	VotesPerMinute   int // default 60
	ReadsPerMinute   int // battle lists, default 600
	Burst            int // default 20
	// EventStreams bounds the events streams open at once on the server
	// (default 20,000; past it 503), EventStreamsPerNetwork those of one
	// client network (default 200; past it 429).
	EventStreams           int
	EventStreamsPerNetwork int
	// ChatPerMinute bounds the chat posts of a client network (default
	// 120, burst Burst), ChatPerPosterPerMinute those of one watcher or
	// token (default 20, burst 5).
	ChatPerMinute          int
	ChatPerPosterPerMinute int
	// CheersPerSecond bounds one watcher's cheers (default 20, the most
	// one request may carry); CheerRequestsPerMinute the cheer requests
	// of a client network (default 1,200, burst 5 × Burst).
	CheersPerSecond        int
	CheerRequestsPerMinute int
}

func (l *Limits) setDefaults() {
	for _, d := range []struct {
		v   *int
		def int
	}{
		{&l.CreatesPerMinute, 60}, {&l.WebRTCPerMinute, 120}, {&l.VotesPerMinute, 60},
		{&l.ReadsPerMinute, 600}, {&l.Burst, 20},
		{&l.EventStreams, 20_000}, {&l.EventStreamsPerNetwork, 200},
		{&l.ChatPerMinute, 120}, {&l.ChatPerPosterPerMinute, 20}, {&l.CheersPerSecond, 20},
		{&l.CheerRequestsPerMinute, 1200},
	} {
		if *d.v == 0 {
			*d.v = d.def
		}
	}
}

type limiters struct {
	creates, webrtc, votes, reads, chat, cheers *limiter
	// chatters count each poster's chat posts (by author), cheerers
	// each watcher's cheers.
	chatters, cheerers *keyed[string]
}

// chatPosterBurst is how many messages one poster may send at once.
const chatPosterBurst = 5

func newLimiters(l Limits) limiters {
	return limiters{
		creates:  newLimiter(l.CreatesPerMinute, l.Burst),
		webrtc:   newLimiter(l.WebRTCPerMinute, l.Burst),
		votes:    newLimiter(l.VotesPerMinute, l.Burst),
		reads:    newLimiter(l.ReadsPerMinute, l.Burst*3),
		chat:     newLimiter(l.ChatPerMinute, l.Burst),
		cheers:   newLimiter(l.CheerRequestsPerMinute, l.Burst*5),
		chatters: newKeyed[string](time.Minute/time.Duration(l.ChatPerPosterPerMinute), chatPosterBurst),
		cheerers: newKeyed[string](time.Second/time.Duration(l.CheersPerSecond), l.CheersPerSecond),
	}
}

// limiter is a token bucket per client network.
type limiter struct{ *keyed[netip.Prefix] }

func newLimiter(perMinute, burst int) *limiter {
	return &limiter{newKeyed[netip.Prefix](time.Minute/time.Duration(perMinute), burst)}
}

// keyed is a token bucket per key (a client network, a watcher). Idle
// buckets are forgotten once they would be full again, so the map holds
// only the keys seen lately.
type keyed[K comparable] struct {
	every time.Duration // one token per every
	burst int

	mu      sync.Mutex
	buckets map[K]*bucket
	swept   time.Time
}

type bucket struct {
	lim  *rate.Limiter
	seen time.Time
}

func newKeyed[K comparable](every time.Duration, burst int) *keyed[K] {
	return &keyed[K]{every: every, burst: burst, buckets: map[K]*bucket{}}
}

// allow takes a token for key at now; when there is none it says how
// long until there is.
func (l *keyed[K]) allow(key K, now time.Time) (bool, time.Duration) {
	return l.allowN(key, 1, now)
}

// allowN takes n tokens for key at now, or none.
func (l *keyed[K]) allowN(key K, n int, now time.Time) (bool, time.Duration) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if full := l.every * time.Duration(l.burst); now.Sub(l.swept) > full {
		for k, b := range l.buckets {
			if now.Sub(b.seen) > full {
				delete(l.buckets, k)
			}
		}
		l.swept = now
	}
	b := l.buckets[key]
	if b == nil {
		b = &bucket{lim: rate.NewLimiter(rate.Every(l.every), l.burst)}
		l.buckets[key] = b
	}
	b.seen = now
	r := b.lim.ReserveN(now, n)
	if !r.OK() {
		return false, l.every * time.Duration(n)
	}
	if d := r.DelayFrom(now); d > 0 {
		r.CancelAt(now)
		return false, d
	}
	return true, 0
}

// middleware answers 429 with Retry-After past the limit.
func (l *limiter) middleware(c *gin.Context) {
	if ok, wait := l.allow(clientNetwork(c), time.Now()); !ok {
		refuseRate(c, wait, "too many requests")
	}
}

// refuseRate answers 429 with Retry-After: a rate limit (why), free
// again in wait.
func refuseRate(c *gin.Context, wait time.Duration, why string) {
	secs := int(wait/time.Second) + 1
	c.Header("Retry-After", strconv.Itoa(secs))
	httpjson.Error(c.Writer, http.StatusTooManyRequests, "%s; retry in %d s", why, secs)
	c.Abort()
}

// clientNetwork is the client's network by the one client-address rule:
// the /24 of an IPv4 address, the /64 of an IPv6 one.
func clientNetwork(c *gin.Context) netip.Prefix {
	return networkOf(c.ClientIP())
}

// clientNetworkName is the client's network as the battles record it,
// e.g. "203.0.113.0/24"; "" when the address is not known.
func clientNetworkName(c *gin.Context) string {
	if p := clientNetwork(c); p.IsValid() {
		return p.String()
	}
	return ""
}

func networkOf(ip string) netip.Prefix {
	a, err := netip.ParseAddr(ip)
	if err != nil {
		return netip.Prefix{}
	}
	a = a.Unmap()
	bits := 64
	if a.Is4() {
		bits = 24
	}
	p, _ := a.Prefix(bits)
	return p
}
