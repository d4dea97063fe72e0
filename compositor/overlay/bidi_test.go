package overlay

import (
	"slices"
	"testing"
)

// TestBidiVisualOrder orders characters by their levels (UAX #9, each
// character as an item) and compares with the order the algorithm's
// rules give, worked out by hand for each case (and as a browser shows
// the text with dir="auto").
func TestBidiVisualOrder(t *testing.T) {
	for _, tc := range []struct {
		name, text string
		levels     []uint8
		order      []int
	}{
		{"Latin", "abc", []uint8{0, 0, 0}, []int{0, 1, 2}},
		{"Hebrew", "שלום", []uint8{1, 1, 1, 1}, []int{3, 2, 1, 0}},
		{"no strong character: left to right", "123", []uint8{0, 0, 0}, []int{0, 1, 2}},
		{"Latin then Arabic", "Ann & سارا", []uint8{0, 0, 0, 0, 0, 0, 1, 1, 1, 1}, []int{0, 1, 2, 3, 4, 5, 9, 8, 7, 6}},
		{"Hebrew then Latin: a right-to-left paragraph", "שלום abc", []uint8{1, 1, 1, 1, 1, 2, 2, 2}, []int{5, 6, 7, 4, 3, 2, 1, 0}},
		{"a number in Arabic keeps its digits' order", "سارا 12", []uint8{1, 1, 1, 1, 1, 2, 2}, []int{5, 6, 4, 3, 2, 1, 0}},
		{"a number after Latin is Latin", "abc 123 שלום", []uint8{0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1}, []int{0, 1, 2, 3, 4, 5, 6, 7, 11, 10, 9, 8}},
		{"a number after Hebrew in Latin (I1)", "DJ שלום 2", []uint8{0, 0, 0, 1, 1, 1, 1, 1, 2}, []int{0, 1, 2, 8, 7, 6, 5, 4, 3}},
		{"a number after Arabic in Latin (W2: an Arabic number)", "DJ سارا 2", []uint8{0, 0, 0, 1, 1, 1, 1, 1, 2}, []int{0, 1, 2, 8, 7, 6, 5, 4, 3}},
		{"a percentage after Hebrew in Latin (W5)", "DJ שלום 5%", []uint8{0, 0, 0, 1, 1, 1, 1, 1, 2, 2}, []int{0, 1, 2, 8, 9, 7, 6, 5, 4, 3}},
		{"a decimal after Hebrew in Latin (W4)", "DJ שלום 1.5", []uint8{0, 0, 0, 1, 1, 1, 1, 1, 2, 2, 2}, []int{0, 1, 2, 8, 9, 10, 7, 6, 5, 4, 3}},
		{"Arabic-Indic digits in Latin", "x ٣٤ y", []uint8{0, 0, 2, 2, 0, 0}, []int{0, 1, 2, 3, 4, 5}},
		{"brackets around Hebrew", "(שלום)", []uint8{1, 1, 1, 1, 1, 1}, []int{5, 4, 3, 2, 1, 0}},
		{"a mark takes its letter's level", "שָׁ x", []uint8{1, 1, 1, 1, 2}, []int{4, 3, 2, 1, 0}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			text := clean(tc.text)
			lv := levels(text)
			if !slices.Equal(lv, tc.levels) {
				t.Errorf("%q: levels %v, want %v", tc.text, lv, tc.levels)
			}
			if got := visualOrder(lv); !slices.Equal(got, tc.order) {
				t.Errorf("%q: order %v, want %v", tc.text, got, tc.order)
			}
		})
	}
}

// TestVisualOrderOfRuns reorders items of several levels (L2).
func TestVisualOrderOfRuns(t *testing.T) {
	for _, tc := range []struct {
		name   string
		levels []uint8
		want   []int
	}{
		{"none", nil, []int{}},
		{"left to right", []uint8{0, 0}, []int{0, 1}},
		{"right to left", []uint8{1, 1, 1}, []int{2, 1, 0}},
		{"nested", []uint8{0, 1, 2, 2, 1, 0}, []int{0, 4, 2, 3, 1, 5}},
		{"numbers in a right-to-left paragraph", []uint8{1, 2, 1, 2}, []int{3, 2, 1, 0}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := visualOrder(tc.levels); !slices.Equal(got, tc.want) {
				t.Errorf("levels %v: order %v, want %v", tc.levels, got, tc.want)
			}
		})
	}
}
