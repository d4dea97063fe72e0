package battle

import (
	"context"
	"errors"
	"fmt"

	"github.com/singoff/singoff/storage"
)

// MaxCheers bounds the cheers of one request.
const MaxCheers = 20

// Cheers are the crowd's noise, apart from the votes: a battle that runs
// here adds them up in memory and its watchdog stores them, shows them
// to the program and tells the watchers at most once a tick
// (watchInterval), however many taps come in; elsewhere (another origin
// runs it, or nothing does yet) they go to the store at once, and the
// origin that runs it takes the stored cheers when it hears of the
// change.

// Cheer adds n cheers (1 to MaxCheers) for slot to battle id, which has
// not ended.
func (m *Manager) Cheer(ctx context.Context, id string, slot, n int) error {
	switch {
	case slot != 1 && slot != 2:
		return ErrBadSlot
	case n < 1 || n > MaxCheers:
		return fmt.Errorf("%w: cheers come 1 to %d at a time", ErrInvalid, MaxCheers)
	}
	if r := m.lookup(id); r != nil {
		r.mu.Lock()
		defer r.mu.Unlock()
		if r.ended {
			return ErrEnded
		}
		r.pendingCheers[slot-1] += n
		return nil
	}
	b, err := m.Get(ctx, id)
	if err != nil {
		return err
	}
	if b.State == storage.StateEnded {
		return ErrEnded
	}
	var add [2]int
	add[slot-1] = n
	if _, err := m.cfg.Store.AddCheers(ctx, id, add); err != nil {
		if errors.Is(err, storage.ErrNotFound) {
			return ErrNotFound
		}
		return err
	}
	m.notify(id)
	return nil
}

// flushCheers stores r's cheers of the last tick, and tells whether
// there were any. Cheers the store refused wait for the next tick.
func (m *Manager) flushCheers(r *running) bool {
	r.mu.Lock()
	add := r.pendingCheers
	r.pendingCheers = [2]int{}
	r.mu.Unlock()
	if add == [2]int{} {
		return false
	}
	total, err := m.cfg.Store.AddCheers(context.Background(), r.id, add)
	r.mu.Lock()
	defer r.mu.Unlock()
	if err != nil {
		m.cfg.Logger.Error("storing cheers", "battle", r.id, "err", err)
		r.pendingCheers[0] += add[0]
		r.pendingCheers[1] += add[1]
		return false
	}
	r.seeCheers(total)
	return true
}

// seeCheers takes the battle's stored cheers (which other origins add
// to as well); r.mu is held. Cheers only grow: an older reading never
// takes back a newer one.
func (r *running) seeCheers(stored [2]int) {
	r.cheers = [2]int{max(r.cheers[0], stored[0]), max(r.cheers[1], stored[1])}
}
