package hls

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/bluenviron/gohlslib/v2"
	"github.com/bluenviron/gohlslib/v2/pkg/codecs"
	"github.com/bluenviron/gohlslib/v2/pkg/playlist"
	"github.com/bluenviron/mediacommon/v2/pkg/formats/fmp4"

	"github.com/singoff/singoff/internal/mediacheck"
	"github.com/singoff/singoff/internal/testprogram"
)

// program is the clip every test feeds, encoded once by TestMain.
var program *testprogram.Program

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "hls-test")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	program, err = testprogram.Generate(ctx, dir, 4, "2500k")
	cancel()
	os.RemoveAll(dir)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	os.Exit(m.Run())
}

func testLogger(t testing.TB) *slog.Logger {
	return slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelWarn}))
}

// liveServer serves one live battle, fed at real time until the test ends.
type liveServer struct {
	server  *Server
	http    *httptest.Server
	id      string
	stop    context.CancelFunc
	fed     chan struct{} // closed when the feed returns
	feedErr error
}

func startLive(t *testing.T, length time.Duration) *liveServer {
	t.Helper()
	s := NewServer(testLogger(t), []string{"endedLongAgo"})
	l := &liveServer{server: s, id: "battle-1", fed: make(chan struct{})}
	l.http = newLoopbackServer(t, router(s))
	m, err := s.Start(l.id, program.Info)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	l.stop = cancel
	go func() {
		l.feedErr = program.Feed(ctx, m, length, 1)
		close(l.fed)
	}()
	t.Cleanup(func() {
		cancel()
		<-l.fed
		s.End(l.id)
	})
	return l
}

// router stands in for the project's HTTP layer (web): it routes
// /hls/{id}/{file} to s with the peer's address as the client.
func router(s *Server) http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("/hls/{id}/{file}", func(w http.ResponseWriter, r *http.Request) {
		client, _, err := net.SplitHostPort(r.RemoteAddr)
		if err != nil {
			client = r.RemoteAddr
		}
		s.Serve(w, r, r.PathValue("id"), r.PathValue("file"), client)
	})
	return mux
}

func newLoopbackServer(t testing.TB, h http.Handler) *httptest.Server {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	// A write timeout shorter than a blocking reload waits: the muxer
	// must lift it for its requests.
	srv := &httptest.Server{Listener: ln, Config: &http.Server{Handler: h, WriteTimeout: 300 * time.Millisecond}}
	srv.Start()
	t.Cleanup(srv.Close)
	return srv
}

func (l *liveServer) url(file string) string {
	return l.http.URL + "/hls/" + l.id + "/" + file
}

func get(t testing.TB, url string, header http.Header) (*http.Response, []byte) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range header {
		req.Header[k] = v
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	return resp, body
}

func mediaPlaylist(t testing.TB, body []byte) *playlist.Media {
	t.Helper()
	var pl playlist.Media
	if err := pl.Unmarshal(body); err != nil {
		t.Fatalf("parsing media playlist: %v\n%s", err, body)
	}
	return &pl
}

func wantHeader(t *testing.T, resp *http.Response, key, want string) {
	t.Helper()
	if got := resp.Header.Get(key); got != want {
		t.Errorf("%s %s: %s = %q, want %q", resp.Request.Method, resp.Request.URL, key, got, want)
	}
}

func TestLive(t *testing.T) {
	l := startLive(t, 20*time.Second)

	t.Run("multivariant", func(t *testing.T) {
		resp, body := get(t, l.url("index.m3u8"), nil)
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("status %d: %s", resp.StatusCode, body)
		}
		wantHeader(t, resp, "Content-Type", "application/vnd.apple.mpegurl")
		wantHeader(t, resp, "Cache-Control", cacheMultivariant)
		for _, want := range []string{"video1_stream.m3u8", `RESOLUTION=1280x720`, `mp4a.40.2`} {
			if !strings.Contains(string(body), want) {
				t.Errorf("multivariant playlist lacks %q:\n%s", want, body)
			}
		}
		// The audio is in the variant's files, not a rendition of its own.
		if strings.Contains(string(body), "#EXT-X-MEDIA") {
			t.Errorf("multivariant playlist has a rendition:\n%s", body)
		}
	})

	t.Run("ffprobe", func(t *testing.T) {
		p, err := mediacheck.ProbeURL(t.Context(), l.url("index.m3u8"))
		if err != nil {
			t.Fatal(err)
		}
		if err := p.IsProgram(); err != nil {
			t.Error(err)
		}
	})

	t.Run("ffmpeg decodes", func(t *testing.T) {
		if err := mediacheck.Decode(t.Context(), l.url("index.m3u8"), 3*time.Second); err != nil {
			t.Error(err)
		}
	})

	t.Run("gohlslib client", func(t *testing.T) {
		var videoSamples, audioSamples atomic.Int64
		var tracksSeen atomic.Value
		c := &gohlslib.Client{
			URI:                       l.url("index.m3u8"),
			OnDownloadPrimaryPlaylist: func(string) {},
			OnDownloadStreamPlaylist:  func(string) {},
			OnDownloadSegment:         func(string) {},
			OnDownloadPart:            func(string) {},
			OnDecodeError:             func(err error) { t.Errorf("client decode: %v", err) },
		}
		c.OnTracks = func(tracks []*gohlslib.Track) error {
			var kinds []string
			for _, track := range tracks {
				switch track.Codec.(type) {
				case *codecs.H264:
					kinds = append(kinds, "h264")
					c.OnDataH26x(track, func(int64, int64, [][]byte) { videoSamples.Add(1) })
				case *codecs.MPEG4Audio:
					kinds = append(kinds, "aac")
					c.OnDataMPEG4Audio(track, func(int64, [][]byte) { audioSamples.Add(1) })
				}
			}
			tracksSeen.Store(strings.Join(kinds, ","))
			return nil
		}
		if err := c.Start(); err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		deadline := time.Now().Add(10 * time.Second)
		for videoSamples.Load() < 30 || audioSamples.Load() < 45 {
			if time.Now().After(deadline) {
				t.Fatalf("after 10 s: %d video and %d audio samples, tracks %v",
					videoSamples.Load(), audioSamples.Load(), tracksSeen.Load())
			}
			time.Sleep(50 * time.Millisecond)
		}
		if got := tracksSeen.Load(); got != "h264,aac" {
			t.Errorf("tracks %v, want h264,aac", got)
		}
	})

	t.Run("blocking reload", func(t *testing.T) {
		_, body := get(t, l.url("video1_stream.m3u8"), nil)
		before := mediaPlaylist(t, body)
		msn := before.MediaSequence + len(before.Segments)
		nextPart := len(before.Parts)
		resp, body := get(t, l.url(fmt.Sprintf("video1_stream.m3u8?_HLS_msn=%d&_HLS_part=%d", msn, nextPart)), nil)
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("blocking reload: status %d", resp.StatusCode)
		}
		wantHeader(t, resp, "Cache-Control", cacheBlockingPlaylist)
		after := mediaPlaylist(t, body)
		// The asked-for part is in the answer: either the segment is
		// still open and holds it, or the segment closed with it.
		afterMSN := after.MediaSequence + len(after.Segments)
		if afterMSN == msn && len(after.Parts) <= nextPart {
			t.Fatalf("asked for part %d.%d, got a playlist whose last part is %d.%d", msn, nextPart, afterMSN, len(after.Parts)-1)
		}

		partURI := lastPart(t, after)
		resp, part := get(t, l.url(partURI), nil)
		if resp.StatusCode != http.StatusOK || len(part) == 0 {
			t.Fatalf("part %s: status %d, %d bytes", partURI, resp.StatusCode, len(part))
		}
		wantHeader(t, resp, "Cache-Control", cacheMedia)
		wantHeader(t, resp, "Content-Type", "video/mp4")

		// The preload hint names the part being written; asking for it
		// waits for it and gets it whole.
		if after.PreloadHint == nil {
			t.Fatal("no preload hint")
		}
		resp, part = get(t, l.url(after.PreloadHint.URI), nil)
		if resp.StatusCode != http.StatusOK || len(part) == 0 {
			t.Fatalf("preload hint %s: status %d, %d bytes", after.PreloadHint.URI, resp.StatusCode, len(part))
		}

		resp, _ = get(t, l.url("video1_stream.m3u8"), nil)
		wantHeader(t, resp, "Cache-Control", cacheMediaPlaylist)
		wantHeader(t, resp, "Content-Type", "application/vnd.apple.mpegurl")

		resp, _ = get(t, l.url(after.Map.URI), nil)
		wantHeader(t, resp, "Cache-Control", cacheMedia)
	})

	t.Run("segment", func(t *testing.T) {
		// Wait for the open segment to close: part 0 of the next one.
		_, body := get(t, l.url("video1_stream.m3u8"), nil)
		pl := mediaPlaylist(t, body)
		_, body = get(t, l.url(fmt.Sprintf("video1_stream.m3u8?_HLS_msn=%d&_HLS_part=0", pl.MediaSequence+len(pl.Segments)+1)), nil)
		pl = mediaPlaylist(t, body)
		if len(pl.Segments) == 0 {
			t.Fatalf("no segment after one closed:\n%s", body)
		}
		seg := pl.Segments[len(pl.Segments)-1]
		resp, data := get(t, l.url(seg.URI), nil)
		if resp.StatusCode != http.StatusOK || resp.ContentLength != int64(len(data)) {
			t.Fatalf("segment %s: status %d, Content-Length %d, %d bytes", seg.URI, resp.StatusCode, resp.ContentLength, len(data))
		}
		wantHeader(t, resp, "Cache-Control", cacheMedia)
		wantHeader(t, resp, "Content-Type", "video/mp4")
		wantTracks(t, data)
	})

	t.Run("collapsed blocking reloads", func(t *testing.T) {
		// Many watchers wait for the same next part, some with query
		// parameters that are not LL-HLS directives: each gets the whole
		// answer, the same bytes, and the part it names holds video and
		// audio.
		_, body := get(t, l.url("video1_stream.m3u8"), nil)
		pl := mediaPlaylist(t, body)
		directives := fmt.Sprintf("_HLS_msn=%d&_HLS_part=%d", pl.MediaSequence+len(pl.Segments), len(pl.Parts)+1)
		const waiters = 20
		bodies := make(chan []byte, waiters)
		for i := range waiters {
			reload := l.url("video1_stream.m3u8?" + directives)
			switch i % 3 {
			case 1:
				reload += fmt.Sprintf("&cachebuster=%d", i)
			case 2:
				reload = l.url(fmt.Sprintf("video1_stream.m3u8?token=%d&", i) + directives)
			}
			go func() {
				var body []byte
				defer func() { bodies <- body }()
				resp, err := http.Get(reload)
				if err != nil {
					t.Error(err)
					return
				}
				defer resp.Body.Close()
				if resp.StatusCode != http.StatusOK {
					t.Errorf("%s: status %d", reload, resp.StatusCode)
				}
				wantHeader(t, resp, "Cache-Control", cacheBlockingPlaylist)
				if body, err = io.ReadAll(resp.Body); err != nil {
					t.Error(err)
				}
			}()
		}
		all := make([][]byte, 0, waiters)
		for range waiters {
			all = append(all, <-bodies)
		}
		first := all[0]
		for _, b := range all[1:] {
			if !bytes.Equal(b, first) {
				t.Fatalf("identical reloads got different playlists:\n%s\n---\n%s", first, b)
			}
		}
		for _, junk := range []string{"cachebuster", "token"} {
			if strings.Contains(string(first), junk) {
				t.Fatalf("the playlist carries the query parameter %s:\n%s", junk, first)
			}
		}
		after := mediaPlaylist(t, first)
		partURL := l.url(lastPart(t, after))
		var answers [][]byte
		for _, u := range []string{partURL, partURL, partURL + "?v=2"} { // produced, then from the cache
			resp, part := get(t, u, nil)
			if resp.StatusCode != http.StatusOK || resp.ContentLength != int64(len(part)) {
				t.Fatalf("%s: status %d, Content-Length %d, %d bytes", u, resp.StatusCode, resp.ContentLength, len(part))
			}
			wantTracks(t, part)
			answers = append(answers, part)
		}
		for i, a := range answers[1:] {
			if !bytes.Equal(a, answers[0]) {
				t.Errorf("request %d for the part got other bytes than the first", i+2)
			}
		}
	})

	t.Run("missing file", func(t *testing.T) {
		for _, name := range []string{"nope.mp4", "abc_video1_part999999.mp4", "..%2Findex.m3u8", "..%5Cindex.m3u8"} {
			resp, body := get(t, l.url(name), nil)
			if resp.StatusCode != http.StatusNotFound || !strings.Contains(string(body), `"error"`) {
				t.Errorf("%s: status %d, body %s; want 404 JSON", name, resp.StatusCode, body)
			}
		}
	})

	t.Run("viewers", func(t *testing.T) {
		// Viewers count by the client the HTTP layer names and the
		// User-Agent; hls reads no X-Forwarded-For, which any client
		// could send.
		m, ok := l.server.Muxer(l.id)
		if !ok {
			t.Fatal("muxer gone")
		}
		before := m.Viewers()
		for _, c := range []struct{ client, forwardedFor, userAgent string }{
			{"203.0.113.7", "198.51.100.1", "viewer-a"},
			{"203.0.113.7", "198.51.100.2", "viewer-a"}, // the same viewer again
			{"203.0.113.7", "", "viewer-b"},
			{"192.0.2.1", "203.0.113.7", "viewer-a"},
		} {
			r := httptest.NewRequestWithContext(t.Context(), http.MethodGet, l.url("video1_stream.m3u8"), nil)
			r.Header.Set("User-Agent", c.userAgent)
			if c.forwardedFor != "" {
				r.Header.Set("X-Forwarded-For", c.forwardedFor)
			}
			w := httptest.NewRecorder()
			l.server.Serve(w, r, l.id, "video1_stream.m3u8", c.client)
			if w.Code != http.StatusOK {
				t.Fatalf("%+v: status %d", c, w.Code)
			}
		}
		if got := m.Viewers(); got != before+3 {
			t.Errorf("viewers %d after 3 new clients, was %d", got, before)
		}
	})

	t.Run("stats", func(t *testing.T) {
		before := l.server.Stats()
		_, body := get(t, l.url("video1_stream.m3u8"), nil)
		pl := mediaPlaylist(t, body)
		bytesOut := len(body)
		for _, file := range []string{"index.m3u8", pl.Map.URI, lastPart(t, pl)} {
			resp, body := get(t, l.url(file), nil)
			if resp.StatusCode != http.StatusOK {
				t.Fatalf("%s: status %d", file, resp.StatusCode)
			}
			bytesOut += len(body)
		}
		want := before
		want.PlaylistRequests += 2
		want.InitRequests++
		want.PartRequests++
		want.BytesOut += uint64(bytesOut)
		// The muxer answered the 2 playlists itself, and the init file
		// and the part unless it had them cached.
		matches := func(got Stats) bool {
			answers := got.MuxerAnswers - before.MuxerAnswers
			got.MuxerAnswers = want.MuxerAnswers
			return got == want && answers >= 2 && answers <= 4
		}
		// A handler counts the bytes it wrote after its client may have
		// read them.
		deadline := time.Now().Add(5 * time.Second)
		for got := l.server.Stats(); !matches(got); got = l.server.Stats() {
			if time.Now().After(deadline) {
				t.Fatalf("stats went from %+v to %+v after 2 playlists, 1 init and 1 part of %d bytes in all", before, got, bytesOut)
			}
			time.Sleep(10 * time.Millisecond)
		}
	})
}

// lastPart is the URI of the newest part of pl: in its open segment, or
// when that has none yet, in its last closed one.
func lastPart(t testing.TB, pl *playlist.Media) string {
	t.Helper()
	if len(pl.Parts) > 0 {
		return pl.Parts[len(pl.Parts)-1].URI
	}
	if len(pl.Segments) > 0 {
		if parts := pl.Segments[len(pl.Segments)-1].Parts; len(parts) > 0 {
			return parts[len(parts)-1].URI
		}
	}
	t.Fatal("a media playlist without parts")
	return ""
}

// wantTracks fails unless data is fMP4 fragments of the video (track 1)
// and audio (track 2) together.
func wantTracks(t *testing.T, data []byte) {
	t.Helper()
	var frags fmp4.Parts
	if err := frags.Unmarshal(data); err != nil {
		t.Fatal(err)
	}
	var ids []int
	for _, f := range frags {
		for _, tr := range f.Tracks {
			if !slices.Contains(ids, tr.ID) {
				ids = append(ids, tr.ID)
			}
		}
	}
	if !slices.Equal(ids, []int{1, 2}) {
		t.Errorf("fragments have tracks %v, want video 1 and audio 2", ids)
	}
}

// Ending a battle answers the requests waiting on its muxer, and every
// later one, with 410 Gone.
func TestEnd(t *testing.T) {
	l := startLive(t, time.Minute)
	m, ok := l.server.Muxer(l.id)
	if !ok {
		t.Fatal("not live")
	}
	get(t, l.url("video1_stream.m3u8"), nil) // waits for the first part
	l.stop()
	<-l.fed
	if l.feedErr != nil && !errors.Is(l.feedErr, context.Canceled) {
		t.Fatal(l.feedErr)
	}
	// Wait on a part that will never come.
	_, body := get(t, l.url("video1_stream.m3u8"), nil)
	pl := mediaPlaylist(t, body)
	requests := m.Stats().PlaylistRequests
	type result struct {
		status int
		body   string
	}
	waiting := make(chan result, 1)
	go func() {
		resp, err := http.Get(l.url(fmt.Sprintf("video1_stream.m3u8?_HLS_msn=%d&_HLS_part=%d",
			pl.MediaSequence+len(pl.Segments), len(pl.Parts)+1)))
		if err != nil {
			t.Error(err)
			waiting <- result{}
			return
		}
		defer resp.Body.Close()
		body, err := io.ReadAll(resp.Body)
		if err != nil {
			t.Error(err)
		}
		waiting <- result{resp.StatusCode, strings.TrimSpace(string(body))}
	}()
	// The request has reached the muxer once it is counted.
	for m.Stats().PlaylistRequests == requests {
		time.Sleep(10 * time.Millisecond)
	}
	l.server.End(l.id)
	// The muxer answers it, not the server's "not live" path.
	if got, want := <-waiting, (result{http.StatusGone, `{"error":"the live program has ended"}`}); got != want {
		t.Errorf("request waiting at the end: %+v, want %+v", got, want)
	}

	for _, c := range []struct{ name, id, want string }{
		{"ended now", l.id, `{"error":"battle ended; the replay is at /vod/` + l.id + `/index.m3u8"}`},
		{"ended before the process", "endedLongAgo", `{"error":"battle ended; the replay is at /vod/endedLongAgo/index.m3u8"}`},
	} {
		t.Run(c.name, func(t *testing.T) {
			resp, body := get(t, l.http.URL+"/hls/"+c.id+"/index.m3u8", nil)
			if resp.StatusCode != http.StatusGone || strings.TrimSpace(string(body)) != c.want {
				t.Errorf("status %d body %s, want 410 %s", resp.StatusCode, body, c.want)
			}
			wantHeader(t, resp, "Cache-Control", cacheError)
		})
	}
}

func TestServeUnknownBattle(t *testing.T) {
	s := NewServer(testLogger(t), nil)
	for _, c := range []struct{ name, id, file string }{
		{"never live", "nope", "index.m3u8"},
		{"invalid id", "bad..id", "index.m3u8"},
		{"empty id", "", "index.m3u8"},
		{"id with a slash", "a/b", "index.m3u8"},
		{"no file", "nope", ""},
	} {
		t.Run(c.name, func(t *testing.T) {
			w := httptest.NewRecorder()
			s.Serve(w, httptest.NewRequest(http.MethodGet, "/hls/x/y", nil), c.id, c.file, "192.0.2.1")
			if w.Code != http.StatusNotFound || !strings.HasPrefix(w.Body.String(), `{"error":`) {
				t.Errorf("status %d body %s, want 404 JSON", w.Code, w.Body)
			}
			if got := w.Header().Get("Content-Type"); got != "application/json; charset=utf-8" {
				t.Errorf("Content-Type %q", got)
			}
		})
	}
}

func TestViewers(t *testing.T) {
	t0 := time.Unix(1_700_000_000, 0)
	type request struct {
		client, userAgent string
		at                time.Duration // after t0
	}
	longUA := strings.Repeat("x", maxUserAgent)
	for _, c := range []struct {
		name     string
		requests []request
		countAt  time.Duration
		want     int
	}{
		{"one client asking often", []request{{"192.0.2.1", "a", 0}, {"192.0.2.1", "a", time.Second}, {"192.0.2.1", "a", 2 * time.Second}}, 2 * time.Second, 1},
		{"address and User-Agent tell clients apart", []request{{"192.0.2.1", "a", 0}, {"192.0.2.1", "b", 0}, {"192.0.2.2", "a", 0}}, 0, 3},
		{"User-Agents alike in their kept prefix", []request{{"192.0.2.1", longUA + "1", 0}, {"192.0.2.1", longUA + "2", 0}}, 0, 1},
		{"within the window", []request{{"192.0.2.1", "a", 0}, {"192.0.2.2", "a", 0}}, viewerWindow, 2},
		{"after the window", []request{{"192.0.2.1", "a", 0}, {"192.0.2.2", "a", 0}}, viewerWindow + time.Second, 0},
		{"seen again stays", []request{{"192.0.2.1", "a", 0}, {"192.0.2.2", "a", 0}, {"192.0.2.1", "a", 20 * time.Second}}, viewerWindow + time.Second, 1},
		{"back after leaving", []request{{"192.0.2.1", "a", 0}, {"192.0.2.2", "a", 0}, {"192.0.2.1", "a", viewerWindow + time.Second}}, viewerWindow + time.Second, 1},
	} {
		t.Run(c.name, func(t *testing.T) {
			v := newViewers()
			for _, r := range c.requests {
				v.seen(r.client, r.userAgent, t0.Add(r.at))
			}
			if got := v.count(t0.Add(c.countAt)); got != c.want {
				t.Errorf("count %d, want %d", got, c.want)
			}
		})
	}

	t.Run("bounded", func(t *testing.T) {
		v := newViewers()
		for i := range maxViewers + 100 {
			v.seen(fmt.Sprintf("client-%d", i), "a", t0)
		}
		if got := v.count(t0); got != maxViewers {
			t.Errorf("count %d after %d clients, want the bound %d", got, maxViewers+100, maxViewers)
		}
		if len(v.byKey) != maxViewers || v.bySeen.Len() != maxViewers {
			t.Errorf("%d keys and %d in the list, want at most %d", len(v.byKey), v.bySeen.Len(), maxViewers)
		}
		// Once the others leave the window, new clients count again.
		later := t0.Add(viewerWindow + time.Second)
		v.seen("newcomer", "a", later)
		if got := v.count(later); got != 1 {
			t.Errorf("count %d after the window, want the one newcomer", got)
		}
	})
}

func TestDirectives(t *testing.T) {
	for _, c := range []struct{ name, query, want string }{
		{"none", "", ""},
		{"all three", "_HLS_skip=YES&_HLS_part=2&_HLS_msn=7", "_HLS_msn=7&_HLS_part=2&_HLS_skip=YES"},
		{"others dropped", "a=1&_HLS_msn=7&token=x&_HLS_part=2", "_HLS_msn=7&_HLS_part=2"},
		{"only others", "cachebuster=123", ""},
		{"first value counts", "_HLS_msn=7&_HLS_msn=9", "_HLS_msn=7"},
		{"empty value kept", "_HLS_msn=", "_HLS_msn="},
	} {
		t.Run(c.name, func(t *testing.T) {
			q, err := url.ParseQuery(c.query)
			if err != nil {
				t.Fatal(err)
			}
			if got := directives(q); got != c.want {
				t.Errorf("directives(%q) = %q, want %q", c.query, got, c.want)
			}
		})
	}
}
