package overlay

import (
	"image"
	"runtime"
	"strconv"
	"testing"

	"golang.org/x/image/font"
	"golang.org/x/image/font/gofont/gobold"
	"golang.org/x/image/font/opentype"
	"golang.org/x/image/math/fixed"
	"golang.org/x/image/vector"

	"github.com/singoff/singoff/media"
)

// The overlay's cost with shaping:
//
//	go test -run '^$' -bench . -benchmem ./compositor/overlay

// BenchmarkRenderScripts is a battle of a Korean and an Arabic singer
// with an emoji: the countdown and both cheer counts change at every
// render (new texts to shape); the names are drawn once.
func BenchmarkRenderScripts(b *testing.B) {
	r := newRenderer(b)
	s := media.Scene{
		Names: [2]string{"김민지 🎤", "سارا محمد"}, Round: 2, Rounds: 3, Turn: 2,
		Votes: [2]int{4, 7}, VotingOpen: true,
	}
	for i := 0; b.Loop(); i++ {
		s.Remaining, s.Cheers = i%600, [2]int{2 * i, 3 * i}
		r.Render(s)
	}
}

// BenchmarkRenderNewNames draws new names at every render: each is
// shaped, cut to its plate and drawn (a first render; rare in a battle,
// whose names stay).
func BenchmarkRenderNewNames(b *testing.B) {
	r := newRenderer(b)
	s := midTurn
	for i := 0; b.Loop(); i++ {
		n := names[i%len(names)].text + " " + strconv.Itoa(i)
		s.Names = [2]string{n, n}
		r.Render(s)
	}
}

// BenchmarkText draws one line of Latin text, uncached, the way the
// overlay drew it before shaping (x/image/font with Go Bold) and the way
// it does now (HarfBuzz shaping and a coverage rasterizer), with Go's
// fonts and with Noto's.
func BenchmarkText(b *testing.B) {
	const text = "Alexandra wins 2–1"
	b.Run("x/image/font, Go Bold", func(b *testing.B) {
		f, err := opentype.Parse(gobold.TTF)
		if err != nil {
			b.Fatal(err)
		}
		face, err := opentype.NewFace(f, &opentype.FaceOptions{Size: 52, DPI: 72, Hinting: font.HintingFull})
		if err != nil {
			b.Fatal(err)
		}
		dst := image.NewRGBA(image.Rect(0, 0, 600, 80))
		for b.Loop() {
			d := font.Drawer{Dst: dst, Src: image.White, Face: face, Dot: fixed.P(0, 60)}
			d.DrawString(text)
		}
	})
	for _, fonts := range []struct {
		name string
		r    *Renderer
	}{{"shaped, Go Bold", goFontsRenderer(b)}, {"shaped, Noto Sans Bold", newRenderer(b)}} {
		b.Run(fonts.name, func(b *testing.B) {
			dst := image.NewRGBA(image.Rect(0, 0, 600, 80))
			var z vector.Rasterizer
			for b.Loop() {
				rasterize(fonts.r.sh.shape(clean(text), bigStyle), &z).draw(dst, 0, 60, white)
			}
		})
	}
}

// BenchmarkLoadFonts loads Debian's Noto fonts, as a server does once
// at start-up, and reports the heap they take.
func BenchmarkLoadFonts(b *testing.B) {
	var before, after runtime.MemStats
	var r *Renderer
	for b.Loop() {
		runtime.GC()
		runtime.ReadMemStats(&before)
		r = newRenderer(b)
		runtime.GC()
		runtime.ReadMemStats(&after)
	}
	runtime.KeepAlive(r)
	b.ReportMetric(float64(after.HeapAlloc-before.HeapAlloc)/(1<<20), "heap-MB")
}
