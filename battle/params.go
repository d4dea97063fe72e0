package battle

import (
	"fmt"
	"strconv"
	"strings"
	"unicode/utf8"
)

// Bounds and defaults of a battle's settings.
const (
	DefaultRounds      = 3
	DefaultTurnSeconds = 90
	MaxRounds          = 9
	MaxTurnSeconds     = 600
	MaxTitle           = 100
	MaxSingerName      = 40
)

// CreateRequest is a new battle's settings as asked: nil fields take
// their defaults.
type CreateRequest struct {
	Title       *string
	Singers     []string
	Rounds      *int
	TurnSeconds *int
	// Network is the creating client's network (an IPv4 /24 or IPv6
	// /64, e.g. "203.0.113.0/24"), which the per-network caps count;
	// "" is counted by none.
	Network string
}

// CreateParams are a new battle's settings, checked and with defaults.
type CreateParams struct {
	Title       string
	Singers     [2]string
	Rounds      int
	TurnSeconds int
}

// Check validates r; turns are at least minTurn seconds. Singers
// without a name are called "Singer 1" and "Singer 2".
func (r CreateRequest) Check(minTurn int) (CreateParams, error) {
	p := CreateParams{Rounds: DefaultRounds, TurnSeconds: DefaultTurnSeconds}
	invalid := func(format string, args ...any) (CreateParams, error) {
		return p, fmt.Errorf("%w: "+format, append([]any{ErrInvalid}, args...)...)
	}
	if r.Title == nil {
		return invalid(`"title" is required`)
	}
	p.Title = strings.TrimSpace(*r.Title)
	if !validText(p.Title, MaxTitle) {
		return invalid(`"title" must be 1 to %d characters`, MaxTitle)
	}
	for i := range p.Singers {
		p.Singers[i] = "Singer " + strconv.Itoa(i+1)
	}
	if r.Singers != nil {
		if len(r.Singers) != 2 {
			return invalid(`"singers" must name exactly 2 singers`)
		}
		for i, s := range r.Singers {
			s = strings.TrimSpace(s)
			if !validText(s, MaxSingerName) {
				return invalid(`"singers"[%d] must be 1 to %d characters`, i, MaxSingerName)
			}
			p.Singers[i] = s
		}
	}
	if r.Rounds != nil {
		if *r.Rounds < 1 || *r.Rounds > MaxRounds {
			return invalid(`"rounds" must be 1 to %d`, MaxRounds)
		}
		p.Rounds = *r.Rounds
	}
	if r.TurnSeconds != nil {
		if *r.TurnSeconds < minTurn || *r.TurnSeconds > MaxTurnSeconds {
			return invalid(`"turn_seconds" must be %d to %d`, minTurn, MaxTurnSeconds)
		}
		p.TurnSeconds = *r.TurnSeconds
	}
	return p, nil
}

// validText is valid UTF-8 of 1 to max characters.
func validText(s string, max int) bool {
	n := utf8.RuneCountInString(s)
	return utf8.ValidString(s) && n >= 1 && n <= max
}
