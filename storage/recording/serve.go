package recording

import (
	"bytes"
	"errors"
	"io"
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

	var content io.ReadSeeker = f
	var text []byte
	if file == playlistName {
		// Read it whole: whether it is finished decides how long it may
		// be cached, and it is small.
		text = make([]byte, st.Size())
		if _, err := f.ReadAt(text, 0); err != nil {
			httpjson.Error(w, http.StatusInternalServerError, "reading the recording failed")
			return
		}
		content = bytes.NewReader(text)
	}
	fileHeaders(h, file, text)
	http.ServeContent(w, r, file, st.ModTime(), content)
}

// fileHeaders sets the type and caching of a recording's file; playlist
// is the text of a playlist (whether it is finished decides its caching).
func fileHeaders(h http.Header, file string, playlist []byte) {
	h.Set("Content-Type", contentType(file))
	switch {
	case file == thumbName:
		h.Set("Cache-Control", cacheThumb)
	case file != playlistName:
		h.Set("Cache-Control", cacheMedia)
	case isFinished(string(playlist)):
		h.Set("Cache-Control", cacheVODPlaylist)
	default:
		h.Set("Cache-Control", cacheEventPlaylist)
	}
}

// contentType is the type of a recording's file.
func contentType(file string) string {
	switch file {
	case playlistName:
		return "application/vnd.apple.mpegurl"
	case initName:
		return "video/mp4"
	case thumbName:
		return "image/jpeg"
	default:
		return "video/iso.segment"
	}
}
