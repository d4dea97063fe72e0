package storage

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/singoff/singoff/internal/tmpfs"
)

// A database made by the first versions (raw SQL, user_version 3) is
// brought up to date by the description, its battles kept.
func TestSQLiteUpgradesAnOldDatabase(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	old, err := sql.Open("sqlite", "file:"+filepath.Join(dir, "singoff.db"))
	if err != nil {
		t.Fatal(err)
	}
	for _, q := range []string{
		`CREATE TABLE battles (id TEXT PRIMARY KEY, title TEXT NOT NULL, state TEXT NOT NULL, created_at INTEGER NOT NULL,
			started_at INTEGER NOT NULL DEFAULT 0, ended_at INTEGER NOT NULL DEFAULT 0,
			singer1_name TEXT NOT NULL DEFAULT '', singer2_name TEXT NOT NULL DEFAULT '',
			rounds INTEGER NOT NULL DEFAULT 0, turn_seconds INTEGER NOT NULL DEFAULT 0,
			host_token_hash BLOB NOT NULL, singer1_token_hash BLOB NOT NULL, singer2_token_hash BLOB NOT NULL,
			recorded INTEGER NOT NULL DEFAULT 0, recording_error TEXT NOT NULL DEFAULT '')`,
		`CREATE INDEX battles_state_created ON battles (state, created_at)`,
		`CREATE INDEX battles_created ON battles (created_at)`,
		`ALTER TABLE battles ADD COLUMN clock_started_at INTEGER NOT NULL DEFAULT 0`,
		`CREATE TABLE votes (battle_id TEXT NOT NULL REFERENCES battles (id), round INTEGER NOT NULL,
			watcher TEXT NOT NULL, slot INTEGER NOT NULL, at INTEGER NOT NULL, PRIMARY KEY (battle_id, round, watcher))`,
		`INSERT INTO battles (id, title, state, created_at, singer1_name, singer2_name, rounds, turn_seconds,
			host_token_hash, singer1_token_hash, singer2_token_hash, recorded)
			VALUES ('old', 'from before', 'ended', 1, 'A', 'B', 3, 90, X'01', X'02', X'03', 1)`,
		`INSERT INTO votes VALUES ('old', 1, 'w', 2, 1)`,
		`PRAGMA user_version = 3`,
	} {
		if _, err := old.ExecContext(ctx, q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	old.Close()
	s, err := OpenSQLite(ctx, dir)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	b, err := s.GetBattle(ctx, "old")
	if err != nil {
		t.Fatal(err)
	}
	if b.Title != "from before" || !b.Recorded || b.Origin != "" || b.Connected != [2]bool{} || string(b.SingerTokenHashs[1]) != "\x03" {
		t.Fatalf("old battle read back as %+v", b)
	}
	if tally, err := s.Tally(ctx, "old", 3); err != nil || tally[0] != [2]int{0, 1} {
		t.Fatalf("old votes: %v, %v", tally, err)
	}
	var version int
	if err := s.db.QueryRowContext(ctx, "PRAGMA user_version").Scan(&version); err != nil || version != len(migrations) {
		t.Fatalf("schema version %d (%v), want %d", version, err, len(migrations))
	}
}

// On a full disk a write fails with ErrNoSpace, changes nothing, and the
// database takes writes again once there is room; reads go on
// throughout.
func TestFullDiskRefusesWritesCleanly(t *testing.T) {
	ctx := context.Background()
	dir := tmpfs.Mount(t, 4)
	s, err := OpenSQLite(ctx, dir)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if err := s.CreateBattle(ctx, newBattle("kept", time.Now())); err != nil {
		t.Fatal(err)
	}
	filler := tmpfs.Fill(t, dir, 0)
	var full error
	made := 0
	for i := range 20_000 {
		b := newBattle(fmt.Sprintf("b%05d", i), time.Now())
		b.Title = strings.Repeat("x", 100)
		if full = s.CreateBattle(ctx, b); full != nil {
			break
		}
		made++
	}
	t.Logf("%d battles written on the full disk before: %v", made, full)
	if !errors.Is(full, ErrNoSpace) {
		t.Fatalf("after %d battles on a full disk: %v, want ErrNoSpace", made, full)
	}
	if _, err := s.SetEnded(ctx, "kept", time.Now()); err != nil && !errors.Is(err, ErrNoSpace) {
		t.Fatalf("a state change on a full disk: %v", err)
	}
	if b, err := s.GetBattle(ctx, "kept"); err != nil || b.Title != "t kept" {
		t.Fatalf("a read on a full disk: %v", err)
	}
	if err := os.Remove(filler); err != nil {
		t.Fatal(err)
	}
	if err := s.CreateBattle(ctx, newBattle("after", time.Now())); err != nil {
		t.Fatalf("a write once there is room again: %v", err)
	}
	if ok, err := s.SetEnded(ctx, "kept", time.Now()); err != nil {
		t.Fatalf("ending once there is room again: %v, %v", ok, err)
	}
	list, err := s.ListBattles(ctx, "", 100_000)
	if err != nil || len(list) != made+2 {
		t.Fatalf("%d battles listed (%v), want the %d written", len(list), err, made+2)
	}
}
