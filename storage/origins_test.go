package storage

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"sync"
	"testing"
	"time"
)

// A new battle goes to the live origin with the most free capacity: its
// capacity less its battles that have not ended. Origins not seen lately
// or taking no battles (draining) get none.
func TestPlacement(t *testing.T) { eachStore(t, testPlacement) }

func testPlacement(t *testing.T, open func() Store) {
	ctx := context.Background()
	s := open()
	now := time.Date(2026, 3, 4, 5, 6, 7, 0, time.UTC)
	alive := now.Add(-10 * time.Second)
	for _, o := range []Origin{
		{URL: "http://a", Capacity: 4, SeenAt: now},
		{URL: "http://b", Capacity: 2, SeenAt: now.Add(-time.Second)},
		{URL: "http://dead", Capacity: 100, SeenAt: alive.Add(-time.Nanosecond)},
		{URL: "http://draining", Capacity: 0, SeenAt: now},
	} {
		if err := s.Heartbeat(ctx, o); err != nil {
			t.Fatal(err)
		}
	}
	// b already runs one battle and has ended another: one place left.
	for i, state := range []string{StateLive, StateEnded} {
		b := newBattle(fmt.Sprintf("old%d", i), now)
		b.State, b.Origin = state, "http://b"
		if err := s.CreateBattle(ctx, b); err != nil {
			t.Fatal(err)
		}
	}
	steps := []struct {
		name string
		want string
	}{
		{"a has 4 free, b 1", "http://a"},
		{"a 3, b 1", "http://a"},
		{"a 2, b 1", "http://a"},
		{"a 1, b 1: a tie goes to the first URL", "http://a"},
		{"a 0, b 1", "http://b"},
		{"both full: the least over", "http://a"},
		{"a -1, b 0", "http://b"},
	}
	for i, st := range steps {
		t.Run(st.name, func(t *testing.T) {
			b := newBattle(fmt.Sprintf("new%d", i), now)
			if err := s.PlaceBattle(ctx, b, alive); err != nil {
				t.Fatal(err)
			}
			got, err := s.GetBattle(ctx, b.ID)
			if err != nil {
				t.Fatal(err)
			}
			if b.Origin != st.want || got.Origin != st.want {
				t.Fatalf("placed on %q, stored on %q; want %q", b.Origin, got.Origin, st.want)
			}
		})
	}
	if err := s.PlaceBattle(ctx, newBattle("nobody", now), now.Add(time.Hour)); !errors.Is(err, ErrNoOrigin) {
		t.Fatalf("placement with no live origin: %v", err)
	}
	if _, err := s.GetBattle(ctx, "nobody"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("a battle placed nowhere was stored: %v", err)
	}
	origins, err := s.Origins(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var urls []string
	for _, o := range origins {
		urls = append(urls, o.URL)
	}
	if want := []string{"http://a", "http://b", "http://dead", "http://draining"}; !slices.Equal(urls, want) {
		t.Fatalf("origins %v, want %v", urls, want)
	}
	if o := origins[0]; o.Capacity != 4 || !o.SeenAt.Equal(now) {
		t.Fatalf("origin a read back as %+v", o)
	}
}

// Origins placing battles at the same moment never count the same free
// place twice: the battles end up spread exactly.
func TestConcurrentPlacement(t *testing.T) { eachStore(t, testConcurrentPlacement) }

func testConcurrentPlacement(t *testing.T, open func() Store) {
	ctx := context.Background()
	s := open()
	now := time.Now()
	for _, url := range []string{"http://a", "http://b"} {
		if err := s.Heartbeat(ctx, Origin{URL: url, Capacity: 8, SeenAt: now}); err != nil {
			t.Fatal(err)
		}
	}
	const n = 40
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for i := range n {
		wg.Go(func() {
			errs <- s.PlaceBattle(ctx, newBattle(fmt.Sprintf("c%d", i), now), now.Add(-time.Minute))
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	list, err := s.ListBattles(ctx, "", 100)
	if err != nil {
		t.Fatal(err)
	}
	per := map[string]int{}
	for _, b := range list {
		per[b.Origin]++
	}
	if per["http://a"] != n/2 || per["http://b"] != n/2 {
		t.Fatalf("battles per origin %v, want %d each", per, n/2)
	}
}

// A dead origin is reaped once: its live battles end with their votes,
// its waiting battles move to the origins alive, and its entry goes.
func TestReapOrigin(t *testing.T) { eachStore(t, testReapOrigin) }

func testReapOrigin(t *testing.T, open func() Store) {
	ctx := context.Background()
	s := open()
	now := time.Date(2026, 3, 4, 5, 6, 7, 0, time.UTC)
	dead, alive := now.Add(-10*time.Second), now.Add(-10*time.Second)
	for _, o := range []Origin{
		{URL: "http://gone", Capacity: 8, SeenAt: now.Add(-time.Minute)},
		{URL: "http://b", Capacity: 8, SeenAt: now},
		{URL: "http://c", Capacity: 8, SeenAt: now},
	} {
		if err := s.Heartbeat(ctx, o); err != nil {
			t.Fatal(err)
		}
	}
	battles := []struct {
		id, origin, state string
	}{
		{"live1", "http://gone", StateLive},
		{"wait1", "http://gone", StateWaiting},
		{"wait2", "http://gone", StateWaiting},
		{"over", "http://gone", StateEnded},
		{"other", "http://b", StateLive},
	}
	for i, bt := range battles {
		b := newBattle(bt.id, now.Add(time.Duration(i)*time.Second))
		b.Origin, b.State = bt.origin, bt.state
		if err := s.CreateBattle(ctx, b); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := s.StartClock(ctx, "live1", now); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Vote(ctx, Ballot{BattleID: "live1", Round: 1, Watcher: "w", Slot: 2, At: now}, 0); err != nil {
		t.Fatal(err)
	}

	if r, err := s.ReapOrigin(ctx, "http://b", dead, alive, now); err != nil || r.Ended != nil || r.Moved != nil {
		t.Fatalf("reaping an origin seen lately: %+v, %v", r, err)
	}
	r, err := s.ReapOrigin(ctx, "http://gone", dead, alive, now)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(r.Ended, []string{"live1"}) || !slices.Equal(r.Moved, []string{"wait1", "wait2"}) {
		t.Fatalf("reaped %+v", r)
	}
	if again, err := s.ReapOrigin(ctx, "http://gone", dead, alive, now); err != nil || again.Ended != nil || again.Moved != nil {
		t.Fatalf("a second reap: %+v, %v", again, err)
	}
	want := map[string]struct {
		state  string
		origin []string
	}{
		"live1": {StateEnded, []string{"http://gone"}},
		"wait1": {StateWaiting, []string{"http://c"}}, // b runs a battle already
		"wait2": {StateWaiting, []string{"http://b", "http://c"}},
		"over":  {StateEnded, []string{"http://gone"}},
		"other": {StateLive, []string{"http://b"}},
	}
	for _, id := range slices.Sorted(maps.Keys(want)) {
		w := want[id]
		b, err := s.GetBattle(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		if b.State != w.state || !slices.Contains(w.origin, b.Origin) {
			t.Errorf("%s: %s on %s, want %s on one of %v", id, b.State, b.Origin, w.state, w.origin)
		}
	}
	if w1, _ := s.GetBattle(ctx, "wait1"); w1 != nil {
		if w2, _ := s.GetBattle(ctx, "wait2"); w2 != nil && w1.Origin == w2.Origin {
			t.Errorf("both waiting battles moved to %s: they should spread", w1.Origin)
		}
	}
	if b, _ := s.GetBattle(ctx, "live1"); b == nil || !b.EndedAt.Equal(now) {
		t.Errorf("reaped battle ended at %v, want %v", b.EndedAt, now)
	}
	if tally, err := s.Tally(ctx, "live1", 3); err != nil || tally[0] != [2]int{0, 1} {
		t.Errorf("votes of the reaped battle: %v, %v", tally, err)
	}
	origins, err := s.Origins(ctx)
	if err != nil || len(origins) != 2 {
		t.Errorf("origins after the reap: %+v, %v", origins, err)
	}
}

// With no origin alive to take them, a dead origin's waiting battles
// stay where they are.
func TestReapWithNowhereToMove(t *testing.T) { eachStore(t, testReapWithNowhereToMove) }

func testReapWithNowhereToMove(t *testing.T, open func() Store) {
	ctx := context.Background()
	s := open()
	now := time.Now().UTC()
	if err := s.Heartbeat(ctx, Origin{URL: "http://alone", Capacity: 8, SeenAt: now}); err != nil {
		t.Fatal(err)
	}
	b := newBattle("w", now)
	b.Origin = "http://alone"
	if err := s.CreateBattle(ctx, b); err != nil {
		t.Fatal(err)
	}
	// The origin leaves cleanly: it reaps itself.
	r, err := s.ReapOrigin(ctx, "http://alone", now.Add(time.Second), now.Add(-10*time.Second), now)
	if err != nil || r.Moved != nil || r.Ended != nil {
		t.Fatalf("reaped %+v, %v", r, err)
	}
	if got, err := s.GetBattle(ctx, "w"); err != nil || got.Origin != "http://alone" || got.State != StateWaiting {
		t.Fatalf("waiting battle after the leave: %+v, %v", got, err)
	}
}

// A restart ends only the battles its own origin left live.
func TestEndUnfinishedOfOneOrigin(t *testing.T) { eachStore(t, testEndUnfinishedOfOneOrigin) }

func testEndUnfinishedOfOneOrigin(t *testing.T, open func() Store) {
	ctx := context.Background()
	s := open()
	now := time.Now()
	for _, bt := range []struct{ id, origin string }{{"mine", "http://me"}, {"theirs", "http://other"}} {
		b := newBattle(bt.id, now)
		b.Origin, b.State = bt.origin, StateLive
		if err := s.CreateBattle(ctx, b); err != nil {
			t.Fatal(err)
		}
	}
	ended, err := s.EndUnfinished(ctx, "http://me", now)
	if err != nil || !slices.Equal(ended, []string{"mine"}) {
		t.Fatalf("EndUnfinished = %v, %v", ended, err)
	}
	if b, _ := s.GetBattle(ctx, "theirs"); b.State != StateLive {
		t.Fatalf("another origin's battle became %s", b.State)
	}
}

// The presence an origin stores is kept for live battles only.
func TestPresence(t *testing.T) { eachStore(t, testPresence) }

func testPresence(t *testing.T, open func() Store) {
	ctx := context.Background()
	s := open()
	now := time.Now()
	for _, id := range []string{"live", "waiting"} {
		if err := s.CreateBattle(ctx, newBattle(id, now)); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := s.SetLive(ctx, "live", now); err != nil {
		t.Fatal(err)
	}
	for _, id := range []string{"live", "waiting"} {
		if err := s.SetPresence(ctx, id, [2]bool{true, false}, 42); err != nil {
			t.Fatal(err)
		}
	}
	type presence struct {
		connected [2]bool
		viewers   int
	}
	for id, want := range map[string]presence{"live": {[2]bool{true, false}, 42}, "waiting": {}} {
		b, err := s.GetBattle(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		if got := (presence{b.Connected, b.Viewers}); got != want {
			t.Errorf("%s: presence %+v, want %+v", id, got, want)
		}
	}
}
