package hls

import (
	"bytes"
	"compress/gzip"
	"context"
	"fmt"
	"io"
	"log/slog"
	"maps"
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
	"github.com/bluenviron/mediacommon/v2/pkg/formats/fmp4"

	"github.com/singoff/singoff/internal/m3u8"
	"github.com/singoff/singoff/internal/mediacheck"
	"github.com/singoff/singoff/internal/testprogram"
)

// program is the clip every test feeds, encoded once by TestMain: the
// ladder the compositor makes.
var program *testprogram.Program

var testLadder = []testprogram.Rung{{Width: 1280, Height: 720, Bitrate: "2500k"}, {Width: 640, Height: 360, Bitrate: "600k"}}

// The media playlists of testLadder's rungs.
const (
	topPlaylist    = "720p.m3u8"
	bottomPlaylist = "360p.m3u8"
)

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "hls-test")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	program, err = testprogram.GenerateLadder(ctx, dir, 4, testLadder)
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

// plainClient asks for answers as they are, not gzip-encoded (Go's
// client otherwise asks for gzip and decompresses by itself).
var plainClient = &http.Client{Transport: &http.Transport{DisableCompression: true}}

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
	resp, err := plainClient.Do(req)
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

// parseMedia parses a media playlist, strictly.
func parseMedia(t testing.TB, body []byte) *m3u8.Media {
	t.Helper()
	pl, err := m3u8.Parse(string(body))
	if err != nil {
		t.Fatalf("parsing media playlist: %v\n%s", err, body)
	}
	return pl
}

func wantHeader(t *testing.T, resp *http.Response, key, want string) {
	t.Helper()
	if got := resp.Header.Get(key); got != want {
		t.Errorf("%s %s: %s = %q, want %q", resp.Request.Method, resp.Request.URL, key, got, want)
	}
}

// nextPart is the part after the newest one pl lists, as a blocking
// request asks for it.
func nextPart(pl *m3u8.Media) (msn, part int) {
	return pl.MediaSequence + pl.Skipped + len(pl.Segments), len(pl.Parts)
}

func blocking(name string, msn, part int) string {
	return fmt.Sprintf("%s?_HLS_msn=%d&_HLS_part=%d", name, msn, part)
}

func TestLive(t *testing.T) {
	l := startLive(t, 30*time.Second)

	t.Run("multivariant", func(t *testing.T) {
		resp, body := get(t, l.url("index.m3u8"), nil)
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("status %d: %s", resp.StatusCode, body)
		}
		wantHeader(t, resp, "Content-Type", "application/vnd.apple.mpegurl")
		wantHeader(t, resp, "Cache-Control", cacheMultivariant)
		wantHeader(t, resp, "Vary", "Accept-Encoding")
		mv, err := m3u8.ParseMultivariant(string(body))
		if err != nil {
			t.Fatalf("%v\n%s", err, body)
		}
		if err := m3u8.CheckMultivariant(mv); err != nil {
			t.Errorf("%v\n%s", err, body)
		}
		type variant struct {
			uri           string
			width, height int
			frameRate     float64
		}
		var got []variant
		for _, v := range mv.Variants {
			got = append(got, variant{v.URI, v.Width, v.Height, v.FrameRate})
			if !slices.Contains(v.Codecs, "mp4a.40.2") {
				t.Errorf("variant %s: CODECS %v without AAC-LC", v.URI, v.Codecs)
			}
		}
		want := []variant{{topPlaylist, 1280, 720, 30}, {bottomPlaylist, 640, 360, 30}}
		if !slices.Equal(got, want) {
			t.Errorf("variants %+v, want %+v", got, want)
		}
		// The audio is in every variant's files, not a rendition of its own.
		if len(mv.Renditions) != 0 {
			t.Errorf("multivariant playlist has renditions:\n%s", body)
		}
	})

	t.Run("bandwidth counts the audio", func(t *testing.T) {
		// Wait for a full window, so that the playlist lists the segments
		// the bit rates are measured over.
		for pl := l.playlist(t, topPlaylist); len(pl.Segments) < meterWindow; pl = l.playlist(t, topPlaylist) {
			msn, _ := nextPart(pl)
			get(t, l.url(blocking(topPlaylist, msn+1, 0)), nil)
		}
		for i, name := range []string{topPlaylist, bottomPlaylist} {
			pl := l.playlist(t, name)
			_, body := get(t, l.url("index.m3u8"), nil)
			mv, err := m3u8.ParseMultivariant(string(body))
			if err != nil {
				t.Fatal(err)
			}
			declared := mv.Variants[i]
			var bytes int
			var duration time.Duration
			peak := 0
			for _, seg := range pl.Segments {
				resp, data := get(t, l.url(seg.URI), nil)
				if resp.StatusCode != http.StatusOK {
					t.Fatalf("%s: status %d", seg.URI, resp.StatusCode)
				}
				bytes += len(data)
				duration += seg.Duration
				peak = max(peak, int(float64(len(data)*8)/seg.Duration.Seconds()))
			}
			average := int(float64(bytes*8) / duration.Seconds())
			// Apple's rule: within 10% of what the segments measure.
			for _, c := range []struct {
				what               string
				declared, measured int
			}{{"AVERAGE-BANDWIDTH", declared.AverageBandwidth, average}, {"BANDWIDTH", declared.Bandwidth, peak}} {
				if ratio := float64(c.declared) / float64(c.measured); ratio < 0.9 || ratio > 1.1 {
					t.Errorf("%s: %s %d, the segments measure %d (%.2f)", name, c.what, c.declared, c.measured, ratio)
				}
			}
		}
	})

	t.Run("rules", func(t *testing.T) {
		// Each rung's playlist, reloaded as a player does for a while,
		// keeps the rules, with the same targets every time.
		for _, c := range []struct{ name, other string }{{topPlaylist, bottomPlaylist}, {bottomPlaylist, topPlaylist}} {
			t.Run(c.name, func(t *testing.T) {
				var first *m3u8.Media
				reload := c.name
				for range 12 {
					resp, body := get(t, l.url(reload), nil)
					if resp.StatusCode != http.StatusOK {
						t.Fatalf("%s: status %d: %s", reload, resp.StatusCode, body)
					}
					pl := parseMedia(t, body)
					if err := m3u8.CheckMedia(pl, true, true); err != nil {
						t.Fatalf("%s: %v\n%s", reload, err, body)
					}
					if first == nil {
						first = pl
					}
					if pl.TargetDuration != first.TargetDuration || pl.PartInf["PART-TARGET"] != first.PartInf["PART-TARGET"] ||
						pl.ServerControl["PART-HOLD-BACK"] != first.ServerControl["PART-HOLD-BACK"] {
						t.Fatalf("the targets changed:\n%s\nthen\n%s", first.ServerControl, body)
					}
					if pl.TargetDuration != targetDuration || pl.PartInf["PART-TARGET"] != "0.20000" || pl.ServerControl["PART-HOLD-BACK"] != "0.60000" {
						t.Errorf("TARGETDURATION %d, PART-TARGET %s, PART-HOLD-BACK %s; want 1, 0.2, 0.6",
							pl.TargetDuration, pl.PartInf["PART-TARGET"], pl.ServerControl["PART-HOLD-BACK"])
					}
					if pl.MediaSequence < gohlslibFirstMSN {
						t.Errorf("MEDIA-SEQUENCE %d, under gohlslib's first segment %d", pl.MediaSequence, gohlslibFirstMSN)
					}
					msn, part := nextPart(pl)
					if len(pl.Parts) == 0 {
						msn, part = msn-1, len(pl.Segments[len(pl.Segments)-1].Parts)
					}
					want := map[string]string{"URI": c.other, "LAST-MSN": fmt.Sprint(msn), "LAST-PART": fmt.Sprint(part - 1)}
					if len(pl.RenditionReports) != 1 || !maps.Equal(pl.RenditionReports[0], want) {
						t.Errorf("rendition reports %v, want %v", pl.RenditionReports, want)
					}
					if age := time.Since(pl.Segments[len(pl.Segments)-1].PDT); age < 0 || age > 5*time.Second {
						t.Errorf("the last segment is dated %v ago", age)
					}
					msn, part = nextPart(pl)
					reload = blocking(c.name, msn, part)
				}
			})
		}
	})

	t.Run("every rung plays", func(t *testing.T) {
		for _, c := range []struct {
			name          string
			width, height int
		}{{topPlaylist, 1280, 720}, {bottomPlaylist, 640, 360}} {
			p, err := mediacheck.ProbeURL(t.Context(), l.url(c.name))
			if err != nil {
				t.Fatal(err)
			}
			var found []string
			for _, s := range p.Streams {
				found = append(found, fmt.Sprintf("%s %dx%d", s.CodecName, s.Width, s.Height))
			}
			want := []string{fmt.Sprintf("h264 %dx%d", c.width, c.height), "aac 0x0"}
			if !slices.Equal(found, want) {
				t.Errorf("%s: ffprobe found %v, want %v", c.name, found, want)
			}
		}
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
		before := l.playlist(t, topPlaylist)
		msn, part := nextPart(before)
		resp, body := get(t, l.url(blocking(topPlaylist, msn, part)), nil)
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("blocking reload: status %d", resp.StatusCode)
		}
		wantHeader(t, resp, "Cache-Control", cacheBlockingPlaylist)
		after := parseMedia(t, body)
		// The asked-for part is in the answer: either the segment is
		// still open and holds it, or the segment closed with it.
		afterMSN, afterPart := nextPart(after)
		if afterMSN == msn && afterPart <= part {
			t.Fatalf("asked for part %d.%d, got a playlist whose last part is %d.%d", msn, part, afterMSN, afterPart-1)
		}

		partURI := lastPart(t, after)
		resp, data := get(t, l.url(partURI), nil)
		if resp.StatusCode != http.StatusOK || len(data) == 0 {
			t.Fatalf("part %s: status %d, %d bytes", partURI, resp.StatusCode, len(data))
		}
		wantHeader(t, resp, "Cache-Control", cacheMedia)
		wantHeader(t, resp, "Content-Type", "video/mp4")
		wantHeader(t, resp, "Vary", "")

		// The preload hint names the part being written; asking for it
		// waits for it and gets it whole.
		if after.PreloadHint == nil {
			t.Fatal("no preload hint")
		}
		resp, data = get(t, l.url(after.PreloadHint["URI"]), nil)
		if resp.StatusCode != http.StatusOK || len(data) == 0 {
			t.Fatalf("preload hint %s: status %d, %d bytes", after.PreloadHint["URI"], resp.StatusCode, len(data))
		}

		resp, _ = get(t, l.url(topPlaylist), nil)
		wantHeader(t, resp, "Cache-Control", cacheMediaPlaylist)
		wantHeader(t, resp, "Content-Type", "application/vnd.apple.mpegurl")

		resp, _ = get(t, l.url(after.Map), nil)
		wantHeader(t, resp, "Cache-Control", cacheMedia)
	})

	t.Run("requests already answered", func(t *testing.T) {
		// A blocking request for a segment that is already listed, or
		// already gone, gets the current playlist at once: gohlslib would
		// refuse (400) or, for its placeholders' numbers, wait for ever.
		// One too far ahead is refused. (gohlslib refuses the oldest
		// segment of a full window too: its answer is then the current
		// playlist, cached as briefly.)
		now := l.playlist(t, topPlaylist)
		for _, c := range []struct {
			name      string
			msn, part int
			status    int
			cache     string // "": either
		}{
			{"listed", now.Segments[len(now.Segments)-1].MSN, 1, http.StatusOK, cacheBlockingPlaylist},
			{"oldest listed", now.Segments[0].MSN, 0, http.StatusOK, ""},
			{"gone", now.MediaSequence - 1, 0, http.StatusOK, cacheMediaPlaylist},
			{"a placeholder's number", 3, 1, http.StatusOK, cacheMediaPlaylist},
			{"zero", 0, 0, http.StatusOK, cacheMediaPlaylist},
			{"far ahead", now.MediaSequence + len(now.Segments) + 5, 0, http.StatusBadRequest, cacheError},
		} {
			t.Run(c.name, func(t *testing.T) {
				ctx, cancel := context.WithTimeout(t.Context(), 3*time.Second)
				defer cancel()
				req, _ := http.NewRequestWithContext(ctx, http.MethodGet, l.url(blocking(topPlaylist, c.msn, c.part)), nil)
				resp, err := http.DefaultClient.Do(req)
				if err != nil {
					t.Fatalf("msn %d: %v (a request that waits for a part that never comes)", c.msn, err)
				}
				body, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				if resp.StatusCode != c.status {
					t.Fatalf("msn %d: status %d %s, want %d", c.msn, resp.StatusCode, body, c.status)
				}
				if c.cache != "" {
					wantHeader(t, resp, "Cache-Control", c.cache)
				}
				if c.status != http.StatusOK {
					return
				}
				if pl := parseMedia(t, body); pl.MediaSequence+len(pl.Segments) < now.MediaSequence+len(now.Segments) {
					t.Errorf("msn %d: an older playlist than the current one", c.msn)
				}
			})
		}
	})

	t.Run("segment", func(t *testing.T) {
		// Wait for the open segment to close: part 0 of the next one.
		pl := l.playlist(t, topPlaylist)
		msn, _ := nextPart(pl)
		_, body := get(t, l.url(blocking(topPlaylist, msn+1, 0)), nil)
		pl = parseMedia(t, body)
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
		msn, part := nextPart(l.playlist(t, bottomPlaylist))
		directives := fmt.Sprintf("_HLS_msn=%d&_HLS_part=%d", msn, part+1)
		const waiters = 20
		bodies := make(chan []byte, waiters)
		for i := range waiters {
			reload := l.url(bottomPlaylist + "?" + directives)
			switch i % 3 {
			case 1:
				reload += fmt.Sprintf("&cachebuster=%d", i)
			case 2:
				reload = l.url(fmt.Sprintf("%s?token=%d&", bottomPlaylist, i) + directives)
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
		after := parseMedia(t, first)
		partURL := l.url(lastPart(t, after))
		var answers [][]byte
		for _, u := range []string{partURL, partURL, partURL + "?v=2"} { // produced, then from the cache
			resp, data := get(t, u, nil)
			if resp.StatusCode != http.StatusOK || resp.ContentLength != int64(len(data)) {
				t.Fatalf("%s: status %d, Content-Length %d, %d bytes", u, resp.StatusCode, resp.ContentLength, len(data))
			}
			wantTracks(t, data)
			answers = append(answers, data)
		}
		for i, a := range answers[1:] {
			if !bytes.Equal(a, answers[0]) {
				t.Errorf("request %d for the part got other bytes than the first", i+2)
			}
		}
	})

	t.Run("gzip", func(t *testing.T) {
		// A client that does not decompress by itself.
		client := plainClient
		pl := l.playlist(t, topPlaylist)
		msn, part := nextPart(pl)
		files := []struct {
			name       string
			compressed bool
		}{
			{"index.m3u8", true},
			{topPlaylist, true},
			{blocking(topPlaylist, msn, part), true},
			{lastPart(t, pl), false},
		}
		for _, c := range []struct {
			acceptEncoding string
			gzip           bool
		}{
			{"gzip", true},
			{"gzip, deflate, br, zstd", true},
			{"*", true},
			{"br;q=1.0, gzip;q=0.5", true},
			{"", false},
			{"br", false},
			{"gzip;q=0", false},
			{"*, gzip;q=0", false},
		} {
			for _, f := range files {
				t.Run(fmt.Sprintf("%s %q", f.name, c.acceptEncoding), func(t *testing.T) {
					req, _ := http.NewRequestWithContext(t.Context(), http.MethodGet, l.url(f.name), nil)
					req.Header.Set("Accept-Encoding", c.acceptEncoding)
					resp, err := client.Do(req)
					if err != nil {
						t.Fatal(err)
					}
					defer resp.Body.Close()
					body, err := io.ReadAll(resp.Body)
					if err != nil || resp.StatusCode != http.StatusOK || resp.ContentLength != int64(len(body)) {
						t.Fatalf("status %d, Content-Length %d, %d bytes, %v", resp.StatusCode, resp.ContentLength, len(body), err)
					}
					wantGzip := f.compressed && c.gzip
					if got := resp.Header.Get("Content-Encoding") == "gzip"; got != wantGzip {
						t.Errorf("gzip-encoded %v, want %v", got, wantGzip)
					}
					if vary := resp.Header.Get("Vary") == "Accept-Encoding"; vary != f.compressed {
						t.Errorf("Vary %q", resp.Header.Get("Vary"))
					}
					if wantGzip {
						zr, err := gzip.NewReader(bytes.NewReader(body))
						if err != nil {
							t.Fatal(err)
						}
						if body, err = io.ReadAll(zr); err != nil {
							t.Fatal(err)
						}
					}
					if f.compressed && !bytes.HasPrefix(body, []byte("#EXTM3U\n")) {
						t.Errorf("not a playlist: %.40q", body)
					}
				})
			}
		}
	})

	t.Run("missing file", func(t *testing.T) {
		for _, name := range []string{"nope.mp4", "video1_stream.m3u8", "1080p.m3u8", "abc_video1_part999999.mp4", "..%2Findex.m3u8", "..%5Cindex.m3u8"} {
			resp, body := get(t, l.url(name), nil)
			if resp.StatusCode != http.StatusNotFound || !strings.Contains(string(body), `"error"`) {
				t.Errorf("%s: status %d, body %s; want 404 JSON", name, resp.StatusCode, body)
			}
		}
		// A part of a rung that does not exist yet.
		pl := l.playlist(t, topPlaylist)
		msn, _ := nextPart(pl)
		future := strings.Replace(lastPart(t, pl), "_part", "_part9", 1)
		if resp, body := get(t, l.url(future), nil); resp.StatusCode != http.StatusNotFound {
			t.Errorf("%s (the segment being made is %d): status %d %s", future, msn, resp.StatusCode, body)
		}
		for _, q := range []string{"_HLS_msn=x", "_HLS_part=2", "_HLS_msn=7&_HLS_part=-1"} {
			resp, body := get(t, l.url(topPlaylist+"?"+q), nil)
			if resp.StatusCode != http.StatusBadRequest || !strings.Contains(string(body), `"error"`) {
				t.Errorf("%s: status %d, body %s; want 400 JSON", q, resp.StatusCode, body)
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
		for _, c := range []struct{ client, forwardedFor, userAgent, file string }{
			{"203.0.113.7", "198.51.100.1", "viewer-a", topPlaylist},
			{"203.0.113.7", "198.51.100.2", "viewer-a", bottomPlaylist}, // the same viewer again
			{"203.0.113.7", "", "viewer-b", "index.m3u8"},
			{"192.0.2.1", "203.0.113.7", "viewer-a", topPlaylist},
			{"192.0.2.9", "", "home-page", "thumb.jpg"}, // not a viewer
		} {
			r := httptest.NewRequestWithContext(t.Context(), http.MethodGet, l.url(c.file), nil)
			r.Header.Set("User-Agent", c.userAgent)
			if c.forwardedFor != "" {
				r.Header.Set("X-Forwarded-For", c.forwardedFor)
			}
			w := httptest.NewRecorder()
			l.server.Serve(w, r, l.id, c.file, c.client)
			if w.Code != http.StatusOK && c.file != "thumb.jpg" {
				t.Fatalf("%+v: status %d", c, w.Code)
			}
		}
		if got := m.Viewers(); got != before+3 {
			t.Errorf("viewers %d after 3 new clients, was %d", got, before)
		}
	})

	t.Run("stats", func(t *testing.T) {
		before := l.server.Stats()
		_, body := get(t, l.url(topPlaylist), nil)
		pl := parseMedia(t, body)
		bytesOut := len(body)
		for _, file := range []string{"index.m3u8", pl.Map, lastPart(t, pl)} {
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

// playlist fetches a media playlist of the battle (without compression,
// so that the byte counts of stats hold).
func (l *liveServer) playlist(t testing.TB, name string) *m3u8.Media {
	t.Helper()
	resp, body := get(t, l.url(name), nil)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("%s: status %d: %s", name, resp.StatusCode, body)
	}
	return parseMedia(t, body)
}

// lastPart is the URI of the newest part of pl: in its open segment, or
// when that has none yet, in its last closed one.
func lastPart(t testing.TB, pl *m3u8.Media) string {
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
