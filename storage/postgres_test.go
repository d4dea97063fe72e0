package storage

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/singoff/singoff/internal/pgtest"
)

// Origins starting together on a new database migrate it once: the
// others wait for the first and find the schema up to date.
func TestPostgresMigratesOnceWhenOriginsStartTogether(t *testing.T) {
	ctx := context.Background()
	url := pgtest.NewTestDatabase(t)
	const origins = 4
	var wg sync.WaitGroup
	errs := make(chan error, origins)
	for range origins {
		wg.Go(func() {
			s, err := OpenPostgres(ctx, url)
			if err == nil {
				s.Close()
			}
			errs <- err
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	s, err := OpenPostgres(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	var version int
	if err := s.db.QueryRowContext(ctx, postgresDialect.version).Scan(&version); err != nil || version != len(migrations) {
		t.Fatalf("schema version %d (%v), want %d", version, err, len(migrations))
	}
}

// A change announced by one origin reaches the others, not itself.
func TestPostgresAnnouncesChangesToOtherOrigins(t *testing.T) {
	ctx := context.Background()
	url := pgtest.NewTestDatabase(t)
	open := func() *Postgres {
		s, err := OpenPostgres(ctx, url)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { s.Close() })
		return s
	}
	a, b := open(), open()
	listen := func(s *Postgres) <-chan string {
		got := make(chan string, 100)
		lctx, cancel := context.WithCancel(ctx)
		done := make(chan error, 1)
		go func() { done <- s.Listen(lctx, func(id string) { got <- id }) }()
		t.Cleanup(func() {
			cancel()
			if err := <-done; err != nil {
				t.Errorf("Listen: %v", err)
			}
		})
		return got
	}
	atA, atB := listen(a), listen(b)
	// Listening starts in the background: announce until it is heard.
	heard := func(from *Postgres, at <-chan string, id string) {
		t.Helper()
		deadline := time.After(10 * time.Second)
		tick := time.NewTicker(100 * time.Millisecond)
		defer tick.Stop()
		from.Announce(id)
		for {
			select {
			case got := <-at:
				if got != id {
					t.Fatalf("heard %q, want %q", got, id)
				}
				return
			case <-tick.C:
				from.Announce(id)
			case <-deadline:
				t.Fatalf("%q not heard within 10 s", id)
			}
		}
	}
	heard(a, atB, "battle-from-a")
	// a's own announcements come back to a before b's later ones, if
	// they come at all: b's is the first a may hear.
	heard(b, atA, "battle-from-b")
}
