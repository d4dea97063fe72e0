package overlay

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/singoff/singoff/media"
)

// fontsDir makes a fonts dir holding links to the named files of
// Debian's Noto dirs, and files of the given contents.
func fontsDir(t *testing.T, links []string, files map[string]string) string {
	t.Helper()
	dir := t.TempDir()
	for _, name := range links {
		found := ""
		for _, d := range DefaultFontDirs() {
			if _, err := os.Stat(filepath.Join(d, name)); err == nil {
				found = filepath.Join(d, name)
				break
			}
		}
		if found == "" {
			t.Fatalf("%s is not installed (make deps)", name)
		}
		if err := os.Symlink(found, filepath.Join(dir, name)); err != nil {
			t.Fatal(err)
		}
	}
	for name, content := range files {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

func TestFontsFoundAndWhatTheyDraw(t *testing.T) {
	all := []string{"Latin", "Greek", "Cyrillic", "Han", "Hiragana", "Katakana", "Hangul", "Arabic", "Hebrew", "Emoji"}
	for _, tc := range []struct {
		name    string
		dirs    func(t *testing.T) []string
		missing []string
		files   []string // base names among the files in use
	}{
		{"Debian's Noto", func(*testing.T) []string { return DefaultFontDirs() }, nil,
			[]string{"NotoSans-Bold.ttf", "NotoSansCJK-Bold.ttc", "NotoSansArabic-Bold.ttf", "NotoSansHebrew-Bold.ttf", "NotoColorEmoji.ttf"}},
		{"no fonts: Go's", func(*testing.T) []string { return nil },
			[]string{"Han", "Hiragana", "Katakana", "Hangul", "Arabic", "Hebrew", "Emoji"}, []string{"Go fonts (built in)"}},
		{"an empty dir: Go's", func(t *testing.T) []string { return []string{t.TempDir()} },
			[]string{"Han", "Hiragana", "Katakana", "Hangul", "Arabic", "Hebrew", "Emoji"}, []string{"Go fonts (built in)"}},
		{"Latin and Hebrew only", func(t *testing.T) []string {
			return []string{fontsDir(t, []string{"NotoSans-Regular.ttf", "NotoSans-Bold.ttf", "NotoSansHebrew-Bold.ttf"}, nil)}
		}, []string{"Han", "Hiragana", "Katakana", "Hangul", "Arabic", "Emoji"},
			[]string{"NotoSans-Regular.ttf", "NotoSans-Bold.ttf", "NotoSansHebrew-Bold.ttf"}},
		{"the bold weight before the regular, in any dir", func(t *testing.T) []string {
			return []string{fontsDir(t, []string{"NotoSansArabic-Regular.ttf"}, nil), fontsDir(t, []string{"NotoSansArabic-Bold.ttf"}, nil)}
		}, []string{"Han", "Hiragana", "Katakana", "Hangul", "Hebrew", "Emoji"}, []string{"NotoSansArabic-Bold.ttf"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r, err := NewRenderer(tc.dirs(t)...)
			if err != nil {
				t.Fatal(err)
			}
			c := r.Coverage()
			if !slices.Equal(c.Missing, tc.missing) {
				t.Errorf("missing %v, want %v", c.Missing, tc.missing)
			}
			var drawn []string
			for _, s := range all {
				if !slices.Contains(tc.missing, s) {
					drawn = append(drawn, s)
				}
			}
			if !slices.Equal(c.Scripts, drawn) {
				t.Errorf("draws %v, want %v", c.Scripts, drawn)
			}
			var bases []string
			for _, f := range c.Files {
				bases = append(bases, filepath.Base(f))
			}
			for _, f := range tc.files {
				if !slices.Contains(bases, f) {
					t.Errorf("files %v, want %s among them", c.Files, f)
				}
			}
			// It draws whatever it has.
			if layers := r.Render(media.Scene{Names: [2]string{"김민지", "سارا"}, Round: 1, Rounds: 3, Turn: 1}); len(layers) == 0 {
				t.Error("no layers")
			}
		})
	}
	// The first dir holding a file wins: here a Hebrew font under the
	// Latin one's name.
	first := t.TempDir()
	if err := os.Symlink(filepath.Join(fontsDir(t, []string{"NotoSansHebrew-Bold.ttf"}, nil), "NotoSansHebrew-Bold.ttf"),
		filepath.Join(first, "NotoSans-Bold.ttf")); err != nil {
		t.Fatal(err)
	}
	r, err := NewRenderer(first, fontsDir(t, []string{"NotoSans-Bold.ttf"}, nil))
	if err != nil {
		t.Fatal(err)
	}
	if family := r.fonts.latin.face(true).Describe().Family; family != "Noto Sans Hebrew" {
		t.Errorf("Latin from %q", family)
	}

	// Debian's Noto has fonts for more scripts, loaded when needed.
	r = newRenderer(t)
	if c := r.Coverage(); !slices.Contains(c.OnDemand, "Thai") || !slices.Contains(c.OnDemand, "Deva") {
		t.Errorf("on demand: %v", c.OnDemand)
	}
	if missing, total := missingGlyphs(r, "สมชาย नमस्ते", nameStyle); missing > 0 || total == 0 {
		t.Errorf("Thai and Devanagari: %d of %d glyphs missing", missing, total)
	}
}

func TestFontsErrors(t *testing.T) {
	for _, tc := range []struct {
		name string
		dirs func(t *testing.T) []string
		want string
	}{
		{"a dir that is not there", func(t *testing.T) []string { return []string{filepath.Join(t.TempDir(), "nope")} }, "fonts dir"},
		{"a font that is not one", func(t *testing.T) []string {
			return []string{fontsDir(t, nil, map[string]string{"NotoSansArabic-Bold.ttf": "not a font"})}
		}, "NotoSansArabic-Bold.ttf"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := NewRenderer(tc.dirs(t)...)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %v, want one about %q", err, tc.want)
			}
		})
	}
	// A font of another script that does not parse leaves that script
	// to the fallbacks, drawn as boxes; the rest draws.
	dir := fontsDir(t, []string{"NotoSans-Bold.ttf"}, map[string]string{"NotoSansThai-Bold.ttf": "not a font"})
	r, err := NewRenderer(dir)
	if err != nil {
		t.Fatal(err)
	}
	if missing, _ := missingGlyphs(r, "สมชาย", nameStyle); missing == 0 {
		t.Error("Thai drawn without its font")
	}
	if missing, _ := missingGlyphs(r, "Ann", nameStyle); missing > 0 {
		t.Error("Latin has missing glyphs")
	}
}
