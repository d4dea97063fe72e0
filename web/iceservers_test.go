package web_test

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"slices"
	"strings"
	"testing"

	"github.com/singoff/singoff/internal/app"
	"github.com/singoff/singoff/internal/testmedia"
	"github.com/singoff/singoff/web"
)

func TestParseICEServer(t *testing.T) {
	good := []struct {
		name, in string
		want     web.ICEServer
	}{
		{"stun", "stun:stun.example.net:3478", web.ICEServer{URL: "stun:stun.example.net:3478"}},
		{"stun on its default port", "stun:stun.example.net", web.ICEServer{URL: "stun:stun.example.net"}},
		{"stuns", "stuns:stun.example.net:5349", web.ICEServer{URL: "stuns:stun.example.net:5349"}},
		{"turn over udp", "turn://alice:s3cret@turn.example.net:3478?transport=udp",
			web.ICEServer{URL: "turn:turn.example.net:3478?transport=udp", Username: "alice", Credential: "s3cret"}},
		{"turns over tcp", "turns://alice:s3cret@turn.example.net:443?transport=tcp",
			web.ICEServer{URL: "turns:turn.example.net:443?transport=tcp", Username: "alice", Credential: "s3cret"}},
		{"turn on its default port", "turn://alice:s3cret@turn.example.net",
			web.ICEServer{URL: "turn:turn.example.net", Username: "alice", Credential: "s3cret"}},
		{"percent-encoded credentials, IPv6 host", `turn://al%40ice:p%3Aw%2C%22x%22%5C%3B@[2001:db8::1]:3478`,
			web.ICEServer{URL: "turn:[2001:db8::1]:3478", Username: "al@ice", Credential: `p:w,"x"\;`}},
		{"scheme in capitals", "TURN://alice:s3cret@turn.example.net:3478",
			web.ICEServer{URL: "turn:turn.example.net:3478", Username: "alice", Credential: "s3cret"}},
	}
	for _, tc := range good {
		t.Run(tc.name, func(t *testing.T) {
			got, err := web.ParseICEServer(tc.in)
			if err != nil || got != tc.want {
				t.Fatalf("ParseICEServer(%q) = %+v, %v; want %+v", tc.in, got, err, tc.want)
			}
		})
	}
	bad := []struct{ name, in, says string }{
		{"turn without credentials", "turn:turn.example.net:3478?transport=udp", "needs a user name and password"},
		{"turn without a password", "turn://alice@turn.example.net:3478", "needs a user name and password"},
		{"stun with credentials", "stun://alice:topsecret@stun.example.net:3478", "takes no credentials"},
		{"not stun or turn", "https://turn.example.net", "scheme"},
		{"unknown transport", "turn://alice:topsecret@turn.example.net:3478?transport=sctp", "transport"},
		{"a path", "turn://alice:topsecret@turn.example.net:3478/relay", "want stun:host:port"},
		{"no host", "stun:", "want stun:host:port"},
		{"a control character", "turn://alice:top%0Asecret@turn.example.net:3478", "control characters"},
		{"not a port", "turn://alice:topsecret@turn.example.net:http", "port"},
	}
	for _, tc := range bad {
		t.Run(tc.name, func(t *testing.T) {
			got, err := web.ParseICEServer(tc.in)
			if err == nil {
				t.Fatalf("ParseICEServer(%q) = %+v, want an error", tc.in, got)
			}
			if !strings.Contains(strings.ToLower(err.Error()), tc.says) {
				t.Errorf("error %q does not say %q", err, tc.says)
			}
			if strings.Contains(err.Error(), "topsecret") || strings.Contains(err.Error(), "top\nsecret") {
				t.Errorf("error %q shows the password", err)
			}
		})
	}
}

// The server refuses to start with an ICE server it cannot hand out.
func TestBadICEServerStopsTheStart(t *testing.T) {
	_, err := app.New(context.Background(), app.Config{
		DataDir: t.TempDir(), Loopback: true, ICEServers: []string{"turn:turn.example.net:3478"},
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
	})
	if err == nil || !strings.Contains(err.Error(), "needs a user name and password") {
		t.Fatalf("app.New with a TURN server without credentials: %v", err)
	}
}

// TURN credentials go only to a client whose token may use the WHIP or
// WHEP resource; STUN servers go to anyone.
func TestICEServerLinks(t *testing.T) {
	const turnFlag = `turn://singer:p%22w%5C@turn.example.net:3478?transport=udp`
	stunLink := `<` + stunServer + `>; rel="ice-server"`
	turnLink := `<turn:turn.example.net:3478?transport=udp>; rel="ice-server"; username="singer"; credential="p\"w\\"; credential-type="password"`
	srv := newServer(t, app.Config{ICEServers: []string{stunServer, turnFlag}})
	c := create(t, srv.URL, `{"title":"ice servers"}`)
	url := func(slot, k string) string { return srv.URL + "/api/battles/" + c.ID + "/singers/" + slot + "/" + k }
	for _, tc := range []struct {
		name, url, token string
		want             []string
	}{
		{"anyone", url("1", "whip"), "", []string{stunLink}},
		{"a wrong token", url("1", "whip"), "not-a-token", []string{stunLink}},
		{"the other singer's token on WHIP", url("1", "whip"), c.SingerTokens[1], []string{stunLink}},
		{"the slot's singer on WHIP", url("1", "whip"), c.SingerTokens[0], []string{stunLink, turnLink}},
		{"the slot's singer on a WHIP session", url("1", "whip") + "/some-session", c.SingerTokens[0], []string{stunLink, turnLink}},
		{"the other singer on WHEP", url("2", "whep"), c.SingerTokens[0], []string{stunLink, turnLink}},
		{"the host on WHEP", url("1", "whep"), c.HostToken, []string{stunLink, turnLink}},
		{"a singer on their own slot's WHEP", url("1", "whep"), c.SingerTokens[0], []string{stunLink}},
		{"a singer on a slot that does not exist", url("3", "whip"), c.SingerTokens[0], []string{stunLink}},
		{"a battle that does not exist", srv.URL + "/api/battles/nope/singers/1/whip", c.SingerTokens[0], []string{stunLink}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			resp, _ := do(t, "OPTIONS", tc.url, tc.token, "", "")
			if resp.StatusCode != http.StatusNoContent {
				t.Fatalf("OPTIONS: %d", resp.StatusCode)
			}
			if got := resp.Header.Values("Link"); !slices.Equal(got, tc.want) {
				t.Errorf("Link headers %q, want %q", got, tc.want)
			}
		})
	}
	t.Run("the WHIP answer", func(t *testing.T) {
		offer := testmedia.VP8Offer
		resp, body := do(t, "POST", url("2", "whip"), c.SingerTokens[1], "application/sdp", offer)
		if resp.StatusCode != http.StatusCreated {
			t.Fatalf("POST: %d %s", resp.StatusCode, body)
		}
		if got, want := resp.Header.Values("Link"), []string{stunLink, turnLink}; !slices.Equal(got, want) {
			t.Errorf("Link headers %q, want %q", got, want)
		}
	})
}
