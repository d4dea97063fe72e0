package ingest

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/singoff/singoff/ingest/whipclient"
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

// harness is a loopback Server behind an httptest server that routes
// /r/{room}/{slot}/whip, /whep and /s/{session} like the battle package.
type harness struct {
	t    *testing.T
	srv  *Server
	http *httptest.Server

	mu      sync.Mutex
	rooms   map[string]*Room
	changes []slotChange
}

type slotChange struct {
	room      string
	slot      int
	connected bool
}

func newHarness(t *testing.T) *harness {
	t.Helper()
	srv, err := NewServer(Config{Loopback: true, ICEServers: []string{"stun:stun.example.net:3478"},
		Logger: slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))})
	if err != nil {
		t.Fatal(err)
	}
	h := &harness{t: t, srv: srv, rooms: map[string]*Room{}}
	mux := http.NewServeMux()
	mux.HandleFunc("POST /r/{room}/{slot}/whip", h.offer(srv.ServeWHIP))
	mux.HandleFunc("POST /r/{room}/{slot}/whep", h.offer(srv.ServeWHEP))
	mux.HandleFunc("OPTIONS /r/{room}/{slot}/whip", srv.ServeOptions)
	session := func(w http.ResponseWriter, r *http.Request) {
		slot := h.slot(r)
		if slot == nil {
			http.NotFound(w, r)
			return
		}
		srv.ServeSession(w, r, slot, r.PathValue("session"))
	}
	mux.HandleFunc("PATCH /r/{room}/{slot}/s/{session}", session)
	mux.HandleFunc("DELETE /r/{room}/{slot}/s/{session}", session)
	h.http = httptest.NewServer(mux)
	t.Cleanup(func() {
		h.http.Close()
		_ = srv.Close()
	})
	return h
}

func (h *harness) offer(serve func(http.ResponseWriter, *http.Request, *Slot, func(string) string)) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		slot := h.slot(r)
		if slot == nil {
			http.NotFound(w, r)
			return
		}
		serve(w, r, slot, func(id string) string {
			return "/r/" + r.PathValue("room") + "/" + r.PathValue("slot") + "/s/" + id
		})
	}
}

// room returns the room id, made on first use.
func (h *harness) room(id string) *Room {
	h.mu.Lock()
	defer h.mu.Unlock()
	if r, ok := h.rooms[id]; ok {
		return r
	}
	r := h.srv.NewRoom(id, func(slot int, connected bool) {
		h.mu.Lock()
		h.changes = append(h.changes, slotChange{id, slot, connected})
		h.mu.Unlock()
	})
	h.rooms[id] = r
	return r
}

func (h *harness) slot(r *http.Request) *Slot {
	n, err := strconv.Atoi(r.PathValue("slot"))
	if err != nil {
		return nil
	}
	return h.room(r.PathValue("room")).Slot(n)
}

func (h *harness) changesOf(room string) []slotChange {
	h.mu.Lock()
	defer h.mu.Unlock()
	var out []slotChange
	for _, c := range h.changes {
		if c.room == room {
			out = append(out, c)
		}
	}
	return out
}

func (h *harness) url(room string, slot int, kind string) string {
	return fmt.Sprintf("%s/r/%s/%d/%s", h.http.URL, room, slot, kind)
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
		opts.VideoCodec = "video/VP8"
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

func waitConnected(ctx context.Context, t *testing.T, connected <-chan struct{}) {
	t.Helper()
	select {
	case <-connected:
	case <-ctx.Done():
		t.Fatal("peer connection did not connect")
	}
}

// testContext bounds a test's waits.
func testContext(t *testing.T, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}
