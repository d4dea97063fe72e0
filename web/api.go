package web

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/singoff/singoff/battle"
	"github.com/singoff/singoff/internal/httpjson"
	"github.com/singoff/singoff/storage"
)

// api serves /api/battles: create, list, get, end, start, votes and the
// events stream. WHIP/WHEP live in webrtc.go.
type api struct {
	battles *battle.Manager
	log     *slog.Logger
	srv     *Server // the client rules: address, network, base URL, watcher
	limits  limiters
	events  *eventHub
	votes   *voteCounter
}

// apiTimeout bounds an API request (the events stream aside): a stuck
// database or ICE gathering answers an error, never hangs a client.
const apiTimeout = 15 * time.Second

// maxListLimit bounds GET /api/battles?limit=.
const maxListLimit = 100

func (a *api) register(e *gin.Engine) {
	// The events stream lives as long as its watcher; every other call
	// is bounded.
	e.GET("/api/battles/:id/events", a.stream)
	g := e.Group("/api/battles", withTimeout(apiTimeout), noStore)
	g.POST("", a.limits.creates.middleware, a.create)
	g.GET("", a.limits.reads.middleware, a.list)
	g.GET("/:id", a.get)
	g.POST("/:id/end", a.end)
	g.POST("/:id/start", a.start)
	g.POST("/:id/rematch", a.limits.creates.middleware, a.rematch)
	g.POST("/:id/votes", a.voteLimit, a.vote)
	g.GET("/:id/host", a.checkHost)
	a.registerChat(g)
}

func withTimeout(d time.Duration) gin.HandlerFunc {
	return func(c *gin.Context) {
		ctx, cancel := context.WithTimeout(c.Request.Context(), d)
		defer cancel()
		c.Request = c.Request.WithContext(ctx)
		c.Next()
	}
}

// noStore keeps API answers (tokens among them) out of every cache.
func noStore(c *gin.Context) {
	c.Header("Cache-Control", "no-store")
	c.Header("X-Content-Type-Options", "nosniff")
}

func (a *api) create(c *gin.Context) {
	body, ok := jsonBody(c)
	if !ok {
		return
	}
	req, err := parseCreate(body)
	if err != nil {
		httpjson.Error(c.Writer, http.StatusBadRequest, "%v", err)
		return
	}
	req.Network = clientNetworkName(c)
	b, tokens, err := a.battles.Create(c.Request.Context(), req)
	switch {
	case errors.Is(err, battle.ErrInvalid):
		httpjson.Error(c.Writer, http.StatusBadRequest, "%v", err)
		return
	case err != nil:
		a.battleError(c, err)
		return
	}
	a.writeCreated(c, b, tokens)
}

// writeCreated answers 201 with new battle b and its tokens.
func (a *api) writeCreated(c *gin.Context, b *storage.Battle, tokens battle.Tokens) {
	st, err := a.battles.StatusOf(c.Request.Context(), b)
	if err != nil {
		internalError(c, a.log, err)
		return
	}
	httpjson.Write(c.Writer, http.StatusCreated, struct {
		view
		HostToken    string   `json:"host_token"`
		SingerTokens []string `json:"singer_tokens"`
	}{viewOf(st, a.srv.baseURL(c)), tokens.Host, tokens.Singers[:]})
}

func (a *api) list(c *gin.Context) {
	state := c.Query("state")
	switch state {
	case "", storage.StateWaiting, storage.StateLive, storage.StateEnded:
	default:
		httpjson.Error(c.Writer, http.StatusBadRequest, "state must be waiting, live or ended")
		return
	}
	limit := maxListLimit
	if s := c.Query("limit"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 || n > maxListLimit {
			httpjson.Error(c.Writer, http.StatusBadRequest, "limit must be 1 to %d", maxListLimit)
			return
		}
		limit = n
	}
	sts, err := a.battles.List(c.Request.Context(), state, limit)
	if err != nil {
		internalError(c, a.log, err)
		return
	}
	base := a.srv.baseURL(c)
	views := make([]view, len(sts))
	for i, st := range sts {
		views[i] = viewOf(st, base)
	}
	httpjson.Write(c.Writer, http.StatusOK, map[string]any{"battles": views})
}

func (a *api) get(c *gin.Context) {
	st, err := a.battles.Status(c.Request.Context(), c.Param("id"))
	if err != nil {
		a.battleError(c, err)
		return
	}
	httpjson.Write(c.Writer, http.StatusOK, viewOf(st, a.srv.baseURL(c)))
}

// hostBattle loads the battle in the path for its host: without the host
// token it answers 401.
func (a *api) hostBattle(c *gin.Context) (*storage.Battle, bool) {
	b, err := a.battles.Get(c.Request.Context(), c.Param("id"))
	if err != nil {
		a.battleError(c, err)
		return nil, false
	}
	if !battle.IsHost(b, bearer(c)) {
		c.Header("WWW-Authenticate", `Bearer realm="singoff"`)
		httpjson.Error(c.Writer, http.StatusUnauthorized, "the host token is required (Authorization: Bearer)")
		return nil, false
	}
	return b, true
}

// checkHost answers 204 when the request carries the battle's host
// token (401 when not): a page checks a host link before keeping it.
func (a *api) checkHost(c *gin.Context) {
	if _, ok := a.hostBattle(c); ok {
		c.Status(http.StatusNoContent)
	}
}

func (a *api) end(c *gin.Context) {
	b, ok := a.hostBattle(c)
	if !ok {
		return
	}
	ended, err := a.battles.End(c.Request.Context(), b.ID, "the host ended it")
	if err != nil {
		a.battleError(c, err)
		return
	}
	a.writeBattle(c, http.StatusOK, ended)
}

func (a *api) start(c *gin.Context) {
	b, ok := a.hostBattle(c)
	if !ok {
		return
	}
	started, err := a.battles.Start(c.Request.Context(), b.ID)
	if err != nil {
		a.battleError(c, err)
		return
	}
	a.writeBattle(c, http.StatusOK, started)
}

// rematch serves POST /api/battles/{id}/rematch: the host makes the
// battle's rematch, created as a new battle from the host's network.
func (a *api) rematch(c *gin.Context) {
	b, ok := a.hostBattle(c)
	if !ok {
		return
	}
	nb, tokens, err := a.battles.Rematch(c.Request.Context(), b.ID, clientNetworkName(c))
	if err != nil {
		a.battleError(c, err)
		return
	}
	a.writeCreated(c, nb, tokens)
}

// writeBattle answers status with b's battle object.
func (a *api) writeBattle(c *gin.Context, status int, b *storage.Battle) {
	st, err := a.battles.StatusOf(c.Request.Context(), b)
	if err != nil {
		internalError(c, a.log, err)
		return
	}
	httpjson.Write(c.Writer, status, viewOf(st, a.srv.baseURL(c)))
}

// battleError answers an error of the battle manager with its status.
func (a *api) battleError(c *gin.Context, err error) {
	switch {
	case errors.Is(err, battle.ErrNotFound):
		httpjson.Error(c.Writer, http.StatusNotFound, "no battle %q", c.Param("id"))
	case errors.Is(err, battle.ErrEnded):
		httpjson.Error(c.Writer, http.StatusConflict, "the battle has ended")
	case errors.Is(err, battle.ErrStarted), errors.Is(err, battle.ErrNotStarted), errors.Is(err, battle.ErrVotingShut),
		errors.Is(err, battle.ErrNoResult), errors.Is(err, battle.ErrRematched):
		httpjson.Error(c.Writer, http.StatusConflict, "%v", err)
	case errors.Is(err, battle.ErrBadSlot):
		httpjson.Error(c.Writer, http.StatusBadRequest, "%v", err)
	case errors.Is(err, battle.ErrDraining), errors.Is(err, battle.ErrFull):
		unavailable(c, err)
	case errors.Is(err, battle.ErrNetworkLimit):
		tooMany(c, err)
	case errors.Is(err, storage.ErrNoSpace):
		unavailable(c, errNoSpace)
	default:
		internalError(c, a.log, err)
	}
}

// unavailable answers 503 with Retry-After: the server is full or
// stopping.
func unavailable(c *gin.Context, err error) {
	c.Header("Retry-After", "30")
	httpjson.Error(c.Writer, http.StatusServiceUnavailable, "%v; try again later", err)
}

// networkLimitRetry is the Retry-After of a per-network cap: the time a
// battle of the network may take to end or expire is unknown, so a
// client is asked to come back in a minute.
const networkLimitRetry = "60"

// tooMany answers 429 with Retry-After: a per-network cap.
func tooMany(c *gin.Context, err error) {
	c.Header("Retry-After", networkLimitRetry)
	httpjson.Error(c.Writer, http.StatusTooManyRequests, "%v; try again later", err)
}

// errNoSpace is what a client is told when the database's disk is full.
var errNoSpace = errors.New("the server is out of disk space")

// internalError logs err and answers 500 without its details.
func internalError(c *gin.Context, log *slog.Logger, err error) {
	log.Error("request failed", "method", c.Request.Method, "path", c.Request.URL.Path, "err", err)
	httpjson.Error(c.Writer, http.StatusInternalServerError, "internal error")
}

// bearer is the request's bearer token, "" without one.
func bearer(c *gin.Context) string {
	h := c.GetHeader("Authorization")
	const prefix = "bearer "
	if len(h) > len(prefix) && strings.EqualFold(h[:len(prefix)], prefix) {
		return strings.TrimSpace(h[len(prefix):])
	}
	return ""
}
