package battle

import (
	"context"
	"errors"
	"time"

	"github.com/singoff/singoff/storage"
)

// Refusals of a rematch.
var (
	ErrNoResult  = errors.New("a rematch can be offered once the battle has its result or has ended")
	ErrRematched = errors.New("the battle has a rematch already")
)

// Rematch makes battle id's rematch, once its result stands or it has
// ended: a new battle with the same title, singers and format, and new
// tokens, created as from network, which the old battle links to
// (rematch_id). A battle has one rematch (ErrRematched).
func (m *Manager) Rematch(ctx context.Context, id, network string) (*storage.Battle, Tokens, error) {
	st, err := m.Status(ctx, id)
	if err != nil {
		return nil, Tokens{}, err
	}
	old := st.Battle
	switch {
	case old.RematchID != "":
		return nil, Tokens{}, ErrRematched
	case !st.Timeline.Finished && old.State != storage.StateEnded:
		return nil, Tokens{}, ErrNoResult
	}
	b, tokens, err := m.Create(ctx, CreateRequest{
		Title: &old.Title, Singers: old.SingerNames[:], Rounds: &old.Rounds, TurnSeconds: &old.TurnSeconds, Network: network,
	})
	if err != nil {
		return nil, Tokens{}, err
	}
	ok, err := m.cfg.Store.SetRematch(ctx, id, b.ID)
	if err == nil && !ok {
		err = ErrRematched
	}
	if err != nil {
		// The new battle is nobody's rematch: it ends at once.
		if _, endErr := m.cfg.Store.SetEnded(ctx, b.ID, time.Now().UTC()); endErr != nil {
			m.cfg.Logger.Error("ending a rematch that lost its race", "battle", b.ID, "err", endErr)
		}
		m.cfg.Logger.Info("battle ended", "battle", b.ID, "reason", "another rematch of the battle was made first")
		return nil, Tokens{}, err
	}
	m.cfg.Logger.Info("rematch offered", "battle", id, "rematch", b.ID)
	m.notify(id)
	return b, tokens, nil
}
