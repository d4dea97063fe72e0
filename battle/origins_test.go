package battle

import (
	"context"
	"errors"
	"fmt"
	"os"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/singoff/singoff/internal/pgtest"
	"github.com/singoff/singoff/storage"
)

// Several origins run here as managers in one process, each with its own
// connections to a real PostgreSQL (as separate servers would have),
// with fake rooms and programs as in the other tests.

func TestMain(m *testing.M) {
	code := m.Run()
	pgtest.StopShared()
	os.Exit(code)
}

// Origin timing of the tests: short, so that a death is seen quickly.
const (
	testHeartbeat     = 100 * time.Millisecond
	testOriginTimeout = 800 * time.Millisecond
)

// newOrigin starts an origin named url on database db.
func newOrigin(t *testing.T, db, url string, cfg Config) *harness {
	t.Helper()
	store, err := storage.OpenPostgres(context.Background(), db)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })
	cfg.Store, cfg.Changes, cfg.Origin = store, store, url
	cfg.Heartbeat, cfg.OriginTimeout = testHeartbeat, testOriginTimeout
	h := newHarness(t, cfg)
	if err := h.m.Join(context.Background()); err != nil {
		t.Fatal(err)
	}
	return h
}

// die stops an origin's heartbeat, as a crash would: it leaves nothing
// behind and tells no one.
func (h *harness) die() {
	h.m.origin.stop()
	h.m.origin.done.Wait()
}

// Battles created through either origin are spread over both, and each
// runs where it was placed: the other refuses its media.
func TestOriginsShareBattles(t *testing.T) {
	db := pgtest.NewTestDatabase(t)
	a := newOrigin(t, db, "http://a", Config{})
	b := newOrigin(t, db, "http://b", Config{})
	per := map[string]int{}
	var battles []*storage.Battle
	for i := range 7 {
		via := []*harness{a, b}[i%2]
		bt, _, err := via.m.Create(context.Background(), CreateRequest{Title: ptr(fmt.Sprint("battle ", i))})
		if err != nil {
			t.Fatal(err)
		}
		per[bt.Origin]++
		battles = append(battles, bt)
	}
	if per["http://a"] != 4 || per["http://b"] != 3 {
		t.Fatalf("battles per origin: %v, want 4 and 3", per)
	}
	for _, bt := range battles {
		owner, other := a, b
		if bt.Origin == "http://b" {
			owner, other = b, a
		}
		if url, elsewhere := other.m.Owner(bt); !elsewhere || url != bt.Origin {
			t.Errorf("%s on %s: the other origin says %q, %v", bt.ID, bt.Origin, url, elsewhere)
		}
		if _, elsewhere := owner.m.Owner(bt); elsewhere {
			t.Errorf("%s: its own origin sends it elsewhere", bt.ID)
		}
		if err := other.m.Open(context.Background(), bt.ID); !errors.Is(err, ErrElsewhere) {
			t.Errorf("%s: the other origin opened its room: %v", bt.ID, err)
		}
		if err := owner.m.Open(context.Background(), bt.ID); err != nil {
			t.Errorf("%s: its origin: %v", bt.ID, err)
		}
	}
}

// What is done on one origin reaches the battle's own origin: singers
// connected there show here, a start here sets its program's clock, a
// vote or a cheer here shows in its program, an end here ends its
// program.
func TestChangesReachTheBattlesOrigin(t *testing.T) {
	db := pgtest.NewTestDatabase(t)
	a := newOrigin(t, db, "http://a", Config{})
	b := newOrigin(t, db, "http://b", Config{})
	bt, room := a.create(t, CreateRequest{Rounds: ptr(2), TurnSeconds: ptr(60)})
	if bt.Origin != "http://a" {
		t.Fatalf("placed on %s", bt.Origin)
	}
	if err := room.publish(1, true); err != nil {
		t.Fatal(err)
	}
	eventually(t, "the other origin shows the singer connected", func() bool {
		st := b.status(t, bt.ID)
		return st.Battle.State == storage.StateLive && st.Connected == [2]bool{true, false}
	})

	if _, err := b.m.Start(context.Background(), bt.ID); err != nil {
		t.Fatal(err)
	}
	prog := a.programs.program(bt.ID)
	eventually(t, "the program shows round 1 after a start elsewhere", func() bool {
		s := prog.shown()
		return len(s) > 0 && s[len(s)-1].Round == 1
	})
	if err := b.m.Vote(context.Background(), bt.ID, VoteRequest{Watcher: newWatcher(), IssuedAt: time.Now().Add(-time.Hour), Slot: 2}); err != nil {
		t.Fatal(err)
	}
	eventually(t, "the program shows a vote cast elsewhere", func() bool {
		s := prog.shown()
		return len(s) > 0 && s[len(s)-1].Votes == [2]int{0, 1}
	})

	// Cheers on both origins: the program on the battle's own shows
	// their sum.
	if err := b.m.Cheer(context.Background(), bt.ID, 1, 7); err != nil {
		t.Fatal(err)
	}
	if err := a.m.Cheer(context.Background(), bt.ID, 2, 3); err != nil {
		t.Fatal(err)
	}
	eventually(t, "the program shows the cheers of both origins", func() bool {
		s := prog.shown()
		return len(s) > 0 && s[len(s)-1].Cheers == [2]int{7, 3}
	})

	changes, stop := b.m.Subscribe(bt.ID)
	defer stop()
	if _, err := b.m.End(context.Background(), bt.ID, "the host ended it"); err != nil {
		t.Fatal(err)
	}
	eventually(t, "the program ends after an end elsewhere", func() bool {
		return prog.ends.Load() == 1 && room.closed.Load() == 1
	})
	select {
	case <-changes:
	case <-time.After(5 * time.Second):
		t.Fatal("the end was not announced on the origin that made it")
	}
	if st := a.status(t, bt.ID); st.Battle.State != storage.StateEnded || st.Votes[0] != [2]int{0, 1} {
		t.Fatalf("after the end: %+v", st)
	}
}

// A battle started on another origin before any singer came gets its
// room on its own origin, so that its timeline runs there.
func TestAStartElsewhereOpensTheRoom(t *testing.T) {
	db := pgtest.NewTestDatabase(t)
	a := newOrigin(t, db, "http://a", Config{})
	b := newOrigin(t, db, "http://b", Config{})
	bt, _, err := a.m.Create(context.Background(), CreateRequest{Title: ptr("no singer yet")})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := b.m.Start(context.Background(), bt.ID); err != nil {
		t.Fatal(err)
	}
	eventually(t, "the battle's origin opens its room", func() bool { return a.rooms.has(bt.ID) })
	if b.rooms.has(bt.ID) {
		t.Fatal("the other origin opened a room too")
	}
}

// When an origin dies the others notice: its live battles end (votes
// kept, recordings handed over to be finished) and its waiting battles
// move to an origin that is alive.
func TestADeadOriginsBattles(t *testing.T) {
	db := pgtest.NewTestDatabase(t)
	var mu sync.Mutex
	var orphaned []string
	a := newOrigin(t, db, "http://a", Config{})
	b := newOrigin(t, db, "http://b", Config{Orphaned: func(ids []string) {
		mu.Lock()
		orphaned = append(orphaned, ids...)
		mu.Unlock()
	}})
	live, room := a.create(t, CreateRequest{})
	if err := room.publish(1, true); err != nil {
		t.Fatal(err)
	}
	if _, err := a.m.Start(context.Background(), live.ID); err != nil {
		t.Fatal(err)
	}
	if err := b.m.Vote(context.Background(), live.ID, VoteRequest{Watcher: newWatcher(), IssuedAt: time.Now().Add(-time.Hour), Slot: 1}); err != nil {
		t.Fatal(err)
	}
	// b now holds one battle less than a: the next goes to b, then a.
	other, _, err := a.m.Create(context.Background(), CreateRequest{Title: ptr("b's")})
	if err != nil || other.Origin != "http://b" {
		t.Fatalf("second battle on %s: %v", other.Origin, err)
	}
	waiting, _, err := b.m.Create(context.Background(), CreateRequest{Title: ptr("waiting on a")})
	if err != nil || waiting.Origin != "http://a" {
		t.Fatalf("third battle on %s: %v", waiting.Origin, err)
	}

	a.die()
	died := time.Now()
	eventually(t, "the dead origin's live battle ends", func() bool {
		return b.status(t, live.ID).Battle.State == storage.StateEnded
	})
	t.Logf("noticed %v after the last heartbeat could have been", time.Since(died).Round(time.Millisecond))
	mu.Lock()
	got := slices.Clone(orphaned)
	mu.Unlock()
	if !slices.Equal(got, []string{live.ID}) {
		t.Errorf("recordings handed over: %v, want %v", got, []string{live.ID})
	}
	if st := b.status(t, live.ID); st.Votes[0] != [2]int{1, 0} {
		t.Errorf("votes of the dead origin's battle: %v", st.Votes)
	}
	moved := b.status(t, waiting.ID).Battle
	if moved.State != storage.StateWaiting || moved.Origin != "http://b" {
		t.Errorf("the dead origin's waiting battle: %s on %s", moved.State, moved.Origin)
	}
	if err := b.m.Open(context.Background(), waiting.ID); err != nil {
		t.Errorf("the moved battle does not open on its new origin: %v", err)
	}
}
