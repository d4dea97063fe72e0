package storage

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"time"

	"modernc.org/sqlite" // registers the "sqlite" driver
	sqlite3 "modernc.org/sqlite/lib"
)

// migrations run in order, once each; the schema's version is SQLite's
// user_version. Append only.
var migrations = []string{
	`CREATE TABLE battles (
		id TEXT PRIMARY KEY,
		title TEXT NOT NULL,
		state TEXT NOT NULL,
		created_at INTEGER NOT NULL,
		started_at INTEGER NOT NULL DEFAULT 0,
		ended_at INTEGER NOT NULL DEFAULT 0,
		singer1_name TEXT NOT NULL DEFAULT '',
		singer2_name TEXT NOT NULL DEFAULT '',
		rounds INTEGER NOT NULL DEFAULT 0,
		turn_seconds INTEGER NOT NULL DEFAULT 0,
		host_token_hash BLOB NOT NULL,
		singer1_token_hash BLOB NOT NULL,
		singer2_token_hash BLOB NOT NULL,
		recorded INTEGER NOT NULL DEFAULT 0,
		recording_error TEXT NOT NULL DEFAULT ''
	);
	CREATE INDEX battles_state_created ON battles (state, created_at);
	CREATE INDEX battles_created ON battles (created_at);`,
	`ALTER TABLE battles ADD COLUMN clock_started_at INTEGER NOT NULL DEFAULT 0;
	CREATE TABLE votes (
		battle_id TEXT NOT NULL REFERENCES battles (id),
		round INTEGER NOT NULL,
		watcher TEXT NOT NULL,
		slot INTEGER NOT NULL,
		at INTEGER NOT NULL,
		PRIMARY KEY (battle_id, round, watcher)
	);`,
	// Singers are named at creation ("Singer 1" when unnamed).
	`UPDATE battles SET singer1_name = 'Singer 1' WHERE singer1_name = '';
	UPDATE battles SET singer2_name = 'Singer 2' WHERE singer2_name = '';`,
	// The per-network caps: the network a battle was created from, and
	// the network each vote came from.
	`ALTER TABLE battles ADD COLUMN creator_network TEXT NOT NULL DEFAULT '';
	CREATE INDEX battles_network_state ON battles (creator_network, state);
	ALTER TABLE votes ADD COLUMN network TEXT NOT NULL DEFAULT '';
	CREATE INDEX votes_network ON votes (battle_id, round, network);`,
}

// SQLite is the default Store: one database file, WAL journal.
type SQLite struct {
	db *sql.DB
}

var _ Store = (*SQLite)(nil)

// OpenSQLite opens (creating if needed) the database in dir and brings
// its schema up to date.
func OpenSQLite(ctx context.Context, dir string) (*SQLite, error) {
	path := filepath.Join(dir, "singoff.db")
	dsn := "file:" + path + "?_pragma=journal_mode(WAL)&_pragma=synchronous(NORMAL)&_pragma=busy_timeout(5000)&_pragma=foreign_keys(1)"
	db, err := sql.Open("sqlite", dsn)
	if err != nil {
		return nil, fmt.Errorf("open %s: %w", path, err)
	}
	// One writer at a time is SQLite's way; a single connection also
	// keeps the pragmas above in force for every statement.
	db.SetMaxOpenConns(1)
	s := &SQLite{db: db}
	if err := s.migrate(ctx); err != nil {
		db.Close()
		return nil, fmt.Errorf("migrate %s: %w", path, err)
	}
	return s, nil
}

func (s *SQLite) migrate(ctx context.Context) error {
	var version int
	if err := s.db.QueryRowContext(ctx, "PRAGMA user_version").Scan(&version); err != nil {
		return err
	}
	if version > len(migrations) {
		return fmt.Errorf("database schema version %d is newer than this binary's %d", version, len(migrations))
	}
	for i := version; i < len(migrations); i++ {
		tx, err := s.db.BeginTx(ctx, nil)
		if err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, migrations[i]); err != nil {
			tx.Rollback()
			return fmt.Errorf("migration %d: %w", i+1, err)
		}
		if _, err := tx.ExecContext(ctx, fmt.Sprintf("PRAGMA user_version = %d", i+1)); err != nil {
			tx.Rollback()
			return err
		}
		if err := tx.Commit(); err != nil {
			return err
		}
	}
	return nil
}

// Close closes the database.
func (s *SQLite) Close() error { return s.db.Close() }

const battleColumns = `id, title, state, created_at, started_at, ended_at, singer1_name, singer2_name,
	rounds, turn_seconds, host_token_hash, singer1_token_hash, singer2_token_hash, recorded, recording_error,
	clock_started_at, creator_network`

// CreateBattle inserts b.
func (s *SQLite) CreateBattle(ctx context.Context, b *Battle) error {
	_, err := s.db.ExecContext(ctx, `INSERT INTO battles (`+battleColumns+`) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)`,
		b.ID, b.Title, b.State, unixNano(b.CreatedAt), unixNano(b.StartedAt), unixNano(b.EndedAt),
		b.SingerNames[0], b.SingerNames[1], b.Rounds, b.TurnSeconds,
		b.HostTokenHash, b.SingerTokenHashs[0], b.SingerTokenHashs[1], b.Recorded, b.RecordingError,
		unixNano(b.ClockStartedAt), b.CreatorNetwork)
	if err != nil {
		return fmt.Errorf("insert battle %s: %w", b.ID, noSpace(err))
	}
	return nil
}

// noSpace marks an error of a full disk with ErrNoSpace.
func noSpace(err error) error {
	var e *sqlite.Error
	if errors.As(err, &e) && e.Code()&0xff == sqlite3.SQLITE_FULL {
		return fmt.Errorf("%w: %w", ErrNoSpace, err)
	}
	return err
}

// GetBattle returns the battle with id, or ErrNotFound.
func (s *SQLite) GetBattle(ctx context.Context, id string) (*Battle, error) {
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
func (s *SQLite) ListBattles(ctx context.Context, state string, limit int) ([]*Battle, error) {
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
func (s *SQLite) SetLive(ctx context.Context, id string, at time.Time) (bool, error) {
	return s.change(ctx, "mark battle live", id, `UPDATE battles SET state = ?, started_at = ? WHERE id = ? AND state = ?`,
		StateLive, unixNano(at), id, StateWaiting)
}

// SetEnded implements Store.
func (s *SQLite) SetEnded(ctx context.Context, id string, at time.Time) (bool, error) {
	return s.change(ctx, "end battle", id, `UPDATE battles SET state = ?, ended_at = ? WHERE id = ? AND state <> ?`,
		StateEnded, unixNano(at), id, StateEnded)
}

// StartClock implements Store.
func (s *SQLite) StartClock(ctx context.Context, id string, at time.Time) (bool, error) {
	return s.change(ctx, "start battle clock", id, `UPDATE battles SET clock_started_at = ? WHERE id = ? AND state <> ? AND clock_started_at = 0`,
		unixNano(at), id, StateEnded)
}

// SetRecording implements Store.
func (s *SQLite) SetRecording(ctx context.Context, id string, recorded bool, why string) error {
	ok, err := s.change(ctx, "set battle recording", id, `UPDATE battles SET recorded = ?, recording_error = ? WHERE id = ?`,
		recorded, why, id)
	if err == nil && !ok {
		return ErrNotFound
	}
	return err
}

// change runs one conditional UPDATE of battle id and tells whether it
// changed a row.
func (s *SQLite) change(ctx context.Context, what, id, query string, args ...any) (bool, error) {
	res, err := s.db.ExecContext(ctx, query, args...)
	if err != nil {
		return false, fmt.Errorf("%s %s: %w", what, id, noSpace(err))
	}
	n, err := res.RowsAffected()
	if err != nil {
		return false, fmt.Errorf("%s %s: %w", what, id, err)
	}
	return n > 0, nil
}

// EndUnfinished ends the battles a crash left live.
func (s *SQLite) EndUnfinished(ctx context.Context, at time.Time) ([]string, error) {
	rows, err := s.db.QueryContext(ctx, `UPDATE battles SET state = ?, ended_at = ? WHERE state = ? RETURNING id`,
		StateEnded, unixNano(at), StateLive)
	if err != nil {
		return nil, fmt.Errorf("end unfinished battles: %w", err)
	}
	return scanIDs(rows, "end unfinished battles")
}

// scanIDs reads a column of battle ids and closes rows.
func scanIDs(rows *sql.Rows, what string) ([]string, error) {
	defer rows.Close()
	var ids []string
	for rows.Next() {
		var id string
		if err := rows.Scan(&id); err != nil {
			return nil, fmt.Errorf("%s: %w", what, err)
		}
		ids = append(ids, id)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("%s: %w", what, noSpace(err))
	}
	return ids, nil
}

type scanner interface{ Scan(dest ...any) error }

func scanBattle(row scanner) (*Battle, error) {
	var b Battle
	var created, started, ended, clock int64
	err := row.Scan(&b.ID, &b.Title, &b.State, &created, &started, &ended,
		&b.SingerNames[0], &b.SingerNames[1], &b.Rounds, &b.TurnSeconds,
		&b.HostTokenHash, &b.SingerTokenHashs[0], &b.SingerTokenHashs[1], &b.Recorded, &b.RecordingError, &clock,
		&b.CreatorNetwork)
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

// Vote implements Store. One statement does the cap's check and the
// write, and the single connection runs one statement at a time, so
// concurrent ballots of one network cannot pass the cap together.
func (s *SQLite) Vote(ctx context.Context, b Ballot, maxPerNetwork int) (bool, error) {
	res, err := s.db.ExecContext(ctx, `INSERT INTO votes (battle_id, round, watcher, network, slot, at)
		SELECT ?, ?, ?, ?, ?, ?
		WHERE ? <= 0
			OR EXISTS (SELECT 1 FROM votes WHERE battle_id = ? AND round = ? AND watcher = ?)
			OR (SELECT COUNT(*) FROM votes WHERE battle_id = ? AND round = ? AND network = ?) < ?
		ON CONFLICT (battle_id, round, watcher) DO UPDATE SET slot = excluded.slot, at = excluded.at`,
		b.BattleID, b.Round, b.Watcher, b.Network, b.Slot, unixNano(b.At),
		maxPerNetwork,
		b.BattleID, b.Round, b.Watcher,
		b.BattleID, b.Round, b.Network, maxPerNetwork)
	if err != nil {
		return false, fmt.Errorf("vote in battle %s: %w", b.BattleID, noSpace(err))
	}
	n, err := res.RowsAffected()
	if err != nil {
		return false, fmt.Errorf("vote in battle %s: %w", b.BattleID, err)
	}
	return n > 0, nil
}

// CountWaiting implements Store.
func (s *SQLite) CountWaiting(ctx context.Context, network string) (int, error) {
	var n int
	err := s.db.QueryRowContext(ctx, `SELECT COUNT(*) FROM battles WHERE creator_network = ? AND state = ?`,
		network, StateWaiting).Scan(&n)
	if err != nil {
		return 0, fmt.Errorf("count waiting battles: %w", err)
	}
	return n, nil
}

// ExpireWaiting implements Store.
func (s *SQLite) ExpireWaiting(ctx context.Context, createdBefore, at time.Time) ([]string, error) {
	rows, err := s.db.QueryContext(ctx, `UPDATE battles SET state = ?, ended_at = ? WHERE state = ? AND created_at < ? RETURNING id`,
		StateEnded, unixNano(at), StateWaiting, unixNano(createdBefore))
	if err != nil {
		return nil, fmt.Errorf("expire waiting battles: %w", noSpace(err))
	}
	return scanIDs(rows, "expire waiting battles")
}

// Tally counts a battle's votes: one [slot 1, slot 2] pair per round,
// for rounds 1 to rounds.
func (s *SQLite) Tally(ctx context.Context, battleID string, rounds int) ([][2]int, error) {
	t, err := s.Tallies(ctx, []*Battle{{ID: battleID, Rounds: rounds}})
	if err != nil {
		return nil, err
	}
	return t[battleID], nil
}

// Tallies implements Store.
func (s *SQLite) Tallies(ctx context.Context, battles []*Battle) (map[string][][2]int, error) {
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
