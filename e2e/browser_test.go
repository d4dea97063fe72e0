package e2e

import (
	"context"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/page"
	"github.com/chromedp/cdproto/runtime"
	"github.com/chromedp/chromedp"
	"github.com/singoff/singoff/internal/chromiumtest"
)

// artifactPath is where a test keeps a file for people to look at:
// $SINGOFF_E2E_ARTIFACTS or e2e/artifacts, named after the test.
func artifactPath(t testing.TB, name string) string {
	t.Helper()
	dir := os.Getenv("SINGOFF_E2E_ARTIFACTS")
	if dir == "" {
		dir = "artifacts"
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	test := regexp.MustCompile(`[^A-Za-z0-9_-]+`).ReplaceAllString(t.Name(), "_")
	return filepath.Join(dir, test+"-"+name)
}

// browser is one headless Chromium; its tabs share the fake devices.
type browser struct {
	ctx context.Context
	t   testing.TB
}

// newBrowser starts Chromium for the test. media gives it a fake camera
// and microphone that need no permission prompt.
func newBrowser(t testing.TB, media bool, extra ...chromedp.ExecAllocatorOption) *browser {
	t.Helper()
	ctx := chromiumtest.Start(t, chromiumtest.Options{Media: media, Extra: extra})
	return &browser{ctx: ctx, t: t}
}

// tab is one page in the browser, with the script errors it has thrown.
type tab struct {
	ctx  context.Context
	t    testing.TB
	name string

	mu     sync.Mutex
	errors []string
}

// open loads url in a new tab, after running initScripts (JavaScript
// that every document of the tab runs before its own scripts). The test
// fails at its end if the page threw an uncaught exception.
func (b *browser) open(name, url string, initScripts ...string) *tab {
	b.t.Helper()
	ctx, cancel := chromedp.NewContext(b.ctx)
	tb := &tab{ctx: ctx, t: b.t, name: name}
	chromedp.ListenTarget(ctx, func(ev any) {
		if e, ok := ev.(*runtime.EventExceptionThrown); ok {
			tb.mu.Lock()
			tb.errors = append(tb.errors, e.ExceptionDetails.Error())
			tb.mu.Unlock()
		}
	})
	b.t.Cleanup(func() {
		tb.mu.Lock()
		defer tb.mu.Unlock()
		for _, e := range tb.errors {
			b.t.Errorf("%s page threw: %s", name, e)
		}
		cancel()
	})
	// The first Run makes the tab and ties its life to ctx: it must not
	// get a context that ends sooner.
	if err := chromedp.Run(ctx); err != nil {
		b.t.Fatalf("opening a tab: %v", err)
	}
	for _, js := range initScripts {
		tb.run(chromedp.ActionFunc(func(ctx context.Context) error {
			_, err := page.AddScriptToEvaluateOnNewDocument(js).Do(ctx)
			return err
		}))
	}
	tb.run(chromedp.Navigate(url))
	return tb
}

// run runs actions in the tab, failing the test on error.
func (tb *tab) run(actions ...chromedp.Action) {
	tb.t.Helper()
	ctx, cancel := context.WithTimeout(tb.ctx, 30*time.Second)
	defer cancel()
	if err := chromedp.Run(ctx, actions...); err != nil {
		tb.t.Fatalf("%s page: %v", tb.name, err)
	}
}

// eval evaluates a JavaScript expression, awaiting a promise, into out.
func (tb *tab) eval(js string, out any) {
	tb.t.Helper()
	tb.run(chromedp.Evaluate(js, out, func(p *runtime.EvaluateParams) *runtime.EvaluateParams {
		return p.WithAwaitPromise(true)
	}))
}

// status is the text of the page's aria-live status line.
func (tb *tab) status() string {
	tb.t.Helper()
	var s string
	tb.eval(`document.getElementById("status")?.textContent ?? ""`, &s)
	return s
}

// waitStatus waits until the status line contains want.
func (tb *tab) waitStatus(want string, within time.Duration) {
	tb.t.Helper()
	deadline := time.Now().Add(within)
	for {
		s := tb.status()
		if strings.Contains(s, want) {
			return
		}
		if time.Now().After(deadline) {
			tb.screenshot("timeout")
			tb.t.Fatalf("%s page: status %q after %v, want it to contain %q", tb.name, s, within, want)
		}
		time.Sleep(250 * time.Millisecond)
	}
}

// screenshot saves the visible page as a PNG among the artifacts.
func (tb *tab) screenshot(label string) {
	tb.t.Helper()
	var png []byte
	ctx, cancel := context.WithTimeout(tb.ctx, 15*time.Second)
	defer cancel()
	if err := chromedp.Run(ctx, chromedp.CaptureScreenshot(&png)); err != nil {
		tb.t.Logf("%s page: screenshot: %v", tb.name, err)
		return
	}
	path := artifactPath(tb.t, tb.name+"-"+label+".png")
	if err := os.WriteFile(path, png, 0o644); err != nil {
		tb.t.Errorf("saving screenshot: %v", err)
	}
}

// videoState is what a video element shows over a short while.
type videoState struct {
	Frames     int     `json:"frames"`
	Advanced   float64 `json:"advanced"`
	ReadyState int     `json:"readyState"`
	Width      int     `json:"width"`
	Height     int     `json:"height"`
	Error      string  `json:"error"`
}

// playing tells whether the video presented new pictures.
func (v videoState) playing() bool {
	return v.Frames >= 3 && v.Advanced > 0.2 && v.ReadyState >= 2 && v.Width > 0
}

// sampleVideo watches the video element matched by selector for a
// second: frames presented, currentTime advanced, size.
func (tb *tab) sampleVideo(selector string) videoState {
	tb.t.Helper()
	// A page in a background tab presents no frames: bring it forward,
	// as a person would look at it.
	tb.run(page.BringToFront())
	var v videoState
	tb.eval(`(async (sel) => {
		const v = document.querySelector(sel);
		if (!v) return { error: "no element " + sel };
		const t0 = v.currentTime;
		let frames = 0;
		const count = () => { frames++; v.requestVideoFrameCallback(count); };
		v.requestVideoFrameCallback(count);
		await new Promise((r) => setTimeout(r, 1000));
		return {
			frames, advanced: v.currentTime - t0, readyState: v.readyState,
			width: v.videoWidth, height: v.videoHeight,
			error: v.error ? String(v.error.message || v.error.code) : "",
		};
	})(`+jsString(selector)+`)`, &v)
	return v
}

// waitPlaying waits until the video matched by selector is playing.
func (tb *tab) waitPlaying(selector string, within time.Duration) videoState {
	tb.t.Helper()
	deadline := time.Now().Add(within)
	for {
		v := tb.sampleVideo(selector)
		if v.playing() {
			return v
		}
		if time.Now().After(deadline) {
			tb.screenshot("not-playing")
			tb.t.Fatalf("%s page: %s not playing after %v: %+v; status %q", tb.name, selector, within, v, tb.status())
		}
	}
}

func jsString(s string) string {
	return `"` + strings.NewReplacer(`\`, `\\`, `"`, `\"`).Replace(s) + `"`
}
