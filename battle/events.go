package battle

import (
	"context"
	"errors"
	"fmt"
	"math"
	"time"

	"github.com/singoff/singoff/compositor/overlay"
	"github.com/singoff/singoff/media"
	"github.com/singoff/singoff/storage"
)

// format is a battle's names and timing, fixed at creation.
type format struct {
	names  [2]string
	timing timing
}

func (m *Manager) formatOf(b *storage.Battle) format {
	names := b.SingerNames
	for i := range names {
		if names[i] == "" {
			names[i] = fmt.Sprintf("Singer %d", i+1)
		}
	}
	return format{names: names, timing: timing{
		rounds:     max(b.Rounds, 1),
		turn:       time.Duration(b.TurnSeconds) * time.Second,
		voteGrace:  m.cfg.VoteGrace,
		resultHold: m.cfg.ResultHold,
	}}
}

// Timeline is where battle b is in its format now.
func (m *Manager) Timeline(b *storage.Battle, now time.Time) Timeline {
	if b.State == storage.StateEnded && !b.ClockStartedAt.IsZero() {
		// An ended battle stands still where it ended.
		now = b.EndedAt
	}
	tl := m.formatOf(b).timing.at(b.ClockStartedAt, now)
	if b.State == storage.StateEnded {
		tl.Turn, tl.VotingOpen = 0, false
	}
	return tl
}

// Errors of the format, answered 409.
var (
	ErrStarted     = errors.New("the battle has already started")
	ErrVotingShut  = errors.New("voting is closed")
	ErrNotStarted  = errors.New("voting opens when the host starts the battle")
	ErrBadSlot     = errors.New("slot must be 1 or 2")
	errVotingEnded = errors.New("the battle has ended")
)

// Start sets the rounds' clock going. ErrStarted or ErrEnded when it
// cannot.
func (m *Manager) Start(ctx context.Context, id string) (*storage.Battle, error) {
	b, err := m.Get(ctx, id)
	if err != nil {
		return nil, err
	}
	if b.State == storage.StateEnded {
		return nil, ErrEnded
	}
	if !b.ClockStartedAt.IsZero() {
		return nil, ErrStarted
	}
	if _, err := m.Room(ctx, id); err != nil {
		return nil, err
	}
	m.mu.Lock()
	r := m.running[id]
	m.mu.Unlock()
	r.mu.Lock()
	defer r.mu.Unlock()
	if !r.clock.IsZero() {
		return nil, ErrStarted
	}
	b.ClockStartedAt = time.Now().UTC()
	if err := m.cfg.Store.UpdateBattle(ctx, b); err != nil {
		return nil, err
	}
	r.clock = b.ClockStartedAt
	m.log.Info("battle started", "battle", id, "rounds", b.Rounds, "turn_seconds", b.TurnSeconds)
	m.notify(id)
	return b, nil
}

// Vote records watcher's vote for slot in the round open now.
func (m *Manager) Vote(ctx context.Context, id, watcher string, slot int) error {
	if slot != 1 && slot != 2 {
		return ErrBadSlot
	}
	b, err := m.Get(ctx, id)
	if err != nil {
		return err
	}
	if b.State == storage.StateEnded {
		return errVotingEnded
	}
	tl := m.Timeline(b, time.Now())
	switch {
	case !tl.Started:
		return ErrNotStarted
	case !tl.VotingOpen:
		return fmt.Errorf("%w: every round's voting has closed", ErrVotingShut)
	}
	if err := m.cfg.Store.Vote(ctx, id, tl.Round, watcher, slot, time.Now().UTC()); err != nil {
		return err
	}
	m.notify(id)
	return nil
}

// Subscribe listens for changes to battle id: the channel gets a value
// (coalesced) whenever something watchers see may have changed.
func (m *Manager) Subscribe(id string) (<-chan struct{}, func()) {
	ch := make(chan struct{}, 1)
	m.mu.Lock()
	if m.subs[id] == nil {
		m.subs[id] = map[chan struct{}]struct{}{}
	}
	m.subs[id][ch] = struct{}{}
	m.mu.Unlock()
	return ch, func() {
		m.mu.Lock()
		delete(m.subs[id], ch)
		if len(m.subs[id]) == 0 {
			delete(m.subs, id)
		}
		m.mu.Unlock()
	}
}

func (m *Manager) notify(id string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	for ch := range m.subs[id] {
		select {
		case ch <- struct{}{}:
		default: // one pending wake-up is enough
		}
	}
}

// step moves one battle along at now; it returns why the battle must end,
// or "".
func (m *Manager) step(r *running, now time.Time) string {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.ended {
		return ""
	}
	tl := r.format.timing.at(r.clock, now)
	p := r.pipeline
	viewers := 0
	if p != nil {
		viewers = m.cfg.Live.Viewers(r.id)
	}
	sig := fmt.Sprint(tl.Round, tl.Turn, tl.VotingOpen, tl.Finished, r.connected, viewers)
	if sig != r.lastSig {
		r.lastSig = sig
		m.notify(r.id)
	}
	if p != nil {
		m.drawFormat(r, p, tl, now)
	}
	switch {
	case tl.Finished && !now.Before(tl.EndsAt):
		return "the result stood its time"
	case p != nil && !r.aloneSince.IsZero() && now.Sub(r.aloneSince) > m.cfg.Grace:
		return "no singer for the grace period"
	case p != nil && now.Sub(r.liveSince) > m.cfg.MaxDuration:
		return "maximum duration reached"
	}
	return ""
}

// drawFormat keeps the program's overlay and turn gains in step with the
// timeline; it renders only when what is shown changes. r.mu is held.
func (m *Manager) drawFormat(r *running, p *pipeline, tl Timeline, now time.Time) {
	st := media.Scene{Names: r.format.names, Round: tl.Round, Rounds: r.format.timing.rounds, Turn: tl.Turn,
		VotingOpen: tl.VotingOpen}
	if tl.Turn != 0 {
		st.Remaining = int(math.Ceil(tl.TurnEndsAt.Sub(now).Seconds()))
	}
	if tl.Started {
		tally, err := m.cfg.Store.Tally(context.Background(), r.id, r.format.timing.rounds)
		if err != nil {
			m.log.Error("tallying votes", "battle", r.id, "err", err)
			return
		}
		st.Votes = tally[tl.Round-1]
		if tl.Finished {
			st.Finished = true
			st.Winner = winner(tally)
			st.Score = roundsWon(tally)
		}
	}
	if r.everShown && st == r.shown {
		return
	}
	if st.Turn != r.shown.Turn || !r.everShown {
		// The singer whose turn it is at full volume; the other 9 dB
		// down, so reactions still come through.
		p.program.SetGains(overlay.Gains(st))
	}
	r.shown, r.everShown = st, true
	p.program.SetOverlay(m.overlays.Render(st))
}
