package web

import (
	"testing"
	"unicode/utf8"
)

// The JSON bodies of the API are untrusted bytes: whatever they hold,
// parsing must not panic, and what the battle's checks accept must be
// within bounds.
func FuzzParseCreate(f *testing.F) {
	for _, seed := range []string{
		`{"title":"x"}`, `{"title":"Friday","singers":["A","B"],"rounds":9,"turn_seconds":600}`,
		`{"title":""}`, `{"title":"a","singers":[]}`, `{}`, `[]`, `null`, `{"title":"a"}{}`, "\xff",
	} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		req, err := parseCreate(body)
		if err != nil {
			return
		}
		p, err := req.Check(30)
		if err != nil {
			return
		}
		if n := utf8.RuneCountInString(p.Title); n < 1 || n > 100 {
			t.Fatalf("accepted title of %d characters", n)
		}
		if p.Rounds < 1 || p.Rounds > 9 || p.TurnSeconds < 30 || p.TurnSeconds > 600 {
			t.Fatalf("accepted format %+v", p)
		}
		for _, s := range p.Singers {
			if n := utf8.RuneCountInString(s); n < 1 || n > 40 {
				t.Fatalf("accepted singer name of %d characters", n)
			}
		}
	})
}

func FuzzParseVote(f *testing.F) {
	for _, seed := range []string{`{"slot":1}`, `{"slot":2}`, `{"slot":0}`, `{"slot":1.5}`, `{"slot":"1"}`, `{}`, ``} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		slot, err := parseVote(body)
		if err == nil && slot != 1 && slot != 2 {
			t.Fatalf("accepted slot %d", slot)
		}
	})
}

func FuzzParseCheers(f *testing.F) {
	for _, seed := range []string{`{"slot":1,"count":1}`, `{"slot":2,"count":20}`, `{"slot":1,"count":21}`, `{"slot":1}`,
		`{"count":3}`, `{"slot":1,"count":-1}`, `{"slot":1,"count":1e9}`, `{}`, ``} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		slot, count, err := parseCheers(body)
		if err == nil && (slot != 1 && slot != 2 || count < 1 || count > 20) {
			t.Fatalf("accepted %d cheers for slot %d", count, slot)
		}
	})
}
