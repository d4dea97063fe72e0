package compositor

import (
	"bytes"
	"image/jpeg"
	"slices"
	"testing"
	"time"

	"github.com/singoff/singoff/media"
)

// The battle's cues and the program's stills reach the outputs that take
// them (media.Cuer, media.Stills), in order, and only those.
func TestPipelineHandsCuesAndStillsToOutputs(t *testing.T) {
	for _, tc := range []struct {
		name            string
		plainRecorder   bool
		recorderGetsAll bool
	}{
		{"live output and recorder take them", false, true},
		{"only the live output takes them", true, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			live, recs := newFakeLive(), newFakeRecordings()
			recs.plain = tc.plainRecorder
			ps, _ := testPipelines(t, live, recs, nil)
			p, err := ps.Start("b1", idleFeeds())
			if err != nil {
				t.Fatal(err)
			}
			endOnTestEnd(t, p)
			at := time.Now()
			cues := []media.Cue{
				{ID: "turn-1-1", Class: "com.singoff.turn", Start: at, Duration: 90 * time.Second, Data: map[string]string{"ROUND": "1", "SLOT": "1"}},
				{ID: "round-1", Class: "com.singoff.round", Start: at.Add(time.Second), Data: map[string]string{"ROUND": "1", "WINNER": "0"}},
			}
			for _, c := range cues {
				p.Cue(c)
			}
			sink, rec := live.sink("b1"), recs.recorder("b1")
			got := func(r *programRecorder) ([]media.Cue, int) {
				r.mu.Lock()
				defer r.mu.Unlock()
				return slices.Clone(r.cues), len(r.stills)
			}
			waitFor(t, "cues and a still at the live output", func() bool {
				c, n := got(&sink.programRecorder)
				return len(c) == len(cues) && n > 0
			})
			waitFrames(t, "recorder", &rec.programRecorder, 45)
			p.End()
			p.Cue(media.Cue{ID: "result"}) // after the end: nothing, no panic

			liveCues, liveStills := got(&sink.programRecorder)
			recCues, recStills := got(&rec.programRecorder)
			for i, c := range liveCues {
				if c.ID != cues[i].ID || !c.Start.Equal(cues[i].Start) || c.Duration != cues[i].Duration {
					t.Errorf("live cue %d: %+v, want %+v", i, c, cues[i])
				}
			}
			if tc.recorderGetsAll {
				if !slices.EqualFunc(recCues, liveCues, func(a, b media.Cue) bool { return a.ID == b.ID }) || recStills != liveStills {
					t.Errorf("recorder got %d cues and %d stills, live %d and %d", len(recCues), recStills, len(liveCues), liveStills)
				}
			} else if len(recCues) != 0 || recStills != 0 {
				t.Errorf("a recorder that takes no cues got %d cues and %d stills", len(recCues), recStills)
			}
			sink.mu.Lock()
			first := sink.stills[0]
			sink.mu.Unlock()
			if img, err := jpeg.Decode(bytes.NewReader(first.jpeg)); err != nil || img.Bounds().Dx() != StillWidth || img.Bounds().Dy() != StillHeight {
				t.Errorf("still: %v", err)
			}
		})
	}
}
