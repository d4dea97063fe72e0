package overlay

import (
	"bytes"
	"image"
	"image/color"
	"image/draw"
	"image/png"
	"math"
	"os"
	"path/filepath"
	"testing"

	"github.com/singoff/singoff/media"
)

var frame = image.Rect(0, 0, media.ProgramWidth, media.ProgramHeight)

func newRenderer(t testing.TB) *Renderer {
	t.Helper()
	r, err := NewRenderer()
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// midTurn is a typical state: round 2 of 3, Bob singing, votes coming in.
var midTurn = media.Scene{
	Names: [2]string{"Ann", "Bob"}, Round: 2, Rounds: 3, Turn: 2, Remaining: 83,
	Votes: [2]int{4, 7}, VotingOpen: true,
}

// flatten draws the layers over a transparent program-sized image.
func flatten(layers []*image.RGBA) *image.RGBA {
	out := image.NewRGBA(frame)
	for _, l := range layers {
		draw.Draw(out, l.Bounds(), l, l.Bounds().Min, draw.Over)
	}
	return out
}

func TestLayersAreSmallVisibleAndInsideTheFrame(t *testing.T) {
	r := newRenderer(t)
	for name, s := range map[string]media.Scene{
		"before the start": {Names: [2]string{"Ann", "Bob"}, Rounds: 3},
		"mid turn":         midTurn,
		"between turns":    {Names: [2]string{"Ann", "Bob"}, Round: 1, Rounds: 3, VotingOpen: true},
		"ended":            {Names: [2]string{"Ann", "Bob"}, Round: 3, Rounds: 3, Finished: true, Winner: 1, Score: [2]int{2, 1}},
		"no names, long":   {Names: [2]string{"", string(bytes.Repeat([]byte("W"), 40))}, Round: 1, Rounds: 9, Turn: 1, Remaining: 600},
	} {
		t.Run(name, func(t *testing.T) {
			layers := r.Render(s)
			if len(layers) == 0 {
				t.Fatal("no layers")
			}
			area := 0
			for i, l := range layers {
				b := l.Bounds()
				if b.Empty() || !b.In(frame) {
					t.Errorf("layer %d at %v, outside %v", i, b, frame)
				}
				area += b.Dx() * b.Dy()
				visible := false
				for y := b.Min.Y; y < b.Max.Y && !visible; y++ {
					for x := b.Min.X; x < b.Max.X; x++ {
						if l.RGBAAt(x, y).A != 0 {
							visible = true
							break
						}
					}
				}
				if !visible {
					t.Errorf("layer %d at %v is empty", i, b)
				}
			}
			// Small: most of the picture stays the singers'.
			if area > media.ProgramWidth*media.ProgramHeight/5 {
				t.Errorf("layers cover %d pixels", area)
			}
			if os.Getenv("OVERLAY_PNG") != "" {
				writePNG(t, filepath.Join(os.Getenv("OVERLAY_PNG"), name+".png"), flatten(layers))
			}
		})
	}
}

// writePNG saves the overlay over grey, to look at:
// OVERLAY_PNG=/tmp go test -run TestLayers ./overlay
func writePNG(t *testing.T, path string, ov *image.RGBA) {
	t.Helper()
	img := image.NewRGBA(frame)
	draw.Draw(img, frame, image.NewUniform(color.RGBA{70, 90, 70, 255}), image.Point{}, draw.Src)
	draw.Draw(img, frame, ov, image.Point{}, draw.Over)
	var buf bytes.Buffer
	if err := png.Encode(&buf, img); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, buf.Bytes(), 0o600); err != nil {
		t.Fatal(err)
	}
}

func TestEveryChangeShowsAndSameStateSamePixels(t *testing.T) {
	r := newRenderer(t)
	base := flatten(r.Render(midTurn))
	if again := flatten(r.Render(midTurn)); !bytes.Equal(again.Pix, base.Pix) {
		t.Fatal("the same state drew different pixels")
	}
	for name, edit := range map[string]func(*media.Scene){
		"name":        func(s *media.Scene) { s.Names[0] = "Anna" },
		"round":       func(s *media.Scene) { s.Round = 3 },
		"rounds":      func(s *media.Scene) { s.Rounds = 5 },
		"countdown":   func(s *media.Scene) { s.Remaining = 82 },
		"turn":        func(s *media.Scene) { s.Turn = 1 },
		"no turn":     func(s *media.Scene) { s.Turn = 0 },
		"votes 1":     func(s *media.Scene) { s.Votes[0]++ },
		"votes 2":     func(s *media.Scene) { s.Votes[1]++ },
		"voting shut": func(s *media.Scene) { s.VotingOpen = false },
		"result":      func(s *media.Scene) { s.Finished, s.Winner = true, 2 },
		"draw":        func(s *media.Scene) { s.Finished, s.Winner = true, 0 },
	} {
		s := midTurn
		edit(&s)
		if got := flatten(r.Render(s)); bytes.Equal(got.Pix, base.Pix) {
			t.Errorf("%s: no pixel changed", name)
		}
	}
	// Results differ by who won and by the score.
	end := midTurn
	end.Turn, end.Finished, end.Winner, end.Score = 0, true, 1, [2]int{2, 1}
	results := map[string]bool{}
	for _, e := range []func(*media.Scene){
		func(*media.Scene) {},
		func(s *media.Scene) { s.Winner = 2; s.Score = [2]int{1, 2} },
		func(s *media.Scene) { s.Score = [2]int{2, 0} },
		func(s *media.Scene) { s.Winner = 0; s.Score = [2]int{1, 1} },
	} {
		s := end
		e(&s)
		results[string(flatten(r.Render(s)).Pix)] = true
	}
	if len(results) != 4 {
		t.Errorf("4 results drew %d different pictures", len(results))
	}
}

func TestResultText(t *testing.T) {
	for _, tc := range []struct {
		s    media.Scene
		want string
	}{
		{media.Scene{Names: [2]string{"Ann", "Bob"}, Finished: true, Winner: 1, Score: [2]int{2, 1}}, "Ann wins 2–1"},
		{media.Scene{Names: [2]string{"Ann", "Bob"}, Finished: true, Winner: 2, Score: [2]int{1, 2}}, "Bob wins 2–1"},
		{media.Scene{Names: [2]string{"Ann", "Bob"}, Finished: true, Winner: 2}, "Bob wins"},
		{media.Scene{Names: [2]string{"Ann", "Bob"}, Finished: true, Winner: 0, Score: [2]int{1, 1}}, "Draw"},
		{media.Scene{Finished: true, Winner: 1}, "Singer 1 wins"},
	} {
		if got := result(tc.s); got != tc.want {
			t.Errorf("%+v: %q, want %q", tc.s, got, tc.want)
		}
	}
}

// TestVoteBarSplitsByShare finds the bar's colours along its middle row.
func TestVoteBarSplitsByShare(t *testing.T) {
	r := newRenderer(t)
	share := func(votes [2]int) float64 {
		s := midTurn
		s.Votes = votes
		img := flatten(r.Render(s))
		y := voteY + voteHeight/2
		x0 := (media.ProgramWidth - voteBarWidth) / 2
		n1 := 0
		for x := x0; x < x0+voteBarWidth; x++ {
			if img.RGBAAt(x, y) == slotColors[0] {
				n1++
			}
		}
		return float64(n1) / voteBarWidth
	}
	for _, tc := range []struct {
		votes [2]int
		want  float64
	}{
		{[2]int{1, 0}, 1}, {[2]int{0, 3}, 0}, {[2]int{1, 3}, 0.25}, {[2]int{0, 0}, 0},
	} {
		if got := share(tc.votes); math.Abs(got-tc.want) > 0.01 {
			t.Errorf("votes %v: slot 1 has %.3f of the bar, want %.2f", tc.votes, got, tc.want)
		}
	}
}

func TestGains(t *testing.T) {
	for _, tc := range []struct {
		turn        int
		left, right float32
	}{{0, 1, 1}, {1, 1, 0.355}, {2, 0.355, 1}} {
		l, r := Gains(media.Scene{Turn: tc.turn})
		if math.Abs(float64(l-tc.left)) > 0.001 || math.Abs(float64(r-tc.right)) > 0.001 {
			t.Errorf("turn %d: gains %v, %v", tc.turn, l, r)
		}
	}
	if db := 20 * math.Log10(GainOffTurn); math.Abs(db+9) > 0.001 {
		t.Errorf("off-turn gain is %.3f dB", db)
	}
}

func BenchmarkRender(b *testing.B) {
	r := newRenderer(b)
	s := midTurn
	for i := 0; b.Loop(); i++ {
		s.Remaining = i % 90
		r.Render(s)
	}
}
