package hls

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
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

	"github.com/singoff/singoff/internal/testprogram"
	"github.com/singoff/singoff/internal/mediacheck"
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
	s := NewServer(testLogger(t), func(id string) bool { return id == "endedLongAgo" })
	mux := http.NewServeMux()
	mux.Handle("/hls/", s.Handler())
	l := &liveServer{server: s, id: "battle-1", fed: make(chan struct{})}
	l.http = newLoopbackServer(t, mux)
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
		wantHeader(t, resp, "Access-Control-Allow-Origin", "*")
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

		var partURI string
		if len(after.Parts) > 0 {
			partURI = after.Parts[len(after.Parts)-1].URI
		} else {
			last := after.Segments[len(after.Segments)-1]
			partURI = last.Parts[len(last.Parts)-1].URI
		}
		resp, part := get(t, l.url(partURI), nil)
		if resp.StatusCode != http.StatusOK || len(part) == 0 {
			t.Fatalf("part %s: status %d, %d bytes", partURI, resp.StatusCode, len(part))
		}
		wantHeader(t, resp, "Cache-Control", cacheMedia)
		wantHeader(t, resp, "Content-Type", "video/mp4")
		wantHeader(t, resp, "Access-Control-Allow-Origin", "*")

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
		if len(after.Segments) > 0 {
			seg := after.Segments[len(after.Segments)-1]
			if seg.URI != "" && !seg.Gap {
				resp, _ = get(t, l.url(seg.URI), nil)
				wantHeader(t, resp, "Cache-Control", cacheMedia)
			}
		}
	})

	t.Run("collapsed blocking reloads", func(t *testing.T) {
		// Many watchers wait for the same next part: each gets the whole
		// answer, the same bytes, and the part it names holds video and
		// audio.
		_, body := get(t, l.url("video1_stream.m3u8"), nil)
		pl := mediaPlaylist(t, body)
		reload := l.url(fmt.Sprintf("video1_stream.m3u8?_HLS_msn=%d&_HLS_part=%d",
			pl.MediaSequence+len(pl.Segments), len(pl.Parts)+1))
		const waiters = 20
		bodies := make(chan []byte, waiters)
		for range waiters {
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
					t.Errorf("status %d", resp.StatusCode)
				}
				wantHeader(t, resp, "Cache-Control", cacheBlockingPlaylist)
				if body, err = io.ReadAll(resp.Body); err != nil {
					t.Error(err)
				}
			}()
		}
		first := <-bodies
		for range waiters - 1 {
			if b := <-bodies; string(b) != string(first) {
				t.Fatalf("identical reloads got different playlists:\n%s\n---\n%s", first, b)
			}
		}
		after := mediaPlaylist(t, first)
		if len(after.Parts) == 0 {
			t.Skip("the segment closed with the part: no part in the open segment")
		}
		partURL := l.url(after.Parts[len(after.Parts)-1].URI)
		for range 2 { // produced, then from the cache
			resp, part := get(t, partURL, nil)
			if resp.StatusCode != http.StatusOK || resp.ContentLength != int64(len(part)) {
				t.Fatalf("part: status %d, Content-Length %d, %d bytes", resp.StatusCode, resp.ContentLength, len(part))
			}
			var frags fmp4.Parts
			if err := frags.Unmarshal(part); err != nil {
				t.Fatal(err)
			}
			var ids []int
			for _, f := range frags {
				for _, tr := range f.Tracks {
					ids = append(ids, tr.ID)
				}
			}
			if !slices.Equal(ids, []int{1, 2}) {
				t.Errorf("part has tracks %v, want video 1 and audio 2", ids)
			}
		}
	})

	t.Run("preflight", func(t *testing.T) {
		req, _ := http.NewRequestWithContext(t.Context(), http.MethodOptions, l.url("index.m3u8"), nil)
		req.Header.Set("Origin", "https://example.com")
		req.Header.Set("Access-Control-Request-Method", "GET")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusNoContent {
			t.Errorf("OPTIONS: status %d", resp.StatusCode)
		}
		wantHeader(t, resp, "Access-Control-Allow-Origin", "*")
		if !strings.Contains(resp.Header.Get("Access-Control-Allow-Methods"), "GET") {
			t.Errorf("Access-Control-Allow-Methods = %q", resp.Header.Get("Access-Control-Allow-Methods"))
		}
	})

	t.Run("missing file", func(t *testing.T) {
		for _, name := range []string{"nope.mp4", "abc_video1_part999999.mp4", "..%2Findex.m3u8"} {
			resp, body := get(t, l.url(name), nil)
			if resp.StatusCode != http.StatusNotFound || !strings.Contains(string(body), `"error"`) {
				t.Errorf("%s: status %d, body %s; want 404 JSON", name, resp.StatusCode, body)
			}
		}
	})

	t.Run("viewers", func(t *testing.T) {
		m, ok := l.server.Muxer(l.id)
		if !ok {
			t.Fatal("muxer gone")
		}
		before := m.Viewers()
		clients := []http.Header{
			{"X-Forwarded-For": {"203.0.113.7, 10.0.0.1"}, "User-Agent": {"viewer-a"}},
			{"X-Forwarded-For": {"203.0.113.7"}, "User-Agent": {"viewer-a"}}, // the same viewer again
			{"X-Forwarded-For": {"203.0.113.7"}, "User-Agent": {"viewer-b"}},
			{"X-Forwarded-For": {"198.51.100.1"}, "User-Agent": {"viewer-a"}},
		}
		for _, h := range clients {
			get(t, l.url("video1_stream.m3u8"), h)
		}
		if got := l.server.Viewers(l.id); got != before+3 {
			t.Errorf("viewers %d after 3 new clients, was %d", got, before)
		}
	})

	t.Run("stats", func(t *testing.T) {
		st := l.server.Stats()
		if st.PlaylistRequests == 0 || st.PartRequests == 0 || st.InitRequests == 0 || st.BytesOut == 0 {
			t.Errorf("stats %+v: want playlists, parts, inits and bytes counted", st)
		}
	})

	t.Run("ended", func(t *testing.T) {
		// Stop the program, then wait on a part that will never come:
		// ending the battle must answer that request too.
		l.stop()
		<-l.fed
		if l.feedErr != nil && l.feedErr != context.Canceled {
			t.Fatal(l.feedErr)
		}
		_, body := get(t, l.url("video1_stream.m3u8"), nil)
		pl := mediaPlaylist(t, body)
		waiting := make(chan *http.Response, 1)
		go func() {
			resp, err := http.Get(l.url(fmt.Sprintf("video1_stream.m3u8?_HLS_msn=%d&_HLS_part=%d",
				pl.MediaSequence+len(pl.Segments), len(pl.Parts)+1)))
			if err != nil {
				t.Error(err)
				waiting <- nil
				return
			}
			resp.Body.Close()
			waiting <- resp
		}()
		time.Sleep(300 * time.Millisecond) // let the request reach the muxer and wait
		l.server.End(l.id)
		if resp := <-waiting; resp != nil && resp.StatusCode != http.StatusGone {
			t.Errorf("request waiting at the end: status %d, want 410", resp.StatusCode)
		}

		resp, body := get(t, l.url("index.m3u8"), nil)
		want := `{"error":"battle ended; the replay is at /vod/` + l.id + `/index.m3u8"}`
		if resp.StatusCode != http.StatusGone || strings.TrimSpace(string(body)) != want {
			t.Errorf("after the end: status %d body %s, want 410 %s", resp.StatusCode, body, want)
		}
		resp, _ = get(t, l.http.URL+"/hls/endedLongAgo/index.m3u8", nil)
		if resp.StatusCode != http.StatusGone {
			t.Errorf("battle ended before the process: status %d, want 410", resp.StatusCode)
		}
	})
}

func TestUnknownBattle(t *testing.T) {
	s := NewServer(testLogger(t), nil)
	srv := newLoopbackServer(t, s.Handler())
	for _, path := range []string{"/hls/nope/index.m3u8", "/hls/bad..id/index.m3u8", "/hls/x", "/hls/"} {
		resp, body := get(t, srv.URL+path, nil)
		if resp.StatusCode != http.StatusNotFound || !strings.HasPrefix(string(body), `{"error":`) {
			t.Errorf("%s: status %d body %s, want 404 JSON", path, resp.StatusCode, body)
		}
		wantHeader(t, resp, "Content-Type", "application/json; charset=utf-8")
	}
}

func TestViewersExpire(t *testing.T) {
	v := newViewers()
	t0 := time.Now()
	for _, addr := range []string{"192.0.2.1:5000", "192.0.2.1:5001", "192.0.2.2:5000"} {
		r := httptest.NewRequest(http.MethodGet, "/index.m3u8", nil)
		r.RemoteAddr = addr
		v.seen(r, t0)
	}
	if got := v.count(t0); got != 2 {
		t.Errorf("count %d, want 2 (two addresses; ports do not matter)", got)
	}
	if got := v.count(t0.Add(viewerWindow - time.Second)); got != 2 {
		t.Errorf("count within the window %d, want 2", got)
	}
	if got := v.count(t0.Add(viewerWindow + time.Second)); got != 0 {
		t.Errorf("count after the window %d, want 0", got)
	}
}
