package e2e

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"net/http/cookiejar"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"
)

// eventLog records the battle objects of an events stream with the time
// each arrived.
type eventLog struct {
	mu     sync.Mutex
	events []formatBattle
	at     []time.Time
}

func (l *eventLog) follow(ctx context.Context, t *testing.T, url string) {
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Error(err)
		return
	}
	defer res.Body.Close()
	sc := bufio.NewScanner(res.Body)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		data, ok := strings.CutPrefix(sc.Text(), "data: ")
		if !ok {
			continue
		}
		var b formatBattle
		if err := json.Unmarshal([]byte(data), &b); err != nil {
			t.Errorf("event: %v", err)
			continue
		}
		l.mu.Lock()
		l.events = append(l.events, b)
		l.at = append(l.at, time.Now())
		l.mu.Unlock()
	}
}

// first returns when the first event matching came, or zero.
func (l *eventLog) first(match func(formatBattle) bool) time.Time {
	l.mu.Lock()
	defer l.mu.Unlock()
	for i, e := range l.events {
		if match(e) {
			return l.at[i]
		}
	}
	return time.Time{}
}

func (s *server) vote(t testing.TB, watcher *http.Client, id string, slot int) int {
	t.Helper()
	body, _ := json.Marshal(map[string]int{"slot": slot})
	res, err := watcher.Post(s.base+"/api/battles/"+id+"/votes", "application/json", bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	return res.StatusCode
}

// newWatcher is a watcher who opened battle id's watch page, which
// issued their identity (a cookie in the client's jar).
func (s *server) newWatcher(t testing.TB, id string) *http.Client {
	t.Helper()
	jar, err := cookiejar.New(nil)
	if err != nil {
		t.Fatal(err)
	}
	c := &http.Client{Jar: jar, Timeout: 10 * time.Second, Transport: s.client.Transport}
	res, err := c.Get(s.base + "/b/" + id)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != http.StatusOK || len(jar.Cookies(res.Request.URL)) == 0 {
		t.Fatalf("the watch page issued no watcher: %d", res.StatusCode)
	}
	return c
}

// barEnds decodes the newest live frame's vote bar (the program's
// bottom centre) and returns the mean colour of its left and right ends.
func barEnds(t testing.TB, live string) (left, right [3]float64) {
	t.Helper()
	const w, h = 480, 16 // the bar: x 400–880, y 680–696
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, "ffmpeg", "-v", "error", "-live_start_index", "-1", "-i", live,
		"-frames:v", "1", "-vf", "crop=480:16:400:680", "-f", "rawvideo", "-pix_fmt", "rgb24", "-").Output()
	if err != nil || len(out) != w*h*3 {
		t.Fatalf("grabbing the vote bar: %v (%d bytes)", err, len(out))
	}
	mean := func(x0, x1 int) (c [3]float64) {
		for y := range h {
			for x := x0; x < x1; x++ {
				for k := range 3 {
					c[k] += float64(out[(y*w+x)*3+k])
				}
			}
		}
		for k := range c {
			c[k] /= float64((x1 - x0) * h)
		}
		return c
	}
	return mean(20, 120), mean(w-120, w-20)
}

// Slot 1's colour is red, slot 2's blue.
func reddish(c [3]float64) bool { return c[0] > c[2]+50 }
func bluish(c [3]float64) bool  { return c[2] > c[0]+50 }
func unlit(c [3]float64) bool   { return c[0] < 40 && c[1] < 40 && c[2] < 40 }

// A whole battle with bots and the real binary: the host starts it, the
// turns advance on time, votes from distinct watchers count (a second
// vote replaces the first), the program's vote bar changes with the
// tally, voting closes, the winner is right, and the events stream
// carries each change.
func TestFullBattle(t *testing.T) {
	s := startServer(t, false, "--min-turn-seconds", "1")
	b := s.createRound(t, "format e2e", [2]string{"Ann", "Bo"}, 6)
	s.startBot(t, b, 1)
	s.startBot(t, b, 2)
	live := s.liveProgram(t, b.ID)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	events := &eventLog{}
	go events.follow(ctx, t, s.base+"/api/battles/"+b.ID+"/events")

	ann, bo, cy := s.newWatcher(t, b.ID), s.newWatcher(t, b.ID), s.newWatcher(t, b.ID)
	if status := s.vote(t, ann, b.ID, 1); status != http.StatusConflict {
		t.Fatalf("vote before the start: %d", status)
	}
	// Before the start the program shows no vote bar.
	var left, right [3]float64
	waitFor(t, "a program without a vote bar", 15*time.Second, func() bool {
		left, right = barEnds(t, live)
		return unlit(left) && unlit(right)
	})

	var started formatBattle
	s.call(t, http.MethodPost, "/api/battles/"+b.ID+"/start", b.HostToken, nil, http.StatusOK, &started)
	t0 := time.Now()
	if started.Round != 1 || started.Turn == nil || *started.Turn != 1 {
		t.Fatalf("started: %+v", started)
	}
	s.call(t, http.MethodPost, "/api/battles/"+b.ID+"/start", b.HostToken, nil, http.StatusConflict, nil)
	for _, v := range []struct {
		who  *http.Client
		slot int
	}{{ann, 1}, {bo, 1}, {cy, 2}, {cy, 1}} {
		if status := s.vote(t, v.who, b.ID, v.slot); status != http.StatusNoContent {
			t.Fatalf("vote: %d", status)
		}
	}
	// The bar follows the tally in the program (a frame of the newest
	// segment is a second or two old): all slot 1's at 3–0, then a third
	// slot 2's when a watcher changes their vote.
	waitFor(t, "the vote bar to show 3–0", 10*time.Second, func() bool {
		left, right = barEnds(t, live)
		return reddish(left) && reddish(right)
	})
	if status := s.vote(t, cy, b.ID, 2); status != http.StatusNoContent {
		t.Fatalf("changed vote: %d", status)
	}
	waitFor(t, "the vote bar to show 2–1", 10*time.Second, func() bool {
		left, right = barEnds(t, live)
		return reddish(left) && bluish(right)
	})
	if status := s.vote(t, cy, b.ID, 1); status != http.StatusNoContent {
		t.Fatalf("vote changed back: %d", status)
	}

	// Slot 2's turn 6 s after the start, the result 6 + 6 + 15 s after.
	waitFor(t, "the result", 30*time.Second, func() bool {
		return !events.first(func(e formatBattle) bool { return e.Winner != nil }).IsZero()
	})
	second := events.first(func(e formatBattle) bool { return e.Turn != nil && *e.Turn == 2 })
	result := events.first(func(e formatBattle) bool { return e.Winner != nil })
	for _, c := range []struct {
		what string
		at   time.Time
		want time.Duration
	}{{"slot 2's turn", second, 6 * time.Second}, {"the result", result, 27 * time.Second}} {
		if got := c.at.Sub(t0); got < c.want-time.Second || got > c.want+time.Second {
			t.Errorf("%s came %v after the start, want %v ± 1 s", c.what, got.Round(time.Millisecond), c.want)
		}
	}
	if status := s.vote(t, bo, b.ID, 2); status != http.StatusConflict {
		t.Fatalf("vote after the round's voting closed: %d", status)
	}
	var got formatBattle
	s.call(t, http.MethodGet, "/api/battles/"+b.ID, "", nil, http.StatusOK, &got)
	if got.Winner == nil || *got.Winner != 1 || len(got.Votes) != 1 || got.Votes[0] != [2]int{3, 0} || got.VotingOpen || got.Turn != nil {
		t.Fatalf("the result: %+v", got)
	}
	if events.first(func(e formatBattle) bool { return len(e.Votes) == 1 && e.Votes[0] == [2]int{3, 0} }).IsZero() {
		t.Error("the events stream never carried the 3–0 tally")
	}
}

// A restart in the middle of a battle keeps every vote.
func TestRestartKeepsVotes(t *testing.T) {
	s := startServer(t, false, "--min-turn-seconds", "1")
	var b battle
	s.call(t, http.MethodPost, "/api/battles", "", map[string]any{"title": "restart", "rounds": 2, "turn_seconds": 60},
		http.StatusCreated, &b)
	watchers := []*http.Client{s.newWatcher(t, b.ID), s.newWatcher(t, b.ID), s.newWatcher(t, b.ID)}
	s.call(t, http.MethodPost, "/api/battles/"+b.ID+"/start", b.HostToken, nil, http.StatusOK, nil)
	for i, slot := range []int{2, 2, 1} {
		if status := s.vote(t, watchers[i], b.ID, slot); status != http.StatusNoContent {
			t.Fatalf("vote %d: %d", i, status)
		}
	}
	s.kill(t)
	s.start(t)
	// The watchers' identities outlive the restart: a changed vote counts.
	if status := s.vote(t, watchers[0], b.ID, 1); status != http.StatusNoContent {
		t.Fatalf("a watcher's vote after the restart: %d", status)
	}
	var got formatBattle
	s.call(t, http.MethodGet, "/api/battles/"+b.ID, "", nil, http.StatusOK, &got)
	if len(got.Votes) != 2 || got.Votes[0] != [2]int{2, 1} || got.Votes[1] != [2]int{0, 0} {
		t.Fatalf("votes after a restart: %v", got.Votes)
	}
}
