package web

import (
	"errors"
	"net/http"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/singoff/singoff/battle"
	"github.com/singoff/singoff/internal/httpjson"
)

// Cheers come from the battle's watchers, as JSON from this site's
// pages, within a bound per watcher (Limits.CheersPerSecond) and a
// rate limit per client network; the battle adds them up, so a tap is
// no event of its own.

// parseCheers reads a cheer's JSON body: {"slot": 1, "count": n}.
func parseCheers(body []byte) (slot, count int, err error) {
	var req struct {
		Slot  *int `json:"slot"`
		Count *int `json:"count"`
	}
	if err := decodeStrict(body, &req, "cheers"); err != nil {
		return 0, 0, err
	}
	switch {
	case req.Slot == nil || (*req.Slot != 1 && *req.Slot != 2):
		return 0, 0, errors.New(`"slot" must be 1 or 2`)
	case req.Count == nil || *req.Count < 1 || *req.Count > battle.MaxCheers:
		return 0, 0, errors.New(`"count" must be 1 to 20`)
	}
	return *req.Slot, *req.Count, nil
}

// cheer serves POST /api/battles/{id}/cheers.
func (a *api) cheer(c *gin.Context) {
	if a.srv.crossSite(c) {
		httpjson.Error(c.Writer, http.StatusForbidden, "cheers are taken from this site's pages only")
		return
	}
	body, ok := jsonBody(c)
	if !ok {
		return
	}
	slot, count, err := parseCheers(body)
	if err != nil {
		httpjson.Error(c.Writer, http.StatusBadRequest, "%v", err)
		return
	}
	w, ok := a.srv.watchers.watcherOf(c)
	if !ok {
		httpjson.Error(c.Writer, http.StatusForbidden, "cheers count from the battle's watch page: open /b/%s to cheer", c.Param("id"))
		return
	}
	if ok, wait := a.limits.cheerers.allowN(w.id, count, time.Now()); !ok {
		refuseRate(c, wait, "you are cheering faster than cheers count")
		return
	}
	if err := a.battles.Cheer(c.Request.Context(), c.Param("id"), slot, count); err != nil {
		a.battleError(c, err)
		return
	}
	c.Status(http.StatusNoContent)
}
