package compositor

import (
	"bytes"
	"context"
	"image"
	"image/color"
	"image/draw"
	"math"
	"testing"
	"time"

	"github.com/singoff/singoff/compositor/overlay"
	"github.com/singoff/singoff/internal/mediacheck"
	"github.com/singoff/singoff/media"
)

// battleState is round 1 of 3 with Ann singing and votes coming in.
func battleState(votes [2]int) media.Scene {
	return media.Scene{
		Names: [2]string{"Ann", "Bob"}, Round: 1, Rounds: 3, Turn: 1, Remaining: 75,
		Votes: votes, VotingOpen: true,
	}
}

// flatten draws layers over a transparent program.
func flatten(layers []*image.RGBA) *image.RGBA {
	out := image.NewRGBA(image.Rect(0, 0, media.ProgramWidth, media.ProgramHeight))
	for _, l := range layers {
		draw.Draw(out, l.Rect, l, l.Rect.Min, draw.Over)
	}
	return out
}

// solid tells whether the (2r+1)² square around x, y of img is one
// opaque colour, so that a decoded picture shows that colour there.
func solid(img *image.RGBA, x, y, r int) bool {
	c := img.RGBAAt(x, y)
	if c.A != 255 {
		return false
	}
	for dy := -r; dy <= r; dy++ {
		for dx := -r; dx <= r; dx++ {
			if img.RGBAAt(x+dx, y+dy) != c {
				return false
			}
		}
	}
	return true
}

// TestOverlayOnProgram shows a vote bar at 1–0, then at 0–3, over two
// singers and checks the decoded program: the bar's colour switches,
// every layer shows where it was placed, and nothing else changes.
func TestOverlayOnProgram(t *testing.T) {
	r, err := overlay.NewRenderer()
	if err != nil {
		t.Fatal(err)
	}
	layersA, layersB := r.Render(battleState([2]int{1, 0})), r.Render(battleState([2]int{0, 3}))
	flatA, flatB := flatten(layersA), flatten(layersB)

	// A point of the bar that is all slot 1's at 1–0 and all slot 2's
	// at 0–3.
	var bar image.Point
	found := false
	for y := 0; y < media.ProgramHeight && !found; y++ {
		for x := 0; x < media.ProgramWidth; x++ {
			a, b := flatA.RGBAAt(x, y), flatB.RGBAAt(x, y)
			if solid(flatA, x, y, 6) && solid(flatB, x, y, 6) && !near(a, b, 100) {
				bar, found = image.Pt(x, y), true
				break
			}
		}
	}
	if !found {
		t.Fatal("no point of the vote bar changes colour from 1–0 to 0–3")
	}
	// Everything the overlay may touch, with room for the codec's
	// blocks around it.
	var touched []image.Rectangle
	for _, l := range append(layersA, layersB...) {
		touched = append(touched, l.Rect.Inset(-16))
	}
	untouched := func(x, y int) bool {
		for _, rect := range touched {
			if image.Pt(x, y).In(rect) {
				return false
			}
		}
		return true
	}

	before, phaseA, phaseB := overlaidProgram(t, layersA, layersB)

	wantA, wantB := flatA.RGBAAt(bar.X, bar.Y), flatB.RGBAAt(bar.X, bar.Y)
	if got := pixel(before[len(before)-1], bar.X, bar.Y); near(got, wantA, 40) || near(got, wantB, 40) {
		t.Errorf("bar point %v shows %s before any overlay", bar, describe(got))
	}
	for _, phase := range []struct {
		name   string
		frames [][]byte
		want   color.RGBA
	}{{"1–0", phaseA, wantA}, {"0–3", phaseB, wantB}} {
		for i, f := range phase.frames {
			if got := pixel(f, bar.X, bar.Y); !near(got, phase.want, 40) {
				t.Fatalf("%s, frame %d: bar point %v shows %s, want %s", phase.name, i, bar, describe(got), describe(phase.want))
			}
		}
	}

	// Every solid part of every layer shows where it was placed.
	last := phaseB[len(phaseB)-1]
	checked := 0
	for y := 0; y < media.ProgramHeight; y += 2 {
		for x := 0; x < media.ProgramWidth; x += 2 {
			if !solid(flatB, x, y, 2) {
				continue
			}
			checked++
			if got, want := pixel(last, x, y), flatB.RGBAAt(x, y); !near(got, want, 40) {
				t.Fatalf("overlay point %d,%d shows %s, want %s", x, y, describe(got), describe(want))
			}
		}
	}
	t.Logf("bar at %v; %d solid overlay points, checked", bar, checked)
	if checked < 1000 {
		t.Fatalf("only %d solid overlay points", checked)
	}

	// Points away from the overlay that hold still without it stay as
	// they were.
	ref, ref2 := before[len(before)-1], before[len(before)-11]
	still := 0
	for y := 4; y < media.ProgramHeight; y += 8 {
		for x := 4; x < media.ProgramWidth; x += 8 {
			if !untouched(x, y) || !near(pixel(ref, x, y), pixel(ref2, x, y), 8) {
				continue
			}
			still++
			for _, f := range [][]byte{phaseA[len(phaseA)/2], last} {
				if got, want := pixel(f, x, y), pixel(ref, x, y); !near(got, want, 24) {
					t.Fatalf("%d,%d away from the overlay went from %s to %s", x, y, describe(want), describe(got))
				}
			}
		}
	}
	t.Logf("%d still points away from the overlay, unchanged", still)
	if still < 10000 {
		t.Fatalf("only %d still points to compare", still)
	}
}

// TestGainsLowerOneSinger turns the right singer 9 dB down, then back.
func TestGainsLowerOneSinger(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	left, right := newTestFeed(), newTestFeed()
	left.publish(ctx, t, singer(1, red, media.CodecH264), 1, nil)   // 440 Hz
	right.publish(ctx, t, singer(2, blue, media.CodecH264), 1, nil) // 660 Hz
	var evened time.Time
	rec, c := runProgram(t, left, right, 4500*time.Millisecond, func(ctx context.Context, c *Compositor) {
		c.setGains(overlay.Gains(media.Scene{Turn: 1}))
		select {
		case <-ctx.Done():
			return
		case <-time.After(2500 * time.Millisecond):
		}
		evened = time.Now()
		c.setGains(1, 1)
	})
	if evened.IsZero() {
		t.Fatal("the program ended before the gains were evened")
	}
	_, aac := rec.files(t)
	pcm := decodePCM(t, aac)
	at := func(d time.Duration) int { return min(int(d.Seconds()*48000), len(pcm)) }
	switched := evened.Sub(c.start)
	lowered := pcm[at(time.Second):at(switched-200*time.Millisecond)]
	even := pcm[at(switched+200*time.Millisecond):at(4300*time.Millisecond)]
	if len(lowered) < 24000 || len(even) < 24000 {
		t.Fatalf("windows of %d and %d samples", len(lowered), len(even))
	}
	db := func(pcm []float64) float64 {
		return 10 * math.Log10(mediacheck.TonePower(pcm, 440)/mediacheck.TonePower(pcm, 660))
	}
	t.Logf("left over right: %.2f dB lowered, %.2f dB even", db(lowered), db(even))
	if d := db(lowered); math.Abs(d-9) > 2 {
		t.Errorf("right singer lowered: %.1f dB under the left, want 9", d)
	}
	if d := db(even); math.Abs(d) > 2 {
		t.Errorf("gains evened: right singer %.1f dB under the left, want 0", d)
	}
}

// The overlay's cost: converting a typical battle overlay (once a second,
// when the countdown changes) and blending it into every frame.
//
//	go test -run '^$' -bench '^BenchmarkOverlay' ./compositor
func BenchmarkOverlayConvert(b *testing.B) {
	layers := typicalOverlay(b)
	for b.Loop() {
		for _, img := range layers {
			toLayer(img)
		}
	}
}

func BenchmarkOverlayBlend(b *testing.B) {
	var ls []*layer
	for _, img := range typicalOverlay(b) {
		ls = append(ls, toLayer(img))
	}
	p := planes{
		y: bytes.Repeat([]byte{100}, media.ProgramWidth*media.ProgramHeight), ys: media.ProgramWidth,
		cb: bytes.Repeat([]byte{90}, media.ProgramWidth*media.ProgramHeight/4), cr: bytes.Repeat([]byte{160}, media.ProgramWidth*media.ProgramHeight/4), cs: media.ProgramWidth / 2,
	}
	for b.Loop() {
		for _, l := range ls {
			l.img.blendOnto(p, l.x, l.y)
		}
	}
}

// BenchmarkOverlaySecond is one program second: a conversion and 30
// blends. It reports the CPU time this takes (the process's, so run it
// alone) and that as a share of a core; on a busy machine ns/op, which
// is wall time, overstates it.
func BenchmarkOverlaySecond(b *testing.B) {
	layers := typicalOverlay(b)
	p := planes{
		y: make([]byte, media.ProgramWidth*media.ProgramHeight), ys: media.ProgramWidth,
		cb: make([]byte, media.ProgramWidth*media.ProgramHeight/4), cr: make([]byte, media.ProgramWidth*media.ProgramHeight/4), cs: media.ProgramWidth / 2,
	}
	began := cpuTime()
	for b.Loop() {
		var ls []*layer
		for _, img := range layers {
			ls = append(ls, toLayer(img))
		}
		for range media.ProgramFPS {
			for _, l := range ls {
				l.img.blendOnto(p, l.x, l.y)
			}
		}
	}
	cpu := float64((cpuTime() - began).Nanoseconds()) / float64(b.N)
	b.ReportMetric(cpu/1e6, "cpu-ms/op")
	b.ReportMetric(cpu/1e7, "%core")
}

func typicalOverlay(b *testing.B) []*image.RGBA {
	b.Helper()
	r, err := overlay.NewRenderer()
	if err != nil {
		b.Fatal(err)
	}
	return r.Render(battleState([2]int{12, 7}))
}

// BenchmarkProgramOverlayCPU measures a battle's CPU cores without an
// overlay, then with the battle overlay redrawn and set every second as
// the countdown runs (overlayCores).
func BenchmarkProgramOverlayCPU(b *testing.B) {
	r, err := overlay.NewRenderer()
	if err != nil {
		b.Fatal(err)
	}
	overlayCores(b, func(ctx context.Context, c *Compositor) {
		showEvery(ctx, c, r, battleState([2]int{12, 7}), time.Second, func(s *media.Scene, i int) { s.Remaining = 90 - i })
	})
}
