package web

import (
	"errors"
	"log/slog"
	"net/http"

	"github.com/gin-gonic/gin"

	"github.com/singoff/singoff/battle"
	"github.com/singoff/singoff/internal/httpjson"
	"github.com/singoff/singoff/storage"
)

// originHeader names the origin that runs a battle, for an edge that
// routes the battle's live program and media there (deploy/).
const originHeader = "X-Singoff-Origin"

// registerOrigin serves GET /api/battles/{id}/origin: the URL of the
// origin that runs the battle, in the body and in X-Singoff-Origin. A
// battle keeps its origin while it is live, so the answer may be cached
// a few seconds.
func registerOrigin(e *gin.Engine, battles *battle.Manager, log *slog.Logger) {
	e.GET("/api/battles/:id/origin", withTimeout(apiTimeout), func(c *gin.Context) {
		b, err := battles.Get(c.Request.Context(), c.Param("id"))
		switch {
		case errors.Is(err, battle.ErrNotFound):
			c.Header("Cache-Control", "no-store")
			httpjson.Error(c.Writer, http.StatusNotFound, "no battle %q", c.Param("id"))
			return
		case err != nil:
			internalError(c, log, err)
			return
		}
		url := battles.OriginOf(b)
		if url == "" {
			c.Header("Cache-Control", "no-store")
			httpjson.Error(c.Writer, http.StatusNotFound, "this server runs alone: it has no --advertise-url")
			return
		}
		c.Header(originHeader, url)
		c.Header("Cache-Control", "public, max-age=5")
		httpjson.Write(c.Writer, http.StatusOK, map[string]string{"origin": url})
	})
}

// toBattlesOrigin sends a browser that came straight to this origin for
// the watch or sing page of a live or waiting battle another origin runs
// to that origin (307, the path kept; the fragment with its token stays
// in the browser): the page's WHIP, WHEP and live program are there, and
// a page keeps to its own origin (its Content-Security-Policy; browsers
// also drop the token on a redirect to another origin). Through an edge,
// which routes by battle id, nothing moves.
func (s *Server) toBattlesOrigin(battles *battle.Manager) gin.HandlerFunc {
	return func(c *gin.Context) {
		if s.fromTrustedProxy(c) {
			return
		}
		b, err := battles.Get(c.Request.Context(), c.Param("id"))
		if err != nil || b.State == storage.StateEnded {
			return // the page says what is wrong itself
		}
		if owner, elsewhere := battles.Owner(b); elsewhere {
			c.Header("Location", owner+c.Request.URL.RequestURI())
			c.Header("Cache-Control", "no-store")
			c.AbortWithStatus(http.StatusTemporaryRedirect)
		}
	}
}
