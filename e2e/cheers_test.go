package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
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
