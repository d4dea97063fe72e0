package battle

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/singoff/singoff/storage"
)

// The per-network caps, the expiry of waiting battles and the vote
// rules, each performed the way an abuser would.

const (
	homeNet  = "198.51.100.0/24"
	otherNet = "2001:db8:1:2::/64"
)

// Waiting battles are capped per creator network, atomically: concurrent
// creations from one network never pass the cap, other networks are
// apart, and an ended battle's place comes back.
func TestWaitingBattlesCappedPerNetwork(t *testing.T) {
	const maxWaiting = 3
	h := newHarness(t, Config{MaxWaitingPerNetwork: maxWaiting})
	ctx := context.Background()
	create := func(network string) (*storage.Battle, error) {
		b, _, err := h.m.Create(ctx, CreateRequest{Title: ptr("spam"), Network: network})
		return b, err
	}
	var made atomic.Int32
	var ids sync.Map
	var wg sync.WaitGroup
	for range 12 {
		wg.Go(func() {
			b, err := create(homeNet)
			switch {
			case err == nil:
				made.Add(1)
				ids.Store(b.ID, true)
			case !errors.Is(err, ErrNetworkLimit):
				t.Errorf("Create: %v", err)
			}
		})
	}
	wg.Wait()
	if made.Load() != maxWaiting {
		t.Fatalf("%d battles made at once from one network, want %d", made.Load(), maxWaiting)
	}
	for _, tc := range []struct {
		name    string
		network string
		ok      bool
	}{
		{"the full network again", homeNet, false},
		{"another network", otherNet, true},
		{"an unknown network is not counted", "", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := create(tc.network); (err == nil) != tc.ok || err != nil && !errors.Is(err, ErrNetworkLimit) {
				t.Fatalf("Create: %v, want ok %v", err, tc.ok)
			}
		})
	}
	var one string
	ids.Range(func(k, _ any) bool { one = k.(string); return false })
	if _, err := h.m.End(ctx, one, "test"); err != nil {
		t.Fatal(err)
	}
	if _, err := create(homeNet); err != nil {
		t.Fatalf("after one of the network's battles ended: %v", err)
	}
}

// Live battles are capped per creator network, atomically, at admission
// and again when an offer is answered.
func TestLiveBattlesCappedPerNetwork(t *testing.T) {
	const maxPerNetwork = 2
	h := newHarness(t, Config{MaxLive: 10, MaxLivePerNetwork: maxPerNetwork})
	ctx := context.Background()
	open := func(network string) (string, *fakeRoom) {
		b, _, err := h.m.Create(ctx, CreateRequest{Title: ptr("squat"), Network: network})
		if err != nil {
			t.Fatal(err)
		}
		if err := h.m.Open(ctx, b.ID); err != nil {
			t.Fatal(err)
		}
		return b.ID, h.rooms.room(t, b.ID)
	}
	ids := make([]string, 6)
	rooms := make([]*fakeRoom, 6)
	for i := range rooms {
		ids[i], rooms[i] = open(homeNet)
	}
	admitted := admitAtOnce(t, rooms, ErrNetworkLimit)
	if len(admitted) != maxPerNetwork {
		t.Fatalf("%d battles of one network admitted at once, want %d", len(admitted), maxPerNetwork)
	}
	for _, room := range admitted {
		room.hooks.Negotiated(1, true)
	}
	if n := h.programs.count(); n != maxPerNetwork {
		t.Fatalf("%d programs started, want %d", n, maxPerNetwork)
	}
	_, other := open(otherNet)
	if err := other.publish(1, true); err != nil {
		t.Fatalf("another network's battle: %v", err)
	}
	_, unknown := open("")
	if err := unknown.publish(1, true); err != nil {
		t.Fatalf("a battle of no known network: %v", err)
	}
	// One of the network's live battles ends: its place comes back.
	for i, room := range rooms {
		if room.hasPlace(h.m) {
			if _, err := h.m.End(ctx, ids[i], "test"); err != nil {
				t.Fatal(err)
			}
			break
		}
	}
	readmitted := false
	for _, room := range rooms {
		if room.closed.Load() == 0 && !room.hasPlace(h.m) && room.publish(1, true) == nil {
			readmitted = true
			break
		}
	}
	if !readmitted {
		t.Fatal("the network's freed place did not come back")
	}
}

// A battle nobody publishes to expires, room and all; a live one, and a
// young one, stay.
func TestWaitingBattlesExpire(t *testing.T) {
	const expiry = 600 * time.Millisecond
	h := newHarness(t, Config{WaitingExpiry: expiry})
	ctx := context.Background()
	idle, _, err := h.m.Create(ctx, CreateRequest{Title: ptr("never published"), Network: homeNet})
	if err != nil {
		t.Fatal(err)
	}
	// A subscriber made the room of this one; nobody published.
	watched, watchedRoom := h.create(t, CreateRequest{Network: homeNet})
	live, liveRoom := h.create(t, CreateRequest{Network: homeNet})
	if err := liveRoom.publish(1, true); err != nil {
		t.Fatal(err)
	}
	changes, stop := h.m.Subscribe(watched.ID)
	defer stop()
	eventually(t, "the waiting battles expire", func() bool {
		return h.status(t, idle.ID).Battle.State == storage.StateEnded &&
			h.status(t, watched.ID).Battle.State == storage.StateEnded
	})
	// The end is stored first, then the room closes and the battle stops
	// running: right after, not necessarily at once.
	eventually(t, "the expired battle's room closed and the battle stopped", func() bool {
		return watchedRoom.closed.Load() != 0 && h.m.lookup(watched.ID) == nil
	})
	select {
	case <-changes:
	case <-time.After(time.Second):
		t.Error("the expiry was not notified")
	}
	if st := h.status(t, live.ID).Battle.State; st != storage.StateLive {
		t.Errorf("a live battle is %s after the expiry", st)
	}
	young, _, err := h.m.Create(ctx, CreateRequest{Title: ptr("young"), Network: homeNet})
	if err != nil {
		t.Fatal(err)
	}
	time.Sleep(expiry / 2)
	if st := h.status(t, young.ID).Battle.State; st != storage.StateWaiting {
		t.Errorf("a battle younger than the expiry is %s", st)
	}
	if n, _ := h.store.CountWaiting(ctx, homeNet); n != 1 {
		t.Errorf("%d battles of the network waiting, want 1", n)
	}
}

// Votes count only from watchers issued before the round opened, and a
// network's new voters stop at its cap for the round.
func TestVoteRules(t *testing.T) {
	const maxVoters = 2
	h := newHarness(t, Config{MaxVotersPerNetwork: maxVoters, VoteGrace: time.Minute})
	ctx := context.Background()
	b, room := h.create(t, CreateRequest{Rounds: ptr(1), TurnSeconds: ptr(60)})
	if err := room.publish(1, true); err != nil {
		t.Fatal(err)
	}
	early := time.Now()
	regular := VoteRequest{Watcher: newWatcher(), IssuedAt: early, Network: homeNet, Slot: 1}
	if err := h.m.Vote(ctx, b.ID, regular); !errors.Is(err, ErrNotStarted) {
		t.Fatalf("a vote before the start: %v", err)
	}
	if _, err := h.m.Start(ctx, b.ID); err != nil {
		t.Fatal(err)
	}
	vote := func(watcher string, issued time.Time, network string, slot int) VoteRequest {
		return VoteRequest{Watcher: watcher, IssuedAt: issued, Network: network, Slot: slot}
	}
	second := newWatcher()
	for _, tc := range []struct {
		name string
		vote VoteRequest
		want error
	}{
		{"a watcher from before the round", regular, nil},
		{"a watcher issued after the round opened", vote(newWatcher(), time.Now(), otherNet, 1), ErrLateWatcher},
		{"the network's second voter", vote(second, early, homeNet, 2), nil},
		{"the network's third voter", vote(newWatcher(), early, homeNet, 2), ErrNetworkLimit},
		{"a counted voter changes their mind", vote(second, early, homeNet, 1), nil},
		{"another network", vote(newWatcher(), early, otherNet, 2), nil},
		{"no slot 3", vote(newWatcher(), early, otherNet, 3), ErrBadSlot},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if err := h.m.Vote(ctx, b.ID, tc.vote); !errors.Is(err, tc.want) || (err == nil) != (tc.want == nil) {
				t.Fatalf("Vote: %v, want %v", err, tc.want)
			}
		})
	}
	if got := h.status(t, b.ID).Votes; len(got) != 1 || got[0] != [2]int{2, 1} {
		t.Fatalf("votes %v, want [[2 1]]", got)
	}
}

// newWatcher is a watcher identity as the HTTP layer makes them.
func newWatcher() string {
	w, _ := newToken()
	return w
}
