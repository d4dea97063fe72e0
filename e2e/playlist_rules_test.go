package e2e

import (
	"bytes"
	"compress/gzip"
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/singoff/singoff/internal/m3u8"
	"github.com/singoff/singoff/internal/mediacheck"
)

// h2Client speaks HTTP/2 over TLS to a server whose certificate is at
// certPath, and leaves gzip to the test.
func h2Client(t testing.TB, certPath string) *http.Client {
	t.Helper()
	pem, err := os.ReadFile(certPath)
	if err != nil {
		t.Fatal(err)
	}
	roots := x509.NewCertPool()
	if !roots.AppendCertsFromPEM(pem) {
		t.Fatal("no certificate in " + certPath)
	}
	return &http.Client{
		Timeout: 15 * time.Second,
		Transport: &http.Transport{
			TLSClientConfig:    &tls.Config{RootCAs: roots},
			ForceAttemptHTTP2:  true,
			DisableCompression: true,
		},
	}
}

// fetched is one answer over HTTP/2, its body decompressed.
type fetched struct {
	status  int
	header  http.Header
	body    []byte
	gzipped bool
}

// fetchH2 GETs u over HTTP/2 asking for gzip, as a browser does; it fails
// the test unless the answer came over HTTP/2.
func fetchH2(t testing.TB, c *http.Client, u string) fetched {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, u, nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Accept-Encoding", "gzip, deflate, br")
	resp, err := c.Do(req)
	if err != nil {
		t.Fatalf("GET %s: %v", u, err)
	}
	defer resp.Body.Close()
	if resp.ProtoMajor != 2 {
		t.Errorf("GET %s over %s, want HTTP/2", u, resp.Proto)
	}
	f := fetched{status: resp.StatusCode, header: resp.Header, gzipped: resp.Header.Get("Content-Encoding") == "gzip"}
	var r io.Reader = resp.Body
	if f.gzipped {
		zr, err := gzip.NewReader(resp.Body)
		if err != nil {
			t.Fatalf("GET %s: %v", u, err)
		}
		r = zr
	}
	if f.body, err = io.ReadAll(r); err != nil {
		t.Fatalf("GET %s: %v", u, err)
	}
	return f
}

// wantPlaylist fails unless f is a 200 gzip-encoded playlist, and
// returns its text.
func wantPlaylist(t testing.TB, u string, f fetched) string {
	t.Helper()
	if f.status != http.StatusOK {
		t.Fatalf("GET %s: status %d: %s", u, f.status, f.body)
	}
	if !f.gzipped || f.header.Get("Vary") != "Accept-Encoding" {
		t.Errorf("GET %s: Content-Encoding %q, Vary %q; want gzip, Accept-Encoding", u, f.header.Get("Content-Encoding"), f.header.Get("Vary"))
	}
	return string(f.body)
}

// timelineBattle is what the test reads of the battle's timeline.
type timelineBattle struct {
	TurnSeconds  int        `json:"turn_seconds"`
	TurnEndsAt   *time.Time `json:"turn_ends_at"`
	VotingEndsAt *time.Time `json:"voting_ends_at"`
	Winner       *int       `json:"winner"`
	Votes        [][2]int   `json:"votes"`
}

// wantCue is a battle event as the playlists must carry it.
type wantCue struct {
	id, class string
	start     time.Time
	duration  string // DURATION, "" none
	data      map[string]string
}

// frame is how far a cue's START-DATE may be from the timeline: one
// frame of the program (and the millisecond the date is written to).
const frame = time.Second/30 + time.Millisecond

// checkDateRanges fails unless pl carries every wanted cue, at its time.
func checkDateRanges(t *testing.T, what string, pl *m3u8.Media, want []wantCue) {
	t.Helper()
	byID := make(map[string]m3u8.DateRange)
	for _, d := range pl.DateRanges {
		byID[d.ID] = d
	}
	for _, c := range want {
		d, ok := byID[c.id]
		if !ok {
			t.Errorf("%s: no EXT-X-DATERANGE %s (of %d)", what, c.id, len(pl.DateRanges))
			continue
		}
		if d.Class != c.class || d.Attrs["DURATION"] != c.duration {
			t.Errorf("%s: %s: CLASS %q DURATION %q, want %q %q", what, c.id, d.Class, d.Attrs["DURATION"], c.class, c.duration)
		}
		if off := d.Start.Sub(c.start); off > frame || off < -frame {
			t.Errorf("%s: %s starts %v, the timeline says %v (%v off)", what, c.id, d.Start, c.start, off)
		}
		for k, v := range c.data {
			if d.Attrs["X-"+k] != v {
				t.Errorf("%s: %s: X-%s=%q, want %q", what, c.id, k, d.Attrs["X-"+k], v)
			}
		}
	}
}

// probeThumb fetches a thumbnail and has ffprobe read it: it must be a
// 320×180 JPEG. It returns its bytes, nil when there is none.
func probeThumb(t *testing.T, c *http.Client, u string) []byte {
	t.Helper()
	f := fetchH2(t, c, u)
	if f.status != http.StatusOK || f.header.Get("Content-Type") != "image/jpeg" {
		t.Errorf("GET %s: status %d, Content-Type %q: %s", u, f.status, f.header.Get("Content-Type"), f.body)
		return nil
	}
	path := filepath.Join(t.TempDir(), "thumb.jpg")
	if err := os.WriteFile(path, f.body, 0o644); err != nil {
		t.Fatal(err)
	}
	p, err := mediacheck.ProbeURL(t.Context(), path)
	if err != nil {
		t.Fatal(err)
	}
	if len(p.Streams) != 1 || p.Streams[0].CodecName != "mjpeg" || p.Streams[0].Width != 320 || p.Streams[0].Height != 180 {
		t.Errorf("GET %s: ffprobe reads %+v, want one 320x180 mjpeg picture", u, p.Streams)
	}
	return f.body
}

// TestPlaylistRules plays a one-round battle of two bots on the real
// binary over HTTPS and checks, as players and peers read them: the
// multivariant playlist and every rung's live playlist keep the rules
// (RFC 8216bis, Apple's authoring rules) for the whole battle, answered
// over HTTP/2 (Go's client and curl) and gzip-encoded; blocking reloads
// work over HTTP/2; every rung decodes at its size; the battle's turns,
// round result and winner are EXT-X-DATERANGE tags at the timeline's
// times (within a frame) in the live playlists and the recording's;
// thumbnails decode at 320×180 and change with the picture; when the
// battle ends the live playlists close with #EXT-X-ENDLIST.
func TestPlaylistRules(t *testing.T) {
	dir := t.TempDir()
	certPath, keyPath := filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	writeSelfSignedCert(t, certPath, keyPath)
	// The bots trust the test's certificate (Go reads SSL_CERT_FILE).
	t.Setenv("SSL_CERT_FILE", certPath)
	s := startServer(t, true, "--tls-cert", certPath, "--tls-key", keyPath, "--min-turn-seconds", "1")
	h2 := h2Client(t, certPath)
	var b battle
	s.call(t, http.MethodPost, "/api/battles", "", map[string]any{
		"title": "playlist rules", "singers": []string{"Ann", "Bo"}, "rounds": 1, "turn_seconds": 3,
	}, http.StatusCreated, &b)
	s.startBot(t, b, 1)
	s.startBot(t, b, 2)
	hls := s.base + "/hls/" + b.ID + "/"
	waitFor(t, "the live program", 30*time.Second, func() bool {
		return fetchH2(t, h2, hls+"index.m3u8").status == http.StatusOK
	})

	// The ladder.
	mvText := wantPlaylist(t, hls+"index.m3u8", fetchH2(t, h2, hls+"index.m3u8"))
	mv, err := m3u8.ParseMultivariant(mvText)
	if err != nil {
		t.Fatalf("%v\n%s", err, mvText)
	}
	if err := m3u8.CheckMultivariant(mv); err != nil {
		t.Errorf("%v\n%s", err, mvText)
	}
	sizes := map[string]bool{}
	for _, v := range mv.Variants {
		sizes[fmt.Sprintf("%dx%d", v.Width, v.Height)] = true
	}
	if !sizes["1280x720"] || !sizes["640x360"] {
		t.Errorf("the ladder has %v, want 1280x720 and 640x360 at least:\n%s", sizes, mvText)
	}
	for _, v := range mv.Variants {
		p := probe(t, hls+v.URI)
		var video string
		for _, st := range p.Streams {
			if st.CodecName == "h264" {
				video = fmt.Sprintf("%dx%d", st.Width, st.Height)
			}
		}
		if want := fmt.Sprintf("%dx%d", v.Width, v.Height); video != want || len(p.Streams) != 2 {
			t.Errorf("%s: ffprobe reads %+v, want h264 %s and audio", v.URI, p.Streams, want)
		}
	}

	// curl, another client, also gets HTTP/2 and gzip.
	out, err := exec.Command("curl", "-sS", "--http2", "--cacert", certPath, "-H", "Accept-Encoding: gzip",
		"-o", "/dev/null", "-D", "-", hls+mv.Variants[0].URI).Output()
	if err != nil {
		t.Fatalf("curl: %v", err)
	}
	if head := strings.ToLower(string(out)); !strings.HasPrefix(head, "http/2 200") || !strings.Contains(head, "content-encoding: gzip") {
		t.Errorf("curl --http2 got:\n%s", out)
	}

	// The host starts the clock: turns of 3 s, voting closing 15 s after.
	var started timelineBattle
	s.call(t, http.MethodPost, "/api/battles/"+b.ID+"/start", b.HostToken, nil, http.StatusOK, &started)
	if started.TurnEndsAt == nil || started.VotingEndsAt == nil {
		t.Fatalf("started: %+v", started)
	}
	clock := started.TurnEndsAt.Add(-time.Duration(started.TurnSeconds) * time.Second)
	turn := time.Duration(started.TurnSeconds) * time.Second

	// Every rung's playlist is reloaded as a player does (blocking, over
	// one HTTP/2 connection) until the result is in it: the rules hold
	// every time, with the same targets.
	thumbs := [][]byte{probeThumb(t, h2, hls+"thumb.jpg")}
	lastThumb := time.Now()
	targets := map[string]string{}
	reloads := map[string]string{}
	for _, v := range mv.Variants {
		reloads[v.URI] = hls + v.URI
	}
	var last map[string]*m3u8.Media
	deadline := time.Now().Add(60 * time.Second)
	for done := false; !done; {
		if time.Now().After(deadline) {
			t.Fatal("no result cue in the live playlists within 60 s")
		}
		last = map[string]*m3u8.Media{}
		done = true
		for _, v := range mv.Variants {
			text := wantPlaylist(t, reloads[v.URI], fetchH2(t, h2, reloads[v.URI]))
			pl, err := m3u8.Parse(text)
			if err != nil {
				t.Fatalf("%s: %v\n%s", v.URI, err, text)
			}
			if err := m3u8.CheckMedia(pl, true, true); err != nil {
				t.Fatalf("%s: %v\n%s", v.URI, err, text)
			}
			got := fmt.Sprintf("TARGETDURATION %d, PART-TARGET %s, PART-HOLD-BACK %s", pl.TargetDuration, pl.PartInf["PART-TARGET"], pl.ServerControl["PART-HOLD-BACK"])
			if was, ok := targets[v.URI]; ok && was != got {
				t.Fatalf("%s: %s, then %s", v.URI, was, got)
			}
			targets[v.URI] = got
			last[v.URI] = pl
			msn, part := pl.MediaSequence+pl.Skipped+len(pl.Segments), len(pl.Parts)
			reloads[v.URI] = fmt.Sprintf("%s%s?_HLS_msn=%d&_HLS_part=%d", hls, v.URI, msn, part)
			has := false
			for _, d := range pl.DateRanges {
				has = has || d.ID == "result"
			}
			done = done && has
		}
		if time.Since(lastThumb) > 2500*time.Millisecond && len(thumbs) < 3 {
			thumbs = append(thumbs, probeThumb(t, h2, hls+"thumb.jpg"))
			lastThumb = time.Now()
		}
	}
	if len(thumbs) < 2 || thumbs[0] == nil || bytes.Equal(thumbs[0], thumbs[len(thumbs)-1]) {
		t.Errorf("%d thumbnails over the battle, all the same picture", len(thumbs))
	}

	var result timelineBattle
	s.call(t, http.MethodGet, "/api/battles/"+b.ID, "", nil, http.StatusOK, &result)
	if result.Winner == nil || len(result.Votes) != 1 {
		t.Fatalf("the result: %+v", result)
	}
	winner := fmt.Sprint(*result.Winner)
	cues := []wantCue{
		{"turn-1-1", "com.singoff.turn", clock, fmt.Sprintf("%.3f", turn.Seconds()), map[string]string{"ROUND": "1", "SLOT": "1"}},
		{"turn-1-2", "com.singoff.turn", clock.Add(turn), fmt.Sprintf("%.3f", turn.Seconds()), map[string]string{"ROUND": "1", "SLOT": "2"}},
		{"round-1", "com.singoff.round", *started.VotingEndsAt, "", map[string]string{"ROUND": "1", "VOTES-1": "0", "VOTES-2": "0", "WINNER": winner}},
		{"result", "com.singoff.result", *started.VotingEndsAt, "", map[string]string{"WINNER": winner}},
	}
	for uri, pl := range last {
		checkDateRanges(t, "live "+uri, pl, cues)
	}

	// The end: the live playlists close, the recording is VOD with the
	// same cues and a thumbnail of its own.
	var ended battle
	s.call(t, http.MethodPost, "/api/battles/"+b.ID+"/end", b.HostToken, nil, http.StatusOK, &ended)
	for _, v := range mv.Variants {
		text := wantPlaylist(t, hls+v.URI, fetchH2(t, h2, hls+v.URI))
		pl, err := m3u8.Parse(text)
		if err != nil {
			t.Fatal(err)
		}
		if err := m3u8.CheckMedia(pl, true, false); err != nil {
			t.Errorf("%s after the end: %v\n%s", v.URI, err, text)
		}
		checkDateRanges(t, "ended "+v.URI, pl, cues)
	}
	if ended.VODURL == nil {
		t.Fatal("no recording")
	}
	vod, err := url.JoinPath(s.base, *ended.VODURL)
	if strings.HasPrefix(*ended.VODURL, "http") {
		vod, err = *ended.VODURL, nil
	}
	if err != nil {
		t.Fatal(err)
	}
	text := string(fetchH2(t, h2, vod).body)
	pl, err := m3u8.Parse(text)
	if err != nil {
		t.Fatalf("%v\n%s", err, text)
	}
	if err := m3u8.CheckMedia(pl, false, false); err != nil {
		t.Errorf("recording: %v\n%s", err, text)
	}
	checkDateRanges(t, "recording", pl, cues)
	probeThumb(t, h2, strings.TrimSuffix(vod, "index.m3u8")+"thumb.jpg")
}

// TestHTTP2BlockingReloads has several blocking playlist reloads wait at
// once on one HTTP/2 connection (as a player on Safari does, with its
// rendition reports): each is answered with its part, none holds up the
// others.
func TestHTTP2BlockingReloads(t *testing.T) {
	dir := t.TempDir()
	certPath, keyPath := filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	writeSelfSignedCert(t, certPath, keyPath)
	t.Setenv("SSL_CERT_FILE", certPath)
	s := startServer(t, true, "--tls-cert", certPath, "--tls-key", keyPath)
	h2 := h2Client(t, certPath)
	b := s.createBattle(t, "h2")
	s.startBot(t, b, 1)
	hls := s.base + "/hls/" + b.ID + "/"
	waitFor(t, "the live program", 30*time.Second, func() bool {
		return fetchH2(t, h2, hls+"index.m3u8").status == http.StatusOK
	})
	mv, err := m3u8.ParseMultivariant(string(fetchH2(t, h2, hls+"index.m3u8").body))
	if err != nil {
		t.Fatal(err)
	}
	pl, err := m3u8.Parse(string(fetchH2(t, h2, hls+mv.Variants[0].URI).body))
	if err != nil {
		t.Fatal(err)
	}
	msn, part := pl.MediaSequence+pl.Skipped+len(pl.Segments), len(pl.Parts)
	type answer struct {
		uri   string
		proto int
		err   error
		// next is the part after the newest one the answer lists, and
		// asked the one the request asked for: next must be after it.
		next, asked [2]int
	}
	answers := make(chan answer)
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	// The next three parts of every rung, all asked for at once.
	var asked int
	for _, v := range mv.Variants {
		for ahead := range 3 {
			asked++
			u := fmt.Sprintf("%s%s?_HLS_msn=%d&_HLS_part=%d", hls, v.URI, msn, part+ahead)
			go func() {
				a := answer{uri: u, asked: [2]int{msn, part + ahead}}
				defer func() { answers <- a }()
				req, _ := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
				resp, err := h2.Do(req)
				if a.err = err; err != nil {
					return
				}
				defer resp.Body.Close()
				a.proto = resp.ProtoMajor
				body, err := io.ReadAll(resp.Body)
				if a.err = err; err != nil {
					return
				}
				pl, err := m3u8.Parse(string(body))
				if a.err = err; err != nil {
					return
				}
				a.next = [2]int{pl.MediaSequence + pl.Skipped + len(pl.Segments), len(pl.Parts)}
			}()
		}
	}
	for range asked {
		a := <-answers
		if a.err != nil || a.proto != 2 {
			t.Errorf("%s: HTTP/%d, %v", a.uri, a.proto, a.err)
			continue
		}
		if a.next[0] == a.asked[0] && a.next[1] <= a.asked[1] {
			t.Errorf("%s: asked for part %v, the answer lists up to the one before %v", a.uri, a.asked, a.next)
		}
	}
	s.call(t, http.MethodPost, "/api/battles/"+b.ID+"/end", b.HostToken, nil, http.StatusOK, nil)
}
