package web

import (
	"errors"
	"fmt"
	"math"
	"net/http"
	"strconv"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/singoff/singoff/battle"
	"github.com/singoff/singoff/internal/httpjson"
	"github.com/singoff/singoff/storage"
)

// The chat: one per battle, for its watchers (the cookie of its watch
// page) and the bearers of its tokens. Posts come as JSON from this
// site's pages only, within a rate limit per client network and one per
// poster; messages reach the events streams as `event: chat`.

func (a *api) registerChat(g *gin.RouterGroup) {
	g.GET("/:id/chat", a.limits.reads.middleware, a.chatHistory)
	g.POST("/:id/chat", a.limits.chat.middleware, a.postChat)
	g.DELETE("/:id/chat/:message", a.deleteChat)
	g.POST("/:id/chat/settings", a.chatSettings)
	g.POST("/:id/mutes", a.mute)
	g.POST("/:id/cheers", a.limits.cheers.middleware, a.cheer)
}

// chatView is a message of the HTTP contract.
type chatView struct {
	ID   string  `json:"id"`
	Name string  `json:"name"`
	Text string  `json:"text"`
	At   float64 `json:"at"` // seconds since the battle went live
	Slot int     `json:"slot,omitempty"`
}

// chatDeletion is the chat event of a deleted message.
type chatDeletion struct {
	ID      string `json:"id"`
	Deleted bool   `json:"deleted"`
}

func chatViewOf(e battle.ChatEntry) chatView {
	return chatView{
		ID: strconv.FormatInt(e.ID, 10), Name: e.Name, Text: e.Text, Slot: e.Slot,
		At: math.Round(e.At.Seconds()*1000) / 1000,
	}
}

// chatEventOf is what the events stream carries of a chat change.
func chatEventOf(e battle.ChatEntry) any {
	if e.Deleted {
		return chatDeletion{ID: strconv.FormatInt(e.ID, 10), Deleted: true}
	}
	return chatViewOf(e)
}

// messageID reads a message id; false when it is none.
func messageID(s string) (int64, bool) {
	n, err := strconv.ParseInt(s, 10, 64)
	return n, err == nil && n > 0
}

// chatHistory serves GET /api/battles/{id}/chat?after=<id>.
func (a *api) chatHistory(c *gin.Context) {
	var after int64
	if s := c.Query("after"); s != "" {
		n, err := strconv.ParseInt(s, 10, 64)
		if err != nil || n < 0 {
			httpjson.Error(c.Writer, http.StatusBadRequest, "after must be a message id")
			return
		}
		after = n
	}
	entries, err := a.battles.Chat(c.Request.Context(), c.Param("id"), after)
	if err != nil {
		a.chatError(c, err)
		return
	}
	views := make([]chatView, len(entries))
	for i, e := range entries {
		views[i] = chatViewOf(e)
	}
	httpjson.Write(c.Writer, http.StatusOK, map[string]any{"messages": views})
}

// tokenPoster is who the request's bearer token makes it in battle b;
// when the token is none of b's it has answered 401.
func tokenPoster(c *gin.Context, b *storage.Battle) (battle.Poster, bool) {
	p, ok := battle.TokenPoster(b, bearer(c))
	if !ok {
		c.Header("WWW-Authenticate", `Bearer realm="singoff"`)
		httpjson.Error(c.Writer, http.StatusUnauthorized, "a singer or host token of the battle is required (Authorization: Bearer)")
	}
	return p, ok
}

// poster is who posts: the bearer of a token of b, else the watcher of
// the cookie. When neither it has answered.
func (a *api) poster(c *gin.Context, b *storage.Battle) (battle.Poster, bool) {
	if bearer(c) != "" {
		return tokenPoster(c, b)
	}
	w, ok := a.srv.watchers.watcherOf(c)
	if !ok {
		httpjson.Error(c.Writer, http.StatusForbidden, "chat from the battle's watch page: open /b/%s to chat", b.ID)
		return battle.Poster{}, false
	}
	return battle.Poster{Watcher: w.id}, true
}

// posterKey names a poster for its rate limit.
func posterKey(b *storage.Battle, p battle.Poster) string {
	switch {
	case p.Watcher != "":
		return "w " + p.Watcher
	case p.Host:
		return "h " + b.ID
	}
	return fmt.Sprintf("s%d %s", p.Slot, b.ID)
}

// postChat serves POST /api/battles/{id}/chat.
func (a *api) postChat(c *gin.Context) {
	if a.srv.crossSite(c) {
		httpjson.Error(c.Writer, http.StatusForbidden, "chat is taken from this site's pages only")
		return
	}
	body, ok := jsonBody(c)
	if !ok {
		return
	}
	var req struct {
		Text string `json:"text"`
		Name string `json:"name"`
	}
	if err := decodeStrict(body, &req, "chat message"); err != nil {
		httpjson.Error(c.Writer, http.StatusBadRequest, "%v", err)
		return
	}
	b, err := a.battles.Get(c.Request.Context(), c.Param("id"))
	if err != nil {
		a.battleError(c, err)
		return
	}
	p, ok := a.poster(c, b)
	if !ok {
		return
	}
	if ok, wait := a.limits.chatters.allow(posterKey(b, p), time.Now()); !ok {
		refuseRate(c, wait, "you are chatting too fast")
		return
	}
	e, err := a.battles.PostChat(c.Request.Context(), b.ID, battle.ChatPost{Poster: p, Name: req.Name, Text: req.Text})
	if err != nil {
		a.chatError(c, err)
		return
	}
	httpjson.Write(c.Writer, http.StatusCreated, chatViewOf(e))
}

// deleteChat serves DELETE /api/battles/{id}/chat/{message}.
func (a *api) deleteChat(c *gin.Context) {
	b, ok := a.hostBattle(c)
	if !ok {
		return
	}
	msg, ok := messageID(c.Param("message"))
	if !ok {
		a.chatError(c, battle.ErrNoMessage)
		return
	}
	if err := a.battles.DeleteChat(c.Request.Context(), b.ID, msg); err != nil {
		a.chatError(c, err)
		return
	}
	c.Status(http.StatusNoContent)
}

// mute serves POST /api/battles/{id}/mutes: the host or a singer mutes
// the author of a message.
func (a *api) mute(c *gin.Context) {
	b, err := a.battles.Get(c.Request.Context(), c.Param("id"))
	if err != nil {
		a.battleError(c, err)
		return
	}
	if _, ok := tokenPoster(c, b); !ok {
		return
	}
	body, ok := jsonBody(c)
	if !ok {
		return
	}
	var req struct {
		Message string `json:"message"`
	}
	if err := decodeStrict(body, &req, "mute"); err != nil {
		httpjson.Error(c.Writer, http.StatusBadRequest, "%v", err)
		return
	}
	msg, ok := messageID(req.Message)
	if !ok {
		httpjson.Error(c.Writer, http.StatusBadRequest, `"message" must be a message id`)
		return
	}
	if err := a.battles.Mute(c.Request.Context(), b.ID, msg); err != nil {
		a.chatError(c, err)
		return
	}
	c.Status(http.StatusNoContent)
}

// chatSettings serves POST /api/battles/{id}/chat/settings: the host
// turns the chat on, to slow mode or off.
func (a *api) chatSettings(c *gin.Context) {
	b, ok := a.hostBattle(c)
	if !ok {
		return
	}
	body, ok := jsonBody(c)
	if !ok {
		return
	}
	var req struct {
		Mode string `json:"mode"`
	}
	if err := decodeStrict(body, &req, "chat settings"); err != nil {
		httpjson.Error(c.Writer, http.StatusBadRequest, "%v", err)
		return
	}
	if err := a.battles.SetChatMode(c.Request.Context(), b.ID, req.Mode); err != nil {
		a.chatError(c, err)
		return
	}
	c.Status(http.StatusNoContent)
}

// chatError answers an error of the chat with its status.
func (a *api) chatError(c *gin.Context, err error) {
	var slow *battle.SlowModeError
	switch {
	case errors.As(err, &slow):
		refuseRate(c, slow.Wait, err.Error())
	case errors.Is(err, battle.ErrMuted), errors.Is(err, battle.ErrNoChatAs):
		httpjson.Error(c.Writer, http.StatusForbidden, "%v", err)
	case errors.Is(err, battle.ErrChatOff):
		httpjson.Error(c.Writer, http.StatusConflict, "%v", err)
	case errors.Is(err, battle.ErrNoMessage):
		httpjson.Error(c.Writer, http.StatusNotFound, "%v", err)
	case errors.Is(err, battle.ErrBadChat), errors.Is(err, battle.ErrNotMutable):
		httpjson.Error(c.Writer, http.StatusBadRequest, "%v", err)
	default:
		a.battleError(c, err)
	}
}
