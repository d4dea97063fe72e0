package recording

import (
	"bytes"
	"errors"
	"io/fs"
	"net/http"
	"os"
	"path/filepath"
	"strings"

	"github.com/singoff/singoff/internal/battleid"
	"github.com/singoff/singoff/internal/httpjson"
)

// Cache-Control values. Segments and init files never change under a
// name (Create refuses an id recorded before); an EVENT playlist grows
// every segment, a VOD one is final.
const (
	cacheEventPlaylist = "public, max-age=1"
	cacheVODPlaylist   = "public, max-age=3600"
	cacheMedia         = "public, max-age=31536000, immutable"
	// The thumbnail is rewritten now and then while the battle goes on.
	cacheThumb = "public, max-age=60"
)

// vodPrefix is where the lead mounts Handler.
const vodPrefix = "/vod/"

// parseVODPath splits the escaped path of a request, /vod/{id}/{file},
// and tells whether it names a file a recording serves. It accepts only
// battle ids and the store's own file names, byte by byte, before
// anything is unescaped, so no dot segment, encoded or doubled slash,
// backslash or absolute path ever reaches the file system.
func parseVODPath(escapedPath string) (id, file string, ok bool) {
	rest, ok := strings.CutPrefix(escapedPath, vodPrefix)
	if !ok {
		return "", "", false
	}
	id, file, ok = strings.Cut(rest, "/")
	if !ok || !battleid.Valid(id) || !servedName(file) {
		return "", "", false
	}
	return id, file, true
}

// Handler implements Store: it serves /vod/{id}/index.m3u8 and the files
// it names, and thumb.jpg, with Range requests. Mount it at "/vod/" as is (no prefix
// stripping) in a mux that does not clean paths first, or traversal
// attempts get a redirect rather than a 404.
func (l *Local) Handler() http.Handler {
	return http.HandlerFunc(l.serveHTTP)
}

func (l *Local) serveHTTP(w http.ResponseWriter, r *http.Request) {
	h := w.Header()
	id, file, ok := parseVODPath(r.URL.EscapedPath())
	if !ok {
		httpjson.Error(w, http.StatusNotFound, "no such recording file")
		return
	}
	f, err := os.Open(filepath.Join(l.dir, id, file))
	if errors.Is(err, fs.ErrNotExist) {
		httpjson.Error(w, http.StatusNotFound, "no recording of battle %s", id)
		return
	}
	if err != nil {
		l.opts.Logger.Error("recording: serving", "battle", id, "file", file, "err", err)
		httpjson.Error(w, http.StatusInternalServerError, "reading the recording failed")
		return
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		httpjson.Error(w, http.StatusInternalServerError, "reading the recording failed")
		return
	}

	switch file {
	case playlistName:
		// Read it whole: whether it is finished decides how long it may
		// be cached, and it is small.
		text := make([]byte, st.Size())
		if _, err := f.ReadAt(text, 0); err != nil {
			httpjson.Error(w, http.StatusInternalServerError, "reading the recording failed")
			return
		}
		h.Set("Content-Type", "application/vnd.apple.mpegurl")
		if isFinished(string(text)) {
			h.Set("Cache-Control", cacheVODPlaylist)
		} else {
			h.Set("Cache-Control", cacheEventPlaylist)
		}
		http.ServeContent(w, r, file, st.ModTime(), bytes.NewReader(text))
	case thumbName:
		h.Set("Content-Type", "image/jpeg")
		h.Set("Cache-Control", cacheThumb)
		http.ServeContent(w, r, file, st.ModTime(), f)
	case initName:
		h.Set("Content-Type", "video/mp4")
		h.Set("Cache-Control", cacheMedia)
		http.ServeContent(w, r, file, st.ModTime(), f)
	default:
		h.Set("Content-Type", "video/iso.segment")
		h.Set("Cache-Control", cacheMedia)
		http.ServeContent(w, r, file, st.ModTime(), f)
	}
}
