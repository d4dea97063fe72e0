package battle

import (
	"context"
	"errors"
	"strings"
	"sync"
	"time"

	"github.com/singoff/singoff/storage"
)

// Several origins share one store: each registers itself with a
// heartbeat, a new battle goes to the one with the most free capacity,
// any origin answers for any battle, and a battle's media (its room and
// program) live on its origin only. Changes made on one origin reach the
// others through Changes; an origin that stops beating is reaped by the
// others (its live battles end, its waiting ones move).

// Changes carries battle changes between the origins sharing the store
// (storage.Postgres satisfies it).
type Changes interface {
	// Announce tells the other origins battle id changed; it never
	// blocks.
	Announce(id string)
	// Listen calls changed for each battle another origin announces,
	// until ctx is done (nil) or its connection fails (the error).
	Listen(ctx context.Context, changed func(id string)) error
}

// ErrElsewhere says another origin runs the battle: its media go there.
var ErrElsewhere = errors.New("another origin runs this battle")

// Origin timing defaults.
const (
	DefaultHeartbeat     = 2 * time.Second
	DefaultOriginTimeout = 10 * time.Second
)

// origin is this server's part among several origins.
type origin struct {
	stop context.CancelFunc
	done sync.WaitGroup

	// presenceDirty wakes the loop to store a change of singers.
	presenceDirty chan struct{}

	// sightings, of the loop only, are when each other origin's
	// heartbeat was last seen to change, on this server's clock: an
	// origin is dead when its heartbeat stands still for OriginTimeout,
	// however far its clock is from this one's.
	sightings map[string]sighting
}

type sighting struct {
	seen time.Time // the origin's own heartbeat time
	at   time.Time // when this server saw it change
}

// here tells whether battle b runs on this server.
func (m *Manager) here(b *storage.Battle) bool {
	return m.cfg.Origin == "" || b.Origin == "" || b.Origin == m.cfg.Origin
}

// Owner tells where battle b's media go: elsewhere is true when another
// origin runs it, url that origin's (its --advertise-url).
func (m *Manager) Owner(b *storage.Battle) (url string, elsewhere bool) {
	if m.here(b) {
		return "", false
	}
	return b.Origin, true
}

// OriginOf is the URL of the origin that runs battle b ("" for a server
// on its own).
func (m *Manager) OriginOf(b *storage.Battle) string {
	if b.Origin != "" {
		return b.Origin
	}
	return m.cfg.Origin
}

// Join registers this server among the origins (Config.Origin) and
// keeps it registered until Close: a heartbeat, the reaping of origins
// that died, the presence of its live battles for the others, and the
// changes the others announce. A server on its own does nothing here.
func (m *Manager) Join(ctx context.Context) error {
	if m.cfg.Origin == "" {
		return nil
	}
	if err := m.heartbeat(ctx); err != nil {
		return err
	}
	bg, stop := context.WithCancel(context.Background())
	m.origin.stop = stop
	m.origin.done.Go(func() { m.originLoop(bg) })
	if m.cfg.Changes != nil {
		m.origin.done.Go(func() { m.listen(bg) })
	}
	return nil
}

// leave stops the origin's loops and reaps this origin itself: its
// waiting battles move to origins that are alive.
func (m *Manager) leave() {
	if m.origin.stop == nil {
		return
	}
	m.origin.stop()
	m.origin.done.Wait()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	now := time.Now().UTC()
	r, err := m.cfg.Store.ReapOrigin(ctx, m.cfg.Origin, now.Add(time.Second), now.Add(-m.cfg.OriginTimeout), now)
	if err != nil {
		m.cfg.Logger.Error("leaving the origins", "err", err)
		return
	}
	m.announce(r.Moved...)
	if len(r.Moved) > 0 {
		m.cfg.Logger.Info("waiting battles moved to other origins", "battles", strings.Join(r.Moved, ","))
	}
}

// originLoop beats, reaps and reconciles every Heartbeat, and stores a
// change of singers as it comes.
func (m *Manager) originLoop(ctx context.Context) {
	tick := time.NewTicker(m.cfg.Heartbeat)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-m.origin.presenceDirty:
			m.storePresence(ctx)
		case <-tick.C:
			if err := m.heartbeat(ctx); err != nil && ctx.Err() == nil {
				m.cfg.Logger.Error("origin heartbeat", "err", err)
			}
			m.reap(ctx)
			m.reconcileRunning(ctx)
			m.storePresence(ctx)
		}
	}
}

// heartbeat says this origin is alive, with its capacity (none while
// draining) and its live battles.
func (m *Manager) heartbeat(ctx context.Context) error {
	capacity := m.cfg.MaxLive
	if m.isDraining() {
		capacity = 0
	}
	return m.cfg.Store.Heartbeat(ctx, storage.Origin{
		URL:      m.cfg.Origin,
		Capacity: capacity,
		Live:     m.livePlaces(),
		SeenAt:   time.Now().UTC(),
	})
}

// reap ends the live battles and moves the waiting ones of every origin
// whose heartbeat has stood still for OriginTimeout.
func (m *Manager) reap(ctx context.Context) {
	origins, err := m.cfg.Store.Origins(ctx)
	if err != nil {
		if ctx.Err() == nil {
			m.cfg.Logger.Error("listing the origins", "err", err)
		}
		return
	}
	now := time.Now()
	if m.origin.sightings == nil {
		m.origin.sightings = map[string]sighting{}
	}
	listed := map[string]bool{}
	for _, o := range origins {
		listed[o.URL] = true
		s, known := m.origin.sightings[o.URL]
		if o.URL == m.cfg.Origin || !known || !s.seen.Equal(o.SeenAt) {
			m.origin.sightings[o.URL] = sighting{seen: o.SeenAt, at: now}
			continue
		}
		if now.Sub(s.at) < m.cfg.OriginTimeout {
			continue
		}
		// Only if it has not beaten since this server last saw it.
		at := now.UTC()
		r, err := m.cfg.Store.ReapOrigin(ctx, o.URL, o.SeenAt.Add(time.Nanosecond), at.Add(-m.cfg.OriginTimeout), at)
		if err != nil {
			m.cfg.Logger.Error("reaping a dead origin", "origin", o.URL, "err", err)
			continue
		}
		delete(m.origin.sightings, o.URL)
		if r.Ended == nil && r.Moved == nil {
			continue
		}
		m.cfg.Logger.Warn("an origin died: its live battles ended, its waiting ones moved", "origin", o.URL,
			"ended", strings.Join(r.Ended, ","), "moved", strings.Join(r.Moved, ","))
		if len(r.Ended) > 0 {
			m.cfg.Orphaned(r.Ended)
		}
		for _, id := range append(r.Ended, r.Moved...) {
			m.notify(id)
		}
	}
	for url := range m.origin.sightings {
		if !listed[url] {
			delete(m.origin.sightings, url)
		}
	}
}

// listen follows the other origins' announcements, listening again
// after a failure; what may have been missed meanwhile is reconciled.
func (m *Manager) listen(ctx context.Context) {
	for {
		err := m.cfg.Changes.Listen(ctx, func(id string) { m.changedElsewhere(ctx, id) })
		if ctx.Err() != nil {
			return
		}
		m.cfg.Logger.Error("listening for other origins' changes; again in a second", "err", err)
		select {
		case <-ctx.Done():
			return
		case <-time.After(time.Second):
		}
		m.reconcileRunning(ctx)
	}
}

// changedElsewhere follows another origin's change to battle id: the
// battle is brought in line here, and its watchers here hear of it.
func (m *Manager) changedElsewhere(ctx context.Context, id string) {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	m.reconcile(ctx, id)
	m.notifyHere(id)
	m.chat.wake(id) // its chat may have changed too
}

// reconcileRunning reconciles every battle that has a room here.
func (m *Manager) reconcileRunning(ctx context.Context) {
	for _, r := range m.runningNow() {
		m.reconcile(ctx, r.id)
	}
}

// reconcile brings battle id in line with the store, where another
// origin may have changed it: ended there, it ends here; started there,
// its clock runs here (and a battle of this origin that had no room
// gets one, so that its timeline runs and ends it); voted on there, the
// program shows the votes; moved to another origin (this one was taken
// for dead), its room here closes.
func (m *Manager) reconcile(ctx context.Context, id string) {
	b, err := m.Get(ctx, id)
	if err != nil {
		return
	}
	r := m.lookup(id)
	switch {
	case r == nil:
		if m.here(b) && b.State != storage.StateEnded && !b.ClockStartedAt.IsZero() {
			if _, err := m.open(ctx, id); err != nil && !errors.Is(err, ErrDraining) {
				m.cfg.Logger.Error("opening a battle started on another origin", "battle", id, "err", err)
			}
		}
		return
	case b.State == storage.StateEnded:
		if _, err := m.End(ctx, id, "it was ended on another origin"); err != nil && !errors.Is(err, ErrEnded) {
			m.cfg.Logger.Error("ending a battle ended on another origin", "battle", id, "err", err)
		}
		return
	case !m.here(b):
		m.cfg.Logger.Warn("battle moved to another origin", "battle", id, "origin", b.Origin)
		m.drop(r)
		return
	}
	tally, err := m.cfg.Store.Tally(ctx, id, r.format.timing.rounds)
	if err != nil {
		return
	}
	r.mu.Lock()
	if r.clock.IsZero() && !b.ClockStartedAt.IsZero() {
		r.clock = b.ClockStartedAt
	}
	r.tally = tally
	r.seeCheers(b.Cheers)
	r.mu.Unlock()
}

// presence is what the other origins show of a live battle here.
type presence struct {
	connected [2]bool
	viewers   int
}

// presenceChanged wakes the origin loop to store a change of singers.
func (m *Manager) presenceChanged() {
	if m.origin.presenceDirty == nil {
		return
	}
	select {
	case m.origin.presenceDirty <- struct{}{}:
	default:
	}
}

// storePresence stores the presence of the live battles here that
// changed since it was last stored, and announces them.
func (m *Manager) storePresence(ctx context.Context) {
	for _, r := range m.runningNow() {
		r.mu.Lock()
		live := r.program != nil && !r.ended
		p := presence{connected: r.connected}
		r.mu.Unlock()
		if !live {
			continue
		}
		p.viewers = m.cfg.Viewers(r.id)
		r.mu.Lock()
		stored := r.storedPresence
		r.mu.Unlock()
		if p == stored {
			continue
		}
		if err := m.cfg.Store.SetPresence(ctx, r.id, p.connected, p.viewers); err != nil {
			if ctx.Err() == nil {
				m.cfg.Logger.Error("storing a battle's presence", "battle", r.id, "err", err)
			}
			continue
		}
		r.mu.Lock()
		r.storedPresence = p
		r.mu.Unlock()
		m.announce(r.id)
	}
}

// announce tells the other origins battles ids changed.
func (m *Manager) announce(ids ...string) {
	if m.cfg.Changes == nil {
		return
	}
	for _, id := range ids {
		m.cfg.Changes.Announce(id)
	}
}
