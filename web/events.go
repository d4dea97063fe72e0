package web

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"sync"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/singoff/singoff/battle"
)

// Timing of the events stream.
const (
	sseHeartbeat    = 15 * time.Second // a comment keeps proxies from timing the stream out
	sseWriteTimeout = 10 * time.Second // a subscriber that cannot take an event in this long is dropped
	sseBacklog      = 16               // events a subscriber may fall behind before it skips to the latest
)

// eventHub fans a battle's changes out to its events streams: each
// change is rendered once, and every subscriber gets the same bytes.
type eventHub struct {
	battles *battle.Manager
	log     *slog.Logger

	mu    sync.Mutex
	feeds map[feedKey]*feed
}

// feedKey names one rendering of a battle: its URLs carry the base the
// subscribers used.
type feedKey struct {
	id   string
	base urlBase
}

// feed is one battle's rendered events and their subscribers.
type feed struct {
	key  feedKey
	stop func()        // ends the battle subscription
	done chan struct{} // closed when the last subscriber leaves

	mu   sync.Mutex
	last []byte // the latest event, framed
	subs map[chan []byte]struct{}
}

func newEventHub(b *battle.Manager, log *slog.Logger) *eventHub {
	return &eventHub{battles: b, log: log, feeds: map[feedKey]*feed{}}
}

// subscribe joins key's feed, starting it if it is the first; the
// channel gets every event from the current state on. leave ends it.
func (h *eventHub) subscribe(key feedKey) (events <-chan []byte, leave func()) {
	ch := make(chan []byte, sseBacklog)
	h.mu.Lock()
	f := h.feeds[key]
	if f == nil {
		f = &feed{key: key, subs: map[chan []byte]struct{}{}, done: make(chan struct{})}
		changes, stop := h.battles.Subscribe(key.id)
		f.stop = stop
		h.feeds[key] = f
		f.publish(h.render(key)) // before anyone reads it
		go h.run(f, changes)
	}
	f.mu.Lock()
	f.subs[ch] = struct{}{}
	if f.last != nil {
		ch <- f.last
	}
	f.mu.Unlock()
	h.mu.Unlock()
	return ch, func() {
		h.mu.Lock()
		defer h.mu.Unlock()
		f.mu.Lock()
		delete(f.subs, ch)
		empty := len(f.subs) == 0
		f.mu.Unlock()
		if empty && h.feeds[key] == f {
			delete(h.feeds, key)
			f.stop()
			close(f.done)
		}
	}
}

// run renders the battle on every change while the feed has
// subscribers.
func (h *eventHub) run(f *feed, changes <-chan struct{}) {
	for {
		select {
		case <-f.done:
			return
		case <-changes:
			f.publish(h.render(f.key))
		}
	}
}

// render frames the battle's current state as one event; nil when it
// cannot be read.
func (h *eventHub) render(key feedKey) []byte {
	ctx, cancel := context.WithTimeout(context.Background(), apiTimeout)
	defer cancel()
	st, err := h.battles.Status(ctx, key.id)
	if err != nil {
		h.log.Error("rendering a battle event", "battle", key.id, "err", err)
		return nil
	}
	data, err := json.Marshal(viewOf(st, key.base))
	if err != nil {
		h.log.Error("rendering a battle event", "battle", key.id, "err", err)
		return nil
	}
	return fmt.Appendf(nil, "event: battle\ndata: %s\n\n", data)
}

// publish hands event to every subscriber unless it repeats the last
// one. A subscriber whose backlog is full skips to this event.
func (f *feed) publish(event []byte) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if event == nil || string(event) == string(f.last) {
		return
	}
	f.last = event
	for ch := range f.subs {
		select {
		case ch <- event:
		default:
			for len(ch) > 0 {
				<-ch
			}
			ch <- event
		}
	}
}

// stream serves GET /api/battles/{id}/events: the battle object at once,
// then on every change, as Server-Sent Events.
func (a *api) stream(c *gin.Context) {
	id := c.Param("id")
	if _, err := a.battles.Get(c.Request.Context(), id); err != nil {
		a.battleError(c, err)
		return
	}
	events, leave := a.events.subscribe(feedKey{id: id, base: a.urls.baseURL(c)})
	defer leave()
	h := c.Writer.Header()
	h.Set("Content-Type", "text/event-stream")
	h.Set("Cache-Control", "no-store")
	h.Set("X-Accel-Buffering", "no") // nginx: pass events on at once
	rc := http.NewResponseController(c.Writer)
	write := func(b []byte) bool {
		_ = rc.SetWriteDeadline(time.Now().Add(sseWriteTimeout))
		if _, err := c.Writer.Write(b); err != nil {
			return false
		}
		return rc.Flush() == nil
	}
	c.Writer.WriteHeader(http.StatusOK)
	heartbeat := time.NewTicker(sseHeartbeat)
	defer heartbeat.Stop()
	ctx := c.Request.Context()
	for {
		select {
		case <-ctx.Done():
			return
		case ev := <-events:
			if !write(ev) {
				return
			}
		case <-heartbeat.C:
			if !write([]byte(": ping\n\n")) {
				return
			}
		}
	}
}
