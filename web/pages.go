package web

// The pages: home, sing, watch and replay. They are plain HTML and ES
// modules embedded into the binary; the front-end dependencies (hls.js)
// are copied into assets/vendor by the build.

import (
	"bytes"
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"io/fs"
	"mime"
	"net/http"
	"path"
	"strings"
	"time"

	"github.com/gin-gonic/gin"
)

// The assets directory is embedded as a whole, so the package still
// compiles before the build has copied hls.js into assets/vendor.
//
//go:embed pages assets
var files embed.FS

// contentSecurityPolicy keeps the pages to their own origin: hls.js feeds
// the video element through blob: URLs; everything else is same-origin.
const contentSecurityPolicy = "default-src 'self'; media-src 'self' blob:; worker-src 'self' blob:; " +
	"img-src 'self' data:; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"

// file is one embedded file with what its answers need.
type file struct {
	body        []byte
	contentType string
	etag        string
}

// registerPages serves GET / (home), /b/{id} (watch), /b/{id}/sing/{slot}
// (sing), /b/{id}/replay (replay) and the static files under /assets/.
// toOrigin runs before the watch and sing pages; then the watch page
// runs watchPage (it issues the watcher identity).
func registerPages(e *gin.Engine, toOrigin, watchPage gin.HandlerFunc) {
	byPath := loadFiles()
	page := func(name string) gin.HandlerFunc {
		f := byPath["pages/"+name]
		return func(c *gin.Context) { serve(c.Writer, c.Request, f) }
	}
	e.GET("/", page("home.html"))
	e.GET("/b/:id", toOrigin, watchPage, page("watch.html"))
	e.GET("/b/:id/replay", page("replay.html"))
	sing := page("sing.html")
	e.GET("/b/:id/sing/:slot", toOrigin, func(c *gin.Context) {
		if slot := c.Param("slot"); slot != "1" && slot != "2" {
			notFound(c)
			return
		}
		sing(c)
	})
	e.GET("/assets/*path", func(c *gin.Context) {
		f, ok := byPath[strings.TrimPrefix(path.Clean(c.Request.URL.Path), "/")]
		if !ok {
			notFound(c)
			return
		}
		serve(c.Writer, c.Request, f)
	})
}

// loadFiles reads every embedded file once, with its type and an ETag
// made from its content, so a browser revalidates instead of refetching.
func loadFiles() map[string]file {
	byPath := make(map[string]file)
	err := fs.WalkDir(files, ".", func(name string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		body, err := files.ReadFile(name)
		if err != nil {
			return err
		}
		sum := sha256.Sum256(body)
		byPath[name] = file{
			body:        body,
			contentType: contentType(name),
			etag:        `"` + hex.EncodeToString(sum[:12]) + `"`,
		}
		return nil
	})
	if err != nil {
		// The files are compiled in: failing to read them is a broken build.
		panic("web: reading embedded files: " + err.Error())
	}
	return byPath
}

func contentType(name string) string {
	switch path.Ext(name) {
	case ".js", ".mjs":
		return "text/javascript; charset=utf-8"
	case ".html":
		return "text/html; charset=utf-8"
	case ".css":
		return "text/css; charset=utf-8"
	}
	if t := mime.TypeByExtension(path.Ext(name)); t != "" {
		return t
	}
	return "application/octet-stream"
}

func serve(w http.ResponseWriter, r *http.Request, f file) {
	h := w.Header()
	h.Set("Content-Type", f.contentType)
	h.Set("ETag", f.etag)
	if h.Get("Cache-Control") == "" { // a handler before may have made it private
		h.Set("Cache-Control", "no-cache")
	}
	h.Set("X-Content-Type-Options", "nosniff")
	if strings.HasPrefix(f.contentType, "text/html") {
		h.Set("Content-Security-Policy", contentSecurityPolicy)
		// Tokens travel in URL fragments, which never leave the browser;
		// no-referrer keeps even the page path out of other requests.
		h.Set("Referrer-Policy", "no-referrer")
	}
	http.ServeContent(w, r, "", time.Time{}, bytes.NewReader(f.body))
}
