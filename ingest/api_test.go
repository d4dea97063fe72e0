package ingest

import (
	"context"
	"errors"
	"net/http"
	"path"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/pion/webrtc/v4"
	"github.com/singoff/singoff/internal/pionapi"
	"github.com/singoff/singoff/internal/testmedia"
)

// trickleFrag is a fragment with one candidate and no new credentials.
const trickleFrag = "a=mid:0\r\na=candidate:1 1 udp 2130706431 127.0.0.1 9 typ host\r\na=end-of-candidates\r\n"

// slotState is what a bad request must leave alone in a slot.
type slotState struct {
	sessions  int
	publisher *session
	connected bool
	feedOpen  bool
}

func stateOf(sl *slot) slotState {
	sl.mu.Lock()
	defer sl.mu.Unlock()
	sl.feed.mu.RLock()
	defer sl.feed.mu.RUnlock()
	return slotState{len(sl.sessions), sl.publisher.Load(), sl.connected, !sl.feed.closed}
}

// Bad requests get the right kind of error and change nothing: not the
// publisher, the sessions, the feed or the media, and no hook is called.
func TestBadRequestsChangeNothing(t *testing.T) {
	ctx := testContext(t, 30*time.Second)
	h := newHarness(t)
	pub := h.publish(ctx, "x", 1, false)
	sub := h.subscribe(ctx, "x", 1)
	receive(ctx, sub, atLeast(10))
	room := h.room("x")
	h.waitEvents("x", []hookEvent{{"x", hookConnected, 1, true}}, hookConnected)
	before := [2]slotState{stateOf(&room.slots[0]), stateOf(&room.slots[1])}
	eventsBefore := h.eventsOf("x")
	live := path.Base(pub.Location())
	const unknown = "0123456789abcdef"

	publish := func(slot int, offer string) func() error {
		return func() error { _, err := room.Publish(ctx, slot, []byte(offer)); return err }
	}
	subscribe := func(slot int, offer string) func() error {
		return func() error { _, err := room.Subscribe(ctx, slot, []byte(offer)); return err }
	}
	patch := func(slot int, session, frag, ifMatch string) func() error {
		return func() error { _, err := room.Patch(ctx, slot, session, []byte(frag), ifMatch); return err }
	}
	hangup := func(slot int, session string) func() error {
		return func() error { return room.Hangup(slot, session) }
	}
	cases := []struct {
		name     string
		call     func() error
		want     error
		contains string
	}{
		{"publish garbage", publish(1, "this is not SDP"), ErrMalformed, ""},
		{"subscribe garbage", subscribe(1, "v=0\r\nbogus\r\n"), ErrMalformed, ""},
		{"publish unsupported codecs", publish(1, testmedia.UnsupportedOffer), ErrUnusable, "offered AV1, G722, H264 (packetization-mode 0)"},
		{"publish no media", publish(1, "v=0\r\no=- 1 2 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\n"), ErrUnusable, "no media"},
		{"subscribe with a sendonly offer", subscribe(1, testmedia.VP8Offer), ErrUnusable, ""},
		{"publish to slot 3", publish(3, testmedia.VP8Offer), errNoSlot, ""},
		{"subscribe to slot 0", subscribe(0, testmedia.VP8Offer), errNoSlot, ""},
		{"patch unknown session", patch(1, unknown, trickleFrag, ""), ErrNoSession, ""},
		{"patch the publisher in the other slot", patch(2, live, trickleFrag, ""), ErrNoSession, ""},
		{"patch garbage", patch(1, live, "not a fragment", ""), ErrMalformed, ""},
		{"patch bad candidate", patch(1, live, "a=mid:0\r\na=candidate:nonsense\r\n", ""), ErrMalformed, ""},
		{"patch half the credentials", patch(1, live, "a=ice-ufrag:abcd\r\n", ""), ErrMalformed, ""},
		{"patch stale If-Match", patch(1, live, trickleFrag, `"stale"`), ErrPrecondition, ""},
		{"hangup unknown session", hangup(1, unknown), ErrNoSession, ""},
		{"hangup the publisher in the other slot", hangup(2, live), ErrNoSession, ""},
		{"hangup in slot 3", hangup(3, live), errNoSlot, ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			err := c.call()
			if !errors.Is(err, c.want) {
				t.Fatalf("error %v, want %v", err, c.want)
			}
			// The kind first, then the detail: nothing else in front.
			if !strings.HasPrefix(err.Error(), c.want.Error()) || !strings.Contains(err.Error(), c.contains) {
				t.Errorf("error %q does not start with %q or lacks %q", err, c.want, c.contains)
			}
			if after := [2]slotState{stateOf(&room.slots[0]), stateOf(&room.slots[1])}; after != before {
				t.Errorf("slots %+v, were %+v", after, before)
			}
			if events := h.eventsOf("x"); !slices.Equal(events, eventsBefore) {
				t.Errorf("hooks called: %v, were %v", events, eventsBefore)
			}
		})
	}

	// Media still flows, to the subscriber and into the feed.
	for len(sub.Packets()) > 0 {
		<-sub.Packets()
	}
	if video, audio := receive(ctx, sub, atLeast(10)); video.packets < 10 || audio.packets < 10 {
		t.Errorf("after bad requests the subscriber got %d video and %d audio packets", video.packets, audio.packets)
	}
	if video, audio := feedUnits(ctx, room.Feed(1), 5); len(video) < 5 || len(audio) < 5 {
		t.Errorf("after bad requests the feed gave %d video and %d audio units", len(video), len(audio))
	}
}

// A closed room answers ErrClosed to everything and asks no hook.
func TestClosedRoom(t *testing.T) {
	ctx := testContext(t, 10*time.Second)
	h := newHarness(t)
	room := h.room("z")
	answer, err := room.Subscribe(ctx, 2, newOffer(t, false, pionapi.VP8(96, nil)))
	if err != nil {
		t.Fatal(err)
	}
	room.Close()
	room.Close() // twice is fine
	offer, subOffer := newOffer(t, true, pionapi.VP8(96, nil)), newOffer(t, false, pionapi.VP8(96, nil))
	cases := []struct {
		name string
		call func() error
	}{
		{"publish", func() error { _, err := room.Publish(ctx, 1, offer); return err }},
		{"subscribe", func() error { _, err := room.Subscribe(ctx, 1, subOffer); return err }},
		{"patch", func() error { _, err := room.Patch(ctx, 2, answer.Session, []byte(trickleFrag), ""); return err }},
		{"hangup", func() error { return room.Hangup(2, answer.Session) }},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if err := c.call(); !errors.Is(err, ErrClosed) {
				t.Errorf("error %v, want ErrClosed", err)
			}
		})
	}
	if events := h.eventsOf("z"); len(events) != 0 {
		t.Errorf("hooks called: %v", events)
	}
	if _, ok := <-room.Feed(1).Units(); ok {
		t.Error("a closed room's feed delivers")
	}
}

func TestOpenRoom(t *testing.T) {
	h := newHarness(t)
	first, err := h.srv.OpenRoom("o", Hooks{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := h.srv.OpenRoom("o", Hooks{}); err == nil {
		t.Fatal("a room opened twice")
	}
	if h.srv.Room("o") != first || h.srv.Room("other") != nil {
		t.Fatal("Room does not find the open room")
	}
	if first.Feed(1) == nil || first.Feed(2) == nil || first.Feed(0) != nil || first.Feed(3) != nil {
		t.Fatal("feeds of slots 1 and 2 only")
	}
	first.Close()
	if h.srv.Room("o") != nil {
		t.Fatal("a closed room is found")
	}
	second, err := h.srv.OpenRoom("o", Hooks{})
	if err != nil || second == first {
		t.Fatalf("reopening a closed id: %v", err)
	}
	if err := h.srv.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := second.Publish(context.Background(), 1, []byte(testmedia.VP8Offer)); !errors.Is(err, ErrClosed) {
		t.Errorf("publish after the server closed: %v, want ErrClosed", err)
	}
	if _, err := h.srv.OpenRoom("p", Hooks{}); !errors.Is(err, ErrClosed) {
		t.Errorf("open a room on a closed server: %v, want ErrClosed", err)
	}
}

// Admit is asked before negotiating a publish offer; Negotiated follows
// whatever was admitted.
func TestPublishHooks(t *testing.T) {
	ctx := testContext(t, 20*time.Second)
	h := newHarness(t)
	errFull := errors.New("no room for another live battle")
	h.admit = func(room string, _ int) error {
		if room == "refused" {
			return errFull
		}
		return nil
	}
	good := newOffer(t, true, pionapi.H264(102, "42e01f", nil), pionapi.VP8(96, nil))
	var noFingerprint []byte
	for line := range strings.Lines(string(good)) {
		if !strings.HasPrefix(line, "a=fingerprint:") {
			noFingerprint = append(noFingerprint, line...)
		}
	}
	cases := []struct {
		room       string
		offer      []byte
		wantErr    error
		wantEvents []hookEvent
		session    bool
	}{
		{"answered", good, nil, []hookEvent{{"answered", hookAdmit, 2, true}, {"answered", hookNegotiated, 2, true}}, true},
		{"refused", good, errFull, []hookEvent{{"refused", hookAdmit, 2, false}}, false},
		{"negotiation fails", noFingerprint, ErrUnusable, []hookEvent{{"negotiation fails", hookAdmit, 2, true}, {"negotiation fails", hookNegotiated, 2, false}}, false},
	}
	for _, c := range cases {
		t.Run(c.room, func(t *testing.T) {
			room := h.room(c.room)
			answer, err := room.Publish(ctx, 2, c.offer)
			if !errors.Is(err, c.wantErr) {
				t.Fatalf("error %v, want %v", err, c.wantErr)
			}
			if events := h.eventsOf(c.room); !slices.Equal(events, c.wantEvents) {
				t.Errorf("hooks %v, want %v", events, c.wantEvents)
			}
			st := stateOf(&room.slots[1])
			if got := st.sessions == 1 && st.publisher != nil && st.publisher.id == answer.Session; got != c.session {
				t.Errorf("slot %+v; want a session: %v", st, c.session)
			}
		})
	}
}

// An answer carries the server's candidates and only what the offer
// offered; its session takes trickled candidates and hangs up once.
func TestAnswer(t *testing.T) {
	ctx := testContext(t, 20*time.Second)
	h := newHarness(t)
	room := h.room("hd")
	answer, err := room.Publish(ctx, 2, []byte(testmedia.VP8Offer))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(answer.SDP, "a=candidate:") || !strings.Contains(answer.SDP, "VP8/90000") || strings.Contains(answer.SDP, "H264") {
		t.Errorf("answer lacks candidates or offers other codecs than VP8:\n%s", answer.SDP)
	}
	if answer.Session == "" || len(answer.ETag) < 3 || !strings.HasPrefix(answer.ETag, `"`) || !strings.HasSuffix(answer.ETag, `"`) {
		t.Errorf("session %q, ETag %q", answer.Session, answer.ETag)
	}
	for _, ifMatch := range []string{"", "*", answer.ETag} {
		if restart, err := room.Patch(ctx, 2, answer.Session, []byte(trickleFrag), ifMatch); err != nil || restart != (Restart{}) {
			t.Errorf("trickle PATCH (If-Match %q): %+v, %v", ifMatch, restart, err)
		}
	}
	if err := room.Hangup(2, answer.Session); err != nil {
		t.Errorf("hangup: %v", err)
	}
	if err := room.Hangup(2, answer.Session); !errors.Is(err, ErrNoSession) {
		t.Errorf("second hangup: %v, want ErrNoSession", err)
	}
	// Never connected: nothing to report gone.
	h.waitEvents("hd", []hookEvent{{"hd", hookAdmit, 2, true}, {"hd", hookNegotiated, 2, true}})
}

// The server answers a publisher with a codec the other singer, already
// subscribed, can receive.
func TestAnswersWhatTheOtherSingerCanReceive(t *testing.T) {
	ctx := testContext(t, 20*time.Second)
	h := newHarness(t)
	both := []webrtc.RTPCodecParameters{pionapi.H264(102, "42e01f", nil), pionapi.VP8(96, nil)}
	cases := []struct {
		name       string
		subscriber []webrtc.RTPCodecParameters // nil: none
		want       string                      // the payload type answered first
	}{
		{"no subscriber", nil, "102"},
		{"an H264 and VP8 subscriber", both, "102"},
		{"a VP8-only subscriber", []webrtc.RTPCodecParameters{pionapi.VP8(96, nil)}, "96"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			room := h.room(c.name)
			if c.subscriber != nil {
				sub, err := room.Subscribe(ctx, 1, newOffer(t, false, c.subscriber...))
				if err != nil {
					t.Fatal(err)
				}
				if vp8Only := len(c.subscriber) == 1; vp8Only && strings.Contains(sub.SDP, "H264") {
					t.Errorf("a VP8-only subscriber is answered H264:\n%s", sub.SDP)
				}
			}
			pub, err := room.Publish(ctx, 1, newOffer(t, true, both...))
			if err != nil {
				t.Fatal(err)
			}
			if got := firstVideoFormat(pub.SDP); got != c.want {
				t.Errorf("publisher answered payload type %s first, want %s:\n%s", got, c.want, pub.SDP)
			}
		})
	}
}

func firstVideoFormat(sdp string) string {
	for line := range strings.Lines(sdp) {
		if f := strings.Fields(line); len(f) > 3 && f[0] == "m=video" {
			return f[3]
		}
	}
	return ""
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
	frag, err := localFrag(pc.LocalDescription().SDP)
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
