package web

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/runtime"
	"github.com/chromedp/chromedp"
	"github.com/gin-gonic/gin"
	"github.com/singoff/singoff/internal/chromiumtest"
)

func get(t *testing.T, srv *httptest.Server, path string, header http.Header) (*http.Response, string) {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, srv.URL+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range header {
		req.Header[k] = v
	}
	res, err := srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	body, err := io.ReadAll(res.Body)
	if err != nil {
		t.Fatal(err)
	}
	return res, string(body)
}

// pagesOnly serves the pages with no API behind them.
func pagesOnly() http.Handler {
	e := newEngine()
	registerPages(e, func(*gin.Context) {}, func(*gin.Context) {}) // no battles: no origin to send a browser to, no watcher
	return e
}

func TestRoutes(t *testing.T) {
	srv := httptest.NewServer(pagesOnly())
	defer srv.Close()

	pages := map[string]string{
		"/":                 "/assets/js/home.js",
		"/b/abc":            "/assets/js/watch.js",
		"/b/abc/sing/1":     "/assets/js/sing.js",
		"/b/abc/sing/2":     "/assets/js/sing.js",
		"/b/abc/replay":     "/assets/js/replay.js",
		"/b/abc%2Fx/replay": "/assets/js/replay.js",
	}
	for path, script := range pages {
		res, body := get(t, srv, path, nil)
		if res.StatusCode != http.StatusOK {
			t.Errorf("GET %s: %d", path, res.StatusCode)
			continue
		}
		if ct := res.Header.Get("Content-Type"); ct != "text/html; charset=utf-8" {
			t.Errorf("GET %s: Content-Type %q", path, ct)
		}
		if !strings.Contains(body, `src="`+script+`"`) {
			t.Errorf("GET %s: page does not load %s", path, script)
		}
		for _, want := range []string{`name="viewport"`, `aria-live="polite"`, `lang="en"`} {
			if !strings.Contains(body, want) {
				t.Errorf("GET %s: page lacks %s", path, want)
			}
		}
		if csp := res.Header.Get("Content-Security-Policy"); !strings.Contains(csp, "default-src 'self'") {
			t.Errorf("GET %s: Content-Security-Policy %q", path, csp)
		}
		if rp := res.Header.Get("Referrer-Policy"); rp != "no-referrer" {
			t.Errorf("GET %s: Referrer-Policy %q", path, rp)
		}
	}

	for _, path := range []string{"/b/abc/sing/3", "/b/abc/sing/0", "/nope", "/assets/nope.js", "/assets/../web.go", "/b/abc/replay/x"} {
		if res, _ := get(t, srv, path, nil); res.StatusCode != http.StatusNotFound {
			t.Errorf("GET %s: %d, want 404", path, res.StatusCode)
		}
	}

	res, err := srv.Client().Post(srv.URL+"/", "text/plain", strings.NewReader("x"))
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != http.StatusMethodNotAllowed {
		t.Errorf("POST /: %d, want 405", res.StatusCode)
	}
}

func TestAssetsRevalidate(t *testing.T) {
	srv := httptest.NewServer(pagesOnly())
	defer srv.Close()

	res, body := get(t, srv, "/assets/js/common.js", nil)
	if res.StatusCode != http.StatusOK || !strings.Contains(body, "export function setStatus") {
		t.Fatalf("GET common.js: %d", res.StatusCode)
	}
	if ct := res.Header.Get("Content-Type"); ct != "text/javascript; charset=utf-8" {
		t.Errorf("common.js Content-Type %q", ct)
	}
	etag := res.Header.Get("ETag")
	if etag == "" {
		t.Fatal("no ETag")
	}
	res, _ = get(t, srv, "/assets/js/common.js", http.Header{"If-None-Match": {etag}})
	if res.StatusCode != http.StatusNotModified {
		t.Errorf("GET with If-None-Match: %d, want 304", res.StatusCode)
	}
	res, _ = get(t, srv, "/assets/style.css", nil)
	if ct := res.Header.Get("Content-Type"); ct != "text/css; charset=utf-8" {
		t.Errorf("style.css Content-Type %q", ct)
	}
}

// TestPagesInChromium loads each page in headless Chromium from the bare
// handler, with no API behind it: every module must load without a
// script error, and each page must say in its status line what is wrong.
func TestPagesInChromium(t *testing.T) {
	srv := httptest.NewServer(pagesOnly())
	defer srv.Close()
	browserCtx := chromiumtest.Start(t, chromiumtest.Options{})

	cases := []struct{ path, status string }{
		{"/", "Could not load battles"},
		{"/b/abc", "does not exist"},
		{"/b/abc/replay", "does not exist"},
		{"/b/abc/sing/1", "invite link"},
		{"/b/abc/sing/2#token=secret", "does not exist"},
	}
	for _, c := range cases {
		t.Run(strings.ReplaceAll(c.path, "/", "_"), func(t *testing.T) {
			ctx, cancel := chromedp.NewContext(browserCtx)
			defer cancel()
			ctx, cancelTimeout := context.WithTimeout(ctx, 20*time.Second)
			defer cancelTimeout()
			var mu sync.Mutex
			var thrown []string
			chromedp.ListenTarget(ctx, func(ev any) {
				if e, ok := ev.(*runtime.EventExceptionThrown); ok {
					mu.Lock()
					thrown = append(thrown, e.ExceptionDetails.Error())
					mu.Unlock()
				}
			})
			var status, hash string
			err := chromedp.Run(ctx,
				chromedp.Navigate(srv.URL+c.path),
				chromedp.Poll(`document.getElementById("status").textContent.includes(`+"`"+c.status+"`"+`)`, nil,
					chromedp.WithPollingTimeout(10*time.Second)),
				chromedp.Text("#status", &status, chromedp.ByID),
				chromedp.Evaluate(`location.hash`, &hash),
			)
			if err != nil {
				_ = chromedp.Run(ctx, chromedp.Text("#status", &status, chromedp.ByID))
				t.Fatalf("%s: %v; status %q", c.path, err, status)
			}
			if hash != "" {
				t.Errorf("%s kept its fragment %q in the address bar", c.path, hash)
			}
			mu.Lock()
			defer mu.Unlock()
			for _, e := range thrown {
				t.Errorf("%s threw: %s", c.path, e)
			}
		})
	}
}

// TestFormatInChromium runs the format module's words and sums in
// Chromium on battle objects as the API gives them.
func TestFormatInChromium(t *testing.T) {
	srv := httptest.NewServer(pagesOnly())
	defer srv.Close()
	tabCtx, cancelTab := chromedp.NewContext(chromiumtest.Start(t, chromiumtest.Options{}))
	defer cancelTab()
	ctx, cancel := context.WithTimeout(tabCtx, 20*time.Second)
	defer cancel()

	var got map[string]string
	err := chromedp.Run(ctx,
		chromedp.Navigate(srv.URL+"/b/abc/replay"),
		chromedp.Evaluate(`(async () => {
			const f = await import("/assets/js/format.js");
			const singers = [{ slot: 1, name: "Ann" }, { slot: 2, name: "Bob" }];
			const at = (s) => new Date(Date.now() + s * 1000).toISOString();
			const live = { state: "live", singers, rounds: 3, turn_seconds: 90, round: 2, turn: 2,
				turn_ends_at: at(72.5), voting_open: true, voting_ends_at: at(120), votes: [[3, 1], [0, 0], [0, 0]], winner: null };
			return {
				clock: [f.clock(72), f.clock(0.2), f.clock(-3), f.clock(600)].join(" "),
				left: f.clock(f.secondsLeft(live)),
				leftCapped: String(f.secondsLeft({ ...live, turn_ends_at: at(5000) })),
				leftBetweenTurns: String(f.secondsLeft({ ...live, turn: null, turn_ends_at: null })),
				votingLeft: f.clock(f.votingSecondsLeft(live)),
				round: f.roundLine(live),
				format: f.roundLine({ ...live, round: 0 }),
				name: f.singerName(live, 2) + "/" + f.singerName({ singers: [{ slot: 1 }] }, 1),
				votes: f.roundVotes(live, 1).join("-") + " " + f.roundVotes(live, 0).join("-"),
				open: f.votingClosedReason(live),
				notStarted: f.votingClosedReason({ ...live, round: 0, voting_open: false }),
				closed: f.votingClosedReason({ ...live, voting_open: false }),
				ended: f.votingClosedReason({ ...live, state: "ended", voting_open: false }),
				pending: f.resultText(live),
				rounds: f.resultText({ ...live, votes: [[0, 1]], winner: 2 }),
				onVotes: f.resultText({ ...live, votes: [[3, 1], [0, 4]], winner: 2 }),
				draw: f.resultText({ ...live, votes: [[2, 2]], winner: 0 }),
			};
		})()`, &got, func(p *runtime.EvaluateParams) *runtime.EvaluateParams { return p.WithAwaitPromise(true) }),
	)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{
		"clock":            "1:12 0:01 0:00 10:00",
		"left":             "1:13",
		"leftCapped":       "90",
		"leftBetweenTurns": "null",
		"votingLeft":       "2:00",
		"round":            "Round 2 of 3",
		"format":           "3 rounds, 1:30 a turn",
		"name":             "Bob/Singer 1",
		"votes":            "3-1 0-0",
		"open":             "",
		"notStarted":       "Voting opens when the host starts the battle.",
		"closed":           "Voting for round 2 has closed.",
		"ended":            "The battle has ended.",
		"pending":          "",
		"rounds":           "Bob wins, 1 round to 0.",
		"onVotes":          "Bob wins on votes: 1 round each, 5 votes to 3.",
		"draw":             "A draw: 0 rounds each, 2 votes each.",
	}
	for k, w := range want {
		if got[k] != w {
			t.Errorf("%s: %q, want %q", k, got[k], w)
		}
	}
}
