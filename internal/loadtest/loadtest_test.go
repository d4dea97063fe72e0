package loadtest_test

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/singoff/singoff/internal/loadtest"
	"github.com/singoff/singoff/internal/loadtest/testorigin"
	"github.com/singoff/singoff/internal/testprogram"
)

// program is the clip the origins loop, encoded once by TestMain: a
// ladder of 2 Mb/s at 720p and 600 kb/s at 360p.
var program *testprogram.Program

func TestMain(m *testing.M) {
	os.Exit(generateAndRun(m))
}

func generateAndRun(m *testing.M) int {
	dir, err := os.MkdirTemp("", "loadtest-test")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer os.RemoveAll(dir)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	ladder := []testprogram.Rung{{Width: 1280, Height: 720, Bitrate: "2000k"}, {Width: 640, Height: 360, Bitrate: "600k"}}
	if program, err = testprogram.GenerateLadder(ctx, dir, 2, ladder); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	return m.Run()
}

func startOrigin(t *testing.T) *testorigin.Origin {
	t.Helper()
	origin, err := testorigin.Start(program, testLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(origin.Close)
	return origin
}

func testLogger(t *testing.T) *slog.Logger {
	return slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelWarn}))
}

func TestRunAgainstOrigin(t *testing.T) {
	origin := startOrigin(t)
	const watchers = 20
	// Each watcher follows one rung of the ladder: 2 Mb/s or 600 kb/s for
	// ~6 s.
	for _, c := range []struct {
		variant            int
		minBytes, maxBytes int64 // per watcher
	}{{0, 1_000_000, 2_500_000}, {1, 250_000, 900_000}} {
		t.Run(fmt.Sprintf("variant %d", c.variant), func(t *testing.T) {
			before := origin.Counts()
			report, err := loadtest.Run(t.Context(), loadtest.Config{
				URL:      origin.PlaylistURL(),
				Variant:  c.variant,
				Watchers: watchers,
				Duration: 6 * time.Second,
				Logger:   testLogger(t),
			})
			if err != nil {
				t.Fatal(err)
			}
			t.Logf("report:\n%s", report)
			checkReport(t, report, watchers, before, origin.Counts())
			if perWatcher := report.BytesIn / watchers; perWatcher < c.minBytes || perWatcher > c.maxBytes {
				t.Errorf("%d bytes received per watcher, want %d to %d", perWatcher, c.minBytes, c.maxBytes)
			}
		})
	}
	report, err := loadtest.Run(t.Context(), loadtest.Config{URL: origin.PlaylistURL(), Variant: 2, Watchers: 1, Duration: time.Second})
	if err != nil || report.Errors["multivariant: bad playlist"] == 0 {
		t.Errorf("a variant the ladder lacks: errors %v, %v", report.Errors, err)
	}
}

// checkReport checks what watchers got from an origin whose counts went
// from before to after.
func checkReport(t *testing.T, report loadtest.Report, watchers int, before, after testorigin.Counts) {
	t.Helper()
	if len(report.Errors) != 0 {
		t.Errorf("errors: %v", report.Errors)
	}
	// Parts of ~200 ms for about 6 s (the last watcher joins up to 1 s
	// late).
	if report.PartsPublished < 20 || report.PartsPublished > 40 {
		t.Errorf("%d parts published in 6 s, want about 30", report.PartsPublished)
	}
	if report.PartsMissed != 0 {
		t.Errorf("%d parts missed", report.PartsMissed)
	}
	if min := watchers * (report.PartsPublished - 10); report.PartsDelivered < min {
		t.Errorf("%d parts delivered, want at least %d", report.PartsDelivered, min)
	}
	if report.PartLatencyP50 <= 0 || report.PartLatencyMax > 2*time.Second || report.PartLatencyP50 > report.PartLatencyP95 {
		t.Errorf("part latency p50 %v, p95 %v, max %v: not sane", report.PartLatencyP50, report.PartLatencyP95, report.PartLatencyMax)
	}

	// What the watchers say they asked for is what the origin got.
	if want, got := report.RequestsByKind["part"], after.Parts-before.Parts; got != want {
		t.Errorf("origin served %d parts, watchers asked for %d", got, want)
	}
	if want, got := report.RequestsByKind["blocking-playlist"], after.BlockingPlaylists-before.BlockingPlaylists; got != want {
		t.Errorf("origin served %d blocking playlists, watchers asked for %d", got, want)
	}
	// The origin muxes the audio into the variant's files: a watcher
	// follows one media playlist.
	if report.RequestsByKind["multivariant"] != watchers || report.RequestsByKind["init"] != watchers ||
		report.RequestsByKind["playlist"] != watchers {
		t.Errorf("requests %v: want per watcher one multivariant playlist, media playlist and init file", report.RequestsByKind)
	}
}

func TestRunFailsOnMissingStream(t *testing.T) {
	origin := startOrigin(t)
	report, err := loadtest.Run(t.Context(), loadtest.Config{
		URL:      origin.URL + "/hls/nosuchbattle/index.m3u8",
		Watchers: 2,
		Duration: time.Second,
	})
	if err != nil {
		t.Fatal(err)
	}
	if report.Errors["multivariant: HTTP 404"] == 0 {
		t.Errorf("errors %v, want multivariant 404s", report.Errors)
	}
	if report.PartsDelivered != 0 {
		t.Errorf("%d parts delivered from a missing stream", report.PartsDelivered)
	}
}

func TestMainCommand(t *testing.T) {
	origin := startOrigin(t)
	var out bytes.Buffer
	err := loadtest.Main(t.Context(), []string{"--url", origin.PlaylistURL(), "--watchers", "3", "--duration", "2s"}, &out)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"watchers: 3\n", " missed\n", "part end -> delivered: p50 ", "errors: none\n"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("output lacks %q:\n%s", want, out.String())
		}
	}
	if err := loadtest.Main(t.Context(), []string{"--watchers", "3"}, &out); err == nil {
		t.Error("no error without --url")
	}
}
