package battle

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/singoff/singoff/storage"
)

// Cheers pour in: the program shows their sum and the watchers hear of
// them at most once a tick, not once a tap.
func TestCheersAggregated(t *testing.T) {
	h := newHarness(t, Config{})
	b, room := h.create(t, CreateRequest{})
	if err := room.publish(1, true); err != nil {
		t.Fatal(err)
	}
	changes, stop := h.m.Subscribe(b.ID)
	defer stop()
	for len(changes) > 0 {
		<-changes
	}
	var wakes int
	var counting sync.WaitGroup
	done := make(chan struct{})
	counting.Go(func() {
		for {
			select {
			case <-done:
				return
			case <-changes:
				wakes++
			}
		}
	})
	ctx := context.Background()
	start := time.Now()
	const taps = 400
	for i := range taps {
		slot, n := 1+i%2, 1+i%3
		if err := h.m.Cheer(ctx, b.ID, slot, n); err != nil {
			t.Fatal(err)
		}
		time.Sleep(2 * time.Millisecond) // a crowd tapping for about a second
	}
	var want [2]int
	for i := range taps {
		want[i%2] += 1 + i%3
	}
	eventually(t, "the battle object counts every cheer", func() bool { return h.status(t, b.ID).Battle.Cheers == want })
	elapsed := time.Since(start)
	close(done)
	counting.Wait()
	if most := int(elapsed/watchInterval) + 2; wakes > most {
		t.Fatalf("%d change notifications for %d cheers in %v; at most %d (one a tick)", wakes, taps, elapsed, most)
	}
	if wakes == 0 {
		t.Fatal("the watchers never heard of the cheers")
	}
	prog := h.programs.program(b.ID)
	eventually(t, "the program shows the cheers", func() bool {
		s := prog.shown()
		return len(s) > 0 && s[len(s)-1].Cheers == want
	})

	for _, c := range []struct {
		name      string
		slot, n   int
		wantError error
	}{
		{"slot 0", 0, 1, ErrBadSlot},
		{"slot 3", 3, 1, ErrBadSlot},
		{"none", 1, 0, ErrInvalid},
		{"too many", 1, MaxCheers + 1, ErrInvalid},
	} {
		t.Run(c.name, func(t *testing.T) {
			if err := h.m.Cheer(ctx, b.ID, c.slot, c.n); !errors.Is(err, c.wantError) {
				t.Fatalf("Cheer = %v, want %v", err, c.wantError)
			}
		})
	}
	if _, err := h.m.End(ctx, b.ID, "test"); err != nil {
		t.Fatal(err)
	}
	if err := h.m.Cheer(ctx, b.ID, 1, 1); !errors.Is(err, ErrEnded) {
		t.Fatalf("a cheer after the end: %v", err)
	}
	if got := h.status(t, b.ID).Battle.Cheers; got != want {
		t.Fatalf("cheers after the end %v, want %v", got, want)
	}
}

// A battle without a room here (waiting, or run by another origin)
// takes cheers straight into the store.
func TestCheersWithoutARoom(t *testing.T) {
	h := newHarness(t, Config{})
	b, _, err := h.m.Create(context.Background(), CreateRequest{Title: ptr("no room")})
	if err != nil {
		t.Fatal(err)
	}
	changes, stop := h.m.Subscribe(b.ID)
	defer stop()
	if err := h.m.Cheer(context.Background(), b.ID, 2, 7); err != nil {
		t.Fatal(err)
	}
	select {
	case <-changes:
	case <-time.After(time.Second):
		t.Fatal("no change notification")
	}
	if got := h.status(t, b.ID).Battle; got.Cheers != [2]int{0, 7} || got.State != storage.StateWaiting {
		t.Fatalf("battle %+v", got)
	}
	if err := h.m.Cheer(context.Background(), "nope", 1, 1); !errors.Is(err, ErrNotFound) {
		t.Fatalf("cheers for no battle: %v", err)
	}
}
