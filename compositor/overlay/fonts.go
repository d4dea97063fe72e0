package overlay

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"slices"

	"github.com/go-text/typesetting/font"
	ot "github.com/go-text/typesetting/font/opentype"
	"github.com/go-text/typesetting/language"
	"golang.org/x/image/font/gofont/gobold"
	"golang.org/x/image/font/gofont/goregular"
)

// DefaultFontDirs are those of the dirs where Debian's fonts-noto-core,
// fonts-noto-cjk and fonts-noto-color-emoji put their fonts that exist.
func DefaultFontDirs() []string {
	var dirs []string
	for _, dir := range []string{"/usr/share/fonts/opentype/noto", "/usr/share/fonts/truetype/noto"} {
		if st, err := os.Stat(dir); err == nil && st.IsDir() {
			dirs = append(dirs, dir)
		}
	}
	return dirs
}

// A family is one typeface in the two weights the overlay draws: user
// text is bold, so only Latin (the overlay's own words) needs a regular
// weight; a missing weight is stood in for by the other.
type family struct {
	regular, bold *font.Face
	files         []string // what it was loaded from, for the log
}

// face is the family's face of the weight, or nil for an empty family.
func (f *family) face(bold bool) *font.Face {
	if f == nil {
		return nil
	}
	if bold && f.bold != nil || f.regular == nil {
		return f.bold
	}
	return f.regular
}

// fontFiles names the files of a family, by weight, each a list of
// alternatives (the first found wins). A .ttc collection gives its
// first face: for Noto Sans CJK the Japanese one, whose language
// variants (locl) serve Korean and Chinese too.
type fontFiles struct{ regular, bold []string }

// The families the overlay looks for. Latin also draws Greek and
// Cyrillic; CJK draws Han, kana, Hangul and Bopomofo. The emoji font is
// Noto Color Emoji (fonts-noto-color-emoji: colour bitmaps, scaled) or a
// monochrome outline one; the symbol fonts catch the pictographs
// without emoji presentation.
var (
	latinFiles   = fontFiles{[]string{"NotoSans-Regular.ttf", "NotoSans-Regular.otf"}, []string{"NotoSans-Bold.ttf", "NotoSans-Bold.otf"}}
	cjkFiles     = fontFiles{bold: []string{"NotoSansCJK-Bold.ttc", "NotoSansCJKjp-Bold.otf", "NotoSansCJK-Regular.ttc", "NotoSansCJKjp-Regular.otf"}}
	arabicFiles  = fontFiles{bold: []string{"NotoSansArabic-Bold.ttf", "NotoNaskhArabic-Bold.ttf", "NotoSansArabic-Regular.ttf", "NotoNaskhArabic-Regular.ttf"}}
	hebrewFiles  = fontFiles{bold: []string{"NotoSansHebrew-Bold.ttf", "NotoSansHebrew-Regular.ttf"}}
	emojiFiles   = fontFiles{bold: []string{"NotoColorEmoji.ttf", "NotoEmoji-Bold.ttf", "NotoEmoji-Regular.ttf", "Symbola.ttf", "Symbola_hint.ttf"}}
	symbolsFiles = []fontFiles{
		{bold: []string{"NotoSansSymbols-Bold.ttf", "NotoSansSymbols-Regular.ttf"}},
		{bold: []string{"NotoSansSymbols2-Regular.ttf"}},
	}
)

// otherScripts are the scripts with a Noto Sans font of their own
// (NotoSans<name>-Bold.ttf, else -Regular), loaded the first time a
// text needs one.
var otherScripts = map[language.Script]string{
	language.Adlam: "Adlam", language.Armenian: "Armenian", language.Balinese: "Balinese",
	language.Bengali: "Bengali", language.Canadian_Aboriginal: "CanadianAboriginal",
	language.Cherokee: "Cherokee", language.Devanagari: "Devanagari", language.Ethiopic: "Ethiopic",
	language.Georgian: "Georgian", language.Gujarati: "Gujarati", language.Gurmukhi: "Gurmukhi",
	language.Javanese: "Javanese", language.Kannada: "Kannada", language.Khmer: "Khmer",
	language.Lao: "Lao", language.Malayalam: "Malayalam", language.Mongolian: "Mongolian",
	language.Myanmar: "Myanmar", language.Nko: "NKo", language.Ol_Chiki: "OlChiki",
	language.Oriya: "Oriya", language.Sinhala: "Sinhala", language.Sundanese: "Sundanese",
	language.Syriac: "Syriac", language.Tamil: "Tamil", language.Telugu: "Telugu",
	language.Thaana: "Thaana", language.Thai: "Thai", language.Tifinagh: "Tifinagh",
	language.Vai: "Vai", language.Yi: "Yi",
}

// fonts are the typefaces a Renderer draws with. Not safe for
// concurrent use (go-text faces keep caches): the Renderer's lock
// guards it.
type fonts struct {
	dirs                       []string
	latin, goFonts             family // Latin is Noto Sans, or Go's fonts
	cjk, arabic, hebrew, emoji family
	symbols                    []family
	// fallback is the order every face is tried in for a character
	// its script's face lacks.
	fallback []*family
	// others are the families of otherScripts loaded so far; a failed
	// load stays an empty family.
	others map[language.Script]*family
}

// loadFonts finds the families in dirs (by file name; the first dir
// holding a file wins). Go's fonts are always there, for Latin when
// Noto Sans is not and as the last resort. Only a dir that cannot be
// read, or a font file found but unreadable, is an error.
func loadFonts(dirs []string) (*fonts, error) {
	f := &fonts{dirs: dirs, others: map[language.Script]*family{}}
	var err error
	f.goFonts.regular, err = font.ParseTTF(bytes.NewReader(goregular.TTF))
	if err != nil {
		return nil, fmt.Errorf("overlay: Go font: %w", err)
	}
	f.goFonts.bold, err = font.ParseTTF(bytes.NewReader(gobold.TTF))
	if err != nil {
		return nil, fmt.Errorf("overlay: Go font: %w", err)
	}
	for _, dir := range dirs {
		if _, err := os.ReadDir(dir); err != nil {
			return nil, fmt.Errorf("overlay: fonts dir: %w", err)
		}
	}
	for _, load := range []struct {
		into  *family
		files fontFiles
	}{
		{&f.latin, latinFiles}, {&f.cjk, cjkFiles}, {&f.arabic, arabicFiles},
		{&f.hebrew, hebrewFiles}, {&f.emoji, emojiFiles},
	} {
		if *load.into, err = f.loadFamily(load.files); err != nil {
			return nil, err
		}
	}
	for _, files := range symbolsFiles {
		fam, err := f.loadFamily(files)
		if err != nil {
			return nil, err
		}
		if fam.bold != nil {
			f.symbols = append(f.symbols, fam)
		}
	}
	if f.latin.bold == nil {
		f.latin = f.goFonts
	}
	f.fallback = []*family{&f.latin, &f.cjk, &f.arabic, &f.hebrew, &f.emoji}
	for i := range f.symbols {
		f.fallback = append(f.fallback, &f.symbols[i])
	}
	f.fallback = append(f.fallback, &f.goFonts)
	return f, nil
}

// loadFamily loads the first file found of each weight; none found is
// an empty family.
func (f *fonts) loadFamily(files fontFiles) (family, error) {
	var fam family
	for _, w := range []struct {
		into  **font.Face
		names []string
	}{{&fam.regular, files.regular}, {&fam.bold, files.bold}} {
		path := f.find(w.names)
		if path == "" {
			continue
		}
		face, err := loadFace(path)
		if err != nil {
			return family{}, err
		}
		*w.into = face
		fam.files = append(fam.files, path)
	}
	if fam.bold == nil {
		fam.bold = fam.regular
	}
	return fam, nil
}

// find is the path of the first of names found in the dirs, or "".
func (f *fonts) find(names []string) string {
	for _, name := range names {
		for _, dir := range f.dirs {
			path := filepath.Join(dir, name)
			if st, err := os.Stat(path); err == nil && st.Mode().IsRegular() {
				return path
			}
		}
	}
	return ""
}

// loadFace parses the first face of a font file or collection. The
// font's tables are read into memory; the file is closed.
func loadFace(path string) (*font.Face, error) {
	file, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("overlay: font: %w", err)
	}
	defer file.Close()
	loaders, err := ot.NewLoaders(file)
	if err != nil {
		return nil, fmt.Errorf("overlay: font %s: %w", path, err)
	}
	ft, err := font.NewFont(loaders[0])
	if err != nil {
		return nil, fmt.Errorf("overlay: font %s: %w", path, err)
	}
	return font.NewFace(ft), nil
}

// forScript is the family that draws script s, or nil.
func (f *fonts) forScript(s language.Script) *family {
	switch s {
	case language.Latin, language.Greek, language.Cyrillic:
		return &f.latin
	case language.Han, language.Hiragana, language.Katakana, language.Katakana_Or_Hiragana,
		language.Hangul, language.Bopomofo:
		return &f.cjk
	case language.Arabic:
		return &f.arabic
	case language.Hebrew:
		return &f.hebrew
	}
	name, ok := otherScripts[s]
	if !ok {
		return nil
	}
	if fam, ok := f.others[s]; ok {
		return fam
	}
	fam, err := f.loadFamily(fontFiles{bold: []string{"NotoSans" + name + "-Bold.ttf", "NotoSans" + name + "-Regular.ttf"}})
	if err != nil {
		fam = family{} // unreadable: drawn by the fallbacks, not retried
	}
	f.others[s] = &fam
	return &fam
}

// resolve picks the face that draws r, of script s, in the weight: the
// emoji font first for a character in emoji presentation, then the
// script's face, then the first face that has it; none has it: the
// Latin face, which draws its missing-glyph box.
func (f *fonts) resolve(r rune, s language.Script, emoji, bold bool) *font.Face {
	if emoji {
		if face := f.emoji.face(bold); has(face, r) {
			return face
		}
	}
	if face := f.forScript(s).face(bold); has(face, r) {
		return face
	}
	for _, fam := range f.fallback {
		if face := fam.face(bold); has(face, r) {
			return face
		}
	}
	return f.latin.face(bold)
}

func has(face *font.Face, r rune) bool {
	if face == nil {
		return false
	}
	_, ok := face.NominalGlyph(r)
	return ok
}

// Coverage says what a Renderer's fonts draw, for the log at start-up.
type Coverage struct {
	// Files are the font files in use.
	Files []string
	// Scripts are the scripts names are expected in that it draws.
	Scripts []string
	// Missing are those it cannot draw: such text shows as boxes.
	Missing []string
	// OnDemand are further scripts whose fonts were found, loaded the
	// first time a text needs them.
	OnDemand []string
}

// probes are the scripts names are expected in, each with a character
// of it.
var probes = []struct {
	script string
	r      rune
	s      language.Script
	emoji  bool
}{
	{"Latin", 'A', language.Latin, false},
	{"Greek", 'Ω', language.Greek, false},
	{"Cyrillic", 'Ж', language.Cyrillic, false},
	{"Han", '字', language.Han, false},
	{"Hiragana", 'あ', language.Hiragana, false},
	{"Katakana", 'ア', language.Katakana, false},
	{"Hangul", '한', language.Hangul, false},
	{"Arabic", 'ع', language.Arabic, false},
	{"Hebrew", 'א', language.Hebrew, false},
	{"Emoji", '😀', language.Common, true},
}

func (f *fonts) coverage() Coverage {
	var c Coverage
	for _, fam := range f.fallback {
		for _, file := range fam.files {
			if !slices.Contains(c.Files, file) {
				c.Files = append(c.Files, file)
			}
		}
	}
	if f.latin.files == nil {
		c.Files = append(c.Files, "Go fonts (built in)")
	}
	for _, p := range probes {
		if has(f.resolve(p.r, p.s, p.emoji, true), p.r) {
			c.Scripts = append(c.Scripts, p.script)
		} else {
			c.Missing = append(c.Missing, p.script)
		}
	}
	for s, name := range otherScripts {
		if f.find([]string{"NotoSans" + name + "-Bold.ttf", "NotoSans" + name + "-Regular.ttf"}) != "" {
			c.OnDemand = append(c.OnDemand, s.String())
		}
	}
	slices.Sort(c.OnDemand)
	return c
}
