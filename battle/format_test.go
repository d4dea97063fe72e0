package battle

import (
	"testing"
	"time"
)

func TestTimeline(t *testing.T) {
	tm := timing{rounds: 2, turn: 30 * time.Second, voteGrace: 15 * time.Second, resultHold: 30 * time.Second}
	start := time.Unix(1000, 0)
	at := func(d time.Duration) Timeline { return tm.at(start, start.Add(d)) }
	if tl := tm.at(time.Time{}, start); tl.Started || tl.Round != 0 || tl.VotingOpen {
		t.Fatalf("before the start: %+v", tl)
	}
	cases := []struct {
		at         time.Duration
		round      int
		turn       int
		turnEnds   time.Duration
		votingOpen bool
		finished   bool
	}{
		{0, 1, 1, 30 * time.Second, true, false},
		{29 * time.Second, 1, 1, 30 * time.Second, true, false},
		{30 * time.Second, 1, 2, 60 * time.Second, true, false},
		{61 * time.Second, 1, 0, 0, true, false},                 // round 1's voting grace
		{75 * time.Second, 2, 2, 105 * time.Second, true, false}, // round 2: slot 2 opens
		{106 * time.Second, 2, 1, 135 * time.Second, true, false},
		{149 * time.Second, 2, 0, 0, true, false},
		{150 * time.Second, 2, 0, 0, false, true},
		{10 * time.Hour, 2, 0, 0, false, true},
	}
	for _, c := range cases {
		tl := at(c.at)
		if tl.Round != c.round || tl.Turn != c.turn || tl.VotingOpen != c.votingOpen || tl.Finished != c.finished {
			t.Errorf("at %v: %+v", c.at, tl)
		}
		if c.turn != 0 && !tl.TurnEndsAt.Equal(start.Add(c.turnEnds)) {
			t.Errorf("at %v: turn ends %v, want %v", c.at, tl.TurnEndsAt.Sub(start), c.turnEnds)
		}
	}
	if tl := at(151 * time.Second); !tl.EndsAt.Equal(start.Add(180 * time.Second)) {
		t.Errorf("ends at %v", tl.EndsAt.Sub(start))
	}
}

func TestWinner(t *testing.T) {
	cases := []struct {
		tally [][2]int
		want  int
	}{
		{[][2]int{{3, 1}}, 1},
		{[][2]int{{1, 3}, {2, 1}, {0, 5}}, 2},
		{[][2]int{{3, 1}, {1, 2}}, 1},         // rounds 1–1, votes 4–3
		{[][2]int{{2, 2}}, 0},                 // tie everywhere
		{[][2]int{{5, 1}, {0, 1}, {1, 1}}, 1}, // rounds 1–1, votes 6–3
		{[][2]int{{0, 0}, {0, 0}}, 0},
	}
	for _, c := range cases {
		if got := winner(c.tally); got != c.want {
			t.Errorf("winner(%v) = %d, want %d", c.tally, got, c.want)
		}
	}
}
