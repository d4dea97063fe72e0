// Package web is singoff's one HTTP layer: a gin engine serving the
// battles API, WHIP/WHEP and their sessions, the events stream, the live
// program (/hls) and the recordings (/vod), the pages, /metrics,
// /healthz and /readyz. It has one CORS policy, one client-address rule
// (gin's trusted proxies) and the rate limits; the packages behind it
// know nothing of HTTP routing.
package web

import (
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/netip"
	"net/url"
	"strings"
	"sync/atomic"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/singoff/singoff/battle"
	"github.com/singoff/singoff/hls"
	"github.com/singoff/singoff/ingest"
	"github.com/singoff/singoff/internal/httpjson"
)

// Config wires the HTTP layer. Handlers hold what they need as fields.
type Config struct {
	Battles *battle.Manager
	Ingest  *ingest.Server
	Live    *hls.Server
	// VOD serves /vod/{id}/{file} (the recordings).
	VOD http.Handler
	// Metrics are read at every scrape of /metrics.
	Metrics MetricsSources
	// ICEServers are the STUN/TURN servers handed to WebRTC clients, as
	// ParseICEServer reads them.
	ICEServers []string
	// TrustedProxies are the CIDRs whose X-Forwarded-For/-Proto/-Host
	// headers are believed; none by default.
	TrustedProxies []string
	// AdvertiseURL, when set, is the base of every URL the API returns
	// (http or https, a host, no path); else the address the client used.
	AdvertiseURL string
	// WatcherKey signs the watchers' identities (WatcherKeySize random
	// bytes; see LoadWatcherKey). Votes count only from identities it
	// signed.
	WatcherKey []byte
	Limits     Limits
	Logger     *slog.Logger
}

// Server is the HTTP layer.
type Server struct {
	engine    *gin.Engine
	log       *slog.Logger
	trusted   []netip.Prefix
	advertise *url.URL // nil: the address the client used
	watchers  watcherKey
	draining  atomic.Bool
}

// New builds the engine and its routes.
func New(cfg Config) (*Server, error) {
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	cfg.Limits.setDefaults()
	s := &Server{log: cfg.Logger}
	var err error
	if s.watchers, err = newWatcherKey(cfg.WatcherKey); err != nil {
		return nil, err
	}
	if cfg.AdvertiseURL != "" {
		if s.advertise, err = parseAdvertiseURL(cfg.AdvertiseURL); err != nil {
			return nil, err
		}
	}
	for _, p := range cfg.TrustedProxies {
		prefix, err := parsePrefix(p)
		if err != nil {
			return nil, fmt.Errorf("trusted proxy %q: %w", p, err)
		}
		s.trusted = append(s.trusted, prefix)
	}

	iceServers, err := parseICEServers(cfg.ICEServers)
	if err != nil {
		return nil, err
	}

	e := newEngine()
	e.RemoteIPHeaders = []string{"X-Forwarded-For"}
	if err := e.SetTrustedProxies(cfg.TrustedProxies); err != nil {
		return nil, fmt.Errorf("trusted proxies: %w", err)
	}
	errs := newStatusCounter()
	// A panicking handler is answered 500 with the contract's JSON error
	// and logged: one bad request never takes the server down.
	recovery := gin.CustomRecoveryWithWriter(io.Discard, func(c *gin.Context, v any) {
		s.log.Error("handler panicked", "method", c.Request.Method, "path", c.Request.URL.Path, "err", fmt.Sprint(v))
		if !c.Writer.Written() {
			httpjson.Error(c.Writer, http.StatusInternalServerError, "internal error")
		}
		c.Abort()
	})
	e.Use(recovery, s.logRequests, errs.count, s.hsts, cors)

	api := &api{
		battles: cfg.Battles,
		log:     cfg.Logger,
		srv:     s,
		limits:  newLimiters(cfg.Limits),
		events:  newEventHub(cfg.Battles, cfg.Logger, cfg.Limits),
		votes:   newVoteCounter(),
	}
	api.register(e)
	rtc := &webrtcRoutes{
		battles:    cfg.Battles,
		ingest:     cfg.Ingest,
		iceServers: iceServers,
		limit:      api.limits.webrtc,
		log:        cfg.Logger,
	}
	rtc.register(e)
	registerOrigin(e, cfg.Battles, cfg.Logger)
	streams := &streams{live: cfg.Live, vod: cfg.VOD}
	streams.register(e)
	registerPages(e, s.toBattlesOrigin(cfg.Battles), s.issueWatcher)
	e.GET("/metrics", gin.WrapH(metricsHandler(cfg.Metrics, errs, api.votes)))
	e.GET("/healthz", func(c *gin.Context) { c.String(http.StatusOK, "ok\n") })
	e.GET("/readyz", func(c *gin.Context) {
		if s.draining.Load() {
			c.String(http.StatusServiceUnavailable, "draining\n")
			return
		}
		c.String(http.StatusOK, "ready\n")
	})
	s.engine = e
	return s, nil
}

// newEngine is a gin engine as singoff routes: on the escaped path, so an
// encoded slash stays inside the path parameter it belongs to, with the
// contract's 404 and 405 answers.
func newEngine() *gin.Engine {
	gin.SetMode(gin.ReleaseMode)
	e := gin.New()
	e.UseRawPath = true
	e.UnescapePathValues = true
	e.HandleMethodNotAllowed = true
	e.NoRoute(notFound)
	e.NoMethod(methodNotAllowed)
	return e
}

// Handler is the engine.
func (s *Server) Handler() http.Handler { return s.engine }

// Drain makes /readyz answer 503, so load balancers stop sending new
// clients; the battles themselves drain in their manager.
func (s *Server) Drain() { s.draining.Store(true) }

func parsePrefix(s string) (netip.Prefix, error) {
	if !strings.Contains(s, "/") {
		a, err := netip.ParseAddr(s)
		if err != nil {
			return netip.Prefix{}, err
		}
		return netip.PrefixFrom(a, a.BitLen()), nil
	}
	return netip.ParsePrefix(s)
}

// fromTrustedProxy tells whether the request's direct peer is a proxy
// the server was told to trust: the one rule for every X-Forwarded-*
// header (gin applies the same list to X-Forwarded-For).
func (s *Server) fromTrustedProxy(c *gin.Context) bool {
	peer, err := netip.ParseAddr(c.RemoteIP())
	if err != nil {
		return false
	}
	for _, p := range s.trusted {
		if p.Contains(peer.Unmap()) {
			return true
		}
	}
	return false
}

// https tells whether the client reached the server over TLS: its own,
// or that of a trusted proxy saying so (X-Forwarded-Proto).
func (s *Server) https(c *gin.Context) bool {
	if c.Request.TLS != nil {
		return true
	}
	return s.fromTrustedProxy(c) && c.GetHeader("X-Forwarded-Proto") == "https"
}

// requestHost is the host (and port) the client sent the request to:
// Host, or a trusted proxy's X-Forwarded-Host; "localhost" when neither
// is a valid host.
func (s *Server) requestHost(c *gin.Context) string {
	host := c.Request.Host
	if s.fromTrustedProxy(c) {
		if h, _, _ := strings.Cut(c.GetHeader("X-Forwarded-Host"), ","); validHost(strings.TrimSpace(h)) {
			host = strings.TrimSpace(h)
		}
	}
	if !validHost(host) {
		return "localhost"
	}
	return host
}

// urlBase is where the URLs a request is answered with point.
type urlBase struct {
	// url is the scheme and host of this server as the client reaches
	// it.
	url string
	// direct is true when the client came straight to this origin, not
	// through a trusted proxy (an edge).
	direct bool
}

// baseURL is where the URLs a request is answered with point: built
// from the configured or a trusted address only. A client that came
// straight here gets --advertise-url when it is set; through a trusted
// proxy, the scheme and host the proxy says the client used
// (X-Forwarded-Proto/Host), so URLs work behind a TLS-terminating proxy
// or an edge. Without either, the Host the client sent, if it is a
// valid host name.
func (s *Server) baseURL(c *gin.Context) urlBase {
	direct := !s.fromTrustedProxy(c)
	if direct && s.advertise != nil {
		return urlBase{url: s.advertise.String(), direct: true}
	}
	scheme := "http"
	if s.https(c) {
		scheme = "https"
	}
	return urlBase{url: scheme + "://" + s.requestHost(c), direct: direct}
}

// parseAdvertiseURL checks an --advertise-url: http or https, a valid
// host, nothing after it but an optional "/".
func parseAdvertiseURL(raw string) (*url.URL, error) {
	u, err := url.Parse(raw)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || !validHost(u.Host) ||
		strings.TrimSuffix(u.Path, "/") != "" || u.RawQuery != "" || u.Fragment != "" || u.User != nil {
		return nil, fmt.Errorf("advertise URL %q: want http(s)://host[:port]", raw)
	}
	return &url.URL{Scheme: u.Scheme, Host: u.Host}, nil
}

// hsts makes browsers that reached the server over HTTPS keep to it.
func (s *Server) hsts(c *gin.Context) {
	if s.https(c) {
		c.Header("Strict-Transport-Security", "max-age=31536000")
	}
}

// validHost accepts a host name or address with an optional port.
func validHost(h string) bool {
	if h == "" || len(h) > 255 {
		return false
	}
	for _, r := range h {
		switch {
		case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r >= '0' && r <= '9', strings.ContainsRune(".-:[]", r):
		default:
			return false
		}
	}
	return true
}

// logRequests logs every request at debug and every server error at
// error, through slog. Paths are logged without their query (tokens
// never travel there, but LL-HLS directives would only add noise).
func (s *Server) logRequests(c *gin.Context) {
	start := time.Now()
	c.Next()
	status := c.Writer.Status()
	level := slog.LevelDebug
	if status >= 500 {
		level = slog.LevelError
	}
	// Most requests are LL-HLS ones, thousands a second: nothing of them
	// is made unless it is logged.
	if !s.log.Enabled(c.Request.Context(), level) {
		return
	}
	s.log.Log(c.Request.Context(), level, "request", "method", c.Request.Method, "path", c.Request.URL.Path,
		"status", status, "duration", time.Since(start), "client", c.ClientIP())
}

// The headers cors sets on every answer, made once (net/http only reads
// them).
var (
	corsAllowOrigin   = []string{"*"}
	corsExposeHeaders = []string{"Location, ETag, Link, Accept-Patch, Accept-Post, Retry-After, Content-Length, Content-Range"}
)

// cors is the one CORS policy: any origin may read and call, without
// credentials. Bearer tokens are never sent by a browser on its own, and
// the vote (cookie) refuses cross-site origins itself.
func cors(c *gin.Context) {
	h := c.Writer.Header()
	h["Access-Control-Allow-Origin"] = corsAllowOrigin
	h["Access-Control-Expose-Headers"] = corsExposeHeaders
	if c.Request.Method == http.MethodOptions && c.GetHeader("Access-Control-Request-Method") != "" {
		h.Set("Access-Control-Allow-Methods", "GET, HEAD, POST, PATCH, DELETE, OPTIONS")
		h.Set("Access-Control-Allow-Headers", "Authorization, Content-Type, If-Match, Range")
		h.Set("Access-Control-Max-Age", "600")
	}
	c.Next()
}

func notFound(c *gin.Context) {
	if strings.HasPrefix(c.Request.URL.Path, "/api/") {
		httpjson.Error(c.Writer, http.StatusNotFound, "no such API endpoint: %s %s", c.Request.Method, c.Request.URL.Path)
		return
	}
	c.Header("Cache-Control", "no-store")
	c.String(http.StatusNotFound, "404 page not found\n")
}

func methodNotAllowed(c *gin.Context) {
	if c.Request.Method == http.MethodOptions {
		// A preflight of a route that exists: the CORS headers are set.
		c.Status(http.StatusNoContent)
		return
	}
	httpjson.Error(c.Writer, http.StatusMethodNotAllowed, "method %s not allowed here", c.Request.Method)
}
