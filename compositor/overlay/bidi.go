package overlay

import (
	"unicode"

	"golang.org/x/text/unicode/bidi"
)

// Text on the overlay is one line, a paragraph of its own whose
// direction is its first strong character's (UAX #9 P2–P3, as a page's
// dir="auto"): a Hebrew or Arabic name reads right to left, a name
// that starts in Latin left to right.
//
// Embedding levels come from golang.org/x/text/unicode/bidi, which
// resolves the weak, neutral and bracket rules but reports runs by
// direction only, losing the levels; reordering needs them. Without
// explicit embeddings (clean removes them), a paragraph's levels are
// its base, base+1 and base+2, and direction tells them apart except
// in a left-to-right paragraph, where level 2 is a number after
// right-to-left text (I1): raiseNumbers finds those.

// clean makes user text fit for one line of the program: explicit
// bidi embeddings, overrides and isolates are dropped (a name must not
// reorder the text around it, nor spoof another), controls and line
// breaks become spaces, and the ends are trimmed.
func clean(s string) []rune {
	out := make([]rune, 0, len(s))
	for _, r := range s {
		switch {
		case r >= 0x202A && r <= 0x202E, r >= 0x2066 && r <= 0x2069:
			continue
		case unicode.IsControl(r), r == 0x2028, r == 0x2029:
			r = ' '
		}
		out = append(out, r)
	}
	start, end := 0, len(out)
	for start < end && unicode.IsSpace(out[start]) {
		start++
	}
	for end > start && unicode.IsSpace(out[end-1]) {
		end--
	}
	return out[start:end]
}

// baseLevel is the paragraph's level: 1 when its first strong
// character is right to left, else 0.
func baseLevel(text []rune) uint8 {
	for _, r := range text {
		p, _ := bidi.LookupRune(r)
		switch p.Class() {
		case bidi.L:
			return 0
		case bidi.R, bidi.AL:
			return 1
		}
	}
	return 0
}

// levels are the embedding levels of text (cleaned) as one paragraph.
func levels(text []rune) []uint8 {
	base := baseLevel(text)
	lv := make([]uint8, len(text))
	for i := range lv {
		lv[i] = base
	}
	if len(text) == 0 {
		return lv
	}
	dir := bidi.LeftToRight
	if base == 1 {
		dir = bidi.RightToLeft
	}
	var p bidi.Paragraph
	if _, err := p.SetString(string(text), bidi.DefaultDirection(dir)); err != nil {
		return lv
	}
	o, err := p.Order()
	if err != nil {
		return lv
	}
	for i := range o.NumRuns() {
		run := o.Run(i)
		odd := uint8(0)
		if run.Direction() == bidi.RightToLeft {
			odd = 1
		}
		start, end := run.Pos()
		for j := start; j <= end && j < len(lv); j++ {
			// base 0: 0 or 1; base 1: 1 or 2.
			lv[j] = base + (base+odd)%2
		}
	}
	if base == 0 {
		raiseNumbers(text, lv)
	}
	return lv
}

// raiseNumbers puts the numbers of a left-to-right paragraph that
// follow right-to-left text at level 2, from the weak-type rules W1–W7
// and I1, so that "DJ שלום 2" reads "DJ 2 שלום" as in a browser.
// Boundary neutrals (BN) take the level of the character before them.
func raiseNumbers(text []rune, lv []uint8) {
	var idx []int // the characters that are not BN (X9)
	t := make([]bidi.Class, len(text))
	for i, r := range text {
		p, _ := bidi.LookupRune(r)
		if t[i] = p.Class(); t[i] != bidi.BN {
			idx = append(idx, i)
		}
	}
	// W1: a non-spacing mark takes the type before it (sos is L).
	prev := bidi.L
	for _, i := range idx {
		if t[i] == bidi.NSM {
			t[i] = prev
		}
		prev = t[i]
	}
	// W2, W3: a European number after Arabic letters is an Arabic
	// number; Arabic letters are R.
	last := bidi.L
	for _, i := range idx {
		switch t[i] {
		case bidi.L, bidi.R:
			last = t[i]
		case bidi.AL:
			last, t[i] = bidi.AL, bidi.R
		case bidi.EN:
			if last == bidi.AL {
				t[i] = bidi.AN
			}
		}
	}
	// W4: one separator between two numbers of a type joins them.
	for k := 1; k+1 < len(idx); k++ {
		a, c, b := t[idx[k-1]], t[idx[k]], t[idx[k+1]]
		if a == b && (c == bidi.ES && a == bidi.EN || c == bidi.CS && (a == bidi.EN || a == bidi.AN)) {
			t[idx[k]] = a
		}
	}
	// W5: terminators next to a European number join it.
	for k := 0; k < len(idx); {
		if t[idx[k]] != bidi.ET {
			k++
			continue
		}
		end := k
		for end < len(idx) && t[idx[end]] == bidi.ET {
			end++
		}
		if k > 0 && t[idx[k-1]] == bidi.EN || end < len(idx) && t[idx[end]] == bidi.EN {
			for j := k; j < end; j++ {
				t[idx[j]] = bidi.EN
			}
		}
		k = end
	}
	// W7: a European number after left-to-right text is L.
	last = bidi.L
	for _, i := range idx {
		switch t[i] {
		case bidi.L, bidi.R:
			last = t[i]
		case bidi.EN:
			if last == bidi.L {
				t[i] = bidi.L
			}
		}
	}
	// I1: numbers at an even level rise by two.
	for _, i := range idx {
		if lv[i]%2 == 0 && (t[i] == bidi.EN || t[i] == bidi.AN) {
			lv[i] = 2
		}
	}
	for i := range text {
		if t[i] == bidi.BN && i > 0 {
			lv[i] = lv[i-1]
		}
	}
}

// visualOrder is L2: the order, left to right, of items with the
// given levels (each item is one run of a level): from the highest
// level down to the lowest odd one, every stretch at that level or
// above is reversed.
func visualOrder(itemLevels []uint8) []int {
	order := make([]int, len(itemLevels))
	var highest, lowestOdd uint8 = 0, 255
	for i, l := range itemLevels {
		order[i] = i
		highest = max(highest, l)
		if l%2 == 1 {
			lowestOdd = min(lowestOdd, l)
		}
	}
	for level := highest; level >= lowestOdd && level > 0; level-- {
		for i := 0; i < len(order); {
			if itemLevels[order[i]] < level {
				i++
				continue
			}
			j := i
			for j < len(order) && itemLevels[order[j]] >= level {
				j++
			}
			for a, b := i, j-1; a < b; a, b = a+1, b-1 {
				order[a], order[b] = order[b], order[a]
			}
			i = j
		}
	}
	return order
}
