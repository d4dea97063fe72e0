package battle

import (
	"context"
	"errors"
	"math"
	"sync"
	"time"

	"github.com/singoff/singoff/media"
)

// watchInterval is how often the watchdog moves every running battle
// along.
const watchInterval = 250 * time.Millisecond

// watch drives every battle with a room: its format's timeline (events
// on each change, what the program shows), and its end after the result,
// without a singer for the grace period, when its first singer never
// connected, at the maximum duration, or when its program stopped. It
// also retries stored ends that failed, and expires waiting battles.
func (m *Manager) watch() {
	defer close(m.watchDone)
	tick := time.NewTicker(watchInterval)
	defer tick.Stop()
	var expired time.Time // when waiting battles were last expired
	for {
		select {
		case <-m.watchStop:
			return
		case now := <-tick.C:
			for _, r := range m.runningNow() {
				if reason := m.step(r, now); reason != "" {
					if _, err := m.End(context.Background(), r.id, reason); err != nil && !errors.Is(err, ErrEnded) {
						m.cfg.Logger.Error("ending a battle", "battle", r.id, "err", err)
					}
				}
			}
			m.writeEnds()
			if now.Sub(expired) >= m.expiryEvery() {
				m.expireWaiting(now)
				expired = now
			}
		}
	}
}

// expiryEvery is how often waiting battles are looked for expiry: a
// tenth of their expiry, within [watchInterval, 30 s].
func (m *Manager) expiryEvery() time.Duration {
	return min(max(m.cfg.WaitingExpiry/10, watchInterval), 30*time.Second)
}

// expireWaiting ends the battles that have waited WaitingExpiry without
// a publish; those with a room here (a subscriber, a started clock) lose
// it.
func (m *Manager) expireWaiting(now time.Time) {
	ids, err := m.cfg.Store.ExpireWaiting(context.Background(), now.Add(-m.cfg.WaitingExpiry).UTC(), now.UTC())
	if err != nil {
		m.cfg.Logger.Error("expiring waiting battles", "err", err)
		return
	}
	for _, id := range ids {
		if r := m.detach(id); r != nil {
			r.stop()
		}
		m.cfg.Logger.Info("battle ended", "battle", id, "reason", "nobody published before it expired")
		m.notify(id)
	}
}

// step moves one battle along at now; it returns why the battle must end,
// or "".
func (m *Manager) step(r *running, now time.Time) string {
	viewers := 0
	r.mu.Lock()
	live := r.program != nil
	r.mu.Unlock()
	if live {
		viewers = m.cfg.Viewers(r.id)
	}
	cheered := m.flushCheers(r)

	r.mu.Lock()
	if r.ended {
		r.mu.Unlock()
		return ""
	}
	tl := r.format.timing.at(r.clock, now)
	w := watched{round: tl.Round, turn: tl.Turn, votingOpen: tl.VotingOpen, done: tl.Finished,
		connected: r.connected, live: r.program != nil, viewers: viewers}
	changed := w != r.seen || cheered
	r.seen = w
	prog := r.program
	scene := r.scene(tl, now)
	// The timeline's events, at their own times, once to each program.
	var cues []media.Cue
	if prog != nil && (changed || prog != r.cued.program) {
		cues = r.cued.next(prog, r.format.timing.cues(r.clock, now, r.tally))
	}
	reason := ""
	switch {
	case tl.Finished && !now.Before(tl.EndsAt):
		reason = "the result stood its time"
	case prog == nil:
	case stopped(prog):
		reason = "the program stopped"
	case !r.everConnected && now.Sub(r.liveSince) > m.cfg.ConnectGrace:
		reason = "no singer connected"
	case !r.aloneSince.IsZero() && now.Sub(r.aloneSince) > m.cfg.Grace:
		reason = "no singer for the grace period"
	case now.Sub(r.liveSince) > m.cfg.MaxDuration:
		reason = "maximum duration reached"
	}
	r.mu.Unlock()

	if prog != nil {
		prog.Show(scene)
		for _, c := range cues {
			prog.Cue(c)
		}
		if m.storeRecordingError(r, prog) {
			changed = true
		}
	}
	if changed {
		m.notify(r.id)
	}
	return reason
}

// storeRecordingError stores why r's program is not (or no longer)
// recorded when that changed, and tells whether it did.
func (m *Manager) storeRecordingError(r *running, prog Program) bool {
	why := recordingError(prog)
	r.mu.Lock()
	same, recorded := why == r.storedWhy, r.recorded
	r.mu.Unlock()
	if same {
		return false
	}
	if err := m.cfg.Store.SetRecording(context.Background(), r.id, recorded, why); err != nil {
		m.cfg.Logger.Error("storing whether the battle is recorded", "battle", r.id, "err", err)
		return false
	}
	r.mu.Lock()
	r.storedWhy = why
	r.mu.Unlock()
	if why != "" {
		m.cfg.Logger.Warn("battle no longer recorded", "battle", r.id, "why", why)
	}
	return true
}

func stopped(p Program) bool {
	select {
	case <-p.Done():
		return true
	default:
		return false
	}
}

// scene is what the program shows at now; r.mu is held.
func (r *running) scene(tl Timeline, now time.Time) media.Scene {
	s := media.Scene{Names: r.format.names, Round: tl.Round, Rounds: r.format.timing.rounds, Turn: tl.Turn,
		VotingOpen: tl.VotingOpen, Cheers: r.cheers}
	if tl.Turn != 0 {
		s.Remaining = int(math.Ceil(tl.TurnEndsAt.Sub(now).Seconds()))
	}
	if tl.Round >= 1 && tl.Round <= len(r.tally) {
		s.Votes = r.tally[tl.Round-1]
	}
	if tl.Finished {
		s.Finished, s.Winner, s.Score = true, winner(r.tally), roundsWon(r.tally)
	}
	return s
}

// writeEnds retries storing the ends that failed.
func (m *Manager) writeEnds() {
	m.mu.Lock()
	pending := make(map[string]time.Time, len(m.unwritten))
	for id, at := range m.unwritten {
		pending[id] = at
	}
	m.mu.Unlock()
	for id, at := range pending {
		if _, err := m.cfg.Store.SetEnded(context.Background(), id, at); err != nil {
			continue
		}
		m.mu.Lock()
		delete(m.unwritten, id)
		m.mu.Unlock()
		m.cfg.Logger.Info("stored a battle's end late", "battle", id)
		m.notify(id)
	}
}

// listeners wake subscribers of battles.
type listeners struct {
	mu   sync.Mutex
	subs map[string]map[chan struct{}]struct{}
}

// add listens for battle id: the channel gets a value (coalesced) on
// every wake.
func (l *listeners) add(id string) (<-chan struct{}, func()) {
	ch := make(chan struct{}, 1)
	l.mu.Lock()
	if l.subs == nil {
		l.subs = map[string]map[chan struct{}]struct{}{}
	}
	if l.subs[id] == nil {
		l.subs[id] = map[chan struct{}]struct{}{}
	}
	l.subs[id][ch] = struct{}{}
	l.mu.Unlock()
	return ch, func() {
		l.mu.Lock()
		delete(l.subs[id], ch)
		if len(l.subs[id]) == 0 {
			delete(l.subs, id)
		}
		l.mu.Unlock()
	}
}

func (l *listeners) wake(id string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	for ch := range l.subs[id] {
		select {
		case ch <- struct{}{}:
		default: // one pending wake-up is enough
		}
	}
}

// Subscribe listens for changes to battle id: the channel gets a value
// (coalesced) whenever something watchers see may have changed. Call
// the returned func to stop.
func (m *Manager) Subscribe(id string) (<-chan struct{}, func()) {
	return m.subs.add(id)
}

// notify tells battle id's watchers here, and the other origins, that it
// changed.
func (m *Manager) notify(id string) {
	m.notifyHere(id)
	m.announce(id)
}

// notifyHere wakes battle id's subscribers on this server.
func (m *Manager) notifyHere(id string) {
	m.subs.wake(id)
}
