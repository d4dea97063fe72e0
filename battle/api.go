package battle

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/netip"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/gin-gonic/gin"

	"github.com/singoff/singoff/ingest"
	"github.com/singoff/singoff/internal/battleid"
	"github.com/singoff/singoff/internal/httpjson"
	"github.com/singoff/singoff/internal/ratelimit"
	"github.com/singoff/singoff/storage"
)

// Limits of the API, per client address. The defaults leave room for a
// test suite run from one address.
type Limits struct {
	CreatesPerMinute int // default 60
	WebRTCPerMinute  int // WHIP/WHEP POSTs, default 120
	VotesPerMinute   int // default 60
	Burst            int // default 20
	// MinTurnSeconds is the shortest turn a battle may have (default
	// 30); tests lower it to play a whole battle quickly.
	MinTurnSeconds int
	// TrustedProxies may set X-Forwarded-For/Proto/Host.
	TrustedProxies []netip.Prefix
}

// API serves the battles API of the HTTP contract.
type API struct {
	m       *Manager
	log     *slog.Logger
	creates *ratelimit.Limiter
	webrtc  *ratelimit.Limiter
	votes   *ratelimit.Limiter
	trusted []netip.Prefix
	minTurn int
}

// NewAPI makes the API over m.
func NewAPI(m *Manager, limits Limits) *API {
	if limits.CreatesPerMinute == 0 {
		limits.CreatesPerMinute = 60
	}
	if limits.WebRTCPerMinute == 0 {
		limits.WebRTCPerMinute = 120
	}
	if limits.VotesPerMinute == 0 {
		limits.VotesPerMinute = 60
	}
	if limits.Burst == 0 {
		limits.Burst = 20
	}
	if limits.MinTurnSeconds == 0 {
		limits.MinTurnSeconds = 30
	}
	return &API{
		m:       m,
		log:     m.log,
		creates: ratelimit.New(limits.CreatesPerMinute, limits.Burst),
		webrtc:  ratelimit.New(limits.WebRTCPerMinute, limits.Burst),
		votes:   ratelimit.New(limits.VotesPerMinute, limits.Burst),
		trusted: limits.TrustedProxies,
		minTurn: limits.MinTurnSeconds,
	}
}

// Register adds the API's routes to r.
func (a *API) Register(r gin.IRouter) {
	// The events stream lives as long as its watcher; every other call
	// is bounded.
	r.GET("/api/battles/:id/events", a.events)
	g := r.Group("/api/battles", withTimeout(apiTimeout))
	g.POST("", a.limit(a.creates), a.create)
	g.GET("", a.list)
	g.GET("/:id", a.get)
	g.POST("/:id/end", a.end)
	g.POST("/:id/start", a.start)
	g.POST("/:id/votes", a.limit(a.votes), a.vote)
	for _, kind := range []string{"whip", "whep"} {
		g.POST("/:id/singers/:slot/"+kind, a.limit(a.webrtc), a.webrtcPost(kind))
		g.OPTIONS("/:id/singers/:slot/"+kind, a.options)
		g.PATCH("/:id/singers/:slot/"+kind+"/:session", a.session(kind))
		g.DELETE("/:id/singers/:slot/"+kind+"/:session", a.session(kind))
		g.OPTIONS("/:id/singers/:slot/"+kind+"/:session", a.options)
	}
}

// apiTimeout bounds an API request (the events stream aside): a stuck
// database or ICE gathering answers an error, never hangs a client.
const apiTimeout = 15 * time.Second

func withTimeout(d time.Duration) gin.HandlerFunc {
	return func(c *gin.Context) {
		ctx, cancel := context.WithTimeout(c.Request.Context(), d)
		defer cancel()
		c.Request = c.Request.WithContext(ctx)
		c.Next()
	}
}

// NotFoundOr answers unknown /api/ paths with the contract's JSON 404
// and hands every other unknown path to next (the pages).
func (a *API) NotFoundOr(next gin.HandlerFunc) gin.HandlerFunc {
	return func(c *gin.Context) {
		if strings.HasPrefix(c.Request.URL.Path, "/api/") {
			httpjson.Error(c.Writer, http.StatusNotFound, "no such API endpoint: %s %s", c.Request.Method, c.Request.URL.Path)
			return
		}
		next(c)
	}
}

func (a *API) limit(l *ratelimit.Limiter) gin.HandlerFunc {
	return func(c *gin.Context) {
		if ok, wait := l.Allow(c.ClientIP(), time.Now()); !ok {
			secs := int(wait/time.Second) + 1
			c.Header("Retry-After", strconv.Itoa(secs))
			httpjson.Error(c.Writer, http.StatusTooManyRequests, "too many requests; retry in %d s", secs)
			c.Abort()
		}
	}
}

// CreateParams are a new battle's settings, validated.
type CreateParams struct {
	Title       string
	Singers     [2]string
	Rounds      int
	TurnSeconds int
}

// Bounds of the battle format.
const (
	DefaultRounds      = 3
	DefaultTurnSeconds = 90
)

// ParseCreate reads and checks a create request's JSON body; turns are
// at least minTurn seconds.
func ParseCreate(body []byte, minTurn int) (CreateParams, error) {
	var req struct {
		Title       *string  `json:"title"`
		Singers     []string `json:"singers"`
		Rounds      *int     `json:"rounds"`
		TurnSeconds *int     `json:"turn_seconds"`
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&req); err != nil {
		return CreateParams{}, fmt.Errorf("body is not a battle JSON object: %v", err)
	}
	if dec.More() {
		return CreateParams{}, errors.New("body has data after the JSON object")
	}
	p := CreateParams{Rounds: DefaultRounds, TurnSeconds: DefaultTurnSeconds}
	if req.Title == nil {
		return p, errors.New(`"title" is required`)
	}
	p.Title = strings.TrimSpace(*req.Title)
	if n := utf8.RuneCountInString(p.Title); n < 1 || n > 100 || !utf8.ValidString(p.Title) {
		return p, errors.New(`"title" must be 1 to 100 characters`)
	}
	if req.Singers != nil {
		if len(req.Singers) != 2 {
			return p, errors.New(`"singers" must name exactly 2 singers`)
		}
		for i, s := range req.Singers {
			s = strings.TrimSpace(s)
			if n := utf8.RuneCountInString(s); n < 1 || n > 40 || !utf8.ValidString(s) {
				return p, fmt.Errorf(`"singers"[%d] must be 1 to 40 characters`, i)
			}
			p.Singers[i] = s
		}
	}
	if req.Rounds != nil {
		if *req.Rounds < 1 || *req.Rounds > 9 {
			return p, errors.New(`"rounds" must be 1 to 9`)
		}
		p.Rounds = *req.Rounds
	}
	if req.TurnSeconds != nil {
		if *req.TurnSeconds < minTurn || *req.TurnSeconds > 600 {
			return p, fmt.Errorf(`"turn_seconds" must be %d to 600`, minTurn)
		}
		p.TurnSeconds = *req.TurnSeconds
	}
	return p, nil
}

func (a *API) create(c *gin.Context) {
	body, ok := jsonBody(c)
	if !ok {
		return
	}
	p, err := ParseCreate(body, a.minTurn)
	if err != nil {
		httpjson.Error(c.Writer, http.StatusBadRequest, "%v", err)
		return
	}
	b, tokens, err := a.m.Create(c.Request.Context(), p)
	if err != nil {
		a.internal(c, err)
		return
	}
	v, err := a.view(c, b)
	if err != nil {
		a.internal(c, err)
		return
	}
	httpjson.Write(c.Writer, http.StatusCreated, createdView{
		View:         v,
		HostToken:    tokens.Host,
		SingerTokens: tokens.Singers[:],
	})
}

// jsonBody reads a JSON request body; when it fails it has answered
// (415 for another content type, 413 or 400 from reading).
func jsonBody(c *gin.Context) ([]byte, bool) {
	if ct := c.ContentType(); ct != "application/json" && ct != "" {
		httpjson.Error(c.Writer, http.StatusUnsupportedMediaType, "Content-Type must be application/json")
		return nil, false
	}
	return httpjson.ReadBody(c.Writer, c.Request)
}

type createdView struct {
	View
	HostToken    string   `json:"host_token"`
	SingerTokens []string `json:"singer_tokens"`
}

func (a *API) list(c *gin.Context) {
	state := c.Query("state")
	switch state {
	case "", storage.StateWaiting, storage.StateLive, storage.StateEnded:
	default:
		httpjson.Error(c.Writer, http.StatusBadRequest, "state must be waiting, live or ended")
		return
	}
	limit := 100
	if s := c.Query("limit"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 || n > 1000 {
			httpjson.Error(c.Writer, http.StatusBadRequest, "limit must be 1 to 1000")
			return
		}
		limit = n
	}
	bs, err := a.m.cfg.Store.ListBattles(c.Request.Context(), state, limit)
	if err != nil {
		a.internal(c, err)
		return
	}
	views := make([]View, 0, len(bs))
	for _, b := range bs {
		v, err := a.view(c, b)
		if err != nil {
			a.internal(c, err)
			return
		}
		views = append(views, v)
	}
	httpjson.Write(c.Writer, http.StatusOK, map[string]any{"battles": views})
}

func (a *API) get(c *gin.Context) {
	b, ok := a.battle(c)
	if !ok {
		return
	}
	a.writeView(c, http.StatusOK, b)
}

// writeView answers status with b's battle object.
func (a *API) writeView(c *gin.Context, status int, b *storage.Battle) {
	v, err := a.view(c, b)
	if err != nil {
		a.internal(c, err)
		return
	}
	httpjson.Write(c.Writer, status, v)
}

func (a *API) end(c *gin.Context) {
	b, ok := a.hostBattle(c)
	if !ok {
		return
	}
	ended, err := a.m.End(c.Request.Context(), b.ID, "the host ended it")
	switch {
	case errors.Is(err, ErrEnded):
		httpjson.Error(c.Writer, http.StatusConflict, "battle has already ended")
	case err != nil:
		a.internal(c, err)
	default:
		a.writeView(c, http.StatusOK, ended)
	}
}

// hostBattle loads the battle in the path for its host: without the host
// token it answers 401.
func (a *API) hostBattle(c *gin.Context) (*storage.Battle, bool) {
	b, ok := a.battle(c)
	if !ok {
		return nil, false
	}
	if !tokenMatches(bearer(c), b.HostTokenHash) {
		httpjson.Error(c.Writer, http.StatusUnauthorized, "the host token is required (Authorization: Bearer)")
		return nil, false
	}
	return b, true
}

func (a *API) start(c *gin.Context) {
	b, ok := a.hostBattle(c)
	if !ok {
		return
	}
	started, err := a.m.Start(c.Request.Context(), b.ID)
	switch {
	case errors.Is(err, ErrEnded):
		httpjson.Error(c.Writer, http.StatusConflict, "battle has ended")
	case errors.Is(err, ErrStarted):
		httpjson.Error(c.Writer, http.StatusConflict, "%v", err)
	case err != nil:
		a.internal(c, err)
	default:
		a.writeView(c, http.StatusOK, started)
	}
}

// watcherCookie names a watcher for voting: random, HttpOnly, a year.
const watcherCookie = "singoff_watcher"

func (a *API) vote(c *gin.Context) {
	b, ok := a.battle(c)
	if !ok {
		return
	}
	body, ok := jsonBody(c)
	if !ok {
		return
	}
	slot, err := ParseVote(body)
	if err != nil {
		httpjson.Error(c.Writer, http.StatusBadRequest, "%v", err)
		return
	}
	watcher, err := c.Cookie(watcherCookie)
	if err != nil || !validWatcher(watcher) {
		watcher, _ = newToken()
		http.SetCookie(c.Writer, &http.Cookie{
			Name: watcherCookie, Value: watcher, Path: "/", MaxAge: 365 * 24 * 3600,
			HttpOnly: true, SameSite: http.SameSiteLaxMode, Secure: c.Request.TLS != nil,
		})
	}
	switch err := a.m.Vote(c.Request.Context(), b.ID, watcher, slot); {
	case errors.Is(err, ErrNotStarted), errors.Is(err, ErrVotingShut), errors.Is(err, errVotingEnded):
		httpjson.Error(c.Writer, http.StatusConflict, "%v", err)
	case errors.Is(err, ErrNotFound):
		httpjson.Error(c.Writer, http.StatusNotFound, "no battle %q", b.ID)
	case err != nil:
		a.internal(c, err)
	default:
		c.Status(http.StatusNoContent)
	}
}

// validWatcher accepts only cookies of the shape newToken makes.
func validWatcher(s string) bool { return len(s) == 22 && battleid.Valid(s) }

// ParseVote reads a vote's JSON body: {"slot": 1} or {"slot": 2}.
func ParseVote(body []byte) (int, error) {
	var req struct {
		Slot *int `json:"slot"`
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&req); err != nil {
		return 0, fmt.Errorf("body is not a vote JSON object: %v", err)
	}
	if dec.More() {
		return 0, errors.New("body has data after the JSON object")
	}
	if req.Slot == nil || (*req.Slot != 1 && *req.Slot != 2) {
		return 0, errors.New(`"slot" must be 1 or 2`)
	}
	return *req.Slot, nil
}

// events streams the battle object as Server-Sent Events: at once, then
// on every change; comments keep proxies from timing the stream out.
func (a *API) events(c *gin.Context) {
	b, ok := a.battle(c)
	if !ok {
		return
	}
	changed, stop := a.m.Subscribe(b.ID)
	defer stop()
	h := c.Writer.Header()
	h.Set("Content-Type", "text/event-stream")
	h.Set("Cache-Control", "no-store")
	h.Set("X-Accel-Buffering", "no") // nginx: pass events on at once
	c.Writer.WriteHeader(http.StatusOK)
	// A stream lives as long as its watcher: no write deadline.
	_ = http.NewResponseController(c.Writer).SetWriteDeadline(time.Time{})
	ctx := c.Request.Context()
	var last []byte
	send := func() bool {
		b, err := a.m.Get(ctx, b.ID)
		if err != nil {
			return false
		}
		v, err := a.view(c, b)
		if err != nil {
			return false
		}
		data, _ := json.Marshal(v)
		if bytes.Equal(data, last) {
			return true
		}
		last = data
		if _, err := fmt.Fprintf(c.Writer, "id: %d\nevent: battle\ndata: %s\n\n", time.Now().UnixMilli(), data); err != nil {
			return false
		}
		c.Writer.Flush()
		return true
	}
	if !send() {
		return
	}
	heartbeat := time.NewTicker(sseHeartbeat)
	defer heartbeat.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-changed:
			if !send() {
				return
			}
		case <-heartbeat.C:
			if _, err := io.WriteString(c.Writer, ": ping\n\n"); err != nil {
				return
			}
			c.Writer.Flush()
		}
	}
}

const sseHeartbeat = 15 * time.Second

// battle loads the battle named in the path, or answers 404.
func (a *API) battle(c *gin.Context) (*storage.Battle, bool) {
	b, err := a.m.Get(c.Request.Context(), c.Param("id"))
	if errors.Is(err, ErrNotFound) {
		httpjson.Error(c.Writer, http.StatusNotFound, "no battle %q", c.Param("id"))
		return nil, false
	}
	if err != nil {
		a.internal(c, err)
		return nil, false
	}
	return b, true
}

// slot reads the slot in the path: 1 or 2, else 404.
func slotParam(c *gin.Context) (int, bool) {
	switch c.Param("slot") {
	case "1":
		return 1, true
	case "2":
		return 2, true
	}
	httpjson.Error(c.Writer, http.StatusNotFound, "no slot %q: slots are 1 and 2", c.Param("slot"))
	return 0, false
}

// authorized tells whether the request's token may use kind on slot:
// WHIP takes the slot's singer token; WHEP takes the other singer's or
// the host's.
func authorized(b *storage.Battle, kind string, slot int, token string) bool {
	if kind == "whip" {
		return tokenMatches(token, b.SingerTokenHashs[slot-1])
	}
	return tokenMatches(token, b.SingerTokenHashs[2-slot]) || tokenMatches(token, b.HostTokenHash)
}

// slotRoom authorizes a WHIP or WHEP request on the slot in the path and
// returns the battle, the slot and its room; when it fails it has
// answered, with endedStatus if the battle has ended.
func (a *API) slotRoom(c *gin.Context, kind string, endedStatus int) (*storage.Battle, int, *ingest.Room, bool) {
	b, ok := a.battle(c)
	if !ok {
		return nil, 0, nil, false
	}
	slot, ok := slotParam(c)
	if !ok {
		return nil, 0, nil, false
	}
	if !authorized(b, kind, slot, bearer(c)) {
		a.unauthorized(c, kind, slot)
		return nil, 0, nil, false
	}
	room, err := a.m.Room(c.Request.Context(), b.ID)
	if errors.Is(err, ErrEnded) {
		httpjson.Error(c.Writer, endedStatus, "battle has ended")
		return nil, 0, nil, false
	}
	if err != nil {
		a.internal(c, err)
		return nil, 0, nil, false
	}
	return b, slot, room, true
}

func (a *API) webrtcPost(kind string) gin.HandlerFunc {
	return func(c *gin.Context) {
		b, slot, room, ok := a.slotRoom(c, kind, http.StatusConflict)
		if !ok {
			return
		}
		location := func(session string) string {
			return fmt.Sprintf("/api/battles/%s/singers/%d/%s/%s", b.ID, slot, kind, session)
		}
		if kind == "whep" {
			a.m.cfg.Ingest.ServeWHEP(c.Writer, c.Request, room.Slot(slot), location)
			return
		}
		if err := a.m.Admit(b.ID); err != nil {
			c.Header("Retry-After", "30")
			httpjson.Error(c.Writer, http.StatusServiceUnavailable, "%v; try again later", err)
			return
		}
		a.m.cfg.Ingest.ServeWHIP(c.Writer, c.Request, room.Slot(slot), location)
		if c.Writer.Status() == http.StatusCreated {
			a.m.Published(b.ID)
		}
	}
}

// session serves PATCH and DELETE on a session's Location; once the
// battle has ended its sessions are gone (404).
func (a *API) session(kind string) gin.HandlerFunc {
	return func(c *gin.Context) {
		_, slot, room, ok := a.slotRoom(c, kind, http.StatusNotFound)
		if !ok {
			return
		}
		a.m.cfg.Ingest.ServeSession(c.Writer, c.Request, room.Slot(slot), c.Param("session"))
	}
}

func (a *API) options(c *gin.Context) {
	a.m.cfg.Ingest.ServeOptions(c.Writer, c.Request)
}

func (a *API) unauthorized(c *gin.Context, kind string, slot int) {
	c.Header("WWW-Authenticate", `Bearer realm="singoff"`)
	if kind == "whip" {
		httpjson.Error(c.Writer, http.StatusUnauthorized, "publishing to slot %d needs that slot's singer token (Authorization: Bearer)", slot)
	} else {
		httpjson.Error(c.Writer, http.StatusUnauthorized, "watching slot %d needs the other singer's token or the host token (Authorization: Bearer)", slot)
	}
}

func (a *API) internal(c *gin.Context, err error) {
	a.log.Error("request failed", "method", c.Request.Method, "path", c.Request.URL.Path, "err", err)
	httpjson.Error(c.Writer, http.StatusInternalServerError, "internal error")
}

func bearer(c *gin.Context) string {
	h := c.GetHeader("Authorization")
	const prefix = "bearer "
	if len(h) > len(prefix) && strings.EqualFold(h[:len(prefix)], prefix) {
		return strings.TrimSpace(h[len(prefix):])
	}
	return ""
}
