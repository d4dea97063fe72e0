package battle

import (
	"context"
	"maps"
	"slices"
	"testing"
	"time"

	"github.com/singoff/singoff/media"
	"github.com/singoff/singoff/storage"
)

// cueAt is a cue as a test states it: its ID, its time from the clock's
// start and its data.
type cueAt struct {
	id   string
	at   time.Duration
	data map[string]string
}

func checkCues(t *testing.T, got []media.Cue, start time.Time, want []cueAt) {
	t.Helper()
	if len(got) != len(want) {
		ids := make([]string, len(got))
		for i, c := range got {
			ids[i] = c.ID
		}
		t.Fatalf("cues %v, want %d", ids, len(want))
	}
	for i, w := range want {
		c := got[i]
		if c.ID != w.id || !c.Start.Equal(start.Add(w.at)) || !maps.Equal(c.Data, w.data) {
			t.Errorf("cue %d: %s at %v with %v; want %s at %v with %v", i, c.ID, c.Start.Sub(start), c.Data, w.id, w.at, w.data)
		}
	}
}

func TestTimelineCues(t *testing.T) {
	tm := timing{rounds: 2, turn: 10 * time.Second, voteGrace: 5 * time.Second, resultHold: 30 * time.Second}
	start := time.Unix(1000, 0)
	tally := [][2]int{{3, 1}, {2, 2}}
	turn := func(round, slot string, at time.Duration) cueAt {
		return cueAt{"turn-" + round + "-" + slot, at * time.Second, map[string]string{"ROUND": round, "SLOT": slot}}
	}
	all := []cueAt{
		turn("1", "1", 0),
		turn("1", "2", 10),
		{"round-1", 25 * time.Second, map[string]string{"ROUND": "1", "VOTES-1": "3", "VOTES-2": "1", "WINNER": "1"}},
		turn("2", "2", 25), // the opener alternates
		turn("2", "1", 35),
		{"round-2", 50 * time.Second, map[string]string{"ROUND": "2", "VOTES-1": "2", "VOTES-2": "2", "WINNER": "0"}},
		// Round 2 is a draw: slot 1 wins 1–0.
		{"result", 50 * time.Second, map[string]string{"WINNER": "1", "SCORE-1": "1", "SCORE-2": "0"}},
	}
	for _, tc := range []struct {
		name string
		at   time.Duration
		want []cueAt
	}{
		{"before the start", -time.Second, nil},
		{"at the start", 0, all[:1]},
		{"just before the second turn", 10*time.Second - 1, all[:1]},
		{"at the second turn", 10 * time.Second, all[:2]},
		{"in the vote grace", 22 * time.Second, all[:2]},
		{"when round 1's voting closes", 25 * time.Second, all[:4]},
		{"round 2, second turn", 40 * time.Second, all[:5]},
		{"finished", 50 * time.Second, all},
		{"long after", time.Hour, all},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := tm.cues(start, start.Add(tc.at), tally)
			checkCues(t, got, start, tc.want)
			for _, c := range got {
				class := map[string]string{"turn": CueTurn, "roun": CueRound, "resu": CueResult}[c.ID[:4]]
				if c.Class != class {
					t.Errorf("%s: class %q, want %q", c.ID, c.Class, class)
				}
				if wantLen := map[string]time.Duration{CueTurn: tm.turn}[c.Class]; c.Duration != wantLen {
					t.Errorf("%s: duration %v, want %v", c.ID, c.Duration, wantLen)
				}
			}
		})
	}
	if got := tm.cues(time.Time{}, start, tally); got != nil {
		t.Errorf("a clock not started has cues: %v", got)
	}
}

func TestCueLogHandsEachCueOncePerProgram(t *testing.T) {
	tm := timing{rounds: 1, turn: 10 * time.Second, voteGrace: 5 * time.Second}
	start := time.Unix(1000, 0)
	var log cueLog
	p1, p2 := &fakeProgram{}, &fakeProgram{}
	ids := func(cs []media.Cue) []string {
		var out []string
		for _, c := range cs {
			out = append(out, c.ID)
		}
		return out
	}
	for _, step := range []struct {
		name string
		prog Program
		at   time.Duration
		want []string
	}{
		{"first turn", p1, time.Second, []string{"turn-1-1"}},
		{"nothing new", p1, 2 * time.Second, nil},
		{"a missed tick: both at once", p1, 30 * time.Second, []string{"turn-1-2", "round-1", "result"}},
		{"a new program gets them all", p2, 30 * time.Second, []string{"turn-1-1", "turn-1-2", "round-1", "result"}},
		{"then nothing", p2, time.Minute, nil},
	} {
		got := log.next(step.prog, tm.cues(start, start.Add(step.at), nil))
		if !slices.Equal(ids(got), step.want) {
			t.Errorf("%s: %v, want %v", step.name, ids(got), step.want)
		}
	}
}

// The program gets each cue of a whole battle once, in order, at the
// timeline's exact times, with the votes of each round.
func TestBattleCuesReachTheProgram(t *testing.T) {
	grace := 500 * time.Millisecond
	h := newHarness(t, Config{VoteGrace: grace, ResultHold: 500 * time.Millisecond})
	b, room := h.create(t, CreateRequest{Rounds: ptr(2), TurnSeconds: ptr(1)})
	if err := room.publish(1, true); err != nil {
		t.Fatal(err)
	}
	issued := time.Now() // the watchers arrived before the start
	if _, err := h.m.Start(context.Background(), b.ID); err != nil {
		t.Fatal(err)
	}
	for _, slot := range []int{2, 2, 1} {
		if err := h.m.Vote(context.Background(), b.ID, VoteRequest{Watcher: newWatcher(), IssuedAt: issued, Slot: slot}); err != nil {
			t.Fatal(err)
		}
	}
	// The battle takes 2 × 2.5 s and its result 0.5 s.
	deadline := time.Now().Add(15 * time.Second)
	for h.status(t, b.ID).Battle.State != storage.StateEnded {
		if time.Now().After(deadline) {
			t.Fatal("the battle did not end after its result")
		}
		time.Sleep(50 * time.Millisecond)
	}
	start := h.status(t, b.ID).Battle.ClockStartedAt
	p := h.programs.program(b.ID)
	p.mu.Lock()
	got := slices.Clone(p.cues)
	p.mu.Unlock()
	round := 2*time.Second + grace
	checkCues(t, got, start, []cueAt{
		{"turn-1-1", 0, map[string]string{"ROUND": "1", "SLOT": "1"}},
		{"turn-1-2", time.Second, map[string]string{"ROUND": "1", "SLOT": "2"}},
		{"round-1", round, map[string]string{"ROUND": "1", "VOTES-1": "1", "VOTES-2": "2", "WINNER": "2"}},
		{"turn-2-2", round, map[string]string{"ROUND": "2", "SLOT": "2"}},
		{"turn-2-1", round + time.Second, map[string]string{"ROUND": "2", "SLOT": "1"}},
		{"round-2", 2 * round, map[string]string{"ROUND": "2", "VOTES-1": "0", "VOTES-2": "0", "WINNER": "0"}},
		{"result", 2 * round, map[string]string{"WINNER": "2", "SCORE-1": "0", "SCORE-2": "1"}},
	})
}
