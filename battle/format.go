package battle

import "time"

// The battle format: `rounds` rounds, each one timed turn per singer, the
// opener alternating (round 1: slot 1 then 2; round 2: slot 2 then 1; …).
// Voting for a round is open from its start until VoteGrace after its
// last turn; the next round starts when that voting closes, so each
// vote belongs to exactly one round. After the last round the result
// stands for ResultHold, then the battle ends on its own.
//
// The timeline is a pure function of the clock's start, so it needs no
// timer state and survives a restart.

// Format timing defaults.
const (
	DefaultVoteGrace  = 15 * time.Second
	DefaultResultHold = 30 * time.Second
)

// Timeline is where a battle is in its format at one instant.
type Timeline struct {
	Started    bool      // the host started the clock
	Round      int       // 1.., 0 before the start; the last round once finished
	RoundStart time.Time // when Round began: its voting opened
	Turn       int       // the slot singing, 0 when none
	TurnEndsAt time.Time
	VotingOpen bool      // votes count for Round now
	VotingEnds time.Time // when Round's voting closes
	Finished   bool      // every round's voting has closed: the result stands
	EndsAt     time.Time // when a finished battle ends on its own
}

// timing is one battle's format lengths.
type timing struct {
	rounds     int
	turn       time.Duration
	voteGrace  time.Duration
	resultHold time.Duration
}

func (t timing) roundLength() time.Duration { return 2*t.turn + t.voteGrace }

// at computes the timeline at now for a clock started at start (zero:
// not started).
func (t timing) at(start, now time.Time) Timeline {
	if start.IsZero() {
		return Timeline{}
	}
	tl := Timeline{Started: true}
	total := time.Duration(t.rounds) * t.roundLength()
	elapsed := max(now.Sub(start), 0)
	if elapsed >= total {
		tl.Round = t.rounds
		tl.RoundStart = start.Add(time.Duration(t.rounds-1) * t.roundLength())
		tl.Finished = true
		tl.VotingEnds = start.Add(total)
		tl.EndsAt = tl.VotingEnds.Add(t.resultHold)
		return tl
	}
	r := int(elapsed / t.roundLength())
	roundStart := start.Add(time.Duration(r) * t.roundLength())
	tl.Round = r + 1
	tl.RoundStart = roundStart
	tl.VotingOpen = true
	tl.VotingEnds = roundStart.Add(t.roundLength())
	into := now.Sub(roundStart)
	if into < 2*t.turn {
		turn := int(into / t.turn) // 0: the opener, 1: the other
		tl.Turn = opener(tl.Round)
		if turn == 1 {
			tl.Turn = 3 - tl.Turn
		}
		tl.TurnEndsAt = roundStart.Add(time.Duration(turn+1) * t.turn)
	}
	return tl
}

// opener is the slot that sings first in round r.
func opener(r int) int {
	if r%2 == 1 {
		return 1
	}
	return 2
}

// roundsWon counts the rounds each slot took: more votes wins a round.
func roundsWon(tally [][2]int) [2]int {
	var rounds [2]int
	for _, t := range tally {
		switch {
		case t[0] > t[1]:
			rounds[0]++
		case t[1] > t[0]:
			rounds[1]++
		}
	}
	return rounds
}

// winner decides a finished battle from its tallies: the slot with more
// rounds won, then more votes in all, else 0 for a draw.
func winner(tally [][2]int) int {
	rounds := roundsWon(tally)
	var votes [2]int
	for _, t := range tally {
		votes[0] += t[0]
		votes[1] += t[1]
	}
	switch {
	case rounds[0] > rounds[1], rounds[0] == rounds[1] && votes[0] > votes[1]:
		return 1
	case rounds[1] > rounds[0], votes[1] > votes[0]:
		return 2
	}
	return 0
}
