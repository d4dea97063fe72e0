package compositor

import (
	"context"
	"image"
	"testing"
	"time"

	"github.com/singoff/singoff/compositor/overlay"
	"github.com/singoff/singoff/media"
)

// notoRenderer draws with Debian's Noto fonts, as the server does.
func notoRenderer(t testing.TB) *overlay.Renderer {
	t.Helper()
	r, err := overlay.NewRenderer(overlay.DefaultFontDirs()...)
	if err != nil {
		t.Fatal(err)
	}
	if missing := r.Coverage().Missing; len(missing) > 0 {
		t.Fatalf("no fonts for %v (make deps installs them)", missing)
	}
	return r
}

// TestCheerMeterOnProgram shows the cheer meters at 0–0, then at 40–10,
// over two singers whose names are in Hangul and Arabic, and reads them
// in the decoded program: each side's bar fills in its colour as far as
// its cheers against the leader's, and the counts' pixels change.
func TestCheerMeterOnProgram(t *testing.T) {
	r := notoRenderer(t)
	scene := func(cheers [2]int) media.Scene {
		s := battleState([2]int{2, 1})
		s.Names, s.Cheers = [2]string{"김민지 🎤", "سارا"}, cheers
		return s
	}
	layersA, layersB := r.Render(scene([2]int{0, 0})), r.Render(scene([2]int{40, 10}))
	flatA, flatB := flatten(layersA), flatten(layersB)

	// What changes: solid points that switch colour (the bars), and the
	// rest of the pixels that differ (the counts).
	var switched, changed []image.Point
	for y := range media.ProgramHeight {
		for x := range media.ProgramWidth {
			a, b := flatA.RGBAAt(x, y), flatB.RGBAAt(x, y)
			switch {
			case a == b:
			case solid(flatA, x, y, 2) && solid(flatB, x, y, 2) && !near(a, b, 100):
				switched = append(switched, image.Pt(x, y))
			default:
				changed = append(changed, image.Pt(x, y))
			}
		}
	}
	var onLeft, onRight int
	for _, p := range switched {
		if p.X < media.ProgramWidth/2 {
			onLeft++
		} else {
			onRight++
		}
	}
	if onLeft < 100 || onRight < 10 || onLeft < 2*onRight {
		t.Fatalf("%d points of the left bar and %d of the right switch colour from 0–0 to 40–10", onLeft, onRight)
	}

	_, phaseA, phaseB := overlaidProgram(t, layersA, layersB)
	for _, phase := range []struct {
		name   string
		frames [][]byte
		want   *image.RGBA
	}{{"0–0", phaseA, flatA}, {"40–10", phaseB, flatB}} {
		for _, f := range []([]byte){phase.frames[0], phase.frames[len(phase.frames)-1]} {
			for _, p := range switched {
				if got, want := pixel(f, p.X, p.Y), phase.want.RGBAAt(p.X, p.Y); !near(got, want, 40) {
					t.Fatalf("%s: bar point %v shows %s, want %s", phase.name, p, describe(got), describe(want))
				}
			}
		}
	}
	// The counts and the bars' edges: where the overlays differ, so do
	// the decoded pictures.
	if d := meanDiff(phaseA[len(phaseA)-1], phaseB[len(phaseB)-1], changed); d < 20 {
		t.Errorf("the other %d changed pixels differ by %.1f on average from 0–0 to 40–10", len(changed), d)
	}
	t.Logf("%d + %d bar points switched; %d other pixels changed", onLeft, onRight, len(changed))
}

// overlaidProgram runs a program of two singers for 4.5 s, sets the
// overlay a after 1.5 s and b after 3 s, and decodes it: the frames
// before a, while a shows and while b shows, each with a few frames'
// margin around the switches. It clears the layers once set: the
// compositor converted them, the caller may reuse them.
func overlaidProgram(t *testing.T, a, b []*image.RGBA) (before, phaseA, phaseB [][]byte) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	left, right := newTestFeed(), newTestFeed()
	left.publish(ctx, t, singer(1, red, media.CodecH264), 1, nil)
	right.publish(ctx, t, singer(2, blue, media.CodecH264), 1, nil)
	var setA, setB time.Time
	rec, _ := runProgram(t, left, right, 4500*time.Millisecond, func(ctx context.Context, c *Compositor) {
		for _, step := range []struct {
			layers []*image.RGBA
			at     *time.Time
		}{{a, &setA}, {b, &setB}} {
			select {
			case <-ctx.Done():
				return
			case <-time.After(1500 * time.Millisecond):
			}
			*step.at = time.Now()
			c.setOverlay(step.layers)
			for _, l := range step.layers {
				clear(l.Pix)
			}
		}
	})
	if setA.IsZero() || setB.IsZero() {
		t.Fatal("the program ended before both overlays were set")
	}
	h264, _ := rec.files(t)
	frames := decodeFrames(t, h264)
	if len(frames) != len(rec.videoPTS) {
		t.Fatalf("decoded %d frames of %d", len(frames), len(rec.videoPTS))
	}
	margin := 3 * frameInterval
	for i, f := range frames {
		switch ntp := rec.videoNTP[i]; {
		case ntp.Before(setA.Add(-margin)):
			before = append(before, f)
		case ntp.After(setA.Add(margin)) && ntp.Before(setB.Add(-margin)):
			phaseA = append(phaseA, f)
		case ntp.After(setB.Add(margin)):
			phaseB = append(phaseB, f)
		}
	}
	if len(before) < 8 || len(phaseA) < 8 || len(phaseB) < 8 {
		t.Fatalf("frames before the overlays, with the first, with the second: %d, %d, %d", len(before), len(phaseA), len(phaseB))
	}
	return before, phaseA, phaseB
}

// meanDiff is the mean absolute difference of two decoded frames at
// points, per channel.
func meanDiff(a, b []byte, points []image.Point) float64 {
	sum := 0
	for _, p := range points {
		pa, pb := pixel(a, p.X, p.Y), pixel(b, p.X, p.Y)
		for _, d := range [3]int{int(pa.R) - int(pb.R), int(pa.G) - int(pb.G), int(pa.B) - int(pb.B)} {
			sum += max(d, -d)
		}
	}
	return float64(sum) / float64(3*max(len(points), 1))
}

// overlayCores measures a battle's CPU cores without an overlay
// (cores-bare), then with show setting overlays along the program until
// its ctx is done (cores-overlay), each making b.N seconds of program,
// and the overlay's share (overlay-%); see programLength.
func overlayCores(b *testing.B, show func(ctx context.Context, c *Compositor)) {
	d := programLength(b)
	b.StopTimer()
	clips := benchClips(b, d)
	b.StartTimer()
	run := func(withOverlay bool) float64 {
		ctx, cancel := context.WithTimeout(context.Background(), d)
		defer cancel()
		before := cpuTime()
		bt := startBattle(ctx, b, Config{}, clips)
		if withOverlay {
			show(ctx, bt.c)
		}
		if err := <-bt.done; err != nil {
			b.Fatal(err)
		}
		if st := bt.c.Stats(); st.FramesRepeated > 0 {
			b.Logf("%d frames repeated", st.FramesRepeated)
		}
		return (cpuTime() - before).Seconds() / d.Seconds()
	}
	without := run(false)
	with := run(true)
	b.ReportMetric(without, "cores-bare")
	b.ReportMetric(with, "cores-overlay")
	b.ReportMetric(100*(with-without)/without, "overlay-%")
}

// showEvery renders and sets a scene every interval, edit changing it
// first (i counts the renders), until ctx is done.
func showEvery(ctx context.Context, c *Compositor, r *overlay.Renderer, s media.Scene, interval time.Duration, edit func(s *media.Scene, i int)) {
	tick := time.NewTicker(interval)
	defer tick.Stop()
	for i := 0; ctx.Err() == nil; i++ {
		edit(&s, i)
		c.setOverlay(r.Render(s))
		select {
		case <-ctx.Done():
		case <-tick.C:
		}
	}
}

// BenchmarkProgramOverlayScriptsCPU is BenchmarkProgramOverlayCPU with
// the server's Noto fonts, a Korean and an Arabic singer (an emoji too)
// and the cheer meters: the overlay redrawn four times a second, as
// cheers come in, the countdown once a second.
func BenchmarkProgramOverlayScriptsCPU(b *testing.B) {
	r := notoRenderer(b)
	s := battleState([2]int{12, 7})
	s.Names = [2]string{"김민지 🎤", "سارا محمد"}
	overlayCores(b, func(ctx context.Context, c *Compositor) {
		showEvery(ctx, c, r, s, 250*time.Millisecond, func(s *media.Scene, i int) {
			s.Remaining, s.Cheers = 90-i/4, [2]int{3 * i, 2 * i}
		})
	})
}
