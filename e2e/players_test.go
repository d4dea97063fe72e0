package e2e

import (
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"
)

// watchCSP is a page script that keeps what the pages'
// Content-Security-Policy refused in window.cspRefused: a player that
// needs more than the policy allows must not pass by breaking quietly.
const watchCSP = `window.cspRefused = [];
document.addEventListener("securitypolicyviolation", (e) => {
	window.cspRefused.push(e.effectiveDirective + " " + e.blockedURI);
});`

// checkCSP fails the test if the page's policy refused anything.
func (tb *tab) checkCSP() {
	tb.t.Helper()
	var refused []string
	tb.eval(`window.cspRefused ?? []`, &refused)
	if len(refused) > 0 {
		tb.t.Errorf("%s page: the Content-Security-Policy refused %q", tb.name, refused)
	}
}

// waitLive polls the battle's live playlist until it answers 200 and
// returns when it first did.
func (s *server) waitLive(t testing.TB, id string) time.Time {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		res, err := s.client.Get(s.base + "/hls/" + id + "/index.m3u8")
		if err == nil {
			res.Body.Close()
			if res.StatusCode == http.StatusOK {
				return time.Now()
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("the live playlist of %s did not come within 30 s (last: %v)", id, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// keepsPlaying watches the video matched by selector for d: the picture
// must advance with the clock and never stop for longer than a second.
func (tb *tab) keepsPlaying(selector string, d time.Duration) {
	tb.t.Helper()
	var got struct {
		Advanced float64 `json:"advanced"`
		Frames   int     `json:"frames"`
		Longest  float64 `json:"longest"` // ms between two presented frames
	}
	tb.eval(`(async (sel, ms) => {
		const v = document.querySelector(sel);
		const t0 = v.currentTime;
		let frames = 0, last = performance.now(), longest = 0;
		const count = (now) => {
			frames++;
			longest = Math.max(longest, now - last);
			last = now;
			v.requestVideoFrameCallback(count);
		};
		v.requestVideoFrameCallback(count);
		await new Promise((r) => setTimeout(r, ms));
		longest = Math.max(longest, performance.now() - last);
		return { advanced: v.currentTime - t0, frames, longest };
	})(`+jsString(selector)+`, `+strconv.FormatInt(d.Milliseconds(), 10)+`)`, &got)
	secs := d.Seconds()
	if got.Advanced < secs-1.5 || got.Frames < int(secs*15) || got.Longest > 1000 {
		tb.screenshot("stalled")
		tb.t.Errorf("%s page: over %.0f s %s advanced %.1f s in %d frames, longest gap %.0f ms; status %q",
			tb.name, secs, selector, got.Advanced, got.Frames, got.Longest, tb.status())
	}
}

// replayPlaysAndSeeks starts the replay page's recording, waits for it
// to play, seeks to the middle and checks it plays on from there.
func (tb *tab) replayPlaysAndSeeks() {
	tb.t.Helper()
	var started bool
	tb.eval(`(async () => {
		const v = document.getElementById("recording");
		for (let i = 0; i < 100 && !v.currentSrc; i++) await new Promise((r) => setTimeout(r, 100));
		return v.play().then(() => true, () => false);
	})()`, &started)
	if !started {
		tb.t.Fatalf("%s page: the recording does not start; status %q", tb.name, tb.status())
	}
	tb.waitPlaying("#recording", 30*time.Second)
	var seek struct {
		Duration float64 `json:"duration"`
		At       float64 `json:"at"`
	}
	tb.eval(`(async () => {
		const v = document.getElementById("recording");
		const seeked = new Promise((r) => v.addEventListener("seeked", r, { once: true }));
		v.currentTime = v.duration / 2;
		await seeked;
		return { duration: v.duration, at: v.currentTime };
	})()`, &seek)
	if seek.Duration < 5 || seek.At < seek.Duration/2-1 || seek.At > seek.Duration/2+1 {
		tb.t.Errorf("%s page: replay seek: duration %.1f s, at %.1f s after seeking to the middle", tb.name, seek.Duration, seek.At)
	}
	tb.waitPlaying("#recording", 20*time.Second)
	var at float64
	tb.eval(`document.getElementById("recording").currentTime`, &at)
	if at < seek.At {
		tb.t.Errorf("%s page: after the seek to %.1f s the recording plays at %.1f s", tb.name, seek.At, at)
	}
}

// TestPlayersFromTheFirstSecond plays a battle in each common web player
// (hls.js, the pages' own; Shaka Player; video.js with VHS) in Chromium,
// opened the moment the live playlist first answers, as a watcher who
// comes in at the battle's first second does: it must play and go on
// playing. Then the battle ends, the watch page moves to the replay with
// the same player, and the recording plays and seeks.
func TestPlayersFromTheFirstSecond(t *testing.T) {
	for _, p := range []struct {
		name, query string
		// settles: the player plays whole segments (not LL-HLS parts)
		// and, opened in the battle's first second, starts at the live
		// edge: it may wait for a segment or two while its buffer
		// builds. It must go on playing once it has a second and a
		// half.
		settles bool
	}{
		{"hls.js", "", false},
		{"shaka", "?player=shaka", false},
		{"videojs", "?player=videojs", true},
	} {
		t.Run(p.name, func(t *testing.T) {
			s := startServer(t, false)
			b := s.createBattle(t, "first second, "+p.name)
			br := newBrowser(t, false)
			s.startBot(t, b, 1)
			s.startBot(t, b, 2)
			first := s.waitLive(t, b.ID)
			watch := br.open("watch", s.base+"/b/"+b.ID+p.query, watchCSP)
			t.Logf("the page opened %v after the live playlist first answered", time.Since(first).Round(time.Millisecond))

			v := watch.waitPlaying("#program", 30*time.Second)
			t.Logf("%s plays %dx%d %v after the live playlist first answered", p.name, v.Width, v.Height,
				time.Since(first).Round(100*time.Millisecond))
			var player string
			watch.eval(`document.getElementById("program").dataset.player ?? ""`, &player)
			if player != p.name {
				t.Fatalf("the watch page plays with %q, want %q", player, p.name)
			}
			if p.settles {
				watch.waitJS(p.name+" has 1.5 s ahead", `(() => {
					const v = document.getElementById("program");
					return v.buffered.length > 0 && v.buffered.end(v.buffered.length - 1) - v.currentTime >= 1.5;
				})()`, 20*time.Second)
			}
			watch.keepsPlaying("#program", 8*time.Second)
			watch.screenshot("live")

			s.call(t, http.MethodPost, "/api/battles/"+b.ID+"/end", b.HostToken, nil, http.StatusOK, nil)
			watch.waitPath("/b/"+b.ID+"/replay", 20*time.Second)
			var search string
			watch.eval(`location.search`, &search)
			if search != p.query {
				t.Errorf("the replay's address asks for %q, want %q", search, p.query)
			}
			watch.replayPlaysAndSeeks()
			watch.eval(`document.getElementById("recording").dataset.player ?? ""`, &player)
			if player != p.name {
				t.Errorf("the replay plays with %q, want %q", player, p.name)
			}
			watch.screenshot("replay")
			watch.checkCSP()
			if s := watch.status(); strings.Contains(s, "stopped") || strings.Contains(s, "Lost") {
				t.Errorf("the replay page says %q", s)
			}
		})
	}
}
