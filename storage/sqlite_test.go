package storage

import (
	"context"
	"errors"
	"testing"
	"time"
)

func newBattle(id string, created time.Time) *Battle {
	return &Battle{
		ID: id, Title: "t " + id, State: StateWaiting, CreatedAt: created,
		SingerNames: [2]string{"A", "B"}, Rounds: 3, TurnSeconds: 90,
		HostTokenHash: []byte("h"), SingerTokenHashs: [2][]byte{[]byte("1"), []byte("2")},
	}
}

func TestSQLiteRoundTripAndRestart(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	s, err := OpenSQLite(ctx, dir)
	if err != nil {
		t.Fatal(err)
	}
	t0 := time.Date(2026, 1, 2, 3, 4, 5, 6, time.UTC)
	for i, id := range []string{"a", "b", "c"} {
		if err := s.CreateBattle(ctx, newBattle(id, t0.Add(time.Duration(i)*time.Second))); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.CreateBattle(ctx, newBattle("a", t0)); err == nil {
		t.Fatal("duplicate id accepted")
	}
	b, err := s.GetBattle(ctx, "b")
	if err != nil {
		t.Fatal(err)
	}
	want := newBattle("b", t0.Add(time.Second))
	if b.Title != want.Title || !b.CreatedAt.Equal(want.CreatedAt) || b.SingerNames != want.SingerNames ||
		string(b.SingerTokenHashs[1]) != "2" || !b.StartedAt.IsZero() {
		t.Fatalf("read back %+v, want %+v", b, want)
	}
	b.State, b.StartedAt, b.Recorded = StateLive, t0.Add(time.Minute), true
	if err := s.UpdateBattle(ctx, b); err != nil {
		t.Fatal(err)
	}
	list, err := s.ListBattles(ctx, "", 10)
	if err != nil || len(list) != 3 || list[0].ID != "c" || list[2].ID != "a" {
		t.Fatalf("list newest first: %v %v", ids(list), err)
	}
	live, _ := s.ListBattles(ctx, StateLive, 10)
	if len(live) != 1 || live[0].ID != "b" {
		t.Fatalf("live list: %v", ids(live))
	}
	if _, err := s.GetBattle(ctx, "zz"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("unknown id: %v", err)
	}
	s.Close()

	// A restart after a crash: the live battle comes back ended.
	s, err = OpenSQLite(ctx, dir)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	ended, err := s.EndUnfinished(ctx, t0.Add(time.Hour))
	if err != nil || len(ended) != 1 || ended[0] != "b" {
		t.Fatalf("EndUnfinished = %v, %v", ended, err)
	}
	b, _ = s.GetBattle(ctx, "b")
	if b.State != StateEnded || !b.EndedAt.Equal(t0.Add(time.Hour)) || !b.Recorded {
		t.Fatalf("after restart: %+v", b)
	}
	a, _ := s.GetBattle(ctx, "a")
	if a.State != StateWaiting {
		t.Fatalf("waiting battle changed at restart: %s", a.State)
	}
}

func ids(bs []*Battle) []string {
	var out []string
	for _, b := range bs {
		out = append(out, b.ID)
	}
	return out
}

func TestVotesReplaceWithinARoundAndSurviveRestart(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	s, err := OpenSQLite(ctx, dir)
	if err != nil {
		t.Fatal(err)
	}
	b := newBattle("v", time.Now())
	b.Rounds = 2
	if err := s.CreateBattle(ctx, b); err != nil {
		t.Fatal(err)
	}
	b.ClockStartedAt = time.Unix(100, 0)
	if err := s.UpdateBattle(ctx, b); err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	for _, v := range []struct {
		round   int
		watcher string
		slot    int
	}{{1, "a", 1}, {1, "b", 1}, {1, "c", 2}, {1, "a", 2}, {2, "a", 1}} {
		if err := s.Vote(ctx, "v", v.round, v.watcher, v.slot, now); err != nil {
			t.Fatal(err)
		}
	}
	s.Close()
	s, err = OpenSQLite(ctx, dir)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	tally, err := s.Tally(ctx, "v", 2)
	if err != nil {
		t.Fatal(err)
	}
	if want := [][2]int{{1, 2}, {1, 0}}; tally[0] != want[0] || tally[1] != want[1] {
		t.Fatalf("tally %v, want %v (a's second vote in round 1 replaces the first)", tally, want)
	}
	got, _ := s.GetBattle(ctx, "v")
	if !got.ClockStartedAt.Equal(time.Unix(100, 0)) {
		t.Fatalf("clock start %v", got.ClockStartedAt)
	}
}
