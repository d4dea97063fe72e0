package ingest

import (
	"io"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/pion/webrtc/v4"
)

// unsupportedOffer parses but offers only codecs the server does not take.
const unsupportedOffer = "v=0\r\n" +
	"o=- 1 2 IN IP4 127.0.0.1\r\n" +
	"s=-\r\n" +
	"t=0 0\r\n" +
	"a=group:BUNDLE 0 1\r\n" +
	"m=audio 9 UDP/TLS/RTP/SAVPF 9\r\n" +
	"c=IN IP4 0.0.0.0\r\n" +
	"a=mid:0\r\n" +
	"a=sendonly\r\n" +
	"a=rtpmap:9 G722/8000\r\n" +
	"a=ice-ufrag:abcd\r\n" +
	"a=ice-pwd:abcdefghijklmnopqrstuvwx\r\n" +
	"a=fingerprint:sha-256 75:74:5A:A6:A4:E5:52:F4:A7:67:4C:01:C7:EE:91:3F:21:3D:A2:E3:53:7B:6F:30:86:F2:30:AA:65:FB:04:24\r\n" +
	"a=setup:actpass\r\n" +
	"m=video 9 UDP/TLS/RTP/SAVPF 45 97\r\n" +
	"c=IN IP4 0.0.0.0\r\n" +
	"a=mid:1\r\n" +
	"a=sendonly\r\n" +
	"a=rtpmap:45 AV1/90000\r\n" +
	"a=rtpmap:97 H264/90000\r\n" +
	"a=fmtp:97 profile-level-id=42e01f;packetization-mode=0\r\n" +
	"a=ice-ufrag:abcd\r\n" +
	"a=ice-pwd:abcdefghijklmnopqrstuvwx\r\n" +
	"a=fingerprint:sha-256 75:74:5A:A6:A4:E5:52:F4:A7:67:4C:01:C7:EE:91:3F:21:3D:A2:E3:53:7B:6F:30:86:F2:30:AA:65:FB:04:24\r\n" +
	"a=setup:actpass\r\n"

func do(t *testing.T, method, url, contentType, body string, header ...string) (*http.Response, string) {
	t.Helper()
	req, err := http.NewRequest(method, url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
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

func TestBadRequestsChangeNothing(t *testing.T) {
	ctx := testContext(t, 30*time.Second)
	h := newHarness(t)
	pub := h.publish(ctx, "x", 1, false)
	sub := h.subscribe(ctx, "x", 1)
	receive(ctx, sub, atLeast(10))
	slot := h.room("x").Slot(1)
	sessionsBefore := len(slot.sessions)
	changesBefore := h.changesOf("x")

	whip, whep := h.url("x", 1, "whip"), h.url("x", 1, "whep")
	live := pub.Location()
	unknown := h.url("x", 1, "s/0123456789abcdef")
	cases := []struct {
		name, method, url, contentType, body string
		status                               int
		contains                             string
	}{
		{"whip wrong content type", "POST", whip, "text/plain", "v=0", 415, ""},
		{"whep wrong content type", "POST", whep, "application/json", "{}", 415, ""},
		{"whip garbage", "POST", whip, "application/sdp", "this is not SDP", 400, ""},
		{"whep garbage", "POST", whep, "application/sdp", "v=0\r\nbogus\r\n", 400, ""},
		{"whip unsupported codecs", "POST", whip, "application/sdp", unsupportedOffer, 422, "offered AV1, G722, H264 (packetization-mode 0)"},
		{"whip too big", "POST", whip, "application/sdp", strings.Repeat("a", 70<<10), 413, ""},
		{"patch unknown session", "PATCH", unknown, "application/trickle-ice-sdpfrag", "a=end-of-candidates\r\n", 404, ""},
		{"delete unknown session", "DELETE", unknown, "", "", 404, ""},
		{"patch wrong content type", "PATCH", live, "application/sdp", "a=end-of-candidates\r\n", 415, ""},
		{"patch garbage", "PATCH", live, "application/trickle-ice-sdpfrag", "not a fragment", 400, ""},
		{"patch bad candidate", "PATCH", live, "application/trickle-ice-sdpfrag", "a=mid:0\r\na=candidate:nonsense\r\n", 400, ""},
		{"patch too big", "PATCH", live, "application/trickle-ice-sdpfrag", strings.Repeat("a=x\r\n", 20<<10), 413, ""},
	}
	for _, c := range cases {
		resp, body := do(t, c.method, c.url, c.contentType, c.body)
		if resp.StatusCode != c.status {
			t.Errorf("%s: status %d (%s), want %d", c.name, resp.StatusCode, body, c.status)
		}
		if c.contains != "" && !strings.Contains(body, c.contains) {
			t.Errorf("%s: body %s does not say %q", c.name, body, c.contains)
		}
		if c.status >= 400 && c.status != 413 && !strings.Contains(body, `"error"`) {
			t.Errorf("%s: body %s is not a JSON error", c.name, body)
		}
	}
	resp, _ := do(t, "PATCH", live, "application/trickle-ice-sdpfrag", "a=mid:0\r\na=candidate:1 1 udp 2130706431 127.0.0.1 9 typ host\r\n", "If-Match", `"stale"`)
	if resp.StatusCode != http.StatusPreconditionFailed {
		t.Errorf("PATCH with a stale If-Match: status %d, want 412", resp.StatusCode)
	}

	if len(slot.sessions) != sessionsBefore || !slot.Connected() || !slices.Equal(h.changesOf("x"), changesBefore) {
		t.Errorf("bad requests changed the slot: %d sessions (had %d), connected %v, changes %v",
			len(slot.sessions), sessionsBefore, slot.Connected(), h.changesOf("x"))
	}
	// Drain what is queued, then media must still flow.
	for len(sub.Packets()) > 0 {
		<-sub.Packets()
	}
	if video, audio := receive(ctx, sub, atLeast(10)); video.packets < 10 || audio.packets < 10 {
		t.Errorf("after bad requests the subscriber got %d video and %d audio packets", video.packets, audio.packets)
	}
}

func TestOptions(t *testing.T) {
	h := newHarness(t)
	resp, _ := do(t, "OPTIONS", h.url("o", 1, "whip"), "", "")
	if resp.StatusCode != http.StatusNoContent {
		t.Fatalf("status %d", resp.StatusCode)
	}
	if got := resp.Header.Get("Accept-Post"); got != "application/sdp" {
		t.Errorf("Accept-Post %q", got)
	}
	if got := resp.Header.Get("Link"); got != `<stun:stun.example.net:3478>; rel="ice-server"` {
		t.Errorf("Link %q", got)
	}
	if resp.Header.Get("Access-Control-Allow-Origin") == "" || !strings.Contains(resp.Header.Get("Access-Control-Allow-Methods"), "PATCH") {
		t.Errorf("CORS headers missing: %v", resp.Header)
	}
}

func TestWHIPAnswerHeaders(t *testing.T) {
	ctx := testContext(t, 30*time.Second)
	h := newHarness(t)
	pub := h.publish(ctx, "hd", 2, false)
	if !strings.Contains(pub.Location(), "/r/hd/2/s/") {
		t.Errorf("Location %q", pub.Location())
	}
	// A raw POST, to see the headers.
	offer := strings.ReplaceAll(unsupportedOffer, "AV1", "VP8")
	resp, body := do(t, "POST", h.url("hd", 1, "whip"), "application/sdp; charset=utf-8", offer)
	if resp.StatusCode != http.StatusCreated {
		t.Fatalf("POST: %d %s", resp.StatusCode, body)
	}
	loc := resp.Header.Get("Location")
	if !strings.HasPrefix(loc, "/r/hd/1/s/") || !strings.HasPrefix(resp.Header.Get("ETag"), `"`) ||
		resp.Header.Get("Content-Type") != "application/sdp" ||
		resp.Header.Get("Link") != `<stun:stun.example.net:3478>; rel="ice-server"` {
		t.Errorf("answer headers %v", resp.Header)
	}
	if !strings.Contains(body, "a=candidate:") || !strings.Contains(body, "VP8/90000") || strings.Contains(body, "H264") {
		t.Errorf("answer lacks candidates or offers other codecs than VP8:\n%s", body)
	}
	if resp, _ := do(t, "DELETE", h.http.URL+loc, "", ""); resp.StatusCode != http.StatusOK {
		t.Errorf("DELETE: %d", resp.StatusCode)
	}
	if resp, _ := do(t, "DELETE", h.http.URL+loc, "", ""); resp.StatusCode != http.StatusNotFound {
		t.Errorf("second DELETE: %d, want 404", resp.StatusCode)
	}

	// Trickle: a candidate for the live session is taken.
	status, patchBody, err := pub.Patch(ctx, "a=mid:0\r\na=candidate:1 1 udp 2130706431 127.0.0.1 9 typ host\r\na=end-of-candidates\r\n")
	if err != nil || status != http.StatusNoContent {
		t.Errorf("trickle PATCH: %d %s %v", status, patchBody, err)
	}
}

// An ICE restart through PATCH: the client restarts its ICE, sends its
// new credentials and candidates, applies the server's answer fragment,
// and media keeps flowing to a subscriber.
func TestICERestart(t *testing.T) {
	ctx := testContext(t, 30*time.Second)
	h := newHarness(t)
	pub := h.publish(ctx, "ir", 1, false)
	sub := h.subscribe(ctx, "ir", 1)
	receive(ctx, sub, atLeast(10))
	pc := pub.PeerConnection()
	oldRemote := pc.RemoteDescription().SDP

	offer, err := pc.CreateOffer(&webrtc.OfferOptions{ICERestart: true})
	if err != nil {
		t.Fatal(err)
	}
	gathered := webrtc.GatheringCompletePromise(pc)
	if err := pc.SetLocalDescription(offer); err != nil {
		t.Fatal(err)
	}
	<-gathered
	frag, err := localFrag(pc.LocalDescription())
	if err != nil {
		t.Fatal(err)
	}
	status, body, err := pub.Patch(ctx, frag)
	if err != nil || status != http.StatusOK {
		t.Fatalf("ICE restart PATCH: %d %s %v", status, body, err)
	}
	answerFrag, err := parseSDPFrag(body)
	if err != nil || answerFrag.ufrag == "" || len(answerFrag.candidates) == 0 {
		t.Fatalf("answer fragment %q: %+v %v", body, answerFrag, err)
	}
	if strings.Contains(oldRemote, "a=ice-ufrag:"+answerFrag.ufrag+"\r\n") {
		t.Error("server kept its ICE ufrag")
	}
	answer := withICECredentials(oldRemote, answerFrag)
	if err := pc.SetRemoteDescription(webrtc.SessionDescription{Type: webrtc.SDPTypeAnswer, SDP: answer}); err != nil {
		t.Fatal(err)
	}
	for len(sub.Packets()) > 0 {
		<-sub.Packets()
	}
	time.Sleep(200 * time.Millisecond)
	for len(sub.Packets()) > 0 {
		<-sub.Packets()
	}
	if video, audio := receive(ctx, sub, atLeast(20)); video.packets < 20 || audio.packets < 20 {
		t.Errorf("after the ICE restart the subscriber got %d video and %d audio packets", video.packets, audio.packets)
	}
}
