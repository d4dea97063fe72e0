package hls

import (
	"bytes"
	"maps"
	"net/http"
	"testing"
	"time"

	"github.com/singoff/singoff/internal/m3u8"
	"github.com/singoff/singoff/media"
)

// The battle's cues are in every live playlist, and the final one, as
// EXT-X-DATERANGE tags at the segment they start in; malformed and
// repeated ones are left out.
func TestCuesAsDateRanges(t *testing.T) {
	l := startLive(t, time.Minute)
	m, _ := l.server.Muxer(l.id)
	// Wait for a few segments.
	for pl := l.playlist(t, topPlaylist); len(pl.Segments) < 3; pl = l.playlist(t, topPlaylist) {
		msn, _ := nextPart(pl)
		get(t, l.url(blocking(topPlaylist, msn+1, 0)), nil)
	}
	pl := l.playlist(t, topPlaylist)
	first, last := pl.Segments[0], pl.Segments[len(pl.Segments)-1]
	cues := []media.Cue{
		{ID: "turn-1-1", Class: "com.singoff.turn", Start: first.PDT.Add(-time.Hour), Duration: 90 * time.Second, Data: map[string]string{"ROUND": "1", "SLOT": "1"}},
		{ID: "turn-1-2", Class: "com.singoff.turn", Start: last.PDT.Add(last.Duration / 2), Duration: 90 * time.Second, Data: map[string]string{"ROUND": "1", "SLOT": "2"}},
		{ID: "round-1", Class: "com.singoff.round", Start: time.Now().Add(time.Hour), Data: map[string]string{"ROUND": "1", "VOTES-1": "3", "VOTES-2": "4", "WINNER": "2"}},
	}
	for _, c := range cues {
		m.Cue(c)
	}
	for _, bad := range []media.Cue{
		{ID: "turn-1-2", Class: "com.singoff.turn", Start: last.PDT, Data: map[string]string{"ROUND": "9"}}, // a repeated ID
		{ID: "", Class: "com.singoff.turn", Start: last.PDT},
		{ID: "x", Class: "", Start: last.PDT},
		{ID: "x", Class: "c", Start: time.Time{}},
		{ID: `say "hi"`, Class: "c", Start: last.PDT},
		{ID: "x", Class: "c", Start: last.PDT, Data: map[string]string{"slot": "1"}},
		{ID: "x", Class: "c", Start: last.PDT, Duration: -time.Second},
	} {
		m.Cue(bad)
	}
	check := func(t *testing.T, name string, pl *m3u8.Media) {
		t.Helper()
		if err := m3u8.CheckMedia(pl, true, !pl.Endlist); err != nil {
			t.Fatal(err)
		}
		if len(pl.DateRanges) != len(cues) {
			t.Fatalf("%s: %d date ranges, want %d: %+v", name, len(pl.DateRanges), len(cues), pl.DateRanges)
		}
		for i, d := range pl.DateRanges {
			c := cues[i]
			want := map[string]string{"ID": c.ID, "CLASS": c.Class, "START-DATE": c.Start.UTC().Format(m3u8.DateLayout)}
			if c.Duration > 0 {
				want["DURATION"] = "90.000"
			}
			for k, v := range c.Data {
				want["X-"+k] = v
			}
			if !maps.Equal(d.Attrs, want) {
				t.Errorf("%s: date range %d: %v, want %v", name, i, d.Attrs, want)
			}
			// Before the segment it starts in, the first one if it
			// started earlier, after them all if later.
			segs := pl.Segments
			switch {
			case d.Before == 0:
				if !d.Start.Before(segs[0].PDT.Add(segs[0].Duration)) {
					t.Errorf("%s: %s, starting %v, is before the first segment", name, d.ID, d.Start)
				}
			case d.Before == len(segs):
				if end := segs[len(segs)-1]; d.Start.Before(end.PDT.Add(end.Duration)) {
					t.Errorf("%s: %s, starting %v, is after the last segment", name, d.ID, d.Start)
				}
			default:
				if s := segs[d.Before]; d.Start.Before(s.PDT) || !d.Start.Before(s.PDT.Add(s.Duration)) {
					t.Errorf("%s: %s, starting %v, is before segment %v–%v", name, d.ID, d.Start, s.PDT, s.PDT.Add(s.Duration))
				}
			}
		}
	}
	for _, name := range []string{topPlaylist, bottomPlaylist} {
		pl := l.playlist(t, name)
		check(t, name, pl)
		if pl.DateRanges[1].Before == 0 || pl.DateRanges[1].Before == len(pl.Segments) {
			t.Errorf("%s: the cue in the last segment is not placed at it", name)
		}
	}
	l.stop()
	<-l.fed
	l.server.End(l.id)
	m.Cue(media.Cue{ID: "late", Class: "c", Start: time.Now()}) // after the end: left out
	check(t, "final", l.playlist(t, topPlaylist))
}

// thumb.jpg is the program's latest picture, cacheable for 2 s; before
// the first, 404.
func TestThumb(t *testing.T) {
	l := startLive(t, time.Minute)
	m, _ := l.server.Muxer(l.id)
	resp, body := get(t, l.url("thumb.jpg"), nil)
	if resp.StatusCode != http.StatusNotFound || !bytes.Contains(body, []byte(`"error"`)) {
		t.Errorf("before any picture: %d %s, want 404 JSON", resp.StatusCode, body)
	}
	wantHeader(t, resp, "Cache-Control", cacheError)
	stats := l.server.Stats()
	for i, picture := range [][]byte{[]byte("\xff\xd8first picture\xff\xd9"), []byte("\xff\xd8second\xff\xd9")} {
		at := time.Now().Add(time.Duration(i) * time.Second)
		m.Still(at, picture)
		picture[2] = 'X' // the muxer keeps its own copy
		resp, body := get(t, l.url("thumb.jpg"), nil)
		if resp.StatusCode != http.StatusOK || len(body) != len(picture) || body[2] == 'X' || !bytes.Equal(body[3:], picture[3:]) {
			t.Errorf("picture %d: %d %q", i, resp.StatusCode, body)
		}
		wantHeader(t, resp, "Content-Type", "image/jpeg")
		wantHeader(t, resp, "Cache-Control", cacheThumb)
		wantHeader(t, resp, "Last-Modified", at.UTC().Format(http.TimeFormat))
	}
	// Thumbnails are not the stream: the home page shows them.
	if got := l.server.Stats(); got != stats {
		t.Errorf("thumbnails counted as requests: %+v, then %+v", stats, got)
	}
}
