package e2e

import (
	"net/http"
	"regexp"
	"sort"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

// behindLive is how far behind the bots' clock the watch page's latest
// pictures are (recordFramesJS): the median over the last second of
// pictures with a time code.
func (tb *tab) behindLive() time.Duration {
	tb.t.Helper()
	var frames []shownFrame
	tb.eval(`(() => { const now = Date.now(); return window.frames.filter((f) => now - f.now < 1000); })()`, &frames)
	var ms []float64
	for _, f := range frames {
		if f.Code != nil {
			ms = append(ms, float64(int32(uint32(f.Now)-*f.Code)))
		}
	}
	if len(ms) < 5 {
		tb.screenshot("no-codes")
		tb.t.Fatalf("%s page: %d pictures with a time code in the last second of %d", tb.name, len(ms), len(frames))
	}
	sort.Float64s(ms)
	return time.Duration(percentile(ms, 0.5)) * time.Millisecond
}

// TestRewindAndBackToLive goes back from the live program into the
// battle's recording and returns: "Replay round 1" plays the recording
// from the round's first turn (the countdown reads the whole turn),
// "Back 30 s" goes further back (to the recording's start, the battle
// being younger than that), "Back to live" returns to the live edge. How
// far behind the picture is, is read from the bots' time codes.
func TestRewindAndBackToLive(t *testing.T) {
	s := startServer(t, false, "--min-turn-seconds", "1")
	b := s.createRound(t, "rewind e2e", [2]string{"Ann", "Bob"}, 20)
	s.startBot(t, b, 1)
	s.startBot(t, b, 2)
	watch := s.watchFrames(t, b.ID)
	s.call(t, http.MethodPost, "/api/battles/"+b.ID+"/start", b.HostToken, nil, http.StatusOK, nil)
	watch.waitJS("the round can be replayed", `!document.getElementById("replay-round").hidden`, 15*time.Second)
	var label string
	watch.eval(`document.getElementById("replay-round").textContent`, &label)
	if label != "Replay round 1" {
		t.Errorf("the replay button reads %q", label)
	}
	time.Sleep(6 * time.Second)
	live := watch.behindLive()
	t.Logf("live: %v behind", live)
	if live > 3*time.Second {
		t.Errorf("the live picture is %v behind", live)
	}

	watch.run(chromedp.Click("#replay-round", chromedp.ByID))
	watch.waitStatus("Playing the recording", 20*time.Second)
	watch.waitJS("the round plays from its start",
		`document.getElementById("turn").textContent === "Ann is singing" && /^0:(19|20) left$/.test(document.getElementById("countdown").textContent)`,
		10*time.Second)
	time.Sleep(1500 * time.Millisecond)
	rewound := watch.behindLive()
	t.Logf("replaying the round: %v behind", rewound)
	if rewound < live+5*time.Second {
		t.Errorf("replaying the round the picture is %v behind, live it was %v: it did not go back to the round's start", rewound, live)
	}
	var goLive, latency string
	watch.eval(`document.getElementById("go-live").hidden ? "" : document.getElementById("go-live").textContent`, &goLive)
	if goLive != "Back to live" {
		t.Errorf("rewound, the page offers %q, want Back to live", goLive)
	}
	watch.eval(`document.getElementById("latency").textContent`, &latency)
	if !regexp.MustCompile(`^\d+\.\d s$`).MatchString(latency) {
		t.Errorf("rewound, the page says it is %q behind live", latency)
	}
	watch.screenshot("round")

	// Back 30 s: the battle is younger than that, so to the start.
	watch.run(chromedp.Click("#rewind", chromedp.ByID))
	watch.waitJS("the recording plays from its start",
		`(() => { const v = document.getElementById("recording") ?? document.getElementById("program"); return v.currentTime < 2 && !v.paused; })()`,
		10*time.Second)
	time.Sleep(1500 * time.Millisecond)
	start := watch.behindLive()
	t.Logf("back 30 s: %v behind", start)
	if start < rewound+2*time.Second {
		t.Errorf("after Back 30 s the picture is %v behind, before it %v", start, rewound)
	}

	watch.run(chromedp.Click("#go-live", chromedp.ByID))
	watch.waitStatus("Live.", 20*time.Second)
	watch.waitJS("the live picture comes back",
		`(() => { const f = window.frames.at(-1); return f && Date.now() - f.now < 200; })()`, 10*time.Second)
	time.Sleep(3 * time.Second)
	back := watch.behindLive()
	t.Logf("back to live: %v behind", back)
	if back > 3*time.Second {
		t.Errorf("back to live the picture is %v behind", back)
	}
	var hidden bool
	watch.eval(`document.getElementById("go-live").hidden`, &hidden)
	if !hidden {
		t.Error("live again, the page still offers Back to live")
	}
	watch.screenshot("live-again")
}
