package web_test

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/singoff/singoff/battle"
	"github.com/singoff/singoff/internal/app"
	"github.com/singoff/singoff/internal/battleid"
	"github.com/singoff/singoff/storage"
	"github.com/singoff/singoff/web"
)

func TestCreateGetListEnd(t *testing.T) {
	srv := newServer(t, app.Config{})
	c := create(t, srv.URL, `{"title":"Friday night","singers":["Ann","Bo"],"rounds":2,"turn_seconds":45}`)
	if c.ID == "" || !battleid.Valid(c.ID) || c.State != storage.StateWaiting || len(c.SingerTokens) != 2 || len(c.HostToken) < 22 {
		t.Fatalf("created %+v", c)
	}
	if c.SingerTokens[0] == c.SingerTokens[1] || c.SingerTokens[0] == c.HostToken {
		t.Fatal("tokens repeat")
	}
	if c.Singers[0].Name != "Ann" || c.Singers[1].Slot != 2 || c.Singers[1].Connected || c.Rounds != 2 || c.TurnSeconds != 45 {
		t.Fatalf("singers/format %+v", c)
	}
	if c.VODURL != nil || c.StartedAt != nil || c.EndedAt != nil || c.HLSURL != srv.URL+"/hls/"+c.ID+"/index.m3u8" {
		t.Fatalf("urls/times %+v", c.battleObject)
	}
	c2 := create(t, srv.URL, `{"title":"second"}`)
	if c2.Rounds != battle.DefaultRounds || c2.TurnSeconds != battle.DefaultTurnSeconds {
		t.Fatalf("defaults: %+v", c2.battleObject)
	}

	status, got, _ := call(t, "GET", srv.URL+"/api/battles/"+c.ID, "", "", "")
	if status != 200 || got["title"] != "Friday night" || got["host_token"] != nil {
		t.Fatalf("get: %d %v", status, got)
	}
	status, got, _ = call(t, "GET", srv.URL+"/api/battles", "", "", "")
	list := got["battles"].([]any)
	if status != 200 || len(list) != 2 || list[0].(map[string]any)["id"] != c2.ID {
		t.Fatalf("list newest first: %d %v", status, got)
	}

	// Ending takes the host token, once.
	for _, tok := range []string{"", c.SingerTokens[0], "nonsense"} {
		if status, got, _ := call(t, "POST", srv.URL+"/api/battles/"+c.ID+"/end", tok, "", ""); status != 401 || got["error"] == nil {
			t.Fatalf("end with token %q: %d %v", tok, status, got)
		}
	}
	status, got, _ = call(t, "POST", srv.URL+"/api/battles/"+c.ID+"/end", c.HostToken, "", "")
	if status != 200 || got["state"] != storage.StateEnded || got["ended_at"] == nil {
		t.Fatalf("end: %d %v", status, got)
	}
	if status, _, _ := call(t, "POST", srv.URL+"/api/battles/"+c.ID+"/end", c.HostToken, "", ""); status != 409 {
		t.Fatalf("second end: %d", status)
	}
	status, got, _ = call(t, "GET", srv.URL+"/api/battles?state=ended", "", "", "")
	if list := got["battles"].([]any); status != 200 || len(list) != 1 || list[0].(map[string]any)["id"] != c.ID {
		t.Fatalf("ended list: %v", got)
	}
	status, got, _ = call(t, "GET", srv.URL+"/api/battles?state=waiting", "", "", "")
	if list := got["battles"].([]any); status != 200 || len(list) != 1 || list[0].(map[string]any)["id"] != c2.ID {
		t.Fatalf("waiting list: %v", got)
	}
	// Publishing to an ended battle is a state conflict.
	if status, _, _ := call(t, "POST", srv.URL+"/api/battles/"+c.ID+"/singers/1/whip", c.SingerTokens[0], "application/sdp", "v=0\r\n"); status != 409 {
		t.Fatalf("whip on ended battle: %d", status)
	}
}

func TestBadRequestsChangeNothing(t *testing.T) {
	srv := newServer(t, app.Config{})
	c := create(t, srv.URL, `{"title":"keep me"}`)
	big := `{"title":"` + strings.Repeat("x", 70<<10) + `"}`
	cases := []struct {
		name, method, path, token, ctype, body string
		status                                 int
	}{
		{"no title", "POST", "/api/battles", "", "application/json", `{}`, 400},
		{"empty title", "POST", "/api/battles", "", "application/json", `{"title":"  "}`, 400},
		{"long title", "POST", "/api/battles", "", "application/json", `{"title":"` + strings.Repeat("é", 101) + `"}`, 400},
		{"not json", "POST", "/api/battles", "", "application/json", `title=x`, 400},
		{"trailing data", "POST", "/api/battles", "", "application/json", `{"title":"a"} {}`, 400},
		{"unknown field", "POST", "/api/battles", "", "application/json", `{"title":"a","x":1}`, 400},
		{"one singer", "POST", "/api/battles", "", "application/json", `{"title":"a","singers":["x"]}`, 400},
		{"rounds", "POST", "/api/battles", "", "application/json", `{"title":"a","rounds":10}`, 400},
		{"turn", "POST", "/api/battles", "", "application/json", `{"title":"a","turn_seconds":29}`, 400},
		{"content type", "POST", "/api/battles", "", "text/plain", `{"title":"a"}`, 415},
		{"no content type (another site's no-cors fetch)", "POST", "/api/battles", "", "", `{"title":"a"}`, 415},
		{"too big", "POST", "/api/battles", "", "application/json", big, 413},
		{"bad state filter", "GET", "/api/battles?state=lost", "", "", "", 400},
		{"unknown battle", "GET", "/api/battles/nope", "", "", "", 404},
		{"bad id", "GET", "/api/battles/..%2f..", "", "", "", 404},
		{"end unknown", "POST", "/api/battles/nope/end", "x", "", "", 404},
		{"slot 3", "POST", "/api/battles/" + c.ID + "/singers/3/whip", c.SingerTokens[0], "application/sdp", "v=0", 404},
		{"whip no token", "POST", "/api/battles/" + c.ID + "/singers/1/whip", "", "application/sdp", "v=0", 401},
		{"whip other singer's token", "POST", "/api/battles/" + c.ID + "/singers/1/whip", c.SingerTokens[1], "application/sdp", "v=0", 401},
		{"whip host token", "POST", "/api/battles/" + c.ID + "/singers/1/whip", c.HostToken, "application/sdp", "v=0", 401},
		{"whep own token", "POST", "/api/battles/" + c.ID + "/singers/1/whep", c.SingerTokens[0], "application/sdp", "v=0", 401},
		{"whip wrong type", "POST", "/api/battles/" + c.ID + "/singers/1/whip", c.SingerTokens[0], "text/plain", "v=0", 415},
		{"whip garbage sdp", "POST", "/api/battles/" + c.ID + "/singers/1/whip", c.SingerTokens[0], "application/sdp", "hello", 400},
		{"unknown session", "DELETE", "/api/battles/" + c.ID + "/singers/1/whip/abc", c.SingerTokens[0], "", "", 404},
		{"patch unknown session", "PATCH", "/api/battles/" + c.ID + "/singers/1/whip/abc", c.SingerTokens[0], "application/trickle-ice-sdpfrag", "a=ice-ufrag:x\r\n", 404},
	}
	for _, tc := range cases {
		status, got, _ := call(t, tc.method, srv.URL+tc.path, tc.token, tc.ctype, tc.body)
		if status != tc.status || got["error"] == nil || got["error"] == "" {
			t.Errorf("%s: %d %v, want %d with a JSON error", tc.name, status, got, tc.status)
		}
	}
	_, got, _ := call(t, "GET", srv.URL+"/api/battles", "", "", "")
	if list := got["battles"].([]any); len(list) != 1 || list[0].(map[string]any)["state"] != storage.StateWaiting {
		t.Fatalf("bad requests changed the battles: %v", got)
	}
}

func TestRateLimit(t *testing.T) {
	srv := newServer(t, app.Config{Limits: web.Limits{CreatesPerMinute: 60, Burst: 3}})
	for i := range 3 {
		create(t, srv.URL, `{"title":"t"}`)
		_ = i
	}
	resp, err := http.Post(srv.URL+"/api/battles", "application/json", bytes.NewBufferString(`{"title":"t"}`))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusTooManyRequests || resp.Header.Get("Retry-After") == "" {
		t.Fatalf("fourth create in a burst of 3: %d, Retry-After %q", resp.StatusCode, resp.Header.Get("Retry-After"))
	}
}

// Behind a TLS-terminating proxy the URLs the API returns say https and
// the public host, but only when the proxy is trusted.

// Behind a TLS-terminating proxy the URLs the API returns say https and
// the public host, but only when the proxy is trusted.
func TestForwardedURLs(t *testing.T) {
	for _, tc := range []struct {
		name    string
		trusted []string
		want    string
	}{
		{"trusted proxy", []string{"127.0.0.0/8"}, "https://battles.example/hls/"},
		{"untrusted", nil, "http://127.0.0.1:"},
	} {
		srv := newServer(t, app.Config{TrustedProxies: tc.trusted})
		req, _ := http.NewRequest("POST", srv.URL+"/api/battles", strings.NewReader(`{"title":"x"}`))
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("X-Forwarded-Proto", "https")
		req.Header.Set("X-Forwarded-Host", "battles.example")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		var c created
		json.NewDecoder(resp.Body).Decode(&c)
		resp.Body.Close()
		if !strings.HasPrefix(c.HLSURL, tc.want) {
			t.Errorf("%s: hls_url %q, want it to start %q", tc.name, c.HLSURL, tc.want)
		}
	}
}

// A whole battle in fast motion: one round of 1 s turns, votes from
// distinct watchers, a replaced vote, votes outside the window refused,
// the winner, the end on its own, and each change on the events stream.
func TestFormatVotesAndEvents(t *testing.T) {
	srv := newServer(t, app.Config{MinTurnSeconds: 1, VoteGrace: time.Second, ResultHold: time.Second})
	c := create(t, srv.URL, `{"title":"fast","singers":["Ann","Bo"],"rounds":1,"turn_seconds":1}`)
	if c.Round != 0 || c.Turn != nil || c.VotingOpen || c.Winner != nil || len(c.Votes) != 1 {
		t.Fatalf("new battle's format: %+v", c.battleObject)
	}
	ann, bo, cy := watcherClient(t, srv.URL, c.ID), watcherClient(t, srv.URL, c.ID), watcherClient(t, srv.URL, c.ID)
	if status := vote(t, ann, srv.URL, c.ID, `{"slot":1}`); status != http.StatusConflict {
		t.Fatalf("vote before the start: %d", status)
	}

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	events := &sseEvents{}
	go events.read(t, ctx, srv.URL+"/api/battles/"+c.ID+"/events")
	// The stream opens with the battle as it is: waiting.
	for deadline := time.Now().Add(5 * time.Second); !events.seen(func(v battleObject) bool { return v.State == "waiting" }); {
		if time.Now().After(deadline) {
			t.Fatal("the events stream did not open with the battle")
		}
		time.Sleep(20 * time.Millisecond)
	}

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
		match func(battleObject) bool
	}{
		{"waiting, before the start", func(v battleObject) bool { return v.Round == 0 && v.State == "waiting" }},
		{"slot 1's turn", func(v battleObject) bool { return v.Turn != nil && *v.Turn == 1 }},
		{"a tally of 2–0", func(v battleObject) bool { return len(v.Votes) == 1 && v.Votes[0] == [2]int{2, 0} }},
		{"slot 2's turn", func(v battleObject) bool { return v.Turn != nil && *v.Turn == 2 }},
		{"the result", func(v battleObject) bool { return v.Winner != nil && *v.Winner == 1 && v.State != "ended" }},
		{"the end", func(v battleObject) bool { return v.State == "ended" }},
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

// One CORS policy over every surface: any origin reads the streams and
// calls the API without credentials; preflights are answered.
func TestCORS(t *testing.T) {
	srv := newServer(t, app.Config{})
	c := create(t, srv.URL, `{"title":"cors"}`)
	for _, path := range []string{"/api/battles", "/api/battles/" + c.ID, "/hls/" + c.ID + "/index.m3u8", "/vod/" + c.ID + "/index.m3u8", "/healthz"} {
		t.Run("GET "+path, func(t *testing.T) {
			resp, _ := do(t, "GET", srv.URL+path, "", "", "", "Origin", "https://elsewhere.example")
			if resp.Header.Get("Access-Control-Allow-Origin") != "*" || resp.Header.Get("Access-Control-Allow-Credentials") != "" {
				t.Fatalf("%d %v", resp.StatusCode, resp.Header)
			}
		})
		t.Run("preflight "+path, func(t *testing.T) {
			resp, _ := do(t, "OPTIONS", srv.URL+path, "", "", "", "Origin", "https://elsewhere.example", "Access-Control-Request-Method", "GET")
			if resp.StatusCode != http.StatusNoContent || !strings.Contains(resp.Header.Get("Access-Control-Allow-Methods"), "GET") {
				t.Fatalf("%d %v", resp.StatusCode, resp.Header)
			}
		})
	}
}
