package web

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"mime"
	"net/http"
	"strconv"
	"strings"

	"github.com/gin-gonic/gin"

	"github.com/singoff/singoff/battle"
	"github.com/singoff/singoff/ingest"
	"github.com/singoff/singoff/internal/httpjson"
	"github.com/singoff/singoff/storage"
)

// Content types of WHIP and WHEP (RFC 9725).
const (
	contentTypeSDP     = "application/sdp"
	contentTypeSDPFrag = "application/trickle-ice-sdpfrag"
)

// kind is WHIP (a singer publishing to their slot) or WHEP (the other
// singer or the host watching a slot).
type kind string

const (
	whip kind = "whip"
	whep kind = "whep"
)

// webrtcRoutes serves WHIP and WHEP on a battle's slots and their
// sessions (trickle ICE, ICE restart, hang-up).
type webrtcRoutes struct {
	battles    *battle.Manager
	ingest     *ingest.Server
	iceServers []ICEServer
	limit      *limiter
	log        *slog.Logger
}

func (w *webrtcRoutes) register(e *gin.Engine) {
	g := e.Group("/api/battles/:id/singers/:slot", withTimeout(apiTimeout), noStore)
	for _, k := range []kind{whip, whep} {
		g.POST("/"+string(k), w.limit.middleware, w.offer(k))
		g.OPTIONS("/"+string(k), w.options(k))
		g.PATCH("/"+string(k)+"/:session", w.limit.middleware, w.patch(k))
		g.DELETE("/"+string(k)+"/:session", w.hangup(k))
		g.OPTIONS("/"+string(k)+"/:session", w.options(k))
	}
}

// slotRequest is an authorized request on one slot of a battle.
type slotRequest struct {
	battle *storage.Battle
	slot   int
}

// authorize reads the battle and slot in the path and checks the token:
// WHIP takes the slot's singer token; WHEP the other singer's or the
// host's. A battle another origin runs is redirected there. When it
// fails it has answered.
func (w *webrtcRoutes) authorize(c *gin.Context, k kind) (slotRequest, bool) {
	b, err := w.battles.Get(c.Request.Context(), c.Param("id"))
	if errors.Is(err, battle.ErrNotFound) {
		httpjson.Error(c.Writer, http.StatusNotFound, "no battle %q", c.Param("id"))
		return slotRequest{}, false
	}
	if err != nil {
		internalError(c, w.log, err)
		return slotRequest{}, false
	}
	if owner, elsewhere := w.battles.Owner(b); elsewhere && b.State != storage.StateEnded {
		// Another origin runs the battle: its media go there (RFC 9725
		// lets a WHIP/WHEP server redirect with 307).
		c.Header("Location", owner+c.Request.URL.RequestURI())
		c.Status(http.StatusTemporaryRedirect)
		return slotRequest{}, false
	}
	slot := 0
	switch c.Param("slot") {
	case "1":
		slot = 1
	case "2":
		slot = 2
	default:
		httpjson.Error(c.Writer, http.StatusNotFound, "no slot %q: slots are 1 and 2", c.Param("slot"))
		return slotRequest{}, false
	}
	token := bearer(c)
	if k == whip && !battle.MayPublish(b, slot, token) || k == whep && !battle.MaySubscribe(b, slot, token) {
		c.Header("WWW-Authenticate", `Bearer realm="singoff"`)
		if k == whip {
			httpjson.Error(c.Writer, http.StatusUnauthorized, "publishing to slot %d needs that slot's singer token (Authorization: Bearer)", slot)
		} else {
			httpjson.Error(c.Writer, http.StatusUnauthorized, "watching slot %d needs the other singer's token or the host token (Authorization: Bearer)", slot)
		}
		return slotRequest{}, false
	}
	return slotRequest{battle: b, slot: slot}, true
}

// body reads a request body of content type want; when it fails it has
// answered.
func body(c *gin.Context, want string) ([]byte, bool) {
	mt, _, err := mime.ParseMediaType(c.GetHeader("Content-Type"))
	if err != nil || !strings.EqualFold(mt, want) {
		httpjson.Error(c.Writer, http.StatusUnsupportedMediaType, "Content-Type must be %s", want)
		return nil, false
	}
	return httpjson.ReadBody(c.Writer, c.Request)
}

// offer answers a WHIP or WHEP offer: 201 with the SDP answer and the
// session's Location. A WHIP offer replaces the slot's publisher.
func (w *webrtcRoutes) offer(k kind) gin.HandlerFunc {
	return func(c *gin.Context) {
		req, ok := w.authorize(c, k)
		if !ok {
			return
		}
		offer, ok := body(c, contentTypeSDP)
		if !ok {
			return
		}
		if req.battle.State == storage.StateEnded {
			httpjson.Error(c.Writer, http.StatusConflict, "the battle has ended")
			return
		}
		if err := ingest.CheckOffer(offer, k == whip); err != nil {
			w.fail(c, err)
			return
		}
		ctx := c.Request.Context()
		// The room exists only from here on: for an authorized request
		// with an offer the server can answer.
		if err := w.battles.Open(ctx, req.battle.ID); err != nil {
			w.fail(c, err)
			return
		}
		room := w.ingest.Room(req.battle.ID)
		if room == nil {
			httpjson.Error(c.Writer, http.StatusConflict, "the battle has ended")
			return
		}
		answer := room.Subscribe
		if k == whip {
			answer = room.Publish
		}
		a, err := answer(ctx, req.slot, offer)
		if err != nil {
			w.fail(c, err)
			return
		}
		h := c.Writer.Header()
		h.Set("Content-Type", contentTypeSDP)
		h.Set("Location", fmt.Sprintf("/api/battles/%s/singers/%d/%s/%s", req.battle.ID, req.slot, k, a.Session))
		h.Set("ETag", a.ETag)
		h.Set("Accept-Patch", contentTypeSDPFrag)
		w.iceServerLinks(h, true)
		c.Writer.WriteHeader(http.StatusCreated)
		_, _ = c.Writer.WriteString(a.SDP)
	}
}

// patch applies a trickle-ICE fragment; new ICE credentials restart ICE
// and are answered with the server's (200), else 204.
func (w *webrtcRoutes) patch(k kind) gin.HandlerFunc {
	return func(c *gin.Context) {
		req, room, ok := w.sessionRoom(c, k)
		if !ok {
			return
		}
		frag, ok := body(c, contentTypeSDPFrag)
		if !ok {
			return
		}
		restart, err := room.Patch(c.Request.Context(), req.slot, c.Param("session"), frag, c.GetHeader("If-Match"))
		if err != nil {
			w.fail(c, err)
			return
		}
		if restart.Fragment == "" {
			c.Status(http.StatusNoContent)
			return
		}
		c.Header("Content-Type", contentTypeSDPFrag)
		c.Header("ETag", restart.ETag)
		c.Status(http.StatusOK)
		_, _ = c.Writer.WriteString(restart.Fragment)
	}
}

// hangup ends a session (DELETE on its Location).
func (w *webrtcRoutes) hangup(k kind) gin.HandlerFunc {
	return func(c *gin.Context) {
		req, room, ok := w.sessionRoom(c, k)
		if !ok {
			return
		}
		if err := room.Hangup(req.slot, c.Param("session")); err != nil {
			w.fail(c, err)
			return
		}
		c.Status(http.StatusOK)
	}
}

// sessionRoom authorizes a request on a session and finds the battle's
// room; a battle without one has no sessions (404). When it fails it has
// answered.
func (w *webrtcRoutes) sessionRoom(c *gin.Context, k kind) (slotRequest, *ingest.Room, bool) {
	req, ok := w.authorize(c, k)
	if !ok {
		return req, nil, false
	}
	room := w.ingest.Room(req.battle.ID)
	if room == nil {
		httpjson.Error(c.Writer, http.StatusNotFound, "no such session")
		return req, nil, false
	}
	return req, room, true
}

// options answers OPTIONS on a WHIP/WHEP resource or session: what it
// accepts and the ICE servers to use (the CORS middleware answers the
// preflight part). Anyone may ask; TURN credentials go only to a request
// whose token may use the resource, so that the server's TURN relay is
// not handed to the whole Internet.
func (w *webrtcRoutes) options(k kind) gin.HandlerFunc {
	return func(c *gin.Context) {
		h := c.Writer.Header()
		h.Set("Accept-Post", contentTypeSDP)
		h.Set("Accept-Patch", contentTypeSDPFrag)
		h.Set("Allow", "OPTIONS, POST, PATCH, DELETE")
		w.iceServerLinks(h, w.needCredentials() && w.mayUse(c, k))
		c.Status(http.StatusNoContent)
	}
}

// needCredentials tells whether any ICE server has credentials.
func (w *webrtcRoutes) needCredentials() bool {
	for _, s := range w.iceServers {
		if s.Username != "" {
			return true
		}
	}
	return false
}

// mayUse tells, without answering, whether the request's token may
// publish (WHIP) or watch (WHEP) the slot in the path.
func (w *webrtcRoutes) mayUse(c *gin.Context, k kind) bool {
	token := bearer(c)
	if token == "" {
		return false
	}
	b, err := w.battles.Get(c.Request.Context(), c.Param("id"))
	if err != nil {
		return false
	}
	slot, err := strconv.Atoi(c.Param("slot"))
	if err != nil {
		return false
	}
	if k == whip {
		return battle.MayPublish(b, slot, token)
	}
	return battle.MaySubscribe(b, slot, token)
}

// iceServerLinks adds a Link header per ICE server; those with
// credentials only when withCredentials.
func (w *webrtcRoutes) iceServerLinks(h http.Header, withCredentials bool) {
	for _, s := range w.iceServers {
		if s.Username == "" || withCredentials {
			h.Add("Link", s.link())
		}
	}
}

// fail answers an error of the battle manager or the ingest with the
// contract's status. The ingest's own errors carry a message fit for the
// client; anything else is internal.
func (w *webrtcRoutes) fail(c *gin.Context, err error) {
	status := 0
	switch {
	case errors.Is(err, ingest.ErrMalformed):
		status = http.StatusBadRequest
	case errors.Is(err, ingest.ErrUnusable):
		status = http.StatusUnprocessableEntity
	case errors.Is(err, ingest.ErrNoSession):
		status = http.StatusNotFound
	case errors.Is(err, ingest.ErrPrecondition):
		status = http.StatusPreconditionFailed
	case errors.Is(err, ingest.ErrConflict):
		status = http.StatusConflict
	case errors.Is(err, ingest.ErrClosed), errors.Is(err, battle.ErrEnded):
		if c.Request.Method == http.MethodPost {
			httpjson.Error(c.Writer, http.StatusConflict, "the battle has ended")
		} else {
			httpjson.Error(c.Writer, http.StatusNotFound, "no such session: the battle has ended")
		}
		return
	case errors.Is(err, battle.ErrFull), errors.Is(err, battle.ErrDraining), errors.Is(err, battle.ErrElsewhere):
		unavailable(c, err)
		return
	case errors.Is(err, battle.ErrNetworkLimit), errors.Is(err, ingest.ErrTooMany):
		tooMany(c, err)
		return
	case errors.Is(err, context.DeadlineExceeded), errors.Is(err, context.Canceled):
		c.Header("Retry-After", "5")
		httpjson.Error(c.Writer, http.StatusServiceUnavailable, "the server took too long to answer; try again")
		return
	default:
		internalError(c, w.log, err)
		return
	}
	httpjson.Error(c.Writer, status, "%v", err)
}
