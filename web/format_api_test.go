package battle

import (
	"bufio"
	"context"
	"encoding/json"
	"net/http"
	"net/http/cookiejar"
	"strings"
	"sync"
	"testing"
	"time"
)

// watcherClient is one watcher: its own cookie jar.
func watcherClient(t *testing.T) *http.Client {
	jar, err := cookiejar.New(nil)
	if err != nil {
		t.Fatal(err)
	}
	return &http.Client{Jar: jar, Timeout: 5 * time.Second}
}

func vote(t *testing.T, c *http.Client, base, id, body string) int {
	t.Helper()
	resp, err := c.Post(base+"/api/battles/"+id+"/votes", "application/json", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

// sseEvents collects the battle objects a Server-Sent Events stream
// carries.
type sseEvents struct {
	mu     sync.Mutex
	events []View
}

func (e *sseEvents) read(t *testing.T, ctx context.Context, url string) {
	req, _ := http.NewRequestWithContext(ctx, "GET", url, nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Error(err)
		return
	}
	defer resp.Body.Close()
	if ct := resp.Header.Get("Content-Type"); ct != "text/event-stream" {
		t.Errorf("events Content-Type %q", ct)
	}
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	event := ""
	for sc.Scan() {
		line := sc.Text()
		switch {
		case strings.HasPrefix(line, "event: "):
			event = strings.TrimPrefix(line, "event: ")
		case strings.HasPrefix(line, "data: ") && event == "battle":
			var v View
			if err := json.Unmarshal([]byte(strings.TrimPrefix(line, "data: ")), &v); err != nil {
				t.Errorf("event data: %v", err)
				continue
			}
			e.mu.Lock()
			e.events = append(e.events, v)
			e.mu.Unlock()
		}
	}
}

// seen tells whether some event matched.
func (e *sseEvents) seen(match func(View) bool) bool {
	e.mu.Lock()
	defer e.mu.Unlock()
	for _, v := range e.events {
		if match(v) {
			return true
		}
	}
	return false
}

// A whole battle in fast motion: one round of 1 s turns, votes from
// distinct watchers, a replaced vote, votes outside the window refused,
// the winner, the end on its own, and each change on the events stream.
func TestFormatVotesAndEvents(t *testing.T) {
	srv := apiServerWith(t, Limits{MinTurnSeconds: 1}, Config{VoteGrace: time.Second, ResultHold: time.Second})
	c := create(t, srv.URL, `{"title":"fast","singers":["Ann","Bo"],"rounds":1,"turn_seconds":1}`)
	if c.Round != 0 || c.Turn != nil || c.VotingOpen || c.Winner != nil || len(c.Votes) != 1 {
		t.Fatalf("new battle's format: %+v", c.View)
	}
	ann, bo, cy := watcherClient(t), watcherClient(t), watcherClient(t)
	if status := vote(t, ann, srv.URL, c.ID, `{"slot":1}`); status != http.StatusConflict {
		t.Fatalf("vote before the start: %d", status)
	}

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	events := &sseEvents{}
	go events.read(t, ctx, srv.URL+"/api/battles/"+c.ID+"/events")

	if status, _, _ := call(t, "POST", srv.URL+"/api/battles/"+c.ID+"/start", c.SingerTokens[0], "", ""); status != 401 {
		t.Fatalf("start with a singer token: %d", status)
	}
	started := time.Now()
	status, got, _ := call(t, "POST", srv.URL+"/api/battles/"+c.ID+"/start", c.HostToken, "", "")
	if status != 200 || got["round"] != float64(1) || got["turn"] != float64(1) || got["voting_open"] != true {
		t.Fatalf("start: %d %v", status, got)
	}
	if status, _, _ := call(t, "POST", srv.URL+"/api/battles/"+c.ID+"/start", c.HostToken, "", ""); status != 409 {
		t.Fatalf("second start: %d", status)
	}

	for _, v := range []struct {
		who    *http.Client
		body   string
		status int
	}{
		{ann, `{"slot":2}`, 204},
		{bo, `{"slot":1}`, 204},
		{ann, `{"slot":1}`, 204}, // replaces Ann's first vote
		{cy, `{"slot":3}`, 400},
		{cy, `{"slot":"1"}`, 400},
		{cy, `{}`, 400},
		{cy, `{"slot":1,"round":2}`, 400},
	} {
		if status := vote(t, v.who, srv.URL, c.ID, v.body); status != v.status {
			t.Fatalf("vote %s: %d, want %d", v.body, status, v.status)
		}
	}
	_, got, _ = call(t, "GET", srv.URL+"/api/battles/"+c.ID, "", "", "")
	if votes, _ := json.Marshal(got["votes"]); string(votes) != "[[2,0]]" {
		t.Fatalf("votes after a replaced vote: %s", votes)
	}

	waitUntil(t, started.Add(1200*time.Millisecond))
	_, got, _ = call(t, "GET", srv.URL+"/api/battles/"+c.ID, "", "", "")
	if got["turn"] != float64(2) || got["voting_open"] != true {
		t.Fatalf("second turn: %v", got)
	}
	waitUntil(t, started.Add(3200*time.Millisecond)) // 2 turns + 1 s grace
	if status := vote(t, cy, srv.URL, c.ID, `{"slot":2}`); status != http.StatusConflict {
		t.Fatalf("vote after the window: %d", status)
	}
	_, got, _ = call(t, "GET", srv.URL+"/api/battles/"+c.ID, "", "", "")
	if got["winner"] != float64(1) || got["voting_open"] != false || got["turn"] != nil || got["state"] == "ended" {
		t.Fatalf("result: %v", got)
	}
	deadline := time.Now().Add(3 * time.Second)
	for got["state"] != "ended" && time.Now().Before(deadline) {
		time.Sleep(100 * time.Millisecond)
		_, got, _ = call(t, "GET", srv.URL+"/api/battles/"+c.ID, "", "", "")
	}
	if got["state"] != "ended" || got["winner"] != float64(1) {
		t.Fatalf("the battle did not end on its own after the result: %v", got)
	}
	if status := vote(t, bo, srv.URL, c.ID, `{"slot":2}`); status != http.StatusConflict {
		t.Fatalf("vote after the end: %d", status)
	}

	time.Sleep(300 * time.Millisecond)
	for _, want := range []struct {
		what  string
		match func(View) bool
	}{
		{"waiting, before the start", func(v View) bool { return v.Round == 0 && v.State == "waiting" }},
		{"slot 1's turn", func(v View) bool { return v.Turn != nil && *v.Turn == 1 }},
		{"a tally of 2–0", func(v View) bool { return len(v.Votes) == 1 && v.Votes[0] == [2]int{2, 0} }},
		{"slot 2's turn", func(v View) bool { return v.Turn != nil && *v.Turn == 2 }},
		{"the result", func(v View) bool { return v.Winner != nil && *v.Winner == 1 && v.State != "ended" }},
		{"the end", func(v View) bool { return v.State == "ended" }},
	} {
		if !events.seen(want.match) {
			t.Errorf("the events stream never carried %s", want.what)
		}
	}
}

func waitUntil(t *testing.T, at time.Time) {
	t.Helper()
	time.Sleep(time.Until(at))
}
