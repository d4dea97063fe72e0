package storage

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"
)

// The origins registry: each origin heartbeats its entry; a new battle
// goes to the origin with the most free capacity; a dead origin's
// battles are ended (live) or moved (waiting).

// Heartbeat implements Store.
func (s *sqlStore) Heartbeat(ctx context.Context, o Origin) error {
	_, err := s.db.ExecContext(ctx, `INSERT INTO origins (url, capacity, live, seen_at) VALUES (?,?,?,?)
		ON CONFLICT (url) DO UPDATE SET capacity = excluded.capacity, live = excluded.live, seen_at = excluded.seen_at`,
		o.URL, o.Capacity, o.Live, unixNano(o.SeenAt))
	if err != nil {
		return fmt.Errorf("heartbeat of origin %s: %w", o.URL, err)
	}
	return nil
}

// Origins implements Store.
func (s *sqlStore) Origins(ctx context.Context) ([]Origin, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT url, capacity, live, seen_at FROM origins ORDER BY url`)
	if err != nil {
		return nil, fmt.Errorf("list origins: %w", err)
	}
	defer rows.Close()
	var out []Origin
	for rows.Next() {
		var o Origin
		var seen int64
		if err := rows.Scan(&o.URL, &o.Capacity, &o.Live, &seen); err != nil {
			return nil, fmt.Errorf("list origins: %w", err)
		}
		o.SeenAt = fromUnixNano(seen)
		out = append(out, o)
	}
	return out, rows.Err()
}

// PlaceBattle implements Store.
func (s *sqlStore) PlaceBattle(ctx context.Context, b *Battle, alive time.Time) error {
	err := s.inPlacement(ctx, func(t tx) error {
		origin, err := freestOrigin(ctx, t, alive)
		if err != nil {
			return err
		}
		b.Origin = origin
		return insertBattle(ctx, t, b)
	})
	if err != nil {
		return fmt.Errorf("place battle %s: %w", b.ID, err)
	}
	return nil
}

// ReapOrigin implements Store.
func (s *sqlStore) ReapOrigin(ctx context.Context, url string, dead, alive, at time.Time) (Reaped, error) {
	var r Reaped
	err := s.inPlacement(ctx, func(t tx) error {
		res, err := t.ExecContext(ctx, `DELETE FROM origins WHERE url = ? AND seen_at < ?`, url, unixNano(dead))
		if err != nil {
			return err
		}
		if n, err := res.RowsAffected(); err != nil || n == 0 {
			return err
		}
		r.Ended, err = queryIDs(ctx, t, `UPDATE battles SET state = ?, ended_at = ? WHERE origin = ? AND state = ? RETURNING id`,
			StateEnded, unixNano(at), url, StateLive)
		if err != nil {
			return err
		}
		waiting, err := queryIDs(ctx, t, `SELECT id FROM battles WHERE origin = ? AND state = ? ORDER BY created_at`,
			url, StateWaiting)
		if err != nil {
			return err
		}
		for _, id := range waiting {
			to, err := freestOrigin(ctx, t, alive)
			if errors.Is(err, ErrNoOrigin) {
				break
			}
			if err != nil {
				return err
			}
			if _, err := t.ExecContext(ctx, `UPDATE battles SET origin = ? WHERE id = ? AND state = ?`, to, id, StateWaiting); err != nil {
				return err
			}
			r.Moved = append(r.Moved, id)
		}
		return nil
	})
	if err != nil {
		return Reaped{}, fmt.Errorf("reap origin %s: %w", url, err)
	}
	return r, nil
}

// inPlacement runs fn in a transaction that holds the placement lock.
func (s *sqlStore) inPlacement(ctx context.Context, fn func(tx) error) error {
	t, err := s.db.BeginTx(ctx)
	if err != nil {
		return err
	}
	defer t.Rollback()
	if q := s.db.dialect.lockPlacement; q != "" {
		if _, err := t.ExecContext(ctx, q); err != nil {
			return err
		}
	}
	if err := fn(t); err != nil {
		return err
	}
	return t.Commit()
}

// freestOrigin is the origin seen since alive, taking battles, with the
// most capacity left once its battles that have not ended are counted;
// ties go to the first URL.
func freestOrigin(ctx context.Context, q querier, alive time.Time) (string, error) {
	var url string
	err := q.QueryRowContext(ctx, `SELECT o.url FROM origins o WHERE o.seen_at >= ? AND o.capacity > 0
		ORDER BY o.capacity - (SELECT COUNT(*) FROM battles b WHERE b.origin = o.url AND b.state <> ?) DESC, o.url
		LIMIT 1`, unixNano(alive), StateEnded).Scan(&url)
	if errors.Is(err, sql.ErrNoRows) {
		return "", ErrNoOrigin
	}
	return url, err
}

// SetPresence implements Store.
func (s *sqlStore) SetPresence(ctx context.Context, id string, connected [2]bool, viewers int) error {
	_, err := s.db.ExecContext(ctx, `UPDATE battles SET connected1 = ?, connected2 = ?, viewers = ? WHERE id = ? AND state = ?`,
		connected[0], connected[1], viewers, id, StateLive)
	if err != nil {
		return fmt.Errorf("store presence of battle %s: %w", id, err)
	}
	return nil
}
