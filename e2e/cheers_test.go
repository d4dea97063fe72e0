package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os/exec"
	"testing"
	"time"
)

// Cheers end to end: watchers tap for both sides, the battle object and
// the events stream count them, aggregated (a stream event per batch,
// not per tap); a watcher past its bound, a client without an identity
// and another site's page are refused.
func TestCheersEndToEnd(t *testing.T) {
	s := startServer(t, false, "--trusted-proxy", "127.0.0.1")
	var b battle
	s.call(t, http.MethodPost, "/api/battles", "", map[string]any{"title": "cheers"}, http.StatusCreated, &b)
	s.call(t, http.MethodPost, "/api/battles/"+b.ID+"/start", b.HostToken, nil, http.StatusOK, nil)
	cheers := "/api/battles/" + b.ID + "/cheers"
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	sub := followEvents(ctx, t, s.client, s.base+"/api/battles/"+b.ID+"/events")

	for _, c := range []struct {
		name   string
		client *http.Client
		body   string
		want   int
		header []string
	}{
		{"no identity", s.client, `{"slot":1,"count":1}`, http.StatusForbidden, nil},
		{"cross-site", s.newWatcher(t, b.ID), `{"slot":1,"count":1}`, http.StatusForbidden,
			[]string{"Origin", "https://elsewhere.example"}},
		{"not JSON", s.newWatcher(t, b.ID), `{"slot":1,"count":1}`, http.StatusUnsupportedMediaType, []string{"Content-Type", "text/plain"}},
		{"slot 3", s.newWatcher(t, b.ID), `{"slot":3,"count":1}`, http.StatusBadRequest, nil},
		{"count 0", s.newWatcher(t, b.ID), `{"slot":1,"count":0}`, http.StatusBadRequest, nil},
		{"count 21", s.newWatcher(t, b.ID), `{"slot":1,"count":21}`, http.StatusBadRequest, nil},
	} {
		t.Run("refused: "+c.name, func(t *testing.T) {
			if status, data := s.post(t, c.client, http.MethodPost, cheers, "", "", c.body, c.header...); status != c.want {
				t.Fatalf("%d %s, want %d", status, data, c.want)
			}
		})
	}

	// Ten watchers, each from a network of its own, tap 3 times for
	// slot 1 and 2 times for slot 2, then one more full hand: past the
	// bound of 20 a second.
	var want [2]int
	start := time.Now()
	for i := range 10 {
		w := s.newWatcher(t, b.ID)
		xff := fmt.Sprintf("198.51.100.%d", i+1)
		for j := range 5 {
			slot := 1 + j/3
			if status, data := s.post(t, w, http.MethodPost, cheers, xff, "", fmt.Sprintf(`{"slot":%d,"count":2}`, slot)); status != http.StatusNoContent {
				t.Fatalf("watcher %d tap %d: %d %s", i, j, status, data)
			}
			want[slot-1] += 2
			time.Sleep(20 * time.Millisecond) // taps over a second
		}
		if status, _ := s.post(t, w, http.MethodPost, cheers, xff, "", `{"slot":1,"count":20}`); status != http.StatusTooManyRequests {
			t.Fatalf("watcher %d past its bound: %d, want 429", i, status)
		}
	}
	taps := time.Since(start)
	deadline := time.Now().Add(5 * time.Second)
	for s.battle(t, b.ID).Cheers != want {
		if time.Now().After(deadline) {
			t.Fatalf("cheers %v, want %v", s.battle(t, b.ID).Cheers, want)
		}
		time.Sleep(50 * time.Millisecond)
	}
	time.Sleep(500 * time.Millisecond)
	sub.mu.Lock()
	var seen [][2]int
	for _, ev := range sub.events {
		var v struct {
			Cheers [2]int `json:"cheers"`
		}
		if ev.name == "battle" && json.Unmarshal([]byte(ev.data), &v) == nil {
			seen = append(seen, v.Cheers)
		}
	}
	sub.mu.Unlock()
	if len(seen) == 0 || seen[len(seen)-1] != want {
		t.Fatalf("the events stream's last cheers %v, want %v", seen, want)
	}
	// 50 accepted taps in `taps`: the stream carries a batch every
	// 250 ms at most (plus the first state and the start).
	if most := int(taps/(250*time.Millisecond)) + 4; len(seen) > most {
		t.Fatalf("%d battle events for 50 taps in %v: want at most %d (batched)", len(seen), taps, most)
	}
	t.Logf("50 taps in %v: %d battle events", taps, len(seen))
}

// meanColour decodes the newest live frame and returns the mean colour
// of the program's rectangle (x, y, w, h).
func meanColour(t testing.TB, live string, x, y, w, h int) [3]float64 {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, "ffmpeg", "-v", "error", "-live_start_index", "-1", "-i", live,
		"-frames:v", "1", "-vf", fmt.Sprintf("crop=%d:%d:%d:%d", w, h, x, y), "-f", "rawvideo", "-pix_fmt", "rgb24", "-").Output()
	if err != nil || len(out) != w*h*3 {
		t.Fatalf("grabbing the program at %d,%d: %v (%d bytes)", x, y, err, len(out))
	}
	var c [3]float64
	for i, v := range out {
		c[i%3] += float64(v)
	}
	for k := range c {
		c[k] /= float64(w * h)
	}
	return c
}

// Cheers sent through the API are drawn into the program: slot 2's
// cheer meter (top right; its bar from x 1050 to 1242, y 74 to 80) is
// filled in slot 2's blue once watchers cheer for slot 2, and was not
// before.
func TestCheersDrawnInTheProgram(t *testing.T) {
	s := startServer(t, false, "--trusted-proxy", "127.0.0.1")
	b := s.createBattle(t, "cheered")
	s.startBot(t, b, 1)
	waitFor(t, "the battle live", 30*time.Second, func() bool { return s.battle(t, b.ID).State == "live" })
	live := s.battle(t, b.ID).HLSURL
	const barX, barY, barW, barH = 1056, 75, 180, 4
	waitFor(t, "the live program", 30*time.Second, func() bool {
		res, err := s.client.Get(live)
		if err == nil {
			res.Body.Close()
		}
		return err == nil && res.StatusCode == http.StatusOK
	})
	before := meanColour(t, live, barX, barY, barW, barH)
	if bluish(before) {
		t.Fatalf("slot 2's cheer bar is blue before any cheer: %v", before)
	}
	for i := range 3 {
		w := s.newWatcher(t, b.ID)
		if status, data := s.post(t, w, http.MethodPost, "/api/battles/"+b.ID+"/cheers", fmt.Sprintf("198.51.100.%d", i+1), "",
			`{"slot":2,"count":10}`); status != http.StatusNoContent {
			t.Fatalf("cheer %d: %d %s", i, status, data)
		}
	}
	waitFor(t, "the cheers counted", 10*time.Second, func() bool { return s.battle(t, b.ID).Cheers == [2]int{0, 30} })
	var after [3]float64
	waitFor(t, "slot 2's cheer bar drawn blue in the program", 30*time.Second, func() bool {
		after = meanColour(t, live, barX, barY, barW, barH)
		return bluish(after)
	})
	t.Logf("slot 2's cheer bar: %v before the cheers, %v after", before, after)
}
