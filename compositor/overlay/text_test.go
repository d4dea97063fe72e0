package overlay

import (
	"bytes"
	"image"
	"slices"
	"strings"
	"testing"

	"github.com/go-text/typesetting/font"
	"github.com/go-text/typesetting/shaping"
	"golang.org/x/image/math/fixed"
	"golang.org/x/image/vector"

	"github.com/singoff/singoff/media"
)

// goFontsRenderer draws with Go's fonts alone, as a server without Noto.
func goFontsRenderer(t testing.TB) *Renderer {
	t.Helper()
	r, err := NewRenderer()
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// names are singer names in the scripts the program must draw.
var names = []struct{ name, text string }{
	{"Hangul", "김민지"},
	{"kanji", "山田太郎"},
	{"kana and kanji", "山田さくら"},
	{"Chinese", "王芳"},
	{"Arabic", "سارا محمد"},
	{"Hebrew", "שלום"},
	{"an emoji", "Ann 🎤"},
	{"an emoji sequence and a flag", "👨‍👩‍👧 Family 🇰🇷"},
	{"a skin tone", "👋🏽 Hi"},
	{"Greek and Cyrillic", "Ωmega Жанна"},
	{"Latin with marks", "Zoë Ngọc Anh"},
	{"Thai", "สมชาย"},
	{"Devanagari", "नमस्ते"},
}

// missingGlyph tells whether g of run draws as its face's missing-glyph
// box: glyph 0 (.notdef), or pixels identical to it.
func missingGlyph(run shaping.Output, g shaping.Glyph) bool {
	if g.GlyphID == 0 {
		return true
	}
	notdef := g
	notdef.GlyphID = 0
	ext, _ := run.Face.GlyphExtents(0)
	scale := float32(run.Size) / float32(run.Face.Upem())
	notdef.XBearing, notdef.YBearing = fixed.Int26_6(ext.XBearing*scale), fixed.Int26_6(ext.YBearing*scale)
	notdef.Width, notdef.Height = fixed.Int26_6(ext.Width*scale), fixed.Int26_6(ext.Height*scale)
	a, b := alone(run, g), alone(run, notdef)
	return a.mask.Rect == b.mask.Rect && bytes.Equal(a.mask.Pix, b.mask.Pix) && (a.color == nil) == (b.color == nil) &&
		(a.color == nil || a.color.Rect == b.color.Rect && bytes.Equal(a.color.Pix, b.color.Pix))
}

// alone draws g of run by itself.
func alone(run shaping.Output, g shaping.Glyph) *textImage {
	run.Glyphs = []shaping.Glyph{g}
	return rasterize(line{runs: []shaping.Output{run}, width: g.XAdvance}, &vector.Rasterizer{})
}

// missingGlyphs counts the glyphs of text, shaped by r in st, that draw
// as missing-glyph boxes.
func missingGlyphs(r *Renderer, text string, st style) (missing, total int) {
	for _, run := range r.sh.shape(clean(text), st).runs {
		for _, g := range run.Glyphs {
			total++
			if missingGlyph(run, g) {
				missing++
			}
		}
	}
	return missing, total
}

// TestNamesInEveryScriptHaveNoMissingGlyphs shapes names in Hangul,
// kanji, Arabic, Hebrew, with emoji and more, and finds no glyph that is
// its font's .notdef or draws its pixels; Go's fonts, which lack these
// scripts, show that the check finds boxes where there are some.
func TestNamesInEveryScriptHaveNoMissingGlyphs(t *testing.T) {
	noto, goFonts := newRenderer(t), goFontsRenderer(t)
	for _, n := range names {
		t.Run(n.name, func(t *testing.T) {
			for _, st := range []style{nameStyle, bigStyle} {
				if missing, total := missingGlyphs(noto, n.text, st); missing > 0 || total == 0 {
					t.Errorf("%q at %dpx: %d of %d glyphs are missing-glyph boxes", n.text, st.size, missing, total)
				}
			}
			// The name plate draws it: text pixels in the plate.
			img := noto.namePlate(media.Scene{Names: [2]string{n.text, "Bob"}}, 0)
			if inked := countColor(img, white); inked < 50 {
				t.Errorf("%q: the name plate has %d text pixels", n.text, inked)
			}
		})
	}
	// The check itself: with Go's fonts it finds boxes in every name
	// but the Greek and Cyrillic one (which they draw), and the Latin
	// one with marks (they lack the dot below of ọ).
	for _, n := range names {
		missing, _ := missingGlyphs(goFonts, n.text, nameStyle)
		switch n.name {
		case "Greek and Cyrillic":
			if missing > 0 {
				t.Errorf("Go's fonts: %q has %d missing glyphs", n.text, missing)
			}
		default:
			if missing == 0 {
				t.Errorf("Go's fonts: no missing glyph found in %q", n.text)
			}
		}
	}
}

// countColor counts the pixels of img of exactly c.
func countColor(img *image.RGBA, c interface{ RGBA() (r, g, b, a uint32) }) int {
	n := 0
	cr, cg, cb, ca := c.RGBA()
	b := img.Bounds()
	for y := b.Min.Y; y < b.Max.Y; y++ {
		for x := b.Min.X; x < b.Max.X; x++ {
			if r, g, bl, a := img.At(x, y).RGBA(); r == cr && g == cg && bl == cb && a == ca {
				n++
			}
		}
	}
	return n
}

// visualGlyphs are the glyphs of a line left to right.
func visualGlyphs(l line) (gids []font.GID, clusters []int) {
	for _, run := range l.runs {
		for _, g := range run.Glyphs {
			gids = append(gids, g.GlyphID)
			clusters = append(clusters, g.ClusterIndex)
		}
	}
	return gids, clusters
}

// TestRightToLeftTextInOrderAndJoined compares the shaped glyphs, left
// to right, with sequences known independently of the shaper: Hebrew
// letters reversed, and Arabic letters reversed in their joining forms,
// which Noto Sans Arabic also maps from Unicode's presentation forms
// (محمد: meem initial, hah medial, meem medial, dal final). Runs of
// mixed text come in the order of the bidi algorithm.
func TestRightToLeftTextInOrderAndJoined(t *testing.T) {
	r := newRenderer(t)
	nominal := func(face *font.Face, text string) []font.GID {
		var gids []font.GID
		for _, c := range text {
			g, ok := face.NominalGlyph(c)
			if !ok {
				t.Fatalf("%s has no %U", face.Describe().Family, c)
			}
			gids = append(gids, g)
		}
		return gids
	}
	hebrew, arabic := r.fonts.hebrew.face(true), r.fonts.arabic.face(true)
	for _, tc := range []struct {
		name, text string
		want       []font.GID
	}{
		{"Hebrew", "שלום", nominal(hebrew, "םולש")},
		{"Arabic, joined", "محمد", nominal(arabic, "\uFEAA\uFEE4\uFEA4\uFEE3")},
		// Alef does not join to the next letter: reh and the last alef
		// stand alone (their nominal glyphs).
		{"Arabic, a letter that does not join to the next", "سارا", nominal(arabic, "\u0627\u0631\uFE8E\uFEB3")},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, _ := visualGlyphs(r.sh.shape(clean(tc.text), nameStyle))
			if !slices.Equal(got, tc.want) {
				t.Errorf("%q: glyphs %v, want %v", tc.text, got, tc.want)
			}
		})
	}
	// Mixed text: the characters each glyph comes from, left to right.
	for _, tc := range []struct {
		name, text string
		want       []int
	}{
		{"Latin, then Hebrew", "Ann & שלום", []int{0, 1, 2, 3, 4, 5, 9, 8, 7, 6}},
		{"Hebrew, then Latin", "שלום Ann", []int{5, 6, 7, 4, 3, 2, 1, 0}},
		{"a number after Hebrew in Latin", "DJ שלום 2", []int{0, 1, 2, 8, 7, 6, 5, 4, 3}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, got := visualGlyphs(r.sh.shape(clean(tc.text), nameStyle)); !slices.Equal(got, tc.want) {
				t.Errorf("%q: characters %v left to right, want %v", tc.text, got, tc.want)
			}
		})
	}
}

// TestHanTakesTheFormsOfItsLanguage: the same character in Chinese and
// in Japanese text is drawn with different glyphs (Noto Sans CJK's
// language forms), Korean text gets the Korean ones.
func TestHanTakesTheFormsOfItsLanguage(t *testing.T) {
	r := newRenderer(t)
	first := func(text string) font.GID {
		gids, _ := visualGlyphs(r.sh.shape([]rune(text), nameStyle))
		return gids[0]
	}
	for _, tc := range []struct {
		name, text string
		lang       string
	}{
		{"Han alone is Chinese", "骨王", "zh-hans"},
		{"with kana, Japanese", "骨さ", "ja"},
		{"with Hangul, Korean", "骨한", "ko"},
	} {
		if got := cjkLanguage([]rune(tc.text)); string(got) != tc.lang {
			t.Errorf("%s: %q is %q", tc.name, tc.text, got)
		}
	}
	if zh, ja := first("骨王"), first("骨さ"); zh == ja {
		t.Errorf("骨 has glyph %d in Chinese and in Japanese", zh)
	}
}

// TestFitCutsBetweenGraphemes: long names are cut with an ellipsis to
// the width, never inside a grapheme, and short ones are left whole.
func TestFitCutsBetweenGraphemes(t *testing.T) {
	r := newRenderer(t)
	for _, tc := range []struct {
		name, text string
		want       []int
	}{
		{"Latin", "Ann", []int{1, 2}},
		{"a mark", "Zoe\u0301y", []int{1, 2, 4}},
		{"an emoji sequence", "a👨‍👩‍👧b", []int{1, 6}},
		{"a skin tone", "👋🏽!", []int{2}},
		{"flags", "🇰🇷🇯🇵", []int{2}},
		{"Hangul jamo", "\u1100\u1161\u11A8가", []int{3}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := r.sh.cuts([]rune(tc.text)); !slices.Equal(got, tc.want) {
				t.Errorf("%q: cuts %v, want %v", tc.text, got, tc.want)
			}
		})
	}
	for _, n := range append(names, struct{ name, text string }{"long", strings.Repeat("가나다라마바사", 6)}) {
		for _, width := range []int{40, 120, 400} {
			text := clean(n.text)
			whole := r.sh.shape(text, nameStyle)
			got := r.sh.fit(text, nameStyle, width)
			switch {
			case got.width.Ceil() > width:
				t.Errorf("%q in %d px: %d px wide", n.text, width, got.width.Ceil())
			case whole.width.Ceil() <= width && got.width != whole.width:
				t.Errorf("%q fits %d px but was cut", n.text, width)
			case whole.width.Ceil() > width && len(got.runs) > 0 && !endsWithEllipsis(got):
				t.Errorf("%q cut to %d px without an ellipsis", n.text, width)
			}
			for _, run := range got.runs {
				for _, g := range run.Glyphs {
					if missingGlyph(run, g) {
						t.Errorf("%q cut to %d px has a missing glyph", n.text, width)
					}
				}
			}
		}
	}
}

// endsWithEllipsis: the text shaped ends with an ellipsis.
func endsWithEllipsis(l line) bool { return len(l.text) > 0 && l.text[len(l.text)-1] == '…' }

func TestCleanDropsFormattingAndControls(t *testing.T) {
	for _, tc := range []struct{ name, in, want string }{
		{"plain", "Ann", "Ann"},
		{"an override that reverses the name", "\u202Egnp.exe", "gnp.exe"},
		{"isolates and embeddings", "\u2067שלום\u2069 \u202Bx\u202C", "שלום x"},
		{"line breaks and tabs", "Ann\nBob\tCy", "Ann Bob Cy"},
		{"spaces at the ends", "  Ann \u3000", "Ann"},
		{"joiners and marks kept", "👨‍👩 e\u0301 \u200F", "👨‍👩 e\u0301 \u200F"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := string(clean(tc.in)); got != tc.want {
				t.Errorf("%q: %q, want %q", tc.in, got, tc.want)
			}
		})
	}
}

// FuzzText: any name draws, inside the frame, without a panic, and is
// cut to its width.
func FuzzText(f *testing.F) {
	for _, n := range names {
		f.Add(n.text)
	}
	f.Add("\u202E\u0645\u0301\u0301\u0301 \u2067x\u2069 ٣٤ 5% (a)")
	f.Add(strings.Repeat("\u0e01\u0e34\u0e49", 14))
	r := newRenderer(f)
	f.Fuzz(func(t *testing.T, name string) {
		if ti := r.text(name, nameStyle, 120); ti.width > 120 {
			t.Errorf("%q cut to 120 px is %d px", name, ti.width)
		}
		s := media.Scene{Names: [2]string{name, name}, Round: 1, Rounds: 1, Turn: 1, Finished: true, Winner: 1}
		for _, l := range r.Render(s) {
			if !l.Bounds().In(frame) {
				t.Errorf("%q: a layer at %v", name, l.Bounds())
			}
		}
	})
}
