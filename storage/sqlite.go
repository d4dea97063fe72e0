package storage

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"path/filepath"

	"modernc.org/sqlite" // registers the "sqlite" driver
	sqlite3 "modernc.org/sqlite/lib"
)

// SQLite is the default Store: one database file, WAL journal.
type SQLite struct {
	sqlStore
}

var _ Store = (*SQLite)(nil)

var sqliteDialect = &dialect{
	name:  "sqlite",
	types: map[colType]string{tText: "TEXT", tInt: "INTEGER", tBool: "INTEGER", tBytes: "BLOB"},
	zeros: map[colType]string{tText: "''", tInt: "0", tBool: "0", tBytes: "X''"},
	// One connection: every transaction is alone, so neither migrations
	// nor placements need a lock of their own.
	version:    "PRAGMA user_version",
	setVersion: "PRAGMA user_version = %d",
	noSpace: func(err error) bool {
		var e *sqlite.Error
		return errors.As(err, &e) && e.Code()&0xff == sqlite3.SQLITE_FULL
	},
}

// OpenSQLite opens (creating if needed) the database in dir and brings
// its schema up to date.
func OpenSQLite(ctx context.Context, dir string) (*SQLite, error) {
	path := filepath.Join(dir, "singoff.db")
	dsn := "file:" + path + "?_pragma=journal_mode(WAL)&_pragma=synchronous(NORMAL)&_pragma=busy_timeout(5000)&_pragma=foreign_keys(1)"
	pool, err := sql.Open("sqlite", dsn)
	if err != nil {
		return nil, fmt.Errorf("open %s: %w", path, err)
	}
	// One writer at a time is SQLite's way; a single connection also
	// keeps the pragmas above in force for every statement.
	pool.SetMaxOpenConns(1)
	s := &SQLite{sqlStore{db: db{pool: pool, dialect: sqliteDialect}}}
	if err := s.migrate(ctx); err != nil {
		pool.Close()
		return nil, fmt.Errorf("migrate %s: %w", path, err)
	}
	return s, nil
}
