package compositor

import (
	"context"
	"testing"
	"time"

	"github.com/bluenviron/mediacommon/v2/pkg/codecs/h264"

	"github.com/singoff/singoff/media"
)

// stallingSink holds up the program now and then, as a loaded machine
// does, so the compositor must skip ticks to stay on its clock.
type stallingSink struct {
	programRecorder
	keyPTS []int64
	key    []bool // per frame
	n      int
}

func (s *stallingSink) WriteVideo(rung int, ntp time.Time, pts int64, au [][]byte) error {
	s.n++
	if s.n%20 == 0 {
		time.Sleep(250 * time.Millisecond)
	}
	key := h264.IsRandomAccess(au)
	if key {
		s.keyPTS = append(s.keyPTS, pts)
	}
	s.key = append(s.key, key)
	return s.programRecorder.WriteVideo(rung, ntp, pts, au)
}

// Keyframes stay on whole seconds of the program clock even when ticks
// are skipped, so the HLS segments stay one second long.
func TestKeyframesOnWholeSecondsDespiteSkippedTicks(t *testing.T) {
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
	if dropped := c.Stats().FramesDropped; dropped == 0 {
		t.Fatal("the stalls skipped no tick: the test tests nothing")
	}
	if len(sink.keyPTS) < 4 {
		t.Fatalf("%d keyframes in 4.5 s: %v", len(sink.keyPTS), sink.keyPTS)
	}
	// The first frame of every program second is a keyframe, and no
	// other frame is.
	lastSecond := int64(-1)
	for i, pts := range sink.videoPTS {
		second := pts / media.VideoClockRate
		if first := second != lastSecond; first != sink.key[i] {
			t.Fatalf("frame at pts %d (second %d): keyframe %v, first of its second %v; keyframes at %v", pts, second, sink.key[i], first, sink.keyPTS)
		}
		lastSecond = second
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
