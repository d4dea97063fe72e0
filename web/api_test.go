package battle

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"testing"

	"github.com/gin-gonic/gin"

	"github.com/singoff/singoff/ingest"
	"github.com/singoff/singoff/internal/battleid"
	"github.com/singoff/singoff/storage"
)

// apiServer is the battles API on loopback with real storage and ingest;
// nothing in these tests goes live, so the program side stays unwired.
func apiServer(t *testing.T, limits Limits) *httptest.Server {
	return apiServerWith(t, limits, Config{})
}

func apiServerWith(t *testing.T, limits Limits, cfg Config) *httptest.Server {
	t.Helper()
	store, err := storage.OpenSQLite(context.Background(), t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	rtc, err := ingest.NewServer(ingest.Config{Loopback: true})
	if err != nil {
		t.Fatal(err)
	}
	cfg.Store, cfg.Ingest, cfg.Live = store, rtc, noViewers{}
	m, err := NewManager(cfg)
	if err != nil {
		t.Fatal(err)
	}
	gin.SetMode(gin.TestMode)
	r := gin.New()
	api := NewAPI(m, limits)
	api.Register(r)
	r.NoRoute(api.NotFoundOr(func(c *gin.Context) { c.String(http.StatusNotFound, "page not found") }))
	srv := httptest.NewServer(r)
	t.Cleanup(func() {
		srv.Close()
		m.Close()
		rtc.Close()
		store.Close()
	})
	return srv
}

// noViewers is the live output of a server where no battle goes live.
type noViewers struct{ LiveOutput }

func (noViewers) Viewers(string) int { return 0 }

type created struct {
	View
	HostToken    string   `json:"host_token"`
	SingerTokens []string `json:"singer_tokens"`
}

func call(t *testing.T, method, url, token, contentType, body string) (int, map[string]any, http.Header) {
	t.Helper()
	req, _ := http.NewRequest(method, url, strings.NewReader(body))
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	var out map[string]any
	if len(raw) > 0 && strings.HasPrefix(resp.Header.Get("Content-Type"), "application/json") {
		if err := json.Unmarshal(raw, &out); err != nil {
			t.Fatalf("%s %s: body is not JSON: %q", method, url, raw)
		}
	}
	return resp.StatusCode, out, resp.Header
}

func create(t *testing.T, base, body string) created {
	t.Helper()
	resp, err := http.Post(base+"/api/battles", "application/json", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusCreated {
		raw, _ := io.ReadAll(resp.Body)
		t.Fatalf("create: %d %s", resp.StatusCode, raw)
	}
	var c created
	if err := json.NewDecoder(resp.Body).Decode(&c); err != nil {
		t.Fatal(err)
	}
	return c
}

func TestCreateGetListEnd(t *testing.T) {
	srv := apiServer(t, Limits{})
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
		t.Fatalf("urls/times %+v", c.View)
	}
	c2 := create(t, srv.URL, `{"title":"second"}`)
	if c2.Rounds != DefaultRounds || c2.TurnSeconds != DefaultTurnSeconds {
		t.Fatalf("defaults: %+v", c2.View)
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
	srv := apiServer(t, Limits{})
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
	srv := apiServer(t, Limits{CreatesPerMinute: 60, Burst: 3})
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
func TestForwardedURLs(t *testing.T) {
	loopback := []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")}
	for _, tc := range []struct {
		name    string
		trusted []netip.Prefix
		want    string
	}{
		{"trusted proxy", loopback, "https://battles.example/hls/"},
		{"untrusted", nil, "http://127.0.0.1:"},
	} {
		srv := apiServer(t, Limits{TrustedProxies: tc.trusted})
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
