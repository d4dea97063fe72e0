package web_test

import (
	"bufio"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/singoff/singoff/internal/app"
	"github.com/singoff/singoff/web"
)

// The attacks of the security review on the HTTP layer, each performed:
// ballot stuffing, forged client addresses, battle spam, event stream
// exhaustion, forged hosts.

// metric reads one sample of /metrics, e.g.
// `singoff_votes_refused_total{reason="cross_site"}`.
func metric(t *testing.T, base, sample string) float64 {
	t.Helper()
	resp, err := http.Get(base + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), sample+" "); ok {
			f, err := strconv.ParseFloat(v, 64)
			if err != nil {
				t.Fatal(err)
			}
			return f
		}
	}
	t.Fatalf("/metrics has no %s", sample)
	return 0
}

// voteWith sends a vote as a raw request: the attacker chooses every
// header.
func voteWith(t *testing.T, c *http.Client, url, contentType, body string, header ...string) int {
	t.Helper()
	req, err := http.NewRequest("POST", url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode >= 400 {
		var e struct {
			Error string `json:"error"`
		}
		if err := json.NewDecoder(resp.Body).Decode(&e); err != nil || e.Error == "" {
			t.Errorf("a refused vote (%d) without a JSON error: %v", resp.StatusCode, err)
		}
	}
	return resp.StatusCode
}

// Ballot stuffing: votes without an identity, with a forged one, from
// another site's page, without a JSON body, from watchers who arrived
// after the round opened, and past the network's cap all fail, are
// counted by reason, and leave the honest watchers' votes as they were.
func TestBallotStuffingFails(t *testing.T) {
	const maxVoters = 3
	srv := newServer(t, app.Config{MinTurnSeconds: 1, MaxVotersPerNetwork: maxVoters})
	c := create(t, srv.URL, `{"title":"stuffed","rounds":1,"turn_seconds":60}`)
	votes := srv.URL + "/api/battles/" + c.ID + "/votes"
	honest := make([]*http.Client, maxVoters+1)
	for i := range honest {
		honest[i] = watcherClient(t, srv.URL, c.ID)
	}
	if status, _, _ := call(t, "POST", srv.URL+"/api/battles/"+c.ID+"/start", c.HostToken, "", ""); status != 200 {
		t.Fatalf("start: %d", status)
	}
	time.Sleep(5 * time.Millisecond) // a watcher issued now is issued after the round opened
	late := watcherClient(t, srv.URL, c.ID)
	anonymous := &http.Client{Timeout: 5 * time.Second}
	forgedJar, _ := cookiejar.New(nil)
	forged := &http.Client{Jar: forgedJar, Timeout: 5 * time.Second}
	u := honest[0].Jar.Cookies(mustURL(t, srv.URL))[0]
	// The honest cookie with its issue time moved back: the signature
	// no longer matches.
	raw := []byte(u.Value)
	raw[len(raw)-30] ^= 1
	forgedJar.SetCookies(mustURL(t, srv.URL), []*http.Cookie{{Name: u.Name, Value: string(raw), Path: "/"}})

	const body = `{"slot":2}`
	steps := []struct {
		name   string
		client *http.Client
		ct     string
		header []string
		want   int
		reason string
	}{
		{"no identity (a new one each time, before)", anonymous, "application/json", nil, 403, "no_watcher"},
		{"no identity again", anonymous, "application/json", nil, 403, "no_watcher"},
		{"a forged identity", forged, "application/json", nil, 403, "no_watcher"},
		{"a no-cors fetch: no content type", honest[0], "", nil, 415, "content_type"},
		{"a form post", honest[0], "text/plain", nil, 415, "content_type"},
		{"another site's page (Origin)", honest[0], "application/json", []string{"Origin", "https://evil.example"}, 403, "cross_site"},
		{"an opaque origin", honest[0], "application/json", []string{"Origin", "null"}, 403, "cross_site"},
		{"another site's page (Sec-Fetch-Site)", honest[0], "application/json", []string{"Sec-Fetch-Site", "cross-site"}, 403, "cross_site"},
		{"a watcher issued after the round opened", late, "application/json", nil, 403, "late_watcher"},
		{"honest watcher 1, from the battle's page", honest[0], "application/json", []string{"Origin", srv.URL, "Sec-Fetch-Site", "same-origin"}, 204, ""},
		{"honest watcher 2", honest[1], "application/json", nil, 204, ""},
		{"honest watcher 3", honest[2], "application/json", nil, 204, ""},
		{"a fourth watcher of the network", honest[3], "application/json", nil, 429, "network_cap"},
		{"a counted watcher changes their vote", honest[2], "application/json", nil, 204, ""},
	}
	before := map[string]float64{}
	for _, st := range steps {
		if st.reason != "" {
			before[st.reason] = metric(t, srv.URL, `singoff_votes_refused_total{reason="`+st.reason+`"}`)
		}
	}
	refused := map[string]float64{}
	for _, st := range steps {
		t.Run(st.name, func(t *testing.T) {
			if got := voteWith(t, st.client, votes, st.ct, body, st.header...); got != st.want {
				t.Fatalf("status %d, want %d", got, st.want)
			}
		})
		if st.reason != "" {
			refused[st.reason]++
		}
	}
	for reason, n := range refused {
		got := metric(t, srv.URL, `singoff_votes_refused_total{reason="`+reason+`"}`) - before[reason]
		if got != n {
			t.Errorf("/metrics counts %v refusals for %s, want %v", got, reason, n)
		}
	}
	if got := metric(t, srv.URL, "singoff_votes_total"); got != 4 {
		t.Errorf("/metrics counts %v votes, want 4", got)
	}
	_, got, _ := call(t, "GET", srv.URL+"/api/battles/"+c.ID, "", "", "")
	if v, _ := json.Marshal(got["votes"]); string(v) != "[[0,3]]" {
		t.Fatalf("votes %s, want the honest [[0,3]]", v)
	}
}

func mustURL(t *testing.T, s string) *url.URL {
	t.Helper()
	u, err := url.Parse(s)
	if err != nil {
		t.Fatal(err)
	}
	return u
}

// The watch page issues the watcher identity: HttpOnly, SameSite, Secure
// when the client came over TLS (a trusted proxy's word included), once.
func TestWatchPageIssuesTheWatcher(t *testing.T) {
	for _, tc := range []struct {
		name    string
		trusted []string
		header  []string
		secure  bool
	}{
		{"plain http", nil, nil, false},
		{"behind a trusted TLS proxy", []string{"127.0.0.1"}, []string{"X-Forwarded-Proto", "https"}, true},
		{"a client claiming TLS", nil, []string{"X-Forwarded-Proto", "https"}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv := newServer(t, app.Config{TrustedProxies: tc.trusted})
			resp, _ := do(t, "GET", srv.URL+"/b/abcdefghij", "", "", "", tc.header...)
			cookies := resp.Cookies()
			if resp.StatusCode != 200 || len(cookies) != 1 {
				t.Fatalf("%d, cookies %v", resp.StatusCode, cookies)
			}
			ck := cookies[0]
			if !ck.HttpOnly || ck.SameSite != http.SameSiteLaxMode || ck.Secure != tc.secure || ck.Path != "/" || ck.MaxAge < 86400 {
				t.Fatalf("cookie %+v", ck)
			}
			if cc := resp.Header.Get("Cache-Control"); !strings.Contains(cc, "private") {
				t.Fatalf("a page with a new identity is cacheable: %q", cc)
			}
			if hsts := resp.Header.Get("Strict-Transport-Security") != ""; hsts != tc.secure {
				t.Fatalf("HSTS %v over https %v", hsts, tc.secure)
			}
			again, _ := do(t, "GET", srv.URL+"/b/abcdefghij", "", "", "", append(tc.header, "Cookie", ck.Name+"="+ck.Value)...)
			if len(again.Cookies()) != 0 {
				t.Fatalf("a watcher with an identity got another: %v", again.Cookies())
			}
		})
	}
}

// The identity survives a restart: the key lives in the data dir.
func TestWatcherKeyKept(t *testing.T) {
	path := t.TempDir() + "/watcher.key"
	first, err := web.LoadWatcherKey(path)
	if err != nil {
		t.Fatal(err)
	}
	second, err := web.LoadWatcherKey(path)
	if err != nil || string(first) != string(second) || len(first) != web.WatcherKeySize {
		t.Fatalf("the key changed on reload (%v)", err)
	}
}

// A client's own X-Forwarded-For moves it to no other rate-limit bucket;
// a trusted proxy's does.
func TestForwardedForBelievedOnlyFromTrustedProxies(t *testing.T) {
	for _, tc := range []struct {
		name    string
		trusted []string
		want    []int // the answers to 4 creations, each from another forwarded network
	}{
		{"untrusted: one bucket", nil, []int{201, 201, 201, 429}},
		{"trusted: a bucket per network", []string{"127.0.0.1"}, []int{201, 201, 201, 201}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv := newServer(t, app.Config{TrustedProxies: tc.trusted, Limits: web.Limits{CreatesPerMinute: 1, Burst: 3}})
			for i, want := range tc.want {
				resp, _ := do(t, "POST", srv.URL+"/api/battles", "", "application/json", `{"title":"x"}`,
					"X-Forwarded-For", "203.0."+strconv.Itoa(i)+".7")
				if resp.StatusCode != want {
					t.Fatalf("creation %d: %d, want %d", i+1, resp.StatusCode, want)
				}
			}
		})
	}
}

// Battle spam: a network's waiting battles stop at the cap with 429 and
// Retry-After; another network is not affected.
func TestWaitingBattlesCappedPerNetworkOverHTTP(t *testing.T) {
	srv := newServer(t, app.Config{MaxWaitingPerNetwork: 2, TrustedProxies: []string{"127.0.0.1"}})
	from := func(ip string) *http.Response {
		resp, _ := do(t, "POST", srv.URL+"/api/battles", "", "application/json", `{"title":"spam"}`, "X-Forwarded-For", ip)
		return resp
	}
	for _, ip := range []string{"198.51.100.1", "198.51.100.2"} {
		if resp := from(ip); resp.StatusCode != 201 {
			t.Fatalf("a battle within the cap: %d", resp.StatusCode)
		}
	}
	if resp := from("198.51.100.3"); resp.StatusCode != 429 || resp.Header.Get("Retry-After") == "" {
		t.Fatalf("past the cap: %d, Retry-After %q", resp.StatusCode, resp.Header.Get("Retry-After"))
	}
	if resp := from("203.0.113.1"); resp.StatusCode != 201 {
		t.Fatalf("another network: %d", resp.StatusCode)
	}
	_, got, _ := call(t, "GET", srv.URL+"/api/battles", "", "", "")
	if n := len(got["battles"].([]any)); n != 3 {
		t.Fatalf("%d battles stored, want 3", n)
	}
}

// Event streams are capped per client network (429) and on the server
// (503); a stream that closes gives its place back.
func TestEventStreamsCapped(t *testing.T) {
	srv := newServer(t, app.Config{TrustedProxies: []string{"127.0.0.1"},
		Limits: web.Limits{EventStreamsPerNetwork: 2, EventStreams: 3}})
	c := create(t, srv.URL, `{"title":"streams"}`)
	open := func(ip string) (*http.Response, context.CancelFunc) {
		ctx, cancel := context.WithCancel(context.Background())
		t.Cleanup(cancel)
		req, _ := http.NewRequestWithContext(ctx, "GET", srv.URL+"/api/battles/"+c.ID+"/events", nil)
		req.Header.Set("X-Forwarded-For", ip)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		if resp.StatusCode != 200 {
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
		}
		return resp, cancel
	}
	steps := []struct {
		name string
		ip   string
		want int
	}{
		{"first of the network", "198.51.100.1", 200},
		{"second of the network", "198.51.100.2", 200},
		{"third of the network", "198.51.100.3", 429},
		{"another network", "203.0.113.1", 200},
		{"the server is full", "192.0.2.1", 503},
	}
	var first context.CancelFunc
	for i, st := range steps {
		resp, cancel := open(st.ip)
		if i == 0 {
			first = cancel
		}
		if resp.StatusCode != st.want || st.want != 200 && resp.Header.Get("Retry-After") == "" {
			t.Fatalf("%s: %d (Retry-After %q), want %d", st.name, resp.StatusCode, resp.Header.Get("Retry-After"), st.want)
		}
	}
	first()
	deadline := time.Now().Add(5 * time.Second)
	for {
		resp, _ := open("192.0.2.1")
		if resp.StatusCode == 200 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("a closed stream's place never came back: %d", resp.StatusCode)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// URLs in API answers come from --advertise-url, never from the Host a
// client sends; HSTS is sent over TLS.
func TestAdvertisedURLsAndHSTS(t *testing.T) {
	srv := newServer(t, app.Config{AdvertiseURL: "https://battles.example"})
	resp, body := do(t, "POST", srv.URL+"/api/battles", "", "application/json", `{"title":"x"}`, "Host", "evil.example")
	var c created
	if err := json.Unmarshal([]byte(body), &c); err != nil || resp.StatusCode != 201 {
		t.Fatalf("%d %s", resp.StatusCode, body)
	}
	if want := "https://battles.example/hls/" + c.ID + "/index.m3u8"; c.HLSURL != want {
		t.Fatalf("hls_url %q, want %q", c.HLSURL, want)
	}

	tlsSrv := newTLSServer(t, app.Config{})
	client := tlsSrv.Client() // trusts the test's own certificate
	for _, path := range []string{"/", "/api/battles", "/healthz"} {
		resp, err := client.Get(tlsSrv.URL + path)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.Header.Get("Strict-Transport-Security") == "" {
			t.Errorf("GET %s over TLS: no HSTS", path)
		}
	}
	if resp, _ := do(t, "GET", srv.URL+"/", "", "", ""); resp.Header.Get("Strict-Transport-Security") != "" {
		t.Error("HSTS over plain http")
	}
}

// A page checks a host link's token before keeping it.
func TestHostTokenCheck(t *testing.T) {
	srv := newServer(t, app.Config{})
	c := create(t, srv.URL, `{"title":"host"}`)
	for _, tc := range []struct {
		name, id, token string
		want            int
	}{
		{"the host token", c.ID, c.HostToken, 204},
		{"a singer token", c.ID, c.SingerTokens[0], 401},
		{"no token", c.ID, "", 401},
		{"an unknown battle", "abcdefghij", c.HostToken, 404},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if status, _, _ := call(t, "GET", srv.URL+"/api/battles/"+tc.id+"/host", tc.token, "", ""); status != tc.want {
				t.Fatalf("%d, want %d", status, tc.want)
			}
		})
	}
}

// Error answers of the streams are never cached: a CDN must not keep the
// 404 of a program or recording about to exist.
func TestStreamErrorsNotCached(t *testing.T) {
	srv := newServer(t, app.Config{})
	c := create(t, srv.URL, `{"title":"not yet"}`)
	for _, path := range []string{
		"/vod/" + c.ID + "/index.m3u8", "/vod/" + c.ID + "/seg0.m4s", "/vod/abcdefghij/index.m3u8", "/vod/bad%2Fid/index.m3u8",
		"/hls/" + c.ID + "/index.m3u8", "/hls/bad%2Fid/index.m3u8",
	} {
		t.Run(path, func(t *testing.T) {
			resp, _ := do(t, "GET", srv.URL+path, "", "", "")
			if resp.StatusCode < 400 || resp.Header.Get("Cache-Control") != "no-store" {
				t.Fatalf("%d with Cache-Control %q", resp.StatusCode, resp.Header.Get("Cache-Control"))
			}
		})
	}
}
