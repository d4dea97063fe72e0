package web

import (
	"net/http"

	"github.com/gin-gonic/gin"

	"github.com/singoff/singoff/hls"
)

// streams serves the live program (/hls) and the recordings (/vod).
type streams struct {
	live *hls.Server
	vod  http.Handler
}

func (s *streams) register(e *gin.Engine) {
	live := func(c *gin.Context) {
		s.live.Serve(c.Writer, c.Request, c.Param("id"), c.Param("file"), c.ClientIP())
	}
	e.GET("/hls/:id/:file", live)
	e.HEAD("/hls/:id/:file", live)
	// The recordings parse the escaped path themselves, name by name.
	vod := gin.WrapH(noStoreErrors(s.vod))
	e.GET("/vod/*path", vod)
	e.HEAD("/vod/*path", vod)
}
