// Package chromiumtest starts the headless Chromium that tests drive
// through chromedp: Debian's /usr/bin/chromium with the flags a
// sandbox-less machine without a display needs, a profile of its own
// and nothing throttled, so that several tabs play at once.
package chromiumtest

import (
	"context"
	"os"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

// Path is where Debian installs Chromium.
const Path = "/usr/bin/chromium"

// Options are what a test asks of the browser.
type Options struct {
	// Media gives it a fake camera and microphone (a test pattern and a
	// beep) that need no permission prompt.
	Media bool
	// VideoFile, with Media, is a Y4M clip the fake camera plays instead.
	VideoFile string
	// Extra are more flags, after (and so over) the others.
	Extra []chromedp.ExecAllocatorOption
}

// Start starts Chromium for t and returns the context of its first tab.
// The browser quits when t ends, and its profile is removed then, with
// a few tries: its last processes may still write there as it quits
// (t.TempDir's single try would fail the test).
func Start(t testing.TB, o Options) context.Context {
	t.Helper()
	if _, err := os.Stat(Path); err != nil {
		t.Fatalf("chromium is not installed: %v", err)
	}
	profile, err := os.MkdirTemp("", "singoff-chromium-")
	if err != nil {
		t.Fatal(err)
	}
	opts := []chromedp.ExecAllocatorOption{
		chromedp.ExecPath(Path),
		chromedp.UserDataDir(profile),
		chromedp.WindowSize(1280, 900),
		chromedp.Flag("headless", true),
		chromedp.Flag("no-sandbox", true),
		chromedp.Flag("disable-gpu", true),
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("no-first-run", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("mute-audio", true),
		// Several tabs play at once; none of them may be throttled as
		// hidden.
		chromedp.Flag("disable-background-timer-throttling", true),
		chromedp.Flag("disable-backgrounding-occluded-windows", true),
		chromedp.Flag("disable-renderer-backgrounding", true),
		// Nobody clicks in a test, so nothing would play with sound.
		chromedp.Flag("autoplay-policy", "no-user-gesture-required"),
		// The servers' ICE candidates are on 127.0.0.1 only.
		chromedp.Flag("allow-loopback-in-peer-connection", true),
	}
	if o.Media {
		opts = append(opts,
			chromedp.Flag("use-fake-device-for-media-stream", true),
			chromedp.Flag("use-fake-ui-for-media-stream", true))
		if o.VideoFile != "" {
			opts = append(opts, chromedp.Flag("use-file-for-fake-video-capture", o.VideoFile))
		}
	}
	opts = append(opts, o.Extra...)
	alloc, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancel := chromedp.NewContext(alloc)
	t.Cleanup(func() {
		cancel()
		cancelAlloc()
		for range 20 {
			if err = os.RemoveAll(profile); err == nil {
				return
			}
			time.Sleep(100 * time.Millisecond)
		}
		t.Errorf("removing chromium's profile: %v", err)
	})
	if err := chromedp.Run(ctx); err != nil {
		t.Fatalf("starting chromium: %v", err)
	}
	return ctx
}
