package recording

import (
	"bytes"
	"fmt"
	"maps"
	"net/http"
	"testing"
	"time"

	"github.com/singoff/singoff/internal/m3u8"
	"github.com/singoff/singoff/media"
)

// stillsSink hands a recorder, with the program, a picture of it every
// second of its time, as the compositor does; a picture says when it was
// taken (pictureAt).
type stillsSink struct {
	media.Recorder
	next time.Time
}

func withStills(rec media.Recorder) *stillsSink { return &stillsSink{Recorder: rec} }

func pictureAt(ntp time.Time) []byte {
	return fmt.Appendf(nil, "\xff\xd8picture at %d\xff\xd9", ntp.UnixMilli())
}

func (s *stillsSink) WriteVideo(rung int, ntp time.Time, pts int64, au [][]byte) error {
	if !ntp.Before(s.next) {
		s.Recorder.(media.Stills).Still(ntp, pictureAt(ntp))
		s.next = ntp.Add(time.Second)
	}
	return s.Recorder.WriteVideo(rung, ntp, pts, au)
}

// The battle's cues are in the recording's playlist, live and once ended,
// as EXT-X-DATERANGE before the segment they start in; its thumbnail is
// a picture from the middle of the battle.
func TestCuesAndThumb(t *testing.T) {
	l := newStore(t, LocalOptions{})
	base := serve(t, l.Handler())
	const id = "battle_cues"
	rec, err := l.Create(id, program.Info)
	if err != nil {
		t.Fatal(err)
	}
	if resp, _ := get(t, base+"/vod/"+id+"/thumb.jpg", nil); resp.StatusCode != http.StatusNotFound {
		t.Errorf("thumbnail before any picture: %d, want 404", resp.StatusCode)
	}
	// The program's clock starts at start; 7 s of it, then 8 more.
	start := time.Now()
	cues := []media.Cue{
		{ID: "turn-1-1", Class: "com.singoff.turn", Start: start.Add(500 * time.Millisecond), Duration: 90 * time.Second, Data: map[string]string{"ROUND": "1", "SLOT": "1"}},
		{ID: "turn-1-2", Class: "com.singoff.turn", Start: start.Add(4100 * time.Millisecond), Duration: 90 * time.Second, Data: map[string]string{"ROUND": "1", "SLOT": "2"}},
		{ID: "round-1", Class: "com.singoff.round", Start: start.Add(12 * time.Second), Data: map[string]string{"ROUND": "1", "VOTES-1": "1", "VOTES-2": "0", "WINNER": "1"}},
		{ID: "result", Class: "com.singoff.result", Start: start.Add(14500 * time.Millisecond), Data: map[string]string{"WINNER": "1", "SCORE-1": "1", "SCORE-2": "0"}},
	}
	cuer := rec.(media.Cuer)
	cuer.Cue(cues[0])
	cuer.Cue(cues[1])
	cuer.Cue(media.Cue{ID: "turn-1-2", Class: "com.singoff.turn", Start: start}) // a repeated ID: dropped
	cuer.Cue(media.Cue{ID: "bad", Class: "c", Start: start, Data: map[string]string{"lower": "x"}})
	if err := program.Feed(t.Context(), &shifted{withStills(rec), 0, start}, 7*time.Second, 0); err != nil {
		t.Fatal(err)
	}
	waitFor(t, func() bool { return l.Exists(id) })
	_, body := get(t, base+"/vod/"+id+"/index.m3u8", nil)
	checkCues(t, checkRules(t, body, true), cues[:2])
	waitFor(t, func() bool {
		resp, _ := get(t, base+"/vod/"+id+"/thumb.jpg", nil)
		return resp.StatusCode == http.StatusOK
	})

	cuer.Cue(cues[2])
	cuer.Cue(cues[3])
	if err := program.Feed(t.Context(), &shifted{withStills(rec), 7 * time.Second, start}, 8*time.Second, 0); err != nil {
		t.Fatal(err)
	}
	if err := rec.Close(true); err != nil {
		t.Fatal(err)
	}
	_, body = get(t, base+"/vod/"+id+"/index.m3u8", nil)
	checkCues(t, checkRules(t, body, false), cues)

	resp, thumb := get(t, base+"/vod/"+id+"/thumb.jpg", nil)
	wantHeader(t, resp, "Content-Type", "image/jpeg")
	wantHeader(t, resp, "Cache-Control", cacheThumb)
	// The pictures are a second apart over 15 s: the middle one is at
	// 7 or 8 s (the feed's clock starts when each Feed does).
	var at int64
	if _, err := fmt.Sscanf(string(bytes.Trim(thumb, "\xff\xd8\xd9")), "picture at %d", &at); err != nil {
		t.Fatalf("thumbnail %q: %v", thumb, err)
	}
	if offset := time.UnixMilli(at).Sub(start); offset < 6*time.Second || offset > 9*time.Second {
		t.Errorf("the thumbnail is the picture at %v of 15 s, want the middle", offset)
	}
}

// checkCues fails unless pl lists cues as date ranges, in order, each
// before the segment it starts in.
func checkCues(t *testing.T, pl *m3u8.Media, cues []media.Cue) {
	t.Helper()
	if len(pl.DateRanges) != len(cues) {
		t.Fatalf("%d date ranges, want %d: %+v", len(pl.DateRanges), len(cues), pl.DateRanges)
	}
	for i, d := range pl.DateRanges {
		c := cues[i]
		want := map[string]string{"ID": c.ID, "CLASS": c.Class, "START-DATE": c.Start.UTC().Format(m3u8.DateLayout)}
		if c.Duration > 0 {
			want["DURATION"] = fmt.Sprintf("%.3f", c.Duration.Seconds())
		}
		for k, v := range c.Data {
			want["X-"+k] = v
		}
		if !maps.Equal(d.Attrs, want) {
			t.Errorf("date range %d: %v, want %v", i, d.Attrs, want)
		}
		if d.Before < len(pl.Segments) {
			s := pl.Segments[d.Before]
			if !d.Start.Before(s.PDT.Add(s.Duration)) || d.Before > 0 && d.Start.Before(s.PDT) {
				t.Errorf("%s (%v) comes before segment %d (%v–%v)", d.ID, d.Start, s.MSN, s.PDT, s.PDT.Add(s.Duration))
			}
		} else if last := pl.Segments[len(pl.Segments)-1]; d.Start.Before(last.PDT.Add(last.Duration)) {
			t.Errorf("%s (%v) comes after the last segment, which ends %v", d.ID, d.Start, last.PDT.Add(last.Duration))
		}
	}
}

func TestStills(t *testing.T) {
	t0 := time.Unix(1_800_000_000, 0)
	for _, c := range []struct {
		name    string
		seconds int // a picture a second for this long
	}{
		{"a few", 5},
		{"as many as kept", maxStills},
		{"one more", maxStills + 1},
		{"a long battle", 7200},
	} {
		t.Run(c.name, func(t *testing.T) {
			var s stills
			for i := range c.seconds {
				s.add(t0.Add(time.Duration(i)*time.Second), pictureAt(t0.Add(time.Duration(i)*time.Second)))
				s.add(t0, []byte("out of order")) // ignored
			}
			if len(s.kept) > maxStills {
				t.Errorf("%d pictures kept, want at most %d", len(s.kept), maxStills)
			}
			m, ok := s.middle()
			mid := time.Duration(c.seconds-1) * time.Second / 2
			// Kept pictures are at most 1/8 of the battle apart.
			if off := m.ntp.Sub(t0.Add(mid)).Abs(); !ok || off > time.Duration(c.seconds)*time.Second/16+time.Second {
				t.Errorf("middle picture at %v, want about %v", m.ntp.Sub(t0), mid)
			}
			if !bytes.Equal(m.jpeg, pictureAt(m.ntp)) {
				t.Errorf("the middle picture is %q", m.jpeg)
			}
		})
	}

	t.Run("saved when due", func(t *testing.T) {
		var s stills
		now := time.Now()
		if _, ok := s.toSave(now, true); ok {
			t.Error("a thumbnail to save without pictures")
		}
		s.add(t0, pictureAt(t0))
		steps := []struct {
			after    time.Duration
			pictures []time.Duration // new pictures, at t0 plus these
			final    bool
			want     bool
		}{
			{0, nil, false, true},            // the first
			{time.Second, nil, false, false}, // the same picture
			{2 * time.Second, []time.Duration{time.Second, 2 * time.Second, 3 * time.Second, 4 * time.Second}, false, false}, // another middle, too soon
			{thumbEvery, nil, false, true},                                           // due
			{thumbEvery + time.Second, []time.Duration{8 * time.Second}, true, true}, // the end: at once
			{thumbEvery + 2*time.Second, nil, true, false},                           // nothing new
		}
		for i, st := range steps {
			for _, p := range st.pictures {
				s.add(t0.Add(p), pictureAt(t0.Add(p)))
			}
			if _, got := s.toSave(now.Add(st.after), st.final); got != st.want {
				t.Errorf("step %d: to save %v, want %v", i, got, st.want)
			}
		}
	})
}
