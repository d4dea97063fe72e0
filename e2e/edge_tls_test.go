package e2e

import (
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/singoff/singoff/internal/loadtest/testorigin"
	"github.com/singoff/singoff/internal/m3u8"
)

// startEdgeOrigin serves the 2 Mb/s clip live (testorigin) until the
// test ends; it returns the origin and the test's logger.
func startEdgeOrigin(t *testing.T) (*testorigin.Origin, *slog.Logger) {
	t.Helper()
	logger := slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelWarn}))
	origin, err := testorigin.Start(edgeProgram(t), logger)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(origin.Close)
	return origin, logger
}

// edgeStartNginxTLS runs the edge of deploy/nginx.conf in front of
// origin (host:port), as edgeStartNginx does, with deploy/tls.conf next
// to it (HTTPS and HTTP/2 on another port) with the given certificate
// and key. It returns the edge's plain and HTTPS root URLs.
func edgeStartNginxTLS(t testing.TB, origin, certPath, keyPath string) (plain, secure string) {
	t.Helper()
	template, err := os.ReadFile(filepath.Join("..", "deploy", "tls.conf"))
	if err != nil {
		t.Fatal(err)
	}
	listen := freeAddr(t)
	conf := strings.NewReplacer(
		"${SINGOFF_TLS_LISTEN}", listen,
		"${SINGOFF_TLS_CERT}", certPath,
		"${SINGOFF_TLS_KEY}", keyPath,
	).Replace(string(template))
	if strings.Contains(conf, "${SINGOFF_") {
		t.Fatalf("deploy/tls.conf has a variable the test does not fill in")
	}
	// nginx.conf includes it from next to itself.
	plain = startNginxWith(t, "nginx.conf", map[string]string{"SINGOFF_ORIGIN": origin}, "", map[string]string{"singoff-tls.conf": conf})
	return plain, "https://" + listen
}

// TestEdgeTLS runs the nginx edge of deploy/ with tls.conf in front of
// a live origin: it answers over HTTPS and HTTP/2, playlists
// gzip-encoded (and decompressed for a client that takes no gzip), and
// caches a blocking playlist answer for the identical requests after it
// (the origin's s-maxage) while telling browsers not to reuse it.
func TestEdgeTLS(t *testing.T) {
	origin, _ := startEdgeOrigin(t)
	dir := t.TempDir()
	certPath, keyPath := filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	writeSelfSignedCert(t, certPath, keyPath)
	plain, secure := edgeStartNginxTLS(t, strings.TrimPrefix(origin.URL, "http://"), certPath, keyPath)
	h2 := h2Client(t, certPath)
	hls := secure + "/hls/" + testorigin.BattleID + "/"

	mv, err := m3u8.ParseMultivariant(wantPlaylist(t, hls+"index.m3u8", fetchH2(t, h2, hls+"index.m3u8")))
	if err != nil {
		t.Fatal(err)
	}
	media := hls + mv.Variants[0].URI
	pl, err := m3u8.Parse(wantPlaylist(t, media, fetchH2(t, h2, media)))
	if err != nil {
		t.Fatal(err)
	}
	if err := m3u8.CheckMedia(pl, true, true); err != nil {
		t.Error(err)
	}

	// The next part, asked for twice: the second answer is the edge's.
	msn, part := pl.MediaSequence+pl.Skipped+len(pl.Segments), len(pl.Parts)
	reload := fmt.Sprintf("%s?_HLS_msn=%d&_HLS_part=%d", media, msn, part)
	before := origin.Counts().BlockingPlaylists
	var bodies []string
	for i, want := range []string{"MISS", "HIT"} {
		f := fetchH2(t, h2, reload)
		bodies = append(bodies, wantPlaylist(t, reload, f))
		if got := f.header.Get("X-Cache-Status"); got != want {
			t.Errorf("blocking reload %d: X-Cache-Status %s, want %s", i+1, got, want)
		}
		if got := f.header.Get("Cache-Control"); got != "public, max-age=0, s-maxage=6" {
			t.Errorf("blocking reload %d: Cache-Control %q: a browser must not reuse it", i+1, got)
		}
	}
	if bodies[0] != bodies[1] {
		t.Error("the cached answer differs from the first")
	}
	if n := origin.Counts().BlockingPlaylists - before; n != 1 {
		t.Errorf("the origin answered the blocking reload %d times, want once", n)
	}

	// A client that takes no gzip, over plain HTTP/1.1, gets the same
	// playlist decompressed.
	req, _ := http.NewRequest(http.MethodGet, strings.Replace(reload, secure, plain, 1), nil)
	resp, err := (&http.Client{Transport: &http.Transport{DisableCompression: true}}).Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK || resp.Header.Get("Content-Encoding") != "" || string(body) != bodies[0] {
		t.Errorf("without gzip: status %d, Content-Encoding %q, %d bytes (want the %d of the playlist)",
			resp.StatusCode, resp.Header.Get("Content-Encoding"), len(body), len(bodies[0]))
	}
}
