package storage

import (
	"context"
	"errors"
	"fmt"
	"os"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/singoff/singoff/internal/pgtest"
)

func TestMain(m *testing.M) {
	code := m.Run()
	pgtest.StopShared()
	os.Exit(code)
}

// eachStore runs test on a new SQLite database and on a new PostgreSQL
// database: every store test checks that both behave alike. open opens
// the test's database (again, as a restart would); the test's end
// closes what it opened.
func eachStore(t *testing.T, test func(t *testing.T, open func() Store)) {
	t.Run("sqlite", func(t *testing.T) {
		dir := t.TempDir()
		test(t, func() Store {
			t.Helper()
			s, err := OpenSQLite(context.Background(), dir)
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { s.Close() })
			return s
		})
	})
	t.Run("postgres", func(t *testing.T) {
		url := pgtest.NewTestDatabase(t)
		test(t, func() Store {
			t.Helper()
			s, err := OpenPostgres(context.Background(), url)
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { s.Close() })
			return s
		})
	})
}

func newBattle(id string, created time.Time) *Battle {
	return &Battle{
		ID: id, Title: "t " + id, State: StateWaiting, CreatedAt: created,
		SingerNames: [2]string{"A", "B"}, Rounds: 3, TurnSeconds: 90,
		HostTokenHash: []byte("h"), SingerTokenHashs: [2][]byte{[]byte("1"), []byte("2")},
	}
}

func TestRoundTripAndRestart(t *testing.T) { eachStore(t, testRoundTripAndRestart) }

func testRoundTripAndRestart(t *testing.T, open func() Store) {
	ctx := context.Background()
	s := open()
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
	if ok, err := s.SetLive(ctx, "b", t0.Add(time.Minute)); !ok || err != nil {
		t.Fatalf("SetLive = %v, %v", ok, err)
	}
	if err := s.SetRecording(ctx, "b", true, ""); err != nil {
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
	s = open()
	ended, err := s.EndUnfinished(ctx, "", t0.Add(time.Hour))
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
	eachStore(t, testVotesReplaceWithinARoundAndSurviveRestart)
}

func testVotesReplaceWithinARoundAndSurviveRestart(t *testing.T, open func() Store) {
	ctx := context.Background()
	s := open()
	b := newBattle("v", time.Now())
	b.Rounds = 2
	if err := s.CreateBattle(ctx, b); err != nil {
		t.Fatal(err)
	}
	if ok, err := s.StartClock(ctx, "v", time.Unix(100, 0)); !ok || err != nil {
		t.Fatalf("StartClock = %v, %v", ok, err)
	}
	now := time.Now()
	for _, v := range []struct {
		round   int
		watcher string
		slot    int
	}{{1, "a", 1}, {1, "b", 1}, {1, "c", 2}, {1, "a", 2}, {2, "a", 1}} {
		if ok, err := s.Vote(ctx, Ballot{BattleID: "v", Round: v.round, Watcher: v.watcher, Slot: v.slot, At: now}, 0); !ok || err != nil {
			t.Fatalf("Vote = %v, %v", ok, err)
		}
	}
	s.Close()
	s = open()
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

// Every state change is one conditional write: it applies once, from
// the states it may start from, and never undoes another.
func TestStateChangesAreConditional(t *testing.T) { eachStore(t, testStateChangesAreConditional) }

func testStateChangesAreConditional(t *testing.T, open func() Store) {
	ctx := context.Background()
	s := open()
	t0 := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	if err := s.CreateBattle(ctx, newBattle("x", t0)); err != nil {
		t.Fatal(err)
	}
	steps := []struct {
		name   string
		change func() (bool, error)
		want   bool
	}{
		{"clock starts while waiting", func() (bool, error) { return s.StartClock(ctx, "x", t0.Add(time.Second)) }, true},
		{"clock starts once", func() (bool, error) { return s.StartClock(ctx, "x", t0.Add(2*time.Second)) }, false},
		{"goes live from waiting", func() (bool, error) { return s.SetLive(ctx, "x", t0.Add(3*time.Second)) }, true},
		{"goes live once", func() (bool, error) { return s.SetLive(ctx, "x", t0.Add(4*time.Second)) }, false},
		{"ends", func() (bool, error) { return s.SetEnded(ctx, "x", t0.Add(5*time.Second)) }, true},
		{"ends once", func() (bool, error) { return s.SetEnded(ctx, "x", t0.Add(6*time.Second)) }, false},
		{"no live after the end", func() (bool, error) { return s.SetLive(ctx, "x", t0.Add(7*time.Second)) }, false},
		{"unknown battle", func() (bool, error) { return s.SetEnded(ctx, "nope", t0) }, false},
	}
	for _, st := range steps {
		t.Run(st.name, func(t *testing.T) {
			if got, err := st.change(); got != st.want || err != nil {
				t.Fatalf("= %v, %v; want %v", got, err, st.want)
			}
		})
	}
	b, err := s.GetBattle(ctx, "x")
	if err != nil {
		t.Fatal(err)
	}
	if b.State != StateEnded || !b.ClockStartedAt.Equal(t0.Add(time.Second)) ||
		!b.StartedAt.Equal(t0.Add(3*time.Second)) || !b.EndedAt.Equal(t0.Add(5*time.Second)) {
		t.Fatalf("after the changes: %+v", b)
	}
	if err := s.SetRecording(ctx, "x", false, "not recorded"); err != nil {
		t.Fatal(err)
	}
	if err := s.SetRecording(ctx, "nope", true, ""); !errors.Is(err, ErrNotFound) {
		t.Fatalf("SetRecording of an unknown battle: %v", err)
	}
}

func TestTalliesOfSeveralBattles(t *testing.T) { eachStore(t, testTalliesOfSeveralBattles) }

func testTalliesOfSeveralBattles(t *testing.T, open func() Store) {
	ctx := context.Background()
	s := open()
	now := time.Now()
	one, two, none := newBattle("one", now), newBattle("two", now), newBattle("none", now)
	two.Rounds = 1
	for _, b := range []*Battle{one, two, none} {
		if err := s.CreateBattle(ctx, b); err != nil {
			t.Fatal(err)
		}
	}
	for _, v := range []struct {
		battle  string
		round   int
		watcher string
		slot    int
	}{{"one", 1, "a", 1}, {"one", 3, "a", 2}, {"one", 3, "b", 2}, {"two", 1, "a", 2}, {"two", 2, "a", 1}} {
		if ok, err := s.Vote(ctx, Ballot{BattleID: v.battle, Round: v.round, Watcher: v.watcher, Slot: v.slot, At: now}, 0); !ok || err != nil {
			t.Fatalf("Vote = %v, %v", ok, err)
		}
	}
	got, err := s.Tallies(ctx, []*Battle{one, two, none})
	if err != nil {
		t.Fatal(err)
	}
	want := map[string][][2]int{
		"one":  {{1, 0}, {0, 0}, {0, 2}},
		"two":  {{0, 1}}, // a vote past the battle's rounds is not counted
		"none": {{0, 0}, {0, 0}, {0, 0}},
	}
	for id, w := range want {
		if !slices.Equal(got[id], w) {
			t.Errorf("%s: %v, want %v", id, got[id], w)
		}
	}
}

// A round takes at most maxPerNetwork watchers of one network; their
// changed votes still count, and other networks and rounds are apart.
func TestVotesCappedPerNetwork(t *testing.T) { eachStore(t, testVotesCappedPerNetwork) }

func testVotesCappedPerNetwork(t *testing.T, open func() Store) {
	ctx := context.Background()
	s := open()
	if err := s.CreateBattle(ctx, newBattle("v", time.Now())); err != nil {
		t.Fatal(err)
	}
	const home, other = "198.51.100.0/24", "2001:db8::/64"
	steps := []struct {
		name    string
		round   int
		watcher string
		network string
		slot    int
		want    bool
	}{
		{"first of the network", 1, "a", home, 1, true},
		{"second of the network", 1, "b", home, 1, true},
		{"third of the network is over the cap", 1, "c", home, 2, false},
		{"a counted watcher changes their vote", 1, "a", home, 2, true},
		{"another network", 1, "c", other, 2, true},
		{"the next round counts afresh", 2, "c", home, 1, true},
	}
	for _, st := range steps {
		t.Run(st.name, func(t *testing.T) {
			ok, err := s.Vote(ctx, Ballot{BattleID: "v", Round: st.round, Watcher: st.watcher, Network: st.network, Slot: st.slot, At: time.Now()}, 2)
			if ok != st.want || err != nil {
				t.Fatalf("Vote = %v, %v; want %v", ok, err, st.want)
			}
		})
	}
	tally, err := s.Tally(ctx, "v", 2)
	if err != nil {
		t.Fatal(err)
	}
	if want := [][2]int{{1, 2}, {1, 0}}; !slices.Equal(tally, want) {
		t.Fatalf("tally %v, want %v", tally, want)
	}
}

// Waiting battles are counted by the network that created them, and
// expire by their age: live and ended ones, and young ones, stay.
func TestWaitingBattlesCountedAndExpired(t *testing.T) {
	eachStore(t, testWaitingBattlesCountedAndExpired)
}

func testWaitingBattlesCountedAndExpired(t *testing.T, open func() Store) {
	ctx := context.Background()
	s := open()
	t0 := time.Date(2026, 1, 2, 3, 0, 0, 0, time.UTC)
	const home, other = "198.51.100.0/24", "203.0.113.0/24"
	for _, b := range []struct {
		id      string
		network string
		age     time.Duration
		live    bool
	}{
		{"old", home, 2 * time.Hour, false},
		{"oldlive", home, 2 * time.Hour, true},
		{"young", home, time.Minute, false},
		{"elsewhere", other, 2 * time.Hour, false},
	} {
		nb := newBattle(b.id, t0.Add(-b.age))
		nb.CreatorNetwork = b.network
		if err := s.CreateBattle(ctx, nb); err != nil {
			t.Fatal(err)
		}
		if b.live {
			if _, err := s.SetLive(ctx, b.id, t0); err != nil {
				t.Fatal(err)
			}
		}
	}
	if got, _ := s.GetBattle(ctx, "young"); got.CreatorNetwork != home {
		t.Fatalf("creator network read back as %q", got.CreatorNetwork)
	}
	for _, c := range []struct {
		network string
		want    int
	}{{home, 2}, {other, 1}, {"", 0}} {
		if n, err := s.CountWaiting(ctx, c.network); n != c.want || err != nil {
			t.Errorf("CountWaiting(%q) = %d, %v; want %d", c.network, n, err, c.want)
		}
	}
	expired, err := s.ExpireWaiting(ctx, t0.Add(-time.Hour), t0)
	slices.Sort(expired)
	if err != nil || !slices.Equal(expired, []string{"elsewhere", "old"}) {
		t.Fatalf("ExpireWaiting = %v, %v", expired, err)
	}
	for id, want := range map[string]string{"old": StateEnded, "oldlive": StateLive, "young": StateWaiting, "elsewhere": StateEnded} {
		if b, _ := s.GetBattle(ctx, id); b.State != want {
			t.Errorf("%s is %s, want %s", id, b.State, want)
		}
	}
	if n, _ := s.CountWaiting(ctx, home); n != 1 {
		t.Errorf("after the expiry %d waiting from %s, want 1", n, home)
	}
	if again, err := s.ExpireWaiting(ctx, t0.Add(-time.Hour), t0); len(again) != 0 || err != nil {
		t.Fatalf("a second expiry = %v, %v", again, err)
	}
}

// Concurrent first votes of one network never pass its cap together (on
// PostgreSQL, origins vote through pools of connections).
func TestConcurrentVotesCapped(t *testing.T) { eachStore(t, testConcurrentVotesCapped) }

func testConcurrentVotesCapped(t *testing.T, open func() Store) {
	ctx := context.Background()
	s := open()
	if err := s.CreateBattle(ctx, newBattle("v", time.Now())); err != nil {
		t.Fatal(err)
	}
	const maxVoters = 5
	var counted atomic.Int32
	var wg sync.WaitGroup
	for i := range 30 {
		wg.Go(func() {
			ok, err := s.Vote(ctx, Ballot{BattleID: "v", Round: 1, Watcher: fmt.Sprintf("w%d", i), Network: "198.51.100.0/24", Slot: 1, At: time.Now()}, maxVoters)
			if err != nil {
				t.Error(err)
			}
			if ok {
				counted.Add(1)
			}
		})
	}
	wg.Wait()
	tally, err := s.Tally(ctx, "v", 1)
	if err != nil {
		t.Fatal(err)
	}
	if counted.Load() != maxVoters || tally[0] != [2]int{maxVoters, 0} {
		t.Fatalf("%d votes counted at once, tally %v; want %d", counted.Load(), tally, maxVoters)
	}
}
