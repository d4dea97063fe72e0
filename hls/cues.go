package hls

import (
	"net/http"
	"slices"
	"strconv"
	"time"

	"github.com/singoff/singoff/internal/httpjson"
	"github.com/singoff/singoff/media"
)

// Cue implements media.Cuer: the cue is written into every live playlist
// from now on as an EXT-X-DATERANGE. A malformed cue, or a second one
// with the ID of another, is dropped (and logged).
func (m *Muxer) Cue(c media.Cue) {
	if m.closed.Load() {
		return
	}
	if !m.cues.Add(c) {
		m.logger.Warn("hls: cue dropped: malformed, a repeated ID or too many", "cue", c.ID, "class", c.Class)
	}
}

// still is the program's latest picture.
type still struct {
	ntp  time.Time
	jpeg []byte
}

// Still implements media.Stills: the picture is the live thumbnail
// (thumb.jpg) until the next one.
func (m *Muxer) Still(ntp time.Time, jpeg []byte) {
	if len(jpeg) == 0 {
		return
	}
	m.still.Store(&still{ntp: ntp, jpeg: slices.Clone(jpeg)})
}

// Cache-Control of the thumbnail: about as long as a picture stays the
// latest.
const cacheThumb = "public, max-age=2"

// serveThumb answers with the latest picture.
func (m *Muxer) serveThumb(w http.ResponseWriter, r *http.Request) {
	h := w.Header()
	s := m.still.Load()
	if s == nil {
		h.Set("Cache-Control", cacheError)
		httpjson.Error(w, http.StatusNotFound, "no picture of the program yet")
		return
	}
	h.Set("Content-Type", "image/jpeg")
	h.Set("Cache-Control", cacheThumb)
	h.Set("Last-Modified", s.ntp.UTC().Format(http.TimeFormat))
	h.Set("Content-Length", strconv.Itoa(len(s.jpeg)))
	w.WriteHeader(http.StatusOK)
	if r.Method != http.MethodHead {
		w.Write(s.jpeg)
	}
}
