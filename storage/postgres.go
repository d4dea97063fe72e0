package storage

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/stdlib"
)

// Postgres is the Store several origins share. It also carries battle
// changes between them (Announce, Listen: PostgreSQL's NOTIFY/LISTEN).
type Postgres struct {
	sqlStore
	config *pgx.ConnConfig
	// self marks this store's own announcements, which Listen skips.
	self string

	mu      sync.Mutex
	pending map[string]struct{} // battles to announce
	wake    chan struct{}
	stop    context.CancelFunc
	done    chan struct{}
}

var _ Store = (*Postgres)(nil)

// Advisory lock keys (any two numbers no other user of the database
// takes).
const (
	pgMigrateLock   = 0x5349_4e47_4f46_4601
	pgPlacementLock = 0x5349_4e47_4f46_4602
	// pgVoteLocks is the class of the votes' locks, one per battle (keyed
	// by the hash of its id): PostgreSQL keeps locks of two int4 keys
	// apart from those of one int8 key.
	pgVoteLocks = 0x5349_4e47 // "SING"
)

// pgChannel carries "<store> <battle id>" for every changed battle.
const pgChannel = "singoff_battles"

var postgresDialect = &dialect{
	name:        "postgres",
	types:       map[colType]string{tText: "TEXT", tInt: "BIGINT", tBool: "BOOLEAN", tBytes: "BYTEA"},
	zeros:       map[colType]string{tText: "''", tInt: "0", tBool: "FALSE", tBytes: "''::bytea"},
	placeholder: func(n int) string { return "$" + strconv.Itoa(n) },
	prepare: []string{
		fmt.Sprintf("SELECT pg_advisory_xact_lock(%d)", pgMigrateLock),
		"CREATE TABLE IF NOT EXISTS singoff_schema (version BIGINT NOT NULL)",
		"INSERT INTO singoff_schema (version) SELECT 0 WHERE NOT EXISTS (SELECT 1 FROM singoff_schema)",
	},
	version:       "SELECT version FROM singoff_schema",
	setVersion:    "UPDATE singoff_schema SET version = %d",
	lockPlacement: fmt.Sprintf("SELECT pg_advisory_xact_lock(%d)", pgPlacementLock),
	lockVotes:     fmt.Sprintf("SELECT pg_advisory_xact_lock(%d, hashtext(?))", pgVoteLocks),
	noSpace: func(err error) bool {
		var e *pgconn.PgError
		return errors.As(err, &e) && e.Code == "53100" // disk_full
	},
}

// IsPostgresURL tells whether a --database value names PostgreSQL.
func IsPostgresURL(s string) bool {
	return strings.HasPrefix(s, "postgres://") || strings.HasPrefix(s, "postgresql://")
}

// pgConns bounds the pool: the API's requests, the watchdogs and the
// heartbeats of one origin.
const pgConns = 16

// OpenPostgres connects to the database at url (postgres://…), brings
// its schema up to date (one origin at a time) and starts announcing
// changes. Close stops it.
func OpenPostgres(ctx context.Context, url string) (*Postgres, error) {
	config, err := pgx.ParseConfig(url)
	if err != nil {
		// pgx's message may quote the URL, password included.
		return nil, errors.New("the PostgreSQL URL does not parse")
	}
	pool := stdlib.OpenDB(*config)
	pool.SetMaxOpenConns(pgConns)
	pool.SetMaxIdleConns(pgConns)
	pool.SetConnMaxIdleTime(5 * time.Minute)
	where := fmt.Sprintf("%s:%d/%s", config.Host, config.Port, config.Database)
	if err := pool.PingContext(ctx); err != nil {
		pool.Close()
		return nil, fmt.Errorf("connect to PostgreSQL at %s: %w", where, err)
	}
	token := make([]byte, 8)
	rand.Read(token)
	bg, stop := context.WithCancel(context.Background())
	s := &Postgres{
		sqlStore: sqlStore{db: db{pool: pool, dialect: postgresDialect}},
		config:   config,
		self:     hex.EncodeToString(token),
		pending:  map[string]struct{}{},
		wake:     make(chan struct{}, 1),
		stop:     stop,
		done:     make(chan struct{}),
	}
	if err := s.migrate(ctx); err != nil {
		stop()
		pool.Close()
		return nil, fmt.Errorf("migrate PostgreSQL at %s: %w", where, err)
	}
	go s.announce(bg)
	return s, nil
}

// Close stops announcing and closes the pool.
func (s *Postgres) Close() error {
	s.stop()
	<-s.done
	return s.pool().Close()
}

func (s *Postgres) pool() *sql.DB { return s.db.pool }

// Announce tells the other origins that battle id changed. It never
// blocks: announcements are sent in the background, and several of
// one battle pending at once go as one.
func (s *Postgres) Announce(id string) {
	s.mu.Lock()
	s.pending[id] = struct{}{}
	s.mu.Unlock()
	select {
	case s.wake <- struct{}{}:
	default:
	}
}

// announce sends the pending announcements until ctx is done. One that
// fails is dropped: the origins also reconcile what they run on their
// heartbeat.
func (s *Postgres) announce(ctx context.Context) {
	defer close(s.done)
	for {
		select {
		case <-ctx.Done():
			return
		case <-s.wake:
		}
		s.mu.Lock()
		payloads := make([]string, 0, len(s.pending))
		for id := range s.pending {
			payloads = append(payloads, s.self+" "+id)
		}
		clear(s.pending)
		s.mu.Unlock()
		send, cancel := context.WithTimeout(ctx, 5*time.Second)
		_, _ = s.pool().ExecContext(send, `SELECT pg_notify($1, p) FROM unnest($2::text[]) AS p`, pgChannel, payloads)
		cancel()
	}
}

// Listen calls changed with the id of every battle another origin
// announces, until ctx is done (nil) or its connection fails (the
// error): the caller listens again, and meanwhile may have missed
// announcements.
func (s *Postgres) Listen(ctx context.Context, changed func(id string)) error {
	conn, err := pgx.ConnectConfig(ctx, s.config)
	if err != nil {
		return fmt.Errorf("listen for battle changes: %w", err)
	}
	defer conn.Close(context.Background())
	if _, err := conn.Exec(ctx, "LISTEN "+pgChannel); err != nil {
		return fmt.Errorf("listen for battle changes: %w", err)
	}
	for {
		n, err := conn.WaitForNotification(ctx)
		if ctx.Err() != nil {
			return nil
		}
		if err != nil {
			return fmt.Errorf("listen for battle changes: %w", err)
		}
		from, id, ok := strings.Cut(n.Payload, " ")
		if ok && from != s.self {
			changed(id)
		}
	}
}
