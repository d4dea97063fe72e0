package overlay

import (
	"slices"
	"unicode"

	"github.com/go-text/typesetting/di"
	"github.com/go-text/typesetting/font"
	"github.com/go-text/typesetting/harfbuzz"
	"github.com/go-text/typesetting/language"
	"github.com/go-text/typesetting/segmenter"
	"github.com/go-text/typesetting/shaping"
	"github.com/go-text/typesetting/unicodedata"
	"golang.org/x/image/math/fixed"
)

// style is how text is set: its size in pixels per em and its weight.
type style struct {
	size int
	bold bool
}

// line is text shaped on one line: its runs of one face, script and
// direction in visual order, left to right, each run's glyphs in
// visual order too (HarfBuzz gives right-to-left runs reversed).
type line struct {
	text  []rune // what was shaped
	runs  []shaping.Output
	width fixed.Int26_6
}

// shaper shapes text with a Renderer's fonts. Not safe for concurrent
// use.
type shaper struct {
	fonts *fonts
	hb    shaping.HarfbuzzShaper
	seg   segmenter.Segmenter
}

// shape lays out text (cleaned) in st: bidi levels, then runs split
// where the level, the script or the face changes (a character takes
// the face of its script that has it, else the first that has it),
// each shaped by HarfBuzz with the whole text as context (so Arabic
// joins across a change of face), then ordered for display.
func (sh *shaper) shape(text []rune, st style) line {
	if len(text) == 0 {
		return line{}
	}
	lv := levels(text)
	scripts := resolveScripts(text)
	cjkLang := cjkLanguage(text)
	var (
		inputs    []shaping.Input
		runLevels []uint8
	)
	for i, r := range text {
		var face *font.Face
		if n := len(inputs); n > 0 && runLevels[n-1] == lv[i] && keepsFace(r) {
			face = inputs[n-1].Face
		} else {
			face = sh.fonts.resolve(r, scripts[i], emojiAt(text, i), st.bold)
		}
		if n := len(inputs); n > 0 && runLevels[n-1] == lv[i] && inputs[n-1].Face == face &&
			(inputs[n-1].Script == scripts[i] || !scripts[i].Strong()) {
			inputs[n-1].RunEnd = i + 1
			continue
		}
		dir := di.DirectionLTR
		if lv[i]%2 == 1 {
			dir = di.DirectionRTL
		}
		inputs = append(inputs, shaping.Input{
			Text: text, RunStart: i, RunEnd: i + 1, Direction: dir, Face: face,
			Size: fixed.I(st.size), Script: scripts[i], Language: languageOf(scripts[i], cjkLang),
		})
		runLevels = append(runLevels, lv[i])
	}
	l := line{text: text}
	for _, i := range visualOrder(runLevels) {
		out := sh.hb.Shape(inputs[i])
		l.runs = append(l.runs, out)
		l.width += out.Advance
	}
	return l
}

// fit lays out text in st at most width pixels wide: whole, or cut
// after a grapheme and ended with an ellipsis (at the text's logical
// end: on the left of right-to-left text), or nothing.
func (sh *shaper) fit(text []rune, st style, width int) line {
	l := sh.shape(text, st)
	if l.width.Ceil() <= width {
		return l
	}
	// The widths grow with the cut, so the longest that fits is found
	// by bisection.
	cuts := sh.cuts(text)
	withEllipsis := func(n int) line {
		return sh.shape(append(slices.Clone(trimRightSpace(text[:n])), '…'), st)
	}
	best := line{}
	lo, hi := 0, len(cuts)-1
	for lo <= hi {
		mid := (lo + hi) / 2
		if cand := withEllipsis(cuts[mid]); cand.width.Ceil() <= width {
			best, lo = cand, mid+1
		} else {
			hi = mid - 1
		}
	}
	if best.runs == nil {
		if e := sh.shape([]rune{'…'}, st); e.width.Ceil() <= width {
			return e
		}
	}
	return best
}

// cuts are where text may be cut: between its graphemes (UAX #29), so
// that no letter loses its marks and no emoji sequence is split.
func (sh *shaper) cuts(text []rune) []int {
	var cuts []int
	sh.seg.Init(text)
	for it := sh.seg.GraphemeIterator(); it.Next(); {
		if g := it.Grapheme(); g.Offset > 0 {
			cuts = append(cuts, g.Offset)
		}
	}
	return cuts
}

func trimRightSpace(text []rune) []rune {
	for len(text) > 0 && unicode.IsSpace(text[len(text)-1]) {
		text = text[:len(text)-1]
	}
	return text
}

// resolveScripts gives each character a script: its own, or for the
// characters common to scripts (digits, punctuation, spaces, emoji)
// and combining marks the script before them, or at the start the
// first one after them (UAX #24).
func resolveScripts(text []rune) []language.Script {
	out := make([]language.Script, len(text))
	current := language.Common
	for i, r := range text {
		if s := language.LookupScript(r); s.Strong() && s != language.Unknown {
			current = s
		}
		out[i] = current
	}
	// The start, before the first strong script, takes it.
	first := language.Common
	for _, s := range out {
		if s != language.Common {
			first = s
			break
		}
	}
	for i := 0; i < len(out) && out[i] == language.Common; i++ {
		out[i] = first
	}
	return out
}

// keepsFace tells whether r stays in the face of the run it follows:
// marks and the invisible characters of sequences (joiners, variation
// selectors, emoji tags and skin tones) never start a run of another
// face. (Spaces take the face of their script, that of the text before
// them: an emoji font's space may be none; Noto Color Emoji's shapes
// zero wide.)
func keepsFace(r rune) bool {
	return unicode.In(r, unicode.Mn, unicode.Me) || harfbuzz.IsDefaultIgnorable(r) || r >= 0x1F3FB && r <= 0x1F3FF
}

// emojiAt tells whether the character at i is shown as an emoji: one
// asked for so (U+FE0F after it, or a keycap), a flag's regional
// indicator, or a pictograph above the Basic Multilingual Plane, where
// emoji presentation is the default. (BMP pictographs such as ❤ are
// text unless followed by U+FE0F.)
func emojiAt(text []rune, i int) bool {
	r := text[i]
	if i+1 < len(text) {
		switch text[i+1] {
		case 0xFE0E:
			return false
		case 0xFE0F, 0x20E3:
			return true
		}
	}
	return r >= 0x1F1E6 && r <= 0x1F1FF || r >= 0x1F000 && unicode.Is(unicodedata.Extended_Pictographic, r)
}

// cjkLanguage is the language whose forms Han characters take in text
// (Noto Sans CJK's locl feature): Korean with Hangul, Japanese with
// kana, else Simplified Chinese.
func cjkLanguage(text []rune) language.Language {
	lang := language.Language("zh-hans")
	for _, r := range text {
		switch language.LookupScript(r) {
		case language.Hangul:
			return "ko"
		case language.Hiragana, language.Katakana, language.Katakana_Or_Hiragana:
			lang = "ja"
		}
	}
	return lang
}

// languageOf is the language a run of script s is shaped in.
func languageOf(s language.Script, cjk language.Language) language.Language {
	switch s {
	case language.Han, language.Hiragana, language.Katakana, language.Katakana_Or_Hiragana, language.Hangul, language.Bopomofo:
		return cjk
	}
	if id, ok := language.ScriptToLang[s]; ok && id != 0 {
		return id.Language()
	}
	return ""
}
