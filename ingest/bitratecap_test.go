package ingest

import (
	"testing"
	"time"
)

// What a slot's publisher is told, step by step, as its subscribers'
// estimates come and go.
func TestBitrateCap(t *testing.T) {
	pub, reloaded := &session{id: "pub"}, &session{id: "pub2"}
	subA, subB := &session{id: "a"}, &session{id: "b"}
	type op int
	const (
		observe op = iota
		forget
		tick
	)
	// step is one call at ms milliseconds; sent is the REMB it returns
	// (0: none).
	type step struct {
		ms   int
		op   op
		sub  *session
		bps  int
		pub  *session
		sent int
	}
	cases := []struct {
		name  string
		steps []step
	}{
		{"an uncongested subscriber is told no cap, once a second", []step{
			{0, observe, subA, rembCeiling, pub, rembCeiling},
			{100, observe, subA, rembCeiling, pub, 0},
			{1000, observe, subA, rembCeiling, pub, rembCeiling},
		}},
		{"a fall is told at once, then no faster than every 200 ms", []step{
			{0, observe, subA, 1_000_000, pub, 1_000_000},
			{50, observe, subA, 800_000, pub, 0},
			{200, observe, subA, 800_000, pub, 800_000},
			{300, observe, subA, 790_000, pub, 0}, // less than 3% lower
			{1200, observe, subA, 790_000, pub, 790_000},
		}},
		{"a rise waits for the second", []step{
			{0, observe, subA, 500_000, pub, 500_000},
			{300, observe, subA, 900_000, pub, 0},
			{1000, observe, subA, 900_000, pub, 900_000},
		}},
		{"the least estimate wins", []step{
			{0, observe, subA, 2_000_000, pub, 2_000_000},
			{300, observe, subB, 700_000, pub, 700_000},
			{1300, observe, subA, 2_000_000, pub, 700_000},
		}},
		{"never below the floor", []step{
			{0, observe, subA, 10_000, pub, rembFloor},
		}},
		{"no publisher, nothing told", []step{
			{0, observe, subA, 500_000, nil, 0},
		}},
		{"a cap lifts when its subscriber leaves, and the lift is repeated a while", []step{
			{0, observe, subA, 500_000, pub, 500_000},
			{100, forget, subA, 0, pub, 0},
			{1000, forget, subA, 0, pub, rembCeiling},
			{2000, tick, nil, 0, pub, rembCeiling},
			{4500, tick, nil, 0, pub, rembCeiling},
			{5500, tick, nil, 0, pub, 0}, // 5 s after the cap
			{7000, tick, nil, 0, pub, 0},
		}},
		{"without subscribers or a cap, nothing is told", []step{
			{0, tick, nil, 0, pub, 0},
			{2000, tick, nil, 0, pub, 0},
		}},
		{"a reloaded publisher starts uncapped and is told at once", []step{
			{0, observe, subA, 500_000, pub, 500_000},
			{100, observe, subA, 500_000, reloaded, 500_000},
		}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var cp bitrateCap
			start := time.Unix(1000, 0)
			for i, s := range c.steps {
				now := start.Add(time.Duration(s.ms) * time.Millisecond)
				var bps int
				var ok bool
				switch s.op {
				case observe:
					bps, ok = cp.observe(s.sub, s.bps, s.pub, now)
				case forget:
					bps, ok = cp.forget(s.sub, s.pub, now)
				case tick:
					bps, ok = cp.tick(s.pub, now)
				}
				if !ok {
					bps = 0
				}
				if bps != s.sent {
					t.Errorf("step %d (%d ms): sent %d, want %d", i, s.ms, bps, s.sent)
				}
			}
		})
	}
}
