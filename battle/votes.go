package battle

import (
	"context"
	"fmt"
	"time"

	"github.com/singoff/singoff/storage"
)

// format is a battle's names and timing, fixed at creation.
type format struct {
	names  [2]string
	timing timing
}

func (m *Manager) formatOf(b *storage.Battle) format {
	return format{names: b.SingerNames, timing: timing{
		rounds:     max(b.Rounds, 1),
		turn:       time.Duration(b.TurnSeconds) * time.Second,
		voteGrace:  m.cfg.VoteGrace,
		resultHold: m.cfg.ResultHold,
	}}
}

// Start sets the rounds' clock going: ErrStarted or ErrEnded when it
// cannot. The battle gets its room, so its timeline runs.
func (m *Manager) Start(ctx context.Context, id string) (*storage.Battle, error) {
	b, err := m.Get(ctx, id)
	if err != nil {
		return nil, err
	}
	switch {
	case b.State == storage.StateEnded:
		return nil, ErrEnded
	case !b.ClockStartedAt.IsZero():
		return nil, ErrStarted
	}
	// The battle gets its room where it runs; elsewhere that origin
	// hears of the start and opens it.
	var r *running
	if m.here(b) {
		if r, err = m.open(ctx, id); err != nil {
			return nil, err
		}
	}
	now := time.Now()
	ok, err := m.cfg.Store.StartClock(ctx, id, now.UTC())
	if err != nil {
		return nil, err
	}
	if !ok {
		if b, err := m.Get(ctx, id); err == nil && b.State == storage.StateEnded {
			return nil, ErrEnded
		}
		return nil, ErrStarted
	}
	if r != nil {
		r.mu.Lock()
		r.clock = now // with its monotonic reading: a wall-clock step moves no turn
		r.mu.Unlock()
	}
	m.cfg.Logger.Info("battle started", "battle", id)
	m.notify(id)
	return m.Get(ctx, id)
}

// Vote records watcher's vote for slot in the round open now; a second
// vote of the same watcher in a round replaces the first.
func (m *Manager) Vote(ctx context.Context, id, watcher string, slot int) error {
	if slot != 1 && slot != 2 {
		return ErrBadSlot
	}
	st, err := m.Status(ctx, id)
	if err != nil {
		return err
	}
	tl := st.Timeline
	switch {
	case st.Battle.State == storage.StateEnded:
		return ErrEnded
	case !tl.Started:
		return ErrNotStarted
	case !tl.VotingOpen:
		return fmt.Errorf("%w: every round's voting has closed", ErrVotingShut)
	}
	if err := m.cfg.Store.Vote(ctx, id, tl.Round, watcher, slot, time.Now().UTC()); err != nil {
		return err
	}
	if r := m.lookup(id); r != nil {
		tally, err := m.cfg.Store.Tally(ctx, id, r.format.timing.rounds)
		if err != nil {
			return err
		}
		r.mu.Lock()
		r.tally = tally
		r.mu.Unlock()
	}
	m.notify(id)
	return nil
}
