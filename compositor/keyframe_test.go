package compositor

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/singoff/singoff/media"
)

// stallingSink holds up the program now and then, as a loaded machine
// does, so the compositor falls behind its clock.
type stallingSink struct {
	programRecorder
	n int
}

func (s *stallingSink) WriteVideo(rung int, ntp time.Time, pts int64, au [][]byte) error {
	if rung == 0 {
		s.n++
		if s.n%20 == 0 {
			time.Sleep(250 * time.Millisecond)
		}
	}
	return s.programRecorder.WriteVideo(rung, ntp, pts, au)
}

// The program's clock never skips: behind its clock, the program
// repeats its last picture, so every frame of every rung is there, one
// frame apart, with a keyframe every keyframeEvery frames on every rung
// at the same frames, and the HLS segments and parts keep their lengths.
func TestClockNeverSkips(t *testing.T) {
	c, err := New(Config{Logger: quietLogger()}, newTestFeed(), newTestFeed())
	if err != nil {
		t.Fatal(err)
	}
	sink := &stallingSink{}
	ctx, cancel := context.WithTimeout(context.Background(), 4500*time.Millisecond)
	defer cancel()
	if err := c.Run(ctx, sink); err != nil {
		t.Fatal(err)
	}
	if c.Stats().FramesRepeated == 0 {
		t.Fatal("the stalls repeated no picture: the test tests nothing")
	}
	top := sink.videoPTS
	if len(top) < 4*media.ProgramFPS {
		t.Fatalf("%d frames in 4.5 s", len(top))
	}
	var wantKeys []int64
	for i, pts := range top {
		if want := int64(i) * videoTicksPerFrame; pts != want {
			t.Fatalf("frame %d at pts %d, want %d: the clock skipped", i, pts, want)
		}
		if i%keyframeEvery == 0 {
			wantKeys = append(wantKeys, pts)
		}
	}
	if sink.keyframes != len(wantKeys) {
		t.Errorf("%d keyframes on the top rung, want %d (at %v)", sink.keyframes, len(wantKeys), wantKeys)
	}
	if len(sink.lower) != len(DefaultRenditions) {
		t.Fatalf("%d lower rungs, want %d", len(sink.lower), len(DefaultRenditions))
	}
	for n, low := range sink.lower {
		// The last tick's lower rungs may be cut off by the end.
		if len(low.pts) < len(top)-1 || !slices.Equal(low.pts, top[:len(low.pts)]) {
			t.Errorf("rung %d: %d frames not on the top rung's grid", n, len(low.pts))
		}
		if !slices.Equal(low.keyPTS, wantKeys[:len(low.keyPTS)]) || len(low.keyPTS) < len(wantKeys)-1 {
			t.Errorf("rung %d: keyframes at %v, want %v", n, low.keyPTS, wantKeys)
		}
	}
}

// A compositor that never runs is freed by Close, once; Run after it
// refuses.
func TestCloseWithoutRun(t *testing.T) {
	c, err := New(Config{Logger: quietLogger()}, newTestFeed(), newTestFeed())
	if err != nil {
		t.Fatal(err)
	}
	c.Close()
	c.Close()
	if err := c.Run(context.Background(), &programRecorder{}); err == nil {
		t.Fatal("Run after Close did not refuse")
	}
}
