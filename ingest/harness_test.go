package ingest

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"slices"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/pion/webrtc/v4"
	"github.com/singoff/singoff/ingest/whipclient"
	"github.com/singoff/singoff/internal/pionapi"
	"github.com/singoff/singoff/internal/testmedia"
)

// testFiles are the clips made once for the whole test binary.
var testFiles *testmedia.Files

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "ingest-test")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	testFiles, err = testmedia.Generate(ctx, dir)
	cancel()
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	code := m.Run()
	_ = os.RemoveAll(dir)
	os.Exit(code)
}

// harness is a loopback Server whose rooms open on first use and record
// their hooks, behind a minimal HTTP shim for whipclient: POST
// /r/{room}/{slot}/whip and /whep, PATCH and DELETE /r/{room}/{slot}/s/{session}.
type harness struct {
	t    testing.TB
	srv  *Server
	http *httptest.Server

	mu     sync.Mutex
	events []hookEvent
	// admit, when set, answers every room's Admit.
	admit func(room string, slot int) error
}

// hookEvent is one call of a room's hooks.
type hookEvent struct {
	room string
	hook hook
	slot int
	ok   bool // Admit admitted, Negotiated's ok, Connected's connected
}

type hook int

const (
	hookAdmit hook = iota + 1
	hookNegotiated
	hookConnected
)

func (h hook) String() string {
	return map[hook]string{hookAdmit: "admit", hookNegotiated: "negotiated", hookConnected: "connected"}[h]
}

func newHarness(t testing.TB) *harness {
	t.Helper()
	srv, err := NewServer(Config{Loopback: true,
		Logger: slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))})
	if err != nil {
		t.Fatal(err)
	}
	h := &harness{t: t, srv: srv}
	mux := http.NewServeMux()
	mux.HandleFunc("POST /r/{room}/{slot}/{kind}", h.serveOffer)
	mux.HandleFunc("PATCH /r/{room}/{slot}/s/{session}", h.servePatch)
	mux.HandleFunc("DELETE /r/{room}/{slot}/s/{session}", h.serveDelete)
	h.http = httptest.NewServer(mux)
	t.Cleanup(func() {
		h.http.Close()
		_ = srv.Close()
	})
	return h
}

// room returns the open room id, opened with recording hooks if need be.
func (h *harness) room(id string) *Room {
	h.mu.Lock()
	defer h.mu.Unlock()
	if r := h.srv.Room(id); r != nil {
		return r
	}
	r, err := h.srv.OpenRoom(id, h.hooks(id))
	if err != nil {
		h.t.Fatalf("open room %s: %v", id, err)
	}
	return r
}

func (h *harness) hooks(room string) Hooks {
	return Hooks{
		Admit: func(slot int) error {
			h.mu.Lock()
			admit := h.admit
			h.mu.Unlock()
			var err error
			if admit != nil {
				err = admit(room, slot)
			}
			h.record(hookEvent{room, hookAdmit, slot, err == nil})
			return err
		},
		Negotiated: func(slot int, ok bool) { h.record(hookEvent{room, hookNegotiated, slot, ok}) },
		Connected:  func(slot int, connected bool) { h.record(hookEvent{room, hookConnected, slot, connected}) },
	}
}

func (h *harness) record(e hookEvent) {
	h.mu.Lock()
	h.events = append(h.events, e)
	h.mu.Unlock()
}

// eventsOf returns the hook calls of room, of the kinds given (all
// without).
func (h *harness) eventsOf(room string, kinds ...hook) []hookEvent {
	h.mu.Lock()
	defer h.mu.Unlock()
	var out []hookEvent
	for _, e := range h.events {
		if e.room == room && (len(kinds) == 0 || slices.Contains(kinds, e.hook)) {
			out = append(out, e)
		}
	}
	return out
}

// waitEvents waits a few seconds for room's hook calls of kinds to be
// want, since Connected comes from pion's goroutines, and fails the test
// if they are not.
func (h *harness) waitEvents(room string, want []hookEvent, kinds ...hook) {
	h.t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	got := h.eventsOf(room, kinds...)
	for !slices.Equal(got, want) && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
		got = h.eventsOf(room, kinds...)
	}
	if !slices.Equal(got, want) {
		h.t.Errorf("room %s hooks %v, want %v", room, got, want)
	}
}

func (h *harness) url(room string, slot int, kind string) string {
	return fmt.Sprintf("%s/r/%s/%d/%s", h.http.URL, room, slot, kind)
}

// The shim: just enough HTTP for whipclient.

func (h *harness) serveOffer(w http.ResponseWriter, r *http.Request) {
	room, slot, ok := h.pathRoom(w, r)
	if !ok {
		return
	}
	offer, err := io.ReadAll(r.Body)
	if err != nil {
		return
	}
	var answer Answer
	switch r.PathValue("kind") {
	case "whip":
		answer, err = room.Publish(r.Context(), slot, offer)
	case "whep":
		answer, err = room.Subscribe(r.Context(), slot, offer)
	default:
		http.NotFound(w, r)
		return
	}
	if err != nil {
		shimError(w, err)
		return
	}
	w.Header().Set("Location", fmt.Sprintf("/r/%s/%d/s/%s", r.PathValue("room"), slot, answer.Session))
	w.Header().Set("ETag", answer.ETag)
	w.WriteHeader(http.StatusCreated)
	_, _ = io.WriteString(w, answer.SDP)
}

func (h *harness) servePatch(w http.ResponseWriter, r *http.Request) {
	room, slot, ok := h.pathRoom(w, r)
	if !ok {
		return
	}
	frag, err := io.ReadAll(r.Body)
	if err != nil {
		return
	}
	restart, err := room.Patch(r.Context(), slot, r.PathValue("session"), frag, r.Header.Get("If-Match"))
	switch {
	case err != nil:
		shimError(w, err)
	case restart.Fragment == "":
		w.WriteHeader(http.StatusNoContent)
	default:
		w.Header().Set("ETag", restart.ETag)
		_, _ = io.WriteString(w, restart.Fragment)
	}
}

func (h *harness) serveDelete(w http.ResponseWriter, r *http.Request) {
	room, slot, ok := h.pathRoom(w, r)
	if !ok {
		return
	}
	if err := room.Hangup(slot, r.PathValue("session")); err != nil {
		shimError(w, err)
	}
}

func (h *harness) pathRoom(w http.ResponseWriter, r *http.Request) (*Room, int, bool) {
	slot, err := strconv.Atoi(r.PathValue("slot"))
	if err != nil {
		http.NotFound(w, r)
		return nil, 0, false
	}
	return h.room(r.PathValue("room")), slot, true
}

func shimError(w http.ResponseWriter, err error) {
	status := http.StatusInternalServerError
	for _, k := range []struct {
		err    error
		status int
	}{
		{ErrMalformed, http.StatusBadRequest}, {ErrUnusable, http.StatusUnprocessableEntity},
		{ErrNoSession, http.StatusNotFound}, {ErrPrecondition, http.StatusPreconditionFailed},
		{ErrClosed, http.StatusConflict}, {ErrConflict, http.StatusConflict},
	} {
		if errors.Is(err, k.err) {
			status = k.status
			break
		}
	}
	http.Error(w, err.Error(), status)
}

// publish starts a publisher on room/slot playing the test clips until
// the test ends, and waits until it is connected.
func (h *harness) publish(ctx context.Context, room string, slot int, vp8 bool) *whipclient.Publisher {
	h.t.Helper()
	return h.publishWith(ctx, room, slot, vp8, whipclient.Options{Loopback: true})
}

func (h *harness) publishWith(ctx context.Context, room string, slot int, vp8 bool, opts whipclient.Options) *whipclient.Publisher {
	h.t.Helper()
	if vp8 {
		opts.VideoCodec = webrtc.MimeTypeVP8
	}
	pub, err := whipclient.Publish(ctx, h.url(room, slot, "whip"), "", opts)
	if err != nil {
		h.t.Fatalf("publish %s/%d: %v", room, slot, err)
	}
	playCtx, stop := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		if err := testmedia.Play(playCtx, pub, testFiles, vp8); err != nil {
			h.t.Errorf("play: %v", err)
		}
	}()
	h.t.Cleanup(func() {
		stop()
		<-done
		_ = pub.Close(context.Background())
	})
	waitConnected(ctx, h.t, pub.Connected())
	return pub
}

func (h *harness) subscribe(ctx context.Context, room string, slot int) *whipclient.Subscriber {
	h.t.Helper()
	sub, err := whipclient.Subscribe(ctx, h.url(room, slot, "whep"), "", whipclient.Options{Loopback: true})
	if err != nil {
		h.t.Fatalf("subscribe %s/%d: %v", room, slot, err)
	}
	h.t.Cleanup(func() { _ = sub.Close(context.Background()) })
	waitConnected(ctx, h.t, sub.Connected())
	return sub
}

func waitConnected(ctx context.Context, t testing.TB, connected <-chan struct{}) {
	t.Helper()
	select {
	case <-connected:
	case <-ctx.Done():
		t.Fatal("peer connection did not connect")
	}
}

// newOffer is a pion client's complete offer (candidates gathered) to
// send (publish) or receive one video track in any of video's codecs and
// one Opus track. The client never answers ICE.
func newOffer(t testing.TB, publish bool, video ...webrtc.RTPCodecParameters) []byte {
	t.Helper()
	return offerWith(t, publish, pionapi.Options{Video: video, Audio: []webrtc.RTPCodecParameters{pionapi.Opus(111)}, Loopback: true})
}

// offerWith is newOffer from a client API built with opts.
func offerWith(t testing.TB, publish bool, opts pionapi.Options) []byte {
	t.Helper()
	api, err := pionapi.New(opts)
	if err != nil {
		t.Fatal(err)
	}
	pc, err := api.NewPeerConnection(webrtc.Configuration{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = pc.Close() })
	dir := webrtc.RTPTransceiverDirectionRecvonly
	if publish {
		dir = webrtc.RTPTransceiverDirectionSendonly
	}
	for _, kind := range []webrtc.RTPCodecType{webrtc.RTPCodecTypeVideo, webrtc.RTPCodecTypeAudio} {
		if _, err := pc.AddTransceiverFromKind(kind, webrtc.RTPTransceiverInit{Direction: dir}); err != nil {
			t.Fatal(err)
		}
	}
	return []byte(completeOffer(t, pc))
}

// completeOffer makes pc's offer and returns it once its candidates are
// gathered.
func completeOffer(t testing.TB, pc *webrtc.PeerConnection) string {
	t.Helper()
	offer, err := pc.CreateOffer(nil)
	if err != nil {
		t.Fatal(err)
	}
	gathered := webrtc.GatheringCompletePromise(pc)
	if err := pc.SetLocalDescription(offer); err != nil {
		t.Fatal(err)
	}
	<-gathered
	return pc.LocalDescription().SDP
}

// testContext bounds a test's waits.
func testContext(t testing.TB, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}
