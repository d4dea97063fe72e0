package hls

import (
	"context"
	"errors"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/singoff/singoff/internal/m3u8"
	"github.com/singoff/singoff/internal/mediacheck"
)

// When a battle ends, its playlists close with #EXT-X-ENDLIST, a request
// waiting for a part gets the last playlist, every file they name stays
// served (the segment that was being made included) for a while, and
// then everything answers 410 Gone.
func TestEnd(t *testing.T) {
	l := startLive(t, time.Minute)
	const endedFor = 4 * time.Second
	l.server.endedFor = endedFor
	m, ok := l.server.Muxer(l.id)
	if !ok {
		t.Fatal("not live")
	}
	// Some time in, mid-segment: parts of the segment being made.
	for pl := l.playlist(t, topPlaylist); len(pl.Segments) < 3 || len(pl.Parts) < 2; pl = l.playlist(t, topPlaylist) {
		msn, part := nextPart(pl)
		get(t, l.url(blocking(topPlaylist, msn, part)), nil)
	}
	l.stop()
	<-l.fed
	if l.feedErr != nil && !errors.Is(l.feedErr, context.Canceled) {
		t.Fatal(l.feedErr)
	}
	before := l.playlist(t, topPlaylist)
	preloadHint := before.PreloadHint["URI"]

	// Wait on a part that will never come.
	requests := m.Stats().PlaylistRequests
	type result struct {
		status int
		body   string
	}
	waiting := make(chan result, 1)
	go func() {
		msn, part := nextPart(before)
		resp, err := plainClient.Get(l.url(blocking(topPlaylist, msn, part+1)))
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
		waiting <- result{resp.StatusCode, string(body)}
	}()
	// The request has reached the muxer once it is counted.
	for m.Stats().PlaylistRequests == requests {
		time.Sleep(10 * time.Millisecond)
	}
	endedAt := time.Now()
	l.server.End(l.id)

	final := map[string]*m3u8.Media{}
	for _, name := range []string{topPlaylist, bottomPlaylist} {
		final[name] = l.playlist(t, name)
	}
	got := <-waiting
	if got.status != http.StatusOK || got.body != string(renderedFinal(t, l, topPlaylist)) {
		t.Errorf("the request waiting at the end got %d:\n%s\nwant the final playlist", got.status, got.body)
	}

	t.Run("final playlists", func(t *testing.T) {
		for name, pl := range final {
			if err := m3u8.CheckMedia(pl, true, false); err != nil {
				t.Errorf("%s: %v", name, err)
			}
			if len(pl.Parts) != 0 || len(pl.RenditionReports) != 0 {
				t.Errorf("%s: %d parts after the last segment, %d rendition reports", name, len(pl.Parts), len(pl.RenditionReports))
			}
		}
		// What was being made became the last segment, with its parts.
		pl := final[topPlaylist]
		last := pl.Segments[len(pl.Segments)-1]
		if last.MSN != before.MediaSequence+len(before.Segments) || len(last.Parts) != len(before.Parts) {
			t.Errorf("last segment %d with %d parts; before the end, segment %d was being made, %d parts so far",
				last.MSN, len(last.Parts), before.MediaSequence+len(before.Segments), len(before.Parts))
		}
		// A blocking request is answered at once with it.
		msn, part := nextPart(pl)
		if resp, body := get(t, l.url(blocking(topPlaylist, msn+1, part)), nil); resp.StatusCode != http.StatusOK || !strings.Contains(string(body), "#EXT-X-ENDLIST") {
			t.Errorf("a blocking request after the end: %d\n%s", resp.StatusCode, body)
		}
		resp, body := get(t, l.url("index.m3u8"), nil)
		if mv, err := m3u8.ParseMultivariant(string(body)); resp.StatusCode != http.StatusOK || err != nil || len(mv.Variants) != 2 {
			t.Errorf("the multivariant playlist after the end: %d %v\n%s", resp.StatusCode, err, body)
		}
	})

	t.Run("files", func(t *testing.T) {
		for name, pl := range final {
			files := []string{pl.Map}
			for _, s := range pl.Segments {
				files = append(files, s.URI)
				for _, p := range s.Parts {
					files = append(files, p.URI)
				}
			}
			for _, f := range files {
				resp, data := get(t, l.url(f), nil)
				if resp.StatusCode != http.StatusOK || len(data) == 0 {
					t.Fatalf("%s: %s: status %d, %d bytes", name, f, resp.StatusCode, len(data))
				}
				wantHeader(t, resp, "Cache-Control", cacheMedia)
				if f != pl.Map {
					wantTracks(t, data)
				}
			}
			// The ended stream plays to its end, every rung.
			p, err := mediacheck.ProbeURL(t.Context(), l.url(name))
			if err != nil {
				t.Fatal(err)
			}
			var listed time.Duration
			for _, s := range pl.Segments {
				listed += s.Duration
			}
			if d, err := p.Duration(); err != nil || d < listed-100*time.Millisecond || d > listed+100*time.Millisecond {
				t.Errorf("%s: ffprobe reads %v (%v), the playlist lists %v", name, d, err, listed)
			}
		}
		if err := mediacheck.Decode(t.Context(), l.url("index.m3u8"), 0); err != nil {
			t.Error(err)
		}
		// The part the live playlist hinted at was never made.
		if resp, _ := get(t, l.url(preloadHint), nil); resp.StatusCode != http.StatusNotFound {
			t.Errorf("the last preload hint %s: status %d, want 404", preloadHint, resp.StatusCode)
		}
	})

	t.Run("gone after a while", func(t *testing.T) {
		time.Sleep(time.Until(endedAt.Add(endedFor + 500*time.Millisecond)))
		for _, name := range []string{"index.m3u8", topPlaylist, final[topPlaylist].Map, final[bottomPlaylist].Segments[0].URI} {
			resp, body := get(t, l.url(name), nil)
			if want := `{"error":"battle ended; the replay is at /vod/` + l.id + `/index.m3u8"}`; resp.StatusCode != http.StatusGone || strings.TrimSpace(string(body)) != want {
				t.Errorf("%s: %d %s, want 410 %s", name, resp.StatusCode, body, want)
			}
			wantHeader(t, resp, "Cache-Control", cacheError)
		}
		if _, ok := l.server.Muxer(l.id); ok {
			t.Error("the muxer is still there")
		}
	})

	t.Run("ended before the process", func(t *testing.T) {
		resp, body := get(t, l.http.URL+"/hls/endedLongAgo/index.m3u8", nil)
		if want := `{"error":"battle ended; the replay is at /vod/endedLongAgo/index.m3u8"}`; resp.StatusCode != http.StatusGone || strings.TrimSpace(string(body)) != want {
			t.Errorf("status %d body %s, want 410 %s", resp.StatusCode, body, want)
		}
	})
}

// renderedFinal is the final playlist name as served, uncompressed.
func renderedFinal(t *testing.T, l *liveServer, name string) []byte {
	t.Helper()
	_, body := get(t, l.url(name), nil)
	return body
}

// A battle that ends before its program made a segment has nothing to
// play: its playlists answer 410 at once, requests waiting included.
func TestEndBeforeAnySegment(t *testing.T) {
	s := NewServer(testLogger(t), nil)
	srv := newLoopbackServer(t, router(s))
	if _, err := s.Start("short", program.Info); err != nil {
		t.Fatal(err)
	}
	waiting := make(chan int, 1)
	go func() {
		resp, err := plainClient.Get(srv.URL + "/hls/short/index.m3u8")
		if err != nil {
			t.Error(err)
			waiting <- 0
			return
		}
		resp.Body.Close()
		waiting <- resp.StatusCode
	}()
	time.Sleep(100 * time.Millisecond)
	s.End("short")
	if got := <-waiting; got != http.StatusGone {
		t.Errorf("the request waiting at the end: %d, want 410", got)
	}
	for _, name := range []string{"index.m3u8", topPlaylist, bottomPlaylist} {
		if resp, body := get(t, srv.URL+"/hls/short/"+name, nil); resp.StatusCode != http.StatusGone {
			t.Errorf("%s: %d %s, want 410", name, resp.StatusCode, body)
		}
	}
}
