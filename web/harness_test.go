package web_test

import (
	"bufio"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/singoff/singoff/internal/app"
)

// newServer is the whole server (real SQLite, ingest on loopback, HLS,
// compositor) behind an httptest listener, as the binary wires it.
func newServer(t testing.TB, cfg app.Config) *httptest.Server {
	t.Helper()
	return serveApp(t, listen(t), cfg)
}

// newTLSServer is newServer over TLS, with httptest's certificate.
func newTLSServer(t testing.TB, cfg app.Config) *httptest.Server {
	t.Helper()
	return startApp(t, listen(t), cfg, true)
}

// listen opens a loopback listener for a test server.
func listen(t testing.TB) net.Listener {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	return ln
}

// serveApp serves the whole server, configured by cfg, on ln.
func serveApp(t testing.TB, ln net.Listener, cfg app.Config) *httptest.Server {
	t.Helper()
	return startApp(t, ln, cfg, false)
}

func startApp(t testing.TB, ln net.Listener, cfg app.Config, withTLS bool) *httptest.Server {
	t.Helper()
	cfg.DataDir = t.TempDir()
	cfg.Loopback = true
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	a, err := app.New(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	srv := &httptest.Server{Listener: ln, Config: &http.Server{Handler: a.Handler()}}
	if withTLS {
		srv.StartTLS()
	} else {
		srv.Start()
	}
	t.Cleanup(func() {
		now, cancel := context.WithCancel(context.Background())
		cancel()
		a.Close(now)
		srv.Close()
	})
	return srv
}

// battleObject is the battle object of the contract as a client reads it.
type battleObject struct {
	ID        string     `json:"id"`
	Title     string     `json:"title"`
	State     string     `json:"state"`
	StartedAt *time.Time `json:"started_at"`
	EndedAt   *time.Time `json:"ended_at"`
	Singers   []struct {
		Slot      int    `json:"slot"`
		Name      string `json:"name"`
		Connected bool   `json:"connected"`
	} `json:"singers"`
	HLSURL      string   `json:"hls_url"`
	VODURL      *string  `json:"vod_url"`
	Rounds      int      `json:"rounds"`
	TurnSeconds int      `json:"turn_seconds"`
	Round       int      `json:"round"`
	Turn        *int     `json:"turn"`
	VotingOpen  bool     `json:"voting_open"`
	Votes       [][2]int `json:"votes"`
	Winner      *int     `json:"winner"`
}

type created struct {
	battleObject
	HostToken    string   `json:"host_token"`
	SingerTokens []string `json:"singer_tokens"`
}

// call makes one request and reads a JSON answer.
func call(t testing.TB, method, url, token, contentType, body string) (int, map[string]any, http.Header) {
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

func create(t testing.TB, base, body string) created {
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

// watcherClient is one watcher who opened battle id's watch page: its
// own cookie jar, holding the watcher identity the page issued.
func watcherClient(t *testing.T, base, id string) *http.Client {
	t.Helper()
	jar, err := cookiejar.New(nil)
	if err != nil {
		t.Fatal(err)
	}
	c := &http.Client{Jar: jar, Timeout: 5 * time.Second}
	resp, err := c.Get(base + "/b/" + id)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || len(jar.Cookies(resp.Request.URL)) != 1 {
		t.Fatalf("the watch page: %d, cookies %v", resp.StatusCode, jar.Cookies(resp.Request.URL))
	}
	return c
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
	events []battleObject
}

func (e *sseEvents) read(t *testing.T, ctx context.Context, url string) {
	req, _ := http.NewRequestWithContext(ctx, "GET", url, nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		if ctx.Err() == nil {
			t.Error(err)
		}
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
			var v battleObject
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
func (e *sseEvents) seen(match func(battleObject) bool) bool {
	e.mu.Lock()
	defer e.mu.Unlock()
	for _, v := range e.events {
		if match(v) {
			return true
		}
	}
	return false
}
