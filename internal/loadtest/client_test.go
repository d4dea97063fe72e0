package loadtest

import (
	"bytes"
	"compress/gzip"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"
)

// TestConnBodies reads the bodies a server may send over one connection:
// with a Content-Length, chunked, an error's, and one ended by closing
// the connection, after which the next request dials again.
func TestConnBodies(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("/length", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Length", "5")
		io.WriteString(w, "hello")
	})
	mux.HandleFunc("/chunked", func(w http.ResponseWriter, _ *http.Request) {
		for range 3 {
			io.WriteString(w, strings.Repeat("x", 10000))
			w.(http.Flusher).Flush()
		}
	})
	mux.HandleFunc("/close", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Connection", "close")
		io.WriteString(w, "bye")
	})
	srv := &http.Server{Handler: mux}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })

	c := &conn{dialer: &net.Dialer{Timeout: time.Second}}
	defer c.close()
	for _, tc := range []struct {
		path   string
		status int
		size   int
	}{
		{"/length", 200, 5},
		{"/chunked", 200, 30000},
		{"/nope", 404, len("404 page not found\n")},
		{"/length", 200, 5},
		{"/close", 200, 3},
		{"/length", 200, 5},
	} {
		u, _ := url.Parse("http://" + ln.Addr().String() + tc.path)
		resp, err := c.get(t.Context(), u, "")
		if err != nil {
			t.Fatalf("%s: %v", tc.path, err)
		}
		b, err := io.ReadAll(resp.body)
		resp.body.Close()
		if err != nil || resp.status != tc.status || len(b) != tc.size {
			t.Fatalf("%s: status %d, %d bytes, %v; want %d, %d bytes", tc.path, resp.status, len(b), err, tc.status, tc.size)
		}
		if closed := c.c == nil; closed != (tc.path == "/close") {
			t.Errorf("%s: connection closed %v", tc.path, closed)
		}
	}
}

// A follower asks for playlists gzip-encoded, as browsers do, and reads
// both forms; what it counts received is what came over the wire.
func TestFollowerReadsGzip(t *testing.T) {
	const playlist = "#EXTM3U\n#EXT-X-TARGETDURATION:1\n"
	var zipped bytes.Buffer
	zw := gzip.NewWriter(&zipped)
	io.WriteString(zw, playlist)
	zw.Close()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Accept-Encoding") != "gzip" {
			t.Errorf("Accept-Encoding %q", r.Header.Get("Accept-Encoding"))
		}
		if r.URL.Path == "/gzip" {
			w.Header().Set("Content-Encoding", "gzip")
			w.Write(zipped.Bytes())
			return
		}
		io.WriteString(w, playlist)
	})}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })

	r := &run{dialer: &net.Dialer{Timeout: time.Second}}
	f := newFollower(r, 0)
	defer f.conn.close()
	for _, c := range []struct {
		path string
		wire int
	}{{"/gzip", zipped.Len()}, {"/plain", len(playlist)}, {"/gzip", zipped.Len()}} {
		u, _ := url.Parse("http://" + ln.Addr().String() + c.path)
		before := f.bytesIn
		got, err := f.get(t.Context(), u, kindPlaylist)
		if err != nil || string(got) != playlist {
			t.Fatalf("%s: %q, %v", c.path, got, err)
		}
		if n := f.bytesIn - before; n != int64(c.wire) {
			t.Errorf("%s: %d bytes counted, %d came", c.path, n, c.wire)
		}
	}
}
