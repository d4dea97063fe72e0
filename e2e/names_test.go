package e2e

import (
	"context"
	"image"
	"image/color"
	"image/draw"
	"math"
	"net/http"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/singoff/singoff/compositor/overlay"
	"github.com/singoff/singoff/media"
)

// The name plates' strip of the program: y 612–656, the whole width.
const namesY, namesHeight = 612, 44

// namesStrip decodes the newest live frame's name plates as RGB.
func namesStrip(t testing.TB, live string) []byte {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	w := media.ProgramWidth
	out, err := exec.CommandContext(ctx, "ffmpeg", "-v", "error", "-live_start_index", "-1", "-i", live,
		"-frames:v", "1", "-vf", "crop=1280:44:0:612", "-f", "rawvideo", "-pix_fmt", "rgb24", "-").Output()
	if err != nil || len(out) != w*namesHeight*3 {
		t.Fatalf("grabbing the name plates: %v (%d bytes)", err, len(out))
	}
	return out
}

// expectedStrip is the name plates r draws for names, over the black
// below the singers' pictures.
func expectedStrip(r *overlay.Renderer, names [2]string) *image.RGBA {
	img := image.NewRGBA(image.Rect(0, 0, media.ProgramWidth, media.ProgramHeight))
	draw.Draw(img, img.Rect, image.NewUniform(color.Black), image.Point{}, draw.Src)
	for _, l := range r.Render(media.Scene{Names: names, Rounds: 1}) {
		draw.Draw(img, l.Rect, l, l.Rect.Min, draw.Over)
	}
	return img
}

// lumaDiff is the mean absolute luma difference of a decoded strip and
// the strip of an expected program picture, where that and another
// expected picture differ.
func lumaDiff(strip []byte, want, other *image.RGBA) float64 {
	luma := func(r, g, b uint8) float64 { return 0.299*float64(r) + 0.587*float64(g) + 0.114*float64(b) }
	sum, n := 0.0, 0
	for y := range namesHeight {
		for x := range media.ProgramWidth {
			c := want.RGBAAt(x, namesY+y)
			if c == other.RGBAAt(x, namesY+y) {
				continue
			}
			i := (y*media.ProgramWidth + x) * 3
			sum += math.Abs(luma(strip[i], strip[i+1], strip[i+2]) - luma(c.R, c.G, c.B))
			n++
		}
	}
	return sum / float64(max(n, 1))
}

// TestProgramDrawsNamesInEveryScript: the binary draws its singers'
// names, in Hangul with an emoji and in Arabic, into the live program
// with Debian's Noto fonts (its default): the decoded name plates match
// what the overlay draws with them, not what Go's fonts draw (boxes).
// With --fonts-dir naming a dir without fonts it draws with Go's; a
// --fonts-dir that is not there stops it at start-up.
func TestProgramDrawsNamesInEveryScript(t *testing.T) {
	names := [2]string{"김민지 🎤", "سارا محمد"}
	noto, err := overlay.NewRenderer(overlay.DefaultFontDirs()...)
	if err != nil {
		t.Fatal(err)
	}
	if missing := noto.Coverage().Missing; len(missing) > 0 {
		t.Fatalf("no fonts for %v (make deps installs them)", missing)
	}
	goFonts, err := overlay.NewRenderer()
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name        string
		args        []string
		want, other *overlay.Renderer
	}{
		{"Debian's Noto, by default", nil, noto, goFonts},
		{"a fonts dir without fonts: Go's", []string{"--fonts-dir", t.TempDir()}, goFonts, noto},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := startServer(t, false, tc.args...)
			var b battle
			s.call(t, http.MethodPost, "/api/battles", "", map[string]any{
				"title": "이름 اسم", "singers": names, "rounds": 1, "turn_seconds": 30,
			}, http.StatusCreated, &b)
			s.startBot(t, b, 1)
			s.startBot(t, b, 2)
			live := s.liveProgram(t, b.ID)
			time.Sleep(2 * time.Second) // past the first parts
			strip := namesStrip(t, live)
			drawn, drawnOther := expectedStrip(tc.want, names), expectedStrip(tc.other, names)
			want, other := lumaDiff(strip, drawn, drawnOther), lumaDiff(strip, drawnOther, drawn)
			t.Logf("where the two fonts' drawings differ, the decoded name plates are %.1f (luma) from the expected one, %.1f from the other", want, other)
			if want > 20 || want > other/3 {
				t.Errorf("the decoded name plates differ by %.1f (luma) from the expected drawing, %.1f from the other fonts'", want, other)
			}
		})
	}
	t.Run("a fonts dir that is not there", func(t *testing.T) {
		needBinary(t)
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		out, err := exec.CommandContext(ctx, binary, "serve", "--listen", "127.0.0.1:0", "--data-dir", t.TempDir(),
			"--webrtc-port", "0", "--loopback", "--fonts-dir", filepath.Join(t.TempDir(), "nope")).CombinedOutput()
		if err == nil || ctx.Err() != nil || !strings.Contains(string(out), "fonts dir") {
			t.Errorf("serve with a missing fonts dir: %v, %s", err, out)
		}
	})
}
