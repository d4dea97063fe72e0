package web

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/runtime"
	"github.com/chromedp/chromedp"
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

func TestRoutes(t *testing.T) {
	srv := httptest.NewServer(Handler())
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
	srv := httptest.NewServer(Handler())
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
	const chromium = "/usr/bin/chromium"
	if _, err := os.Stat(chromium); err != nil {
		t.Skip("chromium is not installed (make deps installs it)")
	}
	srv := httptest.NewServer(Handler())
	defer srv.Close()

	allocCtx, cancelAlloc := chromedp.NewExecAllocator(context.Background(),
		chromedp.ExecPath(chromium),
		chromedp.UserDataDir(t.TempDir()),
		chromedp.Flag("headless", true),
		chromedp.Flag("no-sandbox", true),
		chromedp.Flag("disable-gpu", true),
		chromedp.Flag("no-first-run", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
	)
	defer cancelAlloc()
	browserCtx, cancelBrowser := chromedp.NewContext(allocCtx)
	defer cancelBrowser()

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
