package e2e

import (
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

// TestBattleInBrowsers plays a whole battle in Chromium: two singer pages
// publish from the fake camera and see each other, a watcher plays the
// program, a singer reloads and comes back while the program goes on,
// the host ends the battle and the watcher lands on the replay, which
// plays and seeks.
func TestBattleInBrowsers(t *testing.T) {
	s := startServer(t, false)
	b := s.createBattle(t, "e2e battle")
	singers := newBrowser(t, true)
	viewer := newBrowser(t, false)

	singURL := func(slot int) string {
		return s.base + "/b/" + b.ID + "/sing/" + strconv.Itoa(slot) + "#token=" + b.SingerTokens[slot-1]
	}
	sing1 := singers.open("sing1", singURL(1))
	sing2 := singers.open("sing2", singURL(2))

	// Each singer publishes and sees the other.
	sing1.waitStatus("You are live", 30*time.Second)
	sing2.waitStatus("You are live", 30*time.Second)
	for _, page := range []*tab{sing1, sing2} {
		v := page.waitPlaying("#remote", 30*time.Second)
		if v.Width != 640 || v.Height != 480 {
			t.Errorf("%s sees the opponent at %dx%d, want the fake camera's 640x480", page.name, v.Width, v.Height)
		}
		page.waitStatus("is on", 10*time.Second)
	}
	var fragment string
	sing1.eval(`location.hash`, &fragment)
	if fragment != "" {
		t.Errorf("sing page kept the token in its address: %q", fragment)
	}
	sing1.screenshot("live")

	// The watcher plays the program.
	watch := viewer.open("watch", s.base+"/b/"+b.ID)
	v := watch.waitPlaying("#program", 45*time.Second)
	// Either rung of the ladder: hls.js picks one by its estimate of the
	// network (TestEveryRungPlaysAtItsSize checks each).
	if size := [2]int{v.Width, v.Height}; size != [2]int{1280, 720} && size != [2]int{640, 360} {
		t.Errorf("program plays at %dx%d, want 1280x720 or 640x360", v.Width, v.Height)
	}
	var player struct {
		HLSJS bool `json:"hlsjs"`
	}
	// hls.js feeds the element through Media Source Extensions: a blob
	// URL, where Chromium's native HLS would have the playlist's URL.
	watch.eval(`({hlsjs: document.getElementById("program").currentSrc.startsWith("blob:")})`, &player)
	if !player.HLSJS {
		t.Error("watch page does not play through hls.js")
	}
	watch.waitStatus("Live", 15*time.Second)
	watch.screenshot("live")

	// Singer 1 reloads: the page takes the same slot back with the token
	// it kept, singer 2 sees them again, and the program never stops.
	var before float64
	watch.eval(`document.getElementById("program").currentTime`, &before)
	reloaded := time.Now()
	sing1.run(chromedp.Reload())
	sing1.waitStatus("You are live", 30*time.Second)
	sing1.waitPlaying("#remote", 30*time.Second)
	sing2.waitPlaying("#remote", 30*time.Second)
	watch.waitPlaying("#program", 15*time.Second)
	var after float64
	watch.eval(`document.getElementById("program").currentTime`, &after)
	if elapsed := time.Since(reloaded).Seconds(); after-before < elapsed/2 {
		t.Errorf("program advanced %.1f s while singer 1 reloaded over %.1f s", after-before, elapsed)
	}
	if got := s.battle(t, b.ID); len(got.Singers) != 2 || !got.Singers[0].Connected || !got.Singers[1].Connected {
		t.Errorf("after the reload the battle says singers %+v, want both connected", got.Singers)
	}

	// The host ends the battle: the watcher moves to the replay, which
	// plays the recording and seeks in it.
	s.call(t, http.MethodPost, "/api/battles/"+b.ID+"/end", b.HostToken, nil, http.StatusOK, nil)
	deadline := time.Now().Add(20 * time.Second)
	for {
		var path string
		watch.eval(`location.pathname`, &path)
		if strings.HasSuffix(path, "/replay") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("watch page still at %s 20 s after the battle ended; status %q", path, watch.status())
		}
		time.Sleep(250 * time.Millisecond)
	}
	sing2.waitStatus("ended", 15*time.Second)
	sing2.screenshot("ended")

	var started bool
	watch.eval(`(async () => {
		const v = document.getElementById("recording");
		for (let i = 0; i < 100 && !v.currentSrc; i++) await new Promise((r) => setTimeout(r, 100));
		return v.play().then(() => true, () => false);
	})()`, &started)
	if !started {
		t.Fatalf("replay does not start; status %q", watch.status())
	}
	v = watch.waitPlaying("#recording", 20*time.Second)
	if v.Width != 1280 || v.Height != 720 {
		t.Errorf("replay plays at %dx%d, want 1280x720", v.Width, v.Height)
	}
	var seek struct {
		Duration float64 `json:"duration"`
		At       float64 `json:"at"`
	}
	watch.eval(`(async () => {
		const v = document.getElementById("recording");
		const target = v.duration / 2;
		const seeked = new Promise((r) => v.addEventListener("seeked", r, { once: true }));
		v.currentTime = target;
		await seeked;
		return { duration: v.duration, at: v.currentTime };
	})()`, &seek)
	if seek.Duration < 5 || seek.At < seek.Duration/2-1 || seek.At > seek.Duration/2+1 {
		t.Errorf("replay seek: duration %.1f s, at %.1f s after seeking to the middle", seek.Duration, seek.At)
	}
	watch.waitPlaying("#recording", 20*time.Second)
	watch.screenshot("replay")
}
