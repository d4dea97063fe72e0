package battle

import (
	"strconv"
	"time"

	"github.com/singoff/singoff/media"
)

// The cues a battle places on its program (media.Cue), which the live and
// recorded playlists carry as EXT-X-DATERANGE and the pages rely on.
const (
	CueTurn   = "com.singoff.turn"   // a turn: ROUND, SLOT; its planned length
	CueRound  = "com.singoff.round"  // a round's result as its voting closed: ROUND, VOTES-1, VOTES-2, WINNER
	CueResult = "com.singoff.result" // the battle's result: WINNER, SCORE-1, SCORE-2
)

// cues lists the battle's events from its clock's start up to now, in
// order of time, each at its exact time on the timeline: every turn's
// start, every round's result when its voting closed (from tally, the
// votes per round), and the battle's result. A later call lists the same
// cues first, so a count of those handed on tells what is new.
func (t timing) cues(start, now time.Time, tally [][2]int) []media.Cue {
	if start.IsZero() {
		return nil
	}
	var out []media.Cue
	add := func(c media.Cue) bool {
		if now.Before(c.Start) {
			return false
		}
		out = append(out, c)
		return true
	}
	for r := 1; r <= t.rounds; r++ {
		roundStart := start.Add(time.Duration(r-1) * t.roundLength())
		round := strconv.Itoa(r)
		for k, slot := range [2]int{opener(r), 3 - opener(r)} {
			if !add(media.Cue{
				ID:       "turn-" + round + "-" + strconv.Itoa(slot),
				Class:    CueTurn,
				Start:    roundStart.Add(time.Duration(k) * t.turn),
				Duration: t.turn,
				Data:     map[string]string{"ROUND": round, "SLOT": strconv.Itoa(slot)},
			}) {
				return out
			}
		}
		var votes [2]int
		if r <= len(tally) {
			votes = tally[r-1]
		}
		if !add(media.Cue{
			ID:    "round-" + round,
			Class: CueRound,
			Start: roundStart.Add(t.roundLength()),
			Data: map[string]string{"ROUND": round, "VOTES-1": strconv.Itoa(votes[0]), "VOTES-2": strconv.Itoa(votes[1]),
				"WINNER": strconv.Itoa(winner([][2]int{votes}))},
		}) {
			return out
		}
	}
	score := roundsWon(tally)
	add(media.Cue{
		ID:    "result",
		Class: CueResult,
		Start: start.Add(time.Duration(t.rounds) * t.roundLength()),
		Data: map[string]string{"WINNER": strconv.Itoa(winner(tally)), "SCORE-1": strconv.Itoa(score[0]),
			"SCORE-2": strconv.Itoa(score[1])},
	})
	return out
}

// cueLog is what a battle's program has been handed of its cues: a
// program started anew (a restart) is handed them all again, and its
// outputs keep one of each ID.
type cueLog struct {
	program Program
	handed  int // the first cues of timing.cues
}

// next returns the cues of all (timing.cues) not handed to prog yet,
// and counts them as handed.
func (l *cueLog) next(prog Program, all []media.Cue) []media.Cue {
	if prog != l.program {
		*l = cueLog{program: prog}
	}
	if l.handed >= len(all) {
		return nil
	}
	news := all[l.handed:]
	l.handed = len(all)
	return news
}
