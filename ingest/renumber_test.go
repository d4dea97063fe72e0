package ingest

import (
	"slices"
	"testing"
)

func TestRenumber(t *testing.T) {
	// in is a packet as it arrives: its number, and whether it is
	// padding only.
	type in struct {
		seq     uint16
		padding bool
	}
	const drop = -1
	cases := []struct {
		name  string
		delta uint16
		in    []in
		want  []int // output numbers, drop for a dropped packet
	}{
		{
			"media in order keeps its numbers",
			0, []in{{10, false}, {11, false}, {12, false}},
			[]int{10, 11, 12},
		},
		{
			"the offset of a new source",
			100, []in{{10, false}, {11, false}},
			[]int{110, 111},
		},
		{
			"padding in order is dropped and the rest close up",
			0, []in{{10, false}, {11, true}, {12, true}, {13, false}, {14, true}, {15, false}},
			[]int{10, drop, drop, 11, drop, 12},
		},
		{
			"a source that starts with padding",
			0, []in{{10, true}, {11, false}, {12, false}},
			[]int{drop, 10, 11},
		},
		{
			"late padding fills its place",
			0, []in{{10, false}, {12, false}, {11, true}, {13, false}},
			[]int{10, 12, 11, 13},
		},
		{
			"late media skips the drops made after it",
			0, []in{{10, false}, {12, true}, {13, false}, {11, false}, {14, false}},
			[]int{10, drop, 12, 11, 13},
		},
		{
			"late media with drops before and after it",
			0, []in{{10, true}, {11, false}, {13, true}, {14, false}, {12, false}},
			[]int{drop, 10, drop, 12, 11},
		},
		{
			"a dropped padding packet again",
			0, []in{{10, false}, {11, true}, {12, false}, {11, true}},
			[]int{10, drop, 11, drop},
		},
		{
			"a media packet again",
			0, []in{{10, false}, {11, false}, {10, false}},
			[]int{10, 11, 10},
		},
		{
			"numbers wrap",
			0, []in{{65534, false}, {65535, true}, {0, false}, {1, true}, {2, false}},
			[]int{65534, drop, 65535, drop, 0},
		},
		{
			"late across the wrap",
			0, []in{{65535, false}, {1, false}, {0, true}, {2, true}, {3, false}},
			[]int{65535, 1, 0, drop, 2},
		},
		{
			"a packet from before the window is dropped",
			0, []in{{10, false}, {11, false}, {10 + renumberWindow, false}, {11, false}, {10, false}},
			[]int{10, 11, 10 + renumberWindow, 11, drop},
		},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var r seqRenumber
			r.reset(c.delta)
			var got []int
			for _, p := range c.in {
				out, ok := r.next(p.seq, p.padding)
				if !ok {
					got = append(got, drop)
					continue
				}
				got = append(got, int(out))
			}
			if !slices.Equal(got, c.want) {
				t.Errorf("out %v, want %v", got, c.want)
			}
		})
	}
}

// A long stream of padding keeps the drops within the window.
func TestRenumberForgetsOldDrops(t *testing.T) {
	var r seqRenumber
	r.reset(0)
	seq := uint16(0)
	for range 10 * renumberWindow {
		r.next(seq, seq%2 == 1)
		seq++
	}
	if len(r.drops) > renumberWindow/2+1 {
		t.Errorf("%d drops remembered, want at most the window's", len(r.drops))
	}
	// Numbering stays continuous: media at seq and seq+2 with padding
	// between come out as neighbours.
	a, _ := r.next(seq, false)
	r.next(seq+1, true)
	b, _ := r.next(seq+2, false)
	if b != a+1 {
		t.Errorf("media around padding came out as %d and %d", a, b)
	}
}
