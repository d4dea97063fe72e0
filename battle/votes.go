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

// VoteRequest is one watcher's vote.
type VoteRequest struct {
	// Watcher is the watcher's identity, issued at IssuedAt: it counts
	// only in rounds that opened after that.
	Watcher  string
	IssuedAt time.Time
	// Network is the voter's client network, which the cap of watchers
	// per network and round counts.
	Network string
	Slot    int
}

// Vote records a watcher's vote for a slot in the round open now; a
// second vote of the same watcher in a round replaces the first. It
// refuses a watcher issued after the round opened (ErrLateWatcher) and
// a watcher new to the round past the network's cap (ErrNetworkLimit).
func (m *Manager) Vote(ctx context.Context, id string, v VoteRequest) error {
	if v.Slot != 1 && v.Slot != 2 {
		return ErrBadSlot
	}
	tl, ended, err := m.timelineNow(ctx, id)
	if err != nil {
		return err
	}
	switch {
	case ended:
		return ErrEnded
	case !tl.Started:
		return ErrNotStarted
	case !tl.VotingOpen:
		return fmt.Errorf("%w: every round's voting has closed", ErrVotingShut)
	case !v.IssuedAt.Before(tl.RoundStart):
		return ErrLateWatcher
	}
	ok, err := m.cfg.Store.Vote(ctx, storage.Ballot{
		BattleID: id, Round: tl.Round, Watcher: v.Watcher, Network: v.Network, Slot: v.Slot, At: time.Now().UTC(),
	}, m.votersCap(v.Network))
	if err != nil {
		return err
	}
	if !ok {
		return errVoterCap
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

// timelineNow is where battle id is in its format now, and whether it
// has ended: from memory for a battle that runs here (a vote costs no
// read then), else from the store.
func (m *Manager) timelineNow(ctx context.Context, id string) (Timeline, bool, error) {
	if r := m.lookup(id); r != nil {
		r.mu.Lock()
		defer r.mu.Unlock()
		return r.format.timing.at(r.clock, time.Now()), r.ended, nil
	}
	st, err := m.Status(ctx, id)
	if err != nil {
		return Timeline{}, false, err
	}
	return st.Timeline, st.Battle.State == storage.StateEnded, nil
}

// votersCap is the cap of voters per round for network: none for an
// unknown one.
func (m *Manager) votersCap(network string) int {
	if network == "" {
		return 0
	}
	return m.cfg.MaxVotersPerNetwork
}
