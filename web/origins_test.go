package web_test

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"testing"

	"github.com/singoff/singoff/internal/app"
	"github.com/singoff/singoff/internal/pgtest"
)

// Two origins in this process, each the whole server as the binary wires
// it, sharing a real PostgreSQL.

func TestMain(m *testing.M) {
	code := m.Run()
	pgtest.StopShared()
	os.Exit(code)
}

// newOrigin is an origin on database db, advertising the URL it serves.
func newOrigin(t testing.TB, db string, cfg app.Config) *httptest.Server {
	t.Helper()
	ln := listen(t)
	cfg.AdvertiseURL = "http://" + ln.Addr().String()
	cfg.Database = db
	return serveApp(t, ln, cfg)
}

// twoOrigins starts two origins and a battle on each; b trusts the
// loopback address as a proxy, a trusts nothing.
func twoOrigins(t *testing.T) (a, b *httptest.Server, onA, onB created) {
	t.Helper()
	db := pgtest.NewTestDatabase(t)
	a = newOrigin(t, db, app.Config{})
	b = newOrigin(t, db, app.Config{TrustedProxies: []string{"127.0.0.1"}})
	for range 2 {
		c := create(t, a.URL, `{"title":"placed"}`)
		switch {
		case strings.HasPrefix(c.HLSURL, a.URL+"/"):
			onA = c
		case strings.HasPrefix(c.HLSURL, b.URL+"/"):
			onB = c
		default:
			t.Fatalf("hls_url %s names neither origin", c.HLSURL)
		}
	}
	if onA.ID == "" || onB.ID == "" {
		t.Fatal("two battles did not spread over two origins")
	}
	return a, b, onA, onB
}

// A WHIP or WHEP request that reaches the origin that does not run the
// battle is redirected, path and all, to the one that does (RFC 9725);
// the one that does answers it.
func TestWHIPAndWHEPGoToTheBattlesOrigin(t *testing.T) {
	a, b, onA, _ := twoOrigins(t)
	noRedirect := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	base := "/api/battles/" + onA.ID + "/singers/1"
	tests := []struct {
		name, method, path, contentType string
	}{
		{"WHIP offer", http.MethodPost, base + "/whip", "application/sdp"},
		{"WHEP offer", http.MethodPost, base + "/whep", "application/sdp"},
		{"trickle ICE", http.MethodPatch, base + "/whip/some-session", "application/trickle-ice-sdpfrag"},
		{"hang-up", http.MethodDelete, base + "/whep/some-session", ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			for _, o := range []struct {
				srv          *httptest.Server
				wantRedirect bool
			}{{b, true}, {a, false}} {
				req, _ := http.NewRequest(tc.method, o.srv.URL+tc.path, strings.NewReader("v=0\r\n"))
				if tc.contentType != "" {
					req.Header.Set("Content-Type", tc.contentType)
				}
				req.Header.Set("Authorization", "Bearer not-the-token")
				resp, err := noRedirect.Do(req)
				if err != nil {
					t.Fatal(err)
				}
				resp.Body.Close()
				redirected := resp.StatusCode == http.StatusTemporaryRedirect
				if redirected != o.wantRedirect {
					t.Fatalf("on %s: %d", o.srv.URL, resp.StatusCode)
				}
				if want := a.URL + tc.path; redirected && resp.Header.Get("Location") != want {
					t.Errorf("Location %q, want %q", resp.Header.Get("Location"), want)
				}
				if !redirected && resp.StatusCode != http.StatusUnauthorized {
					t.Errorf("the battle's origin answered a wrong token with %d, want 401", resp.StatusCode)
				}
			}
		})
	}
	for _, srv := range []*httptest.Server{a, b} {
		if status, _, _ := call(t, http.MethodPost, srv.URL+"/api/battles/nobattle/singers/1/whip", "x", "application/sdp", "v=0"); status != http.StatusNotFound {
			t.Errorf("WHIP of an unknown battle on %s: %d, want 404", srv.URL, status)
		}
	}
}

// The battle object read straight from an origin names the battle's
// origin in hls_url; read through a trusted proxy (an edge that routes by
// battle id) it names the proxy. The replay is on any origin.
func TestBattleObjectNamesTheBattlesOrigin(t *testing.T) {
	a, b, onA, onB := twoOrigins(t)
	direct := func(srv *httptest.Server, id string) battleObject {
		t.Helper()
		var got battleObject
		resp, err := http.Get(srv.URL + "/api/battles/" + id)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		if err := json.NewDecoder(resp.Body).Decode(&got); err != nil {
			t.Fatal(err)
		}
		return got
	}
	if got, want := direct(a, onB.ID).HLSURL, b.URL+"/hls/"+onB.ID+"/index.m3u8"; got != want {
		t.Errorf("from the other origin: hls_url %s, want %s", got, want)
	}
	if got, want := direct(a, onA.ID).HLSURL, a.URL+"/hls/"+onA.ID+"/index.m3u8"; got != want {
		t.Errorf("from its own origin: hls_url %s, want %s", got, want)
	}
	req, _ := http.NewRequest(http.MethodGet, b.URL+"/api/battles/"+onA.ID, nil)
	req.Header.Set("X-Forwarded-Host", "edge.example")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var viaEdge battleObject
	if err := json.NewDecoder(resp.Body).Decode(&viaEdge); err != nil {
		t.Fatal(err)
	}
	if want := "http://edge.example/hls/" + onA.ID + "/index.m3u8"; viaEdge.HLSURL != want {
		t.Errorf("through the edge: hls_url %s, want %s", viaEdge.HLSURL, want)
	}
}

// GET /api/battles/{id}/origin tells an edge where a battle runs.
func TestOriginLookup(t *testing.T) {
	a, b, onA, onB := twoOrigins(t)
	for _, srv := range []*httptest.Server{a, b} {
		for id, want := range map[string]string{onA.ID: a.URL, onB.ID: b.URL} {
			status, body, h := call(t, http.MethodGet, srv.URL+"/api/battles/"+id+"/origin", "", "", "")
			if status != http.StatusOK || body["origin"] != want || h.Get("X-Singoff-Origin") != want {
				t.Errorf("on %s, origin of %s: %d %v %q; want %s", srv.URL, id, status, body, h.Get("X-Singoff-Origin"), want)
			}
			if cc := h.Get("Cache-Control"); cc != "public, max-age=5" {
				t.Errorf("Cache-Control %q", cc)
			}
		}
		if status, body, _ := call(t, http.MethodGet, srv.URL+"/api/battles/nobattle/origin", "", "", ""); status != http.StatusNotFound || body["error"] == nil {
			t.Errorf("origin of an unknown battle: %d %v", status, body)
		}
	}
	alone := newServer(t, app.Config{})
	c := create(t, alone.URL, `{"title":"alone"}`)
	if status, _, _ := call(t, http.MethodGet, alone.URL+"/api/battles/"+c.ID+"/origin", "", "", ""); status != http.StatusNotFound {
		t.Errorf("origin on a server on its own: %d, want 404", status)
	}
	if want := alone.URL + "/hls/" + c.ID + "/index.m3u8"; c.HLSURL != want {
		t.Errorf("a server on its own: hls_url %s, want %s", c.HLSURL, want)
	}
}

// A browser that comes straight to an origin for the watch or sing page
// of a battle another origin runs is sent there, so that the page, its
// WHIP/WHEP and its live program share one origin; through an edge (a
// trusted proxy), and for replays and ended battles, it stays.
func TestPagesGoToTheBattlesOrigin(t *testing.T) {
	a, b, onA, onB := twoOrigins(t)
	noRedirect := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	get := func(url string) (int, string) {
		t.Helper()
		resp, err := noRedirect.Get(url)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode, resp.Header.Get("Location")
	}
	tests := []struct {
		name, url, location string
	}{
		{"watch, straight to the other origin", a.URL + "/b/" + onB.ID, b.URL + "/b/" + onB.ID},
		{"sing, straight to the other origin", a.URL + "/b/" + onB.ID + "/sing/2", b.URL + "/b/" + onB.ID + "/sing/2"},
		{"watch on its own origin", a.URL + "/b/" + onA.ID, ""},
		{"watch through the edge", b.URL + "/b/" + onA.ID, ""},
		{"replay", a.URL + "/b/" + onB.ID + "/replay", ""},
		{"an unknown battle", a.URL + "/b/nobattle", ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			status, location := get(tc.url)
			switch {
			case tc.location != "" && (status != http.StatusTemporaryRedirect || location != tc.location):
				t.Fatalf("%d, Location %q; want 307 to %s", status, location, tc.location)
			case tc.location == "" && status != http.StatusOK:
				t.Fatalf("%d, Location %q; want the page", status, location)
			}
		})
	}
	if status, _, _ := call(t, http.MethodPost, b.URL+"/api/battles/"+onB.ID+"/end", onB.HostToken, "", ""); status != http.StatusOK {
		t.Fatalf("end: %d", status)
	}
	if status, location := get(a.URL + "/b/" + onB.ID); status != http.StatusOK {
		t.Fatalf("the watch page of an ended battle: %d, Location %q; want the page where it is asked for", status, location)
	}
}
