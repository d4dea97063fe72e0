package web

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/netip"
	"sync"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/singoff/singoff/battle"
)

// Timing of the events stream.
const (
	sseHeartbeat    = 15 * time.Second // a comment keeps proxies from timing the stream out
	sseWriteTimeout = 10 * time.Second // a subscriber that cannot take an event in this long is dropped
	sseBacklog      = 64               // events a subscriber may fall behind before it is dropped
	// sseMinInterval spaces a battle's events: changes closer together
	// (votes pouring in) make one event with the latest state, so a
	// popular battle costs its subscribers at most 10 writes a second.
	sseMinInterval = 100 * time.Millisecond
)

// eventHub fans a battle's changes out to its events streams: each
// change is rendered once, and every subscriber gets the same bytes.
type eventHub struct {
	battles *battle.Manager
	log     *slog.Logger
	// maxStreams and maxPerNetwork cap the open streams, on the server
	// and of one client network.
	maxStreams, maxPerNetwork int

	mu      sync.Mutex
	feeds   map[feedKey]*feed
	streams int                  // open streams
	byNet   map[netip.Prefix]int // open streams by client network
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

	// chat is the number of the last chat change sent (run's own).
	chat int64

	mu   sync.Mutex
	last []byte // the latest battle event, framed
	subs map[chan []byte]struct{}
}

func newEventHub(b *battle.Manager, log *slog.Logger, l Limits) *eventHub {
	return &eventHub{
		battles: b, log: log, maxStreams: l.EventStreams, maxPerNetwork: l.EventStreamsPerNetwork,
		feeds: map[feedKey]*feed{}, byNet: map[netip.Prefix]int{},
	}
}

// Refusals of a new stream past the caps.
var (
	errStreamsFull       = errors.New("this server has as many event streams open as it can")
	errNetworkStreamsCap = fmt.Errorf("%w: your network has as many event streams open as it may", battle.ErrNetworkLimit)
)

// open counts a new stream of network within the caps; close gives its
// place back.
func (h *eventHub) open(network netip.Prefix) (close func(), err error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	switch {
	case h.streams >= h.maxStreams:
		return nil, errStreamsFull
	case h.byNet[network] >= h.maxPerNetwork:
		return nil, errNetworkStreamsCap
	}
	h.streams++
	h.byNet[network]++
	return func() {
		h.mu.Lock()
		defer h.mu.Unlock()
		h.streams--
		if h.byNet[network]--; h.byNet[network] == 0 {
			delete(h.byNet, network)
		}
	}, nil
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
		chat, stopChat := h.battles.SubscribeChat(key.id)
		f.stop = func() { stop(); stopChat() }
		f.chat = h.chatCursor(key.id) // after listening: no change falls between
		h.feeds[key] = f
		f.publish(h.render(key)) // before anyone reads it
		go h.run(f, changes, chat)
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
		if _, ok := f.subs[ch]; ok {
			delete(f.subs, ch)
			close(ch)
		}
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
// subscribers, at most once per sseMinInterval: changes within it are
// rendered together at its end.
//
// Chat changes are sent as they come, each message once.
func (h *eventHub) run(f *feed, changes, chat <-chan struct{}) {
	var last time.Time
	var due <-chan time.Time // a render is waiting for its turn
	for {
		select {
		case <-f.done:
			return
		case <-chat:
			h.sendChat(f)
			continue
		case <-changes:
			if due != nil {
				continue
			}
			if wait := sseMinInterval - time.Since(last); wait > 0 {
				due = time.After(wait)
				continue
			}
		case <-due:
			due = nil
		}
		f.publish(h.render(f.key))
		last = time.Now()
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

// chatCursor is the number of battle id's last chat change; 0 when it
// cannot be read (the feed then sends the whole chat at its first
// change).
func (h *eventHub) chatCursor(id string) int64 {
	ctx, cancel := context.WithTimeout(context.Background(), apiTimeout)
	defer cancel()
	n, err := h.battles.ChatCursor(ctx, id)
	if err != nil {
		h.log.Error("reading a battle's chat", "battle", id, "err", err)
	}
	return n
}

// sendChat sends the chat changes after f.chat to every subscriber,
// each framed once.
func (h *eventHub) sendChat(f *feed) {
	ctx, cancel := context.WithTimeout(context.Background(), apiTimeout)
	defer cancel()
	for {
		ch, err := h.battles.ChatSince(ctx, f.key.id, f.chat)
		if err != nil {
			h.log.Error("reading a battle's chat", "battle", f.key.id, "err", err)
			return
		}
		for _, e := range ch.Entries {
			data, err := json.Marshal(chatEventOf(e))
			if err != nil {
				h.log.Error("rendering a chat event", "battle", f.key.id, "err", err)
				continue
			}
			f.send(fmt.Appendf(nil, "event: chat\ndata: %s\n\n", data))
		}
		f.chat = ch.Last
		if len(ch.Entries) < battle.MaxChatPage {
			return
		}
	}
}

// send hands an event to every subscriber. A subscriber whose backlog
// is full is dropped, not skipped ahead (chat messages would be lost
// on the way): its stream ends, and its page reconnects, getting the
// battle's state and reading the chat's history again.
func (f *feed) send(event []byte) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for ch := range f.subs {
		select {
		case ch <- event:
		default:
			delete(f.subs, ch)
			close(ch)
		}
	}
}

// publish hands event to every subscriber unless it repeats the last
// one; a subscriber that cannot take it is dropped, as by send.
func (f *feed) publish(event []byte) {
	if event == nil {
		return
	}
	f.mu.Lock()
	repeat := string(event) == string(f.last)
	f.last = event
	f.mu.Unlock()
	if !repeat {
		f.send(event)
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
	closeStream, err := a.events.open(clientNetwork(c))
	switch {
	case errors.Is(err, battle.ErrNetworkLimit):
		tooMany(c, err)
		return
	case err != nil:
		unavailable(c, err)
		return
	}
	defer closeStream()
	events, leave := a.events.subscribe(feedKey{id: id, base: a.srv.baseURL(c)})
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
		case ev, ok := <-events:
			if !ok || !write(ev) {
				return
			}
		case <-heartbeat.C:
			if !write([]byte(": ping\n\n")) {
				return
			}
		}
	}
}
