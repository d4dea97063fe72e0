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
	"strings"
	"sync"
	"testing"

	"github.com/singoff/singoff/media"
)

var frame = image.Rect(0, 0, media.ProgramWidth, media.ProgramHeight)

// newRenderer draws with the Noto fonts Debian installs, as a server
// does; the tests need them (make deps installs them).
func newRenderer(t testing.TB) *Renderer {
	t.Helper()
	r, err := NewRenderer(DefaultFontDirs()...)
	if err != nil {
		t.Fatal(err)
	}
	if c := r.Coverage(); len(c.Missing) > 0 {
		t.Fatalf("no fonts for %v: install fonts-noto-core, fonts-noto-cjk and fonts-noto-color-emoji (make deps)", c.Missing)
	}
	return r
}

// midTurn is a typical state: round 2 of 3, Bob singing, votes and
// cheers coming in.
var midTurn = media.Scene{
	Names: [2]string{"Ann", "Bob"}, Round: 2, Rounds: 3, Turn: 2, Remaining: 83,
	Votes: [2]int{4, 7}, VotingOpen: true, Cheers: [2]int{25, 31},
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
		"before the start":  {Names: [2]string{"Ann", "Bob"}, Rounds: 3},
		"mid turn":          midTurn,
		"between turns":     {Names: [2]string{"Ann", "Bob"}, Round: 1, Rounds: 3, VotingOpen: true},
		"ended":             {Names: [2]string{"Ann", "Bob"}, Round: 3, Rounds: 3, Finished: true, Winner: 1, Score: [2]int{2, 1}},
		"no names, long":    {Names: [2]string{"", string(bytes.Repeat([]byte("W"), 40))}, Round: 1, Rounds: 9, Turn: 1, Remaining: 600},
		"cheers":            {Names: [2]string{"Ann", "Bob"}, Round: 1, Rounds: 3, Turn: 2, Remaining: 45, Votes: [2]int{3, 1}, VotingOpen: true, Cheers: [2]int{1234, 87}},
		"Hangul and Arabic": {Names: [2]string{"김민지 🎤", "سارا محمد"}, Round: 2, Rounds: 3, Turn: 2, Remaining: 8, Votes: [2]int{4, 7}, VotingOpen: true, Cheers: [2]int{40, 12}},
		"kanji and Hebrew":  {Names: [2]string{"山田さくら", "DJ שלום 2"}, Round: 1, Rounds: 3, VotingOpen: true},
		"an Arabic winner":  {Names: [2]string{"محمد", "王芳"}, Round: 3, Rounds: 3, Finished: true, Winner: 1, Score: [2]int{2, 1}, Cheers: [2]int{1_500_000, 999}},
		"long names":        {Names: [2]string{strings.Repeat("가나다라마바사", 6), strings.Repeat("جدا ", 20)}, Round: 3, Rounds: 3, Finished: true, Winner: 2, Score: [2]int{1, 2}},
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
		"cheers 1":    func(s *media.Scene) { s.Cheers[0]++ },
		"cheers 2":    func(s *media.Scene) { s.Cheers[1]++ },
		"name script": func(s *media.Scene) { s.Names[1] = "보브" },
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
		name       string
		s          media.Scene
		who, saysT string
	}{
		{"slot 1 won", media.Scene{Names: [2]string{"Ann", "Bob"}, Finished: true, Winner: 1, Score: [2]int{2, 1}}, "Ann", "wins 2–1"},
		{"slot 2 won", media.Scene{Names: [2]string{"Ann", "Bob"}, Finished: true, Winner: 2, Score: [2]int{1, 2}}, "Bob", "wins 2–1"},
		{"no score", media.Scene{Names: [2]string{"Ann", "Bob"}, Finished: true, Winner: 2}, "Bob", "wins"},
		{"draw", media.Scene{Names: [2]string{"Ann", "Bob"}, Finished: true, Winner: 0, Score: [2]int{1, 1}}, "", "Draw"},
		{"no names", media.Scene{Finished: true, Winner: 1}, "Singer 1", "wins"},
		{"a name of format characters only", media.Scene{Names: [2]string{"\u202e\u2066", "Bob"}, Finished: true, Winner: 1}, "Singer 1", "wins"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if who, says := result(tc.s); who != tc.who || says != tc.saysT {
				t.Errorf("%q %q, want %q %q", who, says, tc.who, tc.saysT)
			}
		})
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

// meterRect is side i's cheer meter.
func meterRect(i int) image.Rectangle {
	x := cheerX
	if i == 1 {
		x = media.ProgramWidth - cheerX - cheerWidth
	}
	return image.Rect(x, cheerY, x+cheerWidth, cheerY+cheerHeight)
}

// TestCheerMeterShowsEachSide finds each meter's bar along its middle
// row: as long as the side's cheers against the leader's. The meters
// show once the battle starts, or someone cheers; a cheer changes its
// side's meter and nothing else.
func TestCheerMeterShowsEachSide(t *testing.T) {
	r := newRenderer(t)
	share := func(img *image.RGBA, i int) float64 {
		m := meterRect(i)
		y := m.Min.Y + cheerRow + cheerBarHeight/2
		x0, x1 := m.Min.X+cheerPad, m.Max.X-cheerPad
		n := 0
		for x := x0; x < x1; x++ {
			if img.RGBAAt(x, y) == slotColors[i] {
				n++
			}
		}
		return float64(n) / float64(x1-x0)
	}
	for _, tc := range []struct {
		name   string
		s      media.Scene
		shown  bool
		shares [2]float64
	}{
		{"before the start, no cheers", media.Scene{Rounds: 3}, false, [2]float64{}},
		{"before the start, a cheer", media.Scene{Rounds: 3, Cheers: [2]int{0, 1}}, true, [2]float64{0, 1}},
		{"the battle on, no cheers", media.Scene{Round: 1, Rounds: 3}, true, [2]float64{}},
		{"slot 1 leads", media.Scene{Round: 1, Rounds: 3, Cheers: [2]int{30, 10}}, true, [2]float64{1, 1.0 / 3}},
		{"slot 2 leads", media.Scene{Round: 2, Rounds: 3, Turn: 1, Cheers: [2]int{1, 4}}, true, [2]float64{0.25, 1}},
		{"ended, a tie", media.Scene{Round: 3, Rounds: 3, Finished: true, Winner: 1, Cheers: [2]int{7, 7}}, true, [2]float64{1, 1}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			img := flatten(r.Render(tc.s))
			for i := range 2 {
				m := meterRect(i)
				if shown := img.RGBAAt(m.Min.X+1, m.Min.Y+1).A != 0; shown != tc.shown {
					t.Fatalf("meter %d shown: %v", i+1, shown)
				}
				if got := share(img, i); math.Abs(got-tc.shares[i]) > 0.01 {
					t.Errorf("meter %d: bar %.3f full, want %.3f", i+1, got, tc.shares[i])
				}
			}
		})
	}
	// One more cheer for slot 1, behind: only its meter changes.
	s := media.Scene{Round: 1, Rounds: 3, Cheers: [2]int{5, 9}}
	before := flatten(r.Render(s))
	s.Cheers[0]++
	after := flatten(r.Render(s))
	changed := 0
	for y := frame.Min.Y; y < frame.Max.Y; y++ {
		for x := frame.Min.X; x < frame.Max.X; x++ {
			if before.RGBAAt(x, y) != after.RGBAAt(x, y) {
				changed++
				if !image.Pt(x, y).In(meterRect(0)) {
					t.Fatalf("a cheer for slot 1 changed %d,%d", x, y)
				}
			}
		}
	}
	if changed < 50 {
		t.Errorf("a cheer changed %d pixels", changed)
	}
}

// TestConcurrentRenders: programs render at once from their own
// goroutines with one renderer (run with -race).
func TestConcurrentRenders(t *testing.T) {
	r := newRenderer(t)
	var wg sync.WaitGroup
	for g := range 4 {
		wg.Go(func() {
			s := midTurn
			for i := range 20 {
				s.Names[0] = names[(g+i)%len(names)].text
				s.Cheers[1] = i
				r.Render(s)
				r.Coverage()
			}
		})
	}
	wg.Wait()
}

func TestFormatCount(t *testing.T) {
	for _, tc := range []struct {
		n    int
		want string
	}{{-1, "0"}, {0, "0"}, {999, "999"}, {1000, "1,000"}, {12345, "12,345"}, {999_999, "999,999"}, {1_250_000, "1.2M"}, {34_000_000, "34M"}} {
		if got := formatCount(tc.n); got != tc.want {
			t.Errorf("%d: %q, want %q", tc.n, got, tc.want)
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
