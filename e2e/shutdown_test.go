package e2e

import (
	"encoding/json"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/pion/webrtc/v4"
)

// On SIGINT or SIGTERM the server drains: /readyz answers 503 while
// /healthz stays 200, new battles and first publishes are refused with
// 503 and Retry-After, and live battles go on for --drain-timeout. Then
// it ends them, finishes their recordings and exits with status 0.
func TestGracefulShutdown(t *testing.T) {
	const drain = 5 * time.Second
	for _, c := range []struct {
		name string
		sig  os.Signal
	}{
		{"SIGINT", syscall.SIGINT},
		{"SIGTERM", syscall.SIGTERM},
	} {
		t.Run(c.name, func(t *testing.T) {
			s := startServer(t, false, "--drain-timeout", drain.String())
			live := s.createBattle(t, "sings through the drain")
			unpublished := s.createBattle(t, "not published before the drain")
			s.startBot(t, live, 1)
			s.startBot(t, live, 2)
			waitFor(t, "both singers connected and live", 20*time.Second, func() bool {
				got := s.battle(t, live.ID)
				return got.State == "live" && got.Singers[0].Connected && got.Singers[1].Connected
			})
			s.liveProgram(t, live.ID)
			vod := s.base + "/vod/" + live.ID + "/index.m3u8"
			waitFor(t, "a recorded segment", 30*time.Second, func() bool {
				status, body := s.get(t, vod)
				return status == http.StatusOK && strings.Contains(body, "#EXTINF")
			})

			signalled := time.Now()
			s.signal(t, c.sig)

			waitFor(t, "/readyz answering 503 after the signal", drain, func() bool {
				status, _ := s.get(t, s.base+"/readyz")
				return status == http.StatusServiceUnavailable
			})
			if status, body := s.get(t, s.base+"/healthz"); status != http.StatusOK {
				t.Errorf("/healthz while draining: %d %s, want 200", status, body)
			}
			s.wantRetryLater(t, "a new battle while draining", http.MethodPost, "/api/battles", "",
				"application/json", `{"title": "too late"}`)
			s.wantRetryLater(t, "a first publish while draining", http.MethodPost,
				"/api/battles/"+unpublished.ID+"/singers/1/whip", unpublished.SingerTokens[0],
				"application/sdp", sdpOffer(t))
			before := s.liveSequence(t, live.ID)
			waitFor(t, "the live program going on while draining", drain, func() bool {
				return s.liveSequence(t, live.ID) > before
			})

			if err := s.proc.wait(drain + stopWithin); err != nil {
				t.Fatalf("after %s: %v", c.name, err)
			}
			exited := s.proc.at

			// The recording was finished by the shutdown, not by the
			// crash recovery of the next start.
			playlist, err := os.ReadFile(filepath.Join(s.dataDir, "recordings", live.ID, "index.m3u8"))
			if err != nil {
				t.Fatal(err)
			}
			if !strings.Contains(string(playlist), "#EXT-X-ENDLIST") {
				t.Fatalf("recording playlist left open at the exit:\n%s", playlist)
			}

			s.start(t)
			got := s.battle(t, live.ID)
			if got.State != "ended" || got.EndedAt == nil || got.VODURL == nil {
				t.Fatalf("after the shutdown: state %s, ended_at %v, vod_url %v", got.State, got.EndedAt, got.VODURL)
			}
			// Ended by the shutdown after the drain, not on the restart.
			if got.EndedAt.Before(signalled.Add(drain)) || got.EndedAt.After(exited) {
				t.Errorf("ended at %s: want after the drain (%s) and before the exit (%s)",
					got.EndedAt.Format(time.RFC3339Nano), signalled.Add(drain).Format(time.RFC3339Nano), exited.Format(time.RFC3339Nano))
			}
			if _, body := s.get(t, *got.VODURL); !strings.Contains(body, "#EXT-X-ENDLIST") {
				t.Fatalf("VOD playlist:\n%s", body)
			}
			checkProgram(t, "VOD after the shutdown", *got.VODURL)
		})
	}
}

// wantRetryLater makes a request and fails the test unless it is
// answered 503 with a Retry-After and a JSON error.
func (s *server) wantRetryLater(t testing.TB, what, method, path, token, contentType, body string) {
	t.Helper()
	req, err := http.NewRequest(method, s.base+path, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", contentType)
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	res, err := s.client.Do(req)
	if err != nil {
		t.Fatalf("%s: %v", what, err)
	}
	defer res.Body.Close()
	data, _ := io.ReadAll(res.Body)
	var e struct {
		Error string `json:"error"`
	}
	retry := res.Header.Get("Retry-After")
	seconds, err := strconv.Atoi(retry)
	if res.StatusCode != http.StatusServiceUnavailable || err != nil || seconds < 1 ||
		json.Unmarshal(data, &e) != nil || e.Error == "" {
		t.Errorf("%s: %d, Retry-After %q, %s; want 503, a Retry-After in seconds and a JSON error", what, res.StatusCode, retry, data)
	}
}

// sdpOffer is a WHIP offer pion makes, sending video and audio in the
// codecs it knows (H264, VP8, Opus, …): one the server would accept.
func sdpOffer(t testing.TB) string {
	t.Helper()
	pc, err := webrtc.NewPeerConnection(webrtc.Configuration{})
	if err != nil {
		t.Fatal(err)
	}
	defer pc.Close()
	for _, kind := range []webrtc.RTPCodecType{webrtc.RTPCodecTypeVideo, webrtc.RTPCodecTypeAudio} {
		if _, err := pc.AddTransceiverFromKind(kind, webrtc.RTPTransceiverInit{Direction: webrtc.RTPTransceiverDirectionSendonly}); err != nil {
			t.Fatal(err)
		}
	}
	offer, err := pc.CreateOffer(nil)
	if err != nil {
		t.Fatal(err)
	}
	return offer.SDP
}
