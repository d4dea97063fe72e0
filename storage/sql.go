package storage

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"time"
)

// sqlStore is the Store both databases share: the same queries, written
// with ? parameters, which db spells in the database's own way.
type sqlStore struct {
	db db
}

// db is a database/sql pool whose queries are rebound to its dialect.
type db struct {
	pool    *sql.DB
	dialect *dialect
}

func (d db) ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error) {
	return d.pool.ExecContext(ctx, d.dialect.rebind(query), args...)
}

func (d db) QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error) {
	return d.pool.QueryContext(ctx, d.dialect.rebind(query), args...)
}

func (d db) QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row {
	return d.pool.QueryRowContext(ctx, d.dialect.rebind(query), args...)
}

// BeginTx starts a transaction whose queries are rebound too.
func (d db) BeginTx(ctx context.Context) (tx, error) {
	t, err := d.pool.BeginTx(ctx, nil)
	return tx{t, d.dialect}, err
}

// tx is a transaction of db.
type tx struct {
	*sql.Tx
	dialect *dialect
}

func (t tx) ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error) {
	return t.Tx.ExecContext(ctx, t.dialect.rebind(query), args...)
}

func (t tx) QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error) {
	return t.Tx.QueryContext(ctx, t.dialect.rebind(query), args...)
}

func (t tx) QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row {
	return t.Tx.QueryRowContext(ctx, t.dialect.rebind(query), args...)
}

// migrate brings the schema up to date in one transaction, under the
// dialect's migration lock.
func (s *sqlStore) migrate(ctx context.Context) error {
	t, err := s.db.BeginTx(ctx)
	if err != nil {
		return err
	}
	defer t.Rollback()
	d := s.db.dialect
	for _, q := range d.prepare {
		if _, err := t.ExecContext(ctx, q); err != nil {
			return err
		}
	}
	var version int
	if err := t.QueryRowContext(ctx, d.version).Scan(&version); err != nil {
		return err
	}
	if version > len(migrations) {
		return fmt.Errorf("database schema version %d is newer than this binary's %d", version, len(migrations))
	}
	if version == len(migrations) {
		return nil
	}
	for i := version; i < len(migrations); i++ {
		for _, st := range migrations[i] {
			for _, q := range st.statements(d) {
				if _, err := t.ExecContext(ctx, q); err != nil {
					return fmt.Errorf("migration %d: %w", i+1, err)
				}
			}
		}
	}
	if _, err := t.ExecContext(ctx, fmt.Sprintf(d.setVersion, len(migrations))); err != nil {
		return err
	}
	return t.Commit()
}

// Close closes the database.
func (s *sqlStore) Close() error { return s.db.pool.Close() }

const battleColumns = `id, title, state, created_at, started_at, ended_at, singer1_name, singer2_name,
	rounds, turn_seconds, host_token_hash, singer1_token_hash, singer2_token_hash, recorded, recording_error,
	clock_started_at, origin, connected1, connected2, viewers, creator_network,
	chat_mode, chat_seq, cheers1, cheers2, rematch_id`

// querier is what the pool and a transaction both answer.
type querier interface {
	ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error)
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
}

// CreateBattle inserts b.
func (s *sqlStore) CreateBattle(ctx context.Context, b *Battle) error {
	return s.noSpace(insertBattle(ctx, s.db, b))
}

func insertBattle(ctx context.Context, q querier, b *Battle) error {
	_, err := q.ExecContext(ctx, `INSERT INTO battles (`+battleColumns+`) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)`,
		b.ID, b.Title, b.State, unixNano(b.CreatedAt), unixNano(b.StartedAt), unixNano(b.EndedAt),
		b.SingerNames[0], b.SingerNames[1], b.Rounds, b.TurnSeconds,
		b.HostTokenHash, b.SingerTokenHashs[0], b.SingerTokenHashs[1], b.Recorded, b.RecordingError,
		unixNano(b.ClockStartedAt), b.Origin, b.Connected[0], b.Connected[1], b.Viewers, b.CreatorNetwork,
		b.ChatMode, b.ChatSeq, b.Cheers[0], b.Cheers[1], b.RematchID)
	if err != nil {
		return fmt.Errorf("insert battle %s: %w", b.ID, err)
	}
	return nil
}

// GetBattle returns the battle with id, or ErrNotFound.
func (s *sqlStore) GetBattle(ctx context.Context, id string) (*Battle, error) {
	row := s.db.QueryRowContext(ctx, `SELECT `+battleColumns+` FROM battles WHERE id = ?`, id)
	b, err := scanBattle(row)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, ErrNotFound
	}
	if err != nil {
		return nil, fmt.Errorf("get battle %s: %w", id, err)
	}
	return b, nil
}

// ListBattles returns up to limit battles in state (all when ""),
// newest first.
func (s *sqlStore) ListBattles(ctx context.Context, state string, limit int) ([]*Battle, error) {
	query := `SELECT ` + battleColumns + ` FROM battles`
	var args []any
	if state != "" {
		query += ` WHERE state = ?`
		args = append(args, state)
	}
	query += ` ORDER BY created_at DESC, id DESC LIMIT ?`
	args = append(args, limit)
	rows, err := s.db.QueryContext(ctx, query, args...)
	if err != nil {
		return nil, fmt.Errorf("list battles: %w", err)
	}
	defer rows.Close()
	var out []*Battle
	for rows.Next() {
		b, err := scanBattle(rows)
		if err != nil {
			return nil, fmt.Errorf("list battles: %w", err)
		}
		out = append(out, b)
	}
	return out, rows.Err()
}

// SetLive implements Store.
func (s *sqlStore) SetLive(ctx context.Context, id string, at time.Time) (bool, error) {
	return s.change(ctx, "mark battle live", id, `UPDATE battles SET state = ?, started_at = ? WHERE id = ? AND state = ?`,
		StateLive, unixNano(at), id, StateWaiting)
}

// SetEnded implements Store.
func (s *sqlStore) SetEnded(ctx context.Context, id string, at time.Time) (bool, error) {
	return s.change(ctx, "end battle", id, `UPDATE battles SET state = ?, ended_at = ? WHERE id = ? AND state <> ?`,
		StateEnded, unixNano(at), id, StateEnded)
}

// StartClock implements Store.
func (s *sqlStore) StartClock(ctx context.Context, id string, at time.Time) (bool, error) {
	return s.change(ctx, "start battle clock", id, `UPDATE battles SET clock_started_at = ? WHERE id = ? AND state <> ? AND clock_started_at = 0`,
		unixNano(at), id, StateEnded)
}

// SetRecording implements Store.
func (s *sqlStore) SetRecording(ctx context.Context, id string, recorded bool, why string) error {
	ok, err := s.change(ctx, "set battle recording", id, `UPDATE battles SET recorded = ?, recording_error = ? WHERE id = ?`,
		recorded, why, id)
	if err == nil && !ok {
		return ErrNotFound
	}
	return err
}

// change runs one conditional UPDATE of battle id and tells whether it
// changed a row.
func (s *sqlStore) change(ctx context.Context, what, id, query string, args ...any) (bool, error) {
	res, err := s.db.ExecContext(ctx, query, args...)
	if err != nil {
		return false, fmt.Errorf("%s %s: %w", what, id, s.noSpace(err))
	}
	n, err := res.RowsAffected()
	if err != nil {
		return false, fmt.Errorf("%s %s: %w", what, id, err)
	}
	return n > 0, nil
}

// EndUnfinished ends the battles of origin a crash left live.
func (s *sqlStore) EndUnfinished(ctx context.Context, origin string, at time.Time) ([]string, error) {
	ids, err := queryIDs(ctx, s.db, `UPDATE battles SET state = ?, ended_at = ? WHERE state = ? AND origin = ? RETURNING id`,
		StateEnded, unixNano(at), StateLive, origin)
	if err != nil {
		return nil, fmt.Errorf("end unfinished battles: %w", err)
	}
	return ids, nil
}

// queryIDs runs a query of one text column and returns its values.
func queryIDs(ctx context.Context, q querier, query string, args ...any) ([]string, error) {
	rows, err := q.QueryContext(ctx, query, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var ids []string
	for rows.Next() {
		var id string
		if err := rows.Scan(&id); err != nil {
			return nil, err
		}
		ids = append(ids, id)
	}
	return ids, rows.Err()
}

type scanner interface{ Scan(dest ...any) error }

func scanBattle(row scanner) (*Battle, error) {
	var b Battle
	var created, started, ended, clock int64
	err := row.Scan(&b.ID, &b.Title, &b.State, &created, &started, &ended,
		&b.SingerNames[0], &b.SingerNames[1], &b.Rounds, &b.TurnSeconds,
		&b.HostTokenHash, &b.SingerTokenHashs[0], &b.SingerTokenHashs[1], &b.Recorded, &b.RecordingError, &clock,
		&b.Origin, &b.Connected[0], &b.Connected[1], &b.Viewers, &b.CreatorNetwork,
		&b.ChatMode, &b.ChatSeq, &b.Cheers[0], &b.Cheers[1], &b.RematchID)
	if err != nil {
		return nil, err
	}
	b.CreatedAt, b.StartedAt, b.EndedAt = fromUnixNano(created), fromUnixNano(started), fromUnixNano(ended)
	b.ClockStartedAt = fromUnixNano(clock)
	return &b, nil
}

// Times are stored as Unix nanoseconds, 0 for "not yet".
func unixNano(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.UnixNano()
}

func fromUnixNano(n int64) time.Time {
	if n == 0 {
		return time.Time{}
	}
	return time.Unix(0, n).UTC()
}

// Vote implements Store: in one transaction (under the dialect's lock of
// the battle's votes), whether the watcher voted in the round already, how many
// watchers of the network did, then the vote.
func (s *sqlStore) Vote(ctx context.Context, b Ballot, maxPerNetwork int) (bool, error) {
	ok, err := s.vote(ctx, b, maxPerNetwork)
	if err != nil {
		return false, fmt.Errorf("vote in battle %s: %w", b.BattleID, s.noSpace(err))
	}
	return ok, nil
}

func (s *sqlStore) vote(ctx context.Context, b Ballot, maxPerNetwork int) (bool, error) {
	t, err := s.db.BeginTx(ctx)
	if err != nil {
		return false, err
	}
	defer t.Rollback()
	if l := s.db.dialect.lockVotes; l != "" {
		if _, err := t.ExecContext(ctx, l, b.BattleID); err != nil {
			return false, err
		}
	}
	if maxPerNetwork > 0 {
		var voted, voters int
		err := t.QueryRowContext(ctx, `SELECT
			(SELECT COUNT(*) FROM votes WHERE battle_id = ? AND round = ? AND watcher = ?),
			(SELECT COUNT(*) FROM votes WHERE battle_id = ? AND round = ? AND network = ?)`,
			b.BattleID, b.Round, b.Watcher, b.BattleID, b.Round, b.Network).Scan(&voted, &voters)
		if err != nil {
			return false, err
		}
		if voted == 0 && voters >= maxPerNetwork {
			return false, nil
		}
	}
	_, err = t.ExecContext(ctx, `INSERT INTO votes (battle_id, round, watcher, network, slot, at) VALUES (?,?,?,?,?,?)
		ON CONFLICT (battle_id, round, watcher) DO UPDATE SET slot = excluded.slot, at = excluded.at`,
		b.BattleID, b.Round, b.Watcher, b.Network, b.Slot, unixNano(b.At))
	if err != nil {
		return false, err
	}
	return true, t.Commit()
}

// CountWaiting implements Store.
func (s *sqlStore) CountWaiting(ctx context.Context, network string) (int, error) {
	var n int
	err := s.db.QueryRowContext(ctx, `SELECT COUNT(*) FROM battles WHERE creator_network = ? AND state = ?`,
		network, StateWaiting).Scan(&n)
	if err != nil {
		return 0, fmt.Errorf("count waiting battles: %w", err)
	}
	return n, nil
}

// ExpireWaiting implements Store.
func (s *sqlStore) ExpireWaiting(ctx context.Context, createdBefore, at time.Time) ([]string, error) {
	ids, err := queryIDs(ctx, s.db, `UPDATE battles SET state = ?, ended_at = ? WHERE state = ? AND created_at < ? RETURNING id`,
		StateEnded, unixNano(at), StateWaiting, unixNano(createdBefore))
	if err != nil {
		return nil, fmt.Errorf("expire waiting battles: %w", s.noSpace(err))
	}
	return ids, nil
}

// noSpace marks an error of a full disk with ErrNoSpace.
func (s *sqlStore) noSpace(err error) error {
	if f := s.db.dialect.noSpace; f != nil && f(err) {
		return fmt.Errorf("%w: %w", ErrNoSpace, err)
	}
	return err
}

// Tally counts a battle's votes: one [slot 1, slot 2] pair per round,
// for rounds 1 to rounds.
func (s *sqlStore) Tally(ctx context.Context, battleID string, rounds int) ([][2]int, error) {
	t, err := s.Tallies(ctx, []*Battle{{ID: battleID, Rounds: rounds}})
	if err != nil {
		return nil, err
	}
	return t[battleID], nil
}

// Tallies implements Store.
func (s *sqlStore) Tallies(ctx context.Context, battles []*Battle) (map[string][][2]int, error) {
	out := make(map[string][][2]int, len(battles))
	if len(battles) == 0 {
		return out, nil
	}
	args := make([]any, len(battles))
	for i, b := range battles {
		out[b.ID] = make([][2]int, max(b.Rounds, 1))
		args[i] = b.ID
	}
	query := `SELECT battle_id, round, slot, COUNT(*) FROM votes WHERE battle_id IN (?` +
		strings.Repeat(",?", len(battles)-1) + `) GROUP BY battle_id, round, slot`
	rows, err := s.db.QueryContext(ctx, query, args...)
	if err != nil {
		return nil, fmt.Errorf("tally votes: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var id string
		var round, slot, n int
		if err := rows.Scan(&id, &round, &slot, &n); err != nil {
			return nil, fmt.Errorf("tally votes: %w", err)
		}
		if t := out[id]; round >= 1 && round <= len(t) && (slot == 1 || slot == 2) {
			t[round-1][slot-1] = n
		}
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("tally votes: %w", err)
	}
	return out, nil
}
