package hls

import (
	"bytes"
	"compress/gzip"
	"strconv"
	"strings"
	"sync"
)

// Playlists go gzip-encoded to clients that accept it (Apple's authoring
// rules ask for it: a live playlist is fetched several times a second).
// A playlist is compressed once, by the first request that wants it, and
// the compressed bytes serve every later request for it, whatever their
// LL-HLS directives (a rung's latest playlists are kept, see
// rung.playlistAnswer). Playlist answers name Accept-Encoding in Vary,
// so caches keep the two forms apart.

// gzipped is the gzip form of an answer's body, made once.
type gzipped struct {
	once   sync.Once
	body   []byte
	length []string
}

// get returns body compressed, and its length as a header value. The
// compressor comes from writers: a flate compressor holds hundreds of
// kilobytes, too many to make for every playlist of thousands of
// watchers.
func (g *gzipped) get(body []byte, writers *sync.Pool) ([]byte, []string) {
	g.once.Do(func() {
		var buf bytes.Buffer
		buf.Grow(len(body)/2 + 64)
		zw, _ := writers.Get().(*gzip.Writer)
		if zw == nil {
			// The fastest level: playlists are small, and most of what
			// they save is their repeated names.
			zw, _ = gzip.NewWriterLevel(&buf, gzip.BestSpeed)
		} else {
			zw.Reset(&buf)
		}
		zw.Write(body)
		zw.Close()
		writers.Put(zw)
		g.body = buf.Bytes()
		g.length = []string{strconv.Itoa(len(g.body))}
	})
	return g.body, g.length
}

// Header values shared by every answer (net/http only reads them).
var (
	headerGzip           = []string{"gzip"}
	headerAcceptEncoding = []string{"Accept-Encoding"}
)

// acceptsGzip tells whether an Accept-Encoding header value (RFC 9110
// 12.5.3) admits gzip: gzip, x-gzip or * with a q-value above zero,
// unless gzip itself is refused.
func acceptsGzip(header string) bool {
	accepted := false
	for item := range strings.SplitSeq(header, ",") {
		coding, params, _ := strings.Cut(item, ";")
		coding = strings.ToLower(strings.TrimSpace(coding))
		if coding != "gzip" && coding != "x-gzip" && coding != "*" {
			continue
		}
		q := 1.0
		for param := range strings.SplitSeq(params, ";") {
			name, value, _ := strings.Cut(strings.TrimSpace(param), "=")
			if strings.EqualFold(name, "q") {
				var err error
				if q, err = strconv.ParseFloat(strings.TrimSpace(value), 64); err != nil {
					q = 0
				}
			}
		}
		if q <= 0 && coding != "*" {
			return false // refused by name, whatever * says
		}
		accepted = accepted || q > 0
	}
	return accepted
}
