package web_test

import (
	"context"
	"errors"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/pion/webrtc/v4"

	"github.com/singoff/singoff/ingest/whipclient"
	"github.com/singoff/singoff/internal/app"
	"github.com/singoff/singoff/internal/synth"
	"github.com/singoff/singoff/internal/testmedia"
)

const stunServer = "stun:stun.example.net:3478"

func do(t *testing.T, method, url, token, contentType, body string, header ...string) (*http.Response, string) {
	t.Helper()
	req, err := http.NewRequest(method, url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp, string(b)
}

// sing publishes a synthetic singer on slot with token until the test
// ends, and waits until it is connected.
func sing(t *testing.T, ctx context.Context, endpoint, token string, slot int) *whipclient.Publisher {
	t.Helper()
	src, err := synth.New(synth.Config{Slot: slot})
	if err != nil {
		t.Fatal(err)
	}
	pub, err := whipclient.Publish(ctx, endpoint, token, whipclient.Options{Loopback: true})
	if err != nil {
		src.Close()
		t.Fatalf("publish: %v", err)
	}
	singCtx, stop := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = src.Sing(singCtx, pub)
	}()
	t.Cleanup(func() {
		stop()
		<-done
		_ = pub.Close(context.Background())
	})
	select {
	case <-pub.Connected():
	case <-ctx.Done():
		t.Fatal("the publisher never connected")
	}
	return pub
}

// countPackets reads sub until it has n video and n audio packets.
func countPackets(ctx context.Context, sub *whipclient.Subscriber, n int) (video, audio int) {
	for video < n || audio < n {
		select {
		case p := <-sub.Packets():
			if p.Kind == webrtc.RTPCodecTypeVideo {
				video++
			} else {
				audio++
			}
		case <-ctx.Done():
			return video, audio
		}
	}
	return video, audio
}

func TestWHIPAndWHEPOverHTTP(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	srv := newServer(t, app.Config{ICEServers: []string{stunServer}})
	c := create(t, srv.URL, `{"title":"over http"}`)
	whip := func(slot string) string { return srv.URL + "/api/battles/" + c.ID + "/singers/" + slot + "/whip" }
	whep := func(slot string) string { return srv.URL + "/api/battles/" + c.ID + "/singers/" + slot + "/whep" }

	t.Run("options", func(t *testing.T) {
		resp, _ := do(t, "OPTIONS", whip("1"), "", "", "", "Origin", "https://elsewhere.example", "Access-Control-Request-Method", "POST")
		if resp.StatusCode != http.StatusNoContent || resp.Header.Get("Accept-Post") != "application/sdp" ||
			resp.Header.Get("Link") != `<`+stunServer+`>; rel="ice-server"` {
			t.Fatalf("OPTIONS: %d %v", resp.StatusCode, resp.Header)
		}
		if resp.Header.Get("Access-Control-Allow-Origin") != "*" || !strings.Contains(resp.Header.Get("Access-Control-Allow-Methods"), "PATCH") ||
			!strings.Contains(resp.Header.Get("Access-Control-Allow-Headers"), "Authorization") {
			t.Fatalf("preflight headers %v", resp.Header)
		}
	})

	t.Run("answer headers", func(t *testing.T) {
		offer := testmedia.VP8Offer
		resp, body := do(t, "POST", whip("2"), c.SingerTokens[1], "application/sdp; charset=utf-8", offer)
		if resp.StatusCode != http.StatusCreated {
			t.Fatalf("POST: %d %s", resp.StatusCode, body)
		}
		loc := resp.Header.Get("Location")
		if !strings.HasPrefix(loc, "/api/battles/"+c.ID+"/singers/2/whip/") || !strings.HasPrefix(resp.Header.Get("ETag"), `"`) ||
			resp.Header.Get("Content-Type") != "application/sdp" || resp.Header.Get("Accept-Patch") != "application/trickle-ice-sdpfrag" ||
			resp.Header.Get("Link") != `<`+stunServer+`>; rel="ice-server"` {
			t.Fatalf("answer headers %v", resp.Header)
		}
		if !strings.Contains(body, "a=candidate:") || !strings.Contains(body, "VP8/90000") {
			t.Fatalf("answer:\n%s", body)
		}
		if _, got, _ := call(t, "GET", srv.URL+"/api/battles/"+c.ID, "", "", ""); got["state"] != "live" {
			t.Fatalf("an answered offer did not make the battle live: %v", got["state"])
		}
		// Trickle, ICE restart, hang-up on this session.
		cand := "a=mid:0\r\na=candidate:1 1 udp 2130706431 127.0.0.1 9 typ host\r\na=end-of-candidates\r\n"
		if resp, body := do(t, "PATCH", srv.URL+loc, c.SingerTokens[1], "application/trickle-ice-sdpfrag", cand); resp.StatusCode != http.StatusNoContent {
			t.Fatalf("trickle: %d %s", resp.StatusCode, body)
		}
		restart := "a=ice-ufrag:wxyz\r\na=ice-pwd:0123456789abcdefghijklmn\r\n" + cand
		resp, body = do(t, "PATCH", srv.URL+loc, c.SingerTokens[1], "application/trickle-ice-sdpfrag", restart, "If-Match", "*")
		if resp.StatusCode != http.StatusOK || resp.Header.Get("Content-Type") != "application/trickle-ice-sdpfrag" ||
			!strings.Contains(body, "a=ice-ufrag:") || resp.Header.Get("ETag") == "" {
			t.Fatalf("ICE restart: %d %v %s", resp.StatusCode, resp.Header, body)
		}
		if resp, _ := do(t, "DELETE", srv.URL+loc, c.SingerTokens[1], "", ""); resp.StatusCode != http.StatusOK {
			t.Fatalf("DELETE: %d", resp.StatusCode)
		}
		if resp, _ := do(t, "DELETE", srv.URL+loc, c.SingerTokens[1], "", ""); resp.StatusCode != http.StatusNotFound {
			t.Fatalf("second DELETE: %d, want 404", resp.StatusCode)
		}
	})

	t.Run("a singer and the opponent's view; bad requests change nothing", func(t *testing.T) {
		pub := sing(t, ctx, whip("1"), c.SingerTokens[0], 1)
		sub, err := whipclient.Subscribe(ctx, whep("1"), c.SingerTokens[1], whipclient.Options{Loopback: true})
		if err != nil {
			t.Fatal(err)
		}
		defer sub.Close(context.Background())
		if v, a := countPackets(ctx, sub, 20); v < 20 || a < 20 {
			t.Fatalf("the opponent got %d video and %d audio packets", v, a)
		}
		live := pub.Location()
		unknown := whip("1") + "/0123456789abcdef"
		for _, tc := range []struct {
			name, method, url, token, contentType, body string
			status                                      int
			says                                        string
		}{
			{"whip wrong content type", "POST", whip("1"), c.SingerTokens[0], "text/plain", "v=0", 415, ""},
			{"whep wrong content type", "POST", whep("1"), c.HostToken, "application/json", "{}", 415, ""},
			{"whip garbage", "POST", whip("1"), c.SingerTokens[0], "application/sdp", "this is not SDP", 400, ""},
			{"whep garbage", "POST", whep("1"), c.HostToken, "application/sdp", "v=0\r\nbogus\r\n", 400, ""},
			{"whip unsupported codecs", "POST", whip("1"), c.SingerTokens[0], "application/sdp", testmedia.UnsupportedOffer, 422, "offered AV1, G722, H264 (packetization-mode 0)"},
			{"whip too big", "POST", whip("1"), c.SingerTokens[0], "application/sdp", strings.Repeat("a", 70<<10), 413, ""},
			{"patch unknown session", "PATCH", unknown, c.SingerTokens[0], "application/trickle-ice-sdpfrag", "a=end-of-candidates\r\n", 404, ""},
			{"delete unknown session", "DELETE", unknown, c.SingerTokens[0], "", "", 404, ""},
			{"patch another's session", "PATCH", live, c.SingerTokens[1], "application/trickle-ice-sdpfrag", "a=end-of-candidates\r\n", 401, ""},
			{"delete another's session", "DELETE", live, c.HostToken, "", "", 401, ""},
			{"patch wrong content type", "PATCH", live, c.SingerTokens[0], "application/sdp", "a=end-of-candidates\r\n", 415, ""},
			{"patch garbage", "PATCH", live, c.SingerTokens[0], "application/trickle-ice-sdpfrag", "not a fragment", 400, ""},
			{"patch bad candidate", "PATCH", live, c.SingerTokens[0], "application/trickle-ice-sdpfrag", "a=mid:0\r\na=candidate:nonsense\r\n", 400, ""},
			{"patch too big", "PATCH", live, c.SingerTokens[0], "application/trickle-ice-sdpfrag", strings.Repeat("a=x\r\n", 20<<10), 413, ""},
		} {
			t.Run(tc.name, func(t *testing.T) {
				resp, body := do(t, tc.method, tc.url, tc.token, tc.contentType, tc.body)
				if resp.StatusCode != tc.status || !strings.Contains(body, `"error"`) || !strings.Contains(body, tc.says) {
					t.Fatalf("%d %s, want %d with a JSON error saying %q", resp.StatusCode, body, tc.status, tc.says)
				}
			})
		}
		resp, _ := do(t, "PATCH", live, c.SingerTokens[0], "application/trickle-ice-sdpfrag",
			"a=mid:0\r\na=candidate:1 1 udp 2130706431 127.0.0.1 9 typ host\r\n", "If-Match", `"stale"`)
		if resp.StatusCode != http.StatusPreconditionFailed {
			t.Fatalf("PATCH with a stale If-Match: %d, want 412", resp.StatusCode)
		}
		_, got, _ := call(t, "GET", srv.URL+"/api/battles/"+c.ID, "", "", "")
		if singers := got["singers"].([]any); singers[0].(map[string]any)["connected"] != true {
			t.Fatalf("bad requests disconnected the singer: %v", got["singers"])
		}
		for len(sub.Packets()) > 0 {
			<-sub.Packets()
		}
		if v, a := countPackets(ctx, sub, 20); v < 20 || a < 20 {
			t.Fatalf("after bad requests the opponent got %d video and %d audio packets", v, a)
		}
	})
}

// A full server refuses a further first publish with 503 and
// Retry-After; a battle already live takes its singers' reloads.
func TestFullServer(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	srv := newServer(t, app.Config{MaxLive: 1})
	first, second := create(t, srv.URL, `{"title":"first"}`), create(t, srv.URL, `{"title":"second"}`)
	endpoint := func(c created) string { return srv.URL + "/api/battles/" + c.ID + "/singers/1/whip" }
	sing(t, ctx, endpoint(first), first.SingerTokens[0], 1)
	_, err := whipclient.Publish(ctx, endpoint(second), second.SingerTokens[0], whipclient.Options{Loopback: true})
	var refused *whipclient.HTTPError
	if !errors.As(err, &refused) || refused.Status != http.StatusServiceUnavailable {
		t.Fatalf("a first publish on a full server: %v", err)
	}
	offer := testmedia.VP8Offer
	resp, _ := do(t, "POST", endpoint(second), second.SingerTokens[0], "application/sdp", offer)
	if resp.StatusCode != http.StatusServiceUnavailable || resp.Header.Get("Retry-After") == "" {
		t.Fatalf("raw first publish on a full server: %d %v", resp.StatusCode, resp.Header)
	}
	sing(t, ctx, endpoint(first), first.SingerTokens[0], 1) // a reload
	_, got, _ := call(t, "GET", srv.URL+"/api/battles/"+second.ID, "", "", "")
	if got["state"] != "waiting" {
		t.Fatalf("the refused battle is %v", got["state"])
	}
}
