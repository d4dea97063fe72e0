package hls

import (
	"reflect"
	"strconv"
	"testing"
	"time"

	"github.com/bluenviron/gohlslib/v2/pkg/playlist"

	"github.com/singoff/singoff/internal/m3u8"
	"github.com/singoff/singoff/media"
)

var t0 = time.Date(2026, 12, 1, 20, 0, 0, 0, time.UTC)

// gohlslibText writes a media playlist as gohlslib does: after its
// placeholders (gaps numbered from mediaSequence), segments of 1 s from
// msn 7 on (dated from t0), the last two dated and with their 5 parts;
// skip segments left out of a delta update; open parts in the segment
// being made.
func gohlslibText(t *testing.T, mediaSequence, gaps, segments, skip, open int) []byte {
	t.Helper()
	pl := playlist.Media{
		Version:        10,
		TargetDuration: 1,
		MediaSequence:  mediaSequence,
		ServerControl:  &playlist.MediaServerControl{CanBlockReload: true},
		PartInf:        &playlist.MediaPartInf{PartTarget: partDuration},
	}
	if skip > 0 {
		pl.Skip = &playlist.MediaSkip{SkippedSegments: skip}
	} else {
		pl.Map = &playlist.MediaMap{URI: "p_video1_init.mp4"}
	}
	part := 0
	parts := func(n int) []*playlist.MediaPart {
		var ps []*playlist.MediaPart
		for i := range n {
			ps = append(ps, &playlist.MediaPart{Duration: partDuration, URI: "p_video1_part" + strconv.Itoa(part) + ".mp4", Independent: i == 0})
			part++
		}
		return ps
	}
	for i := range gaps + segments {
		msn := mediaSequence + i
		if msn < mediaSequence+skip {
			part += 5 * min(max(msn-6, 0), 1)
			continue
		}
		if i < gaps {
			pl.Segments = append(pl.Segments, &playlist.MediaSegment{Gap: true, Duration: time.Second, URI: "gap.mp4"})
			continue
		}
		seg := &playlist.MediaSegment{Duration: time.Second, URI: "p_video1_seg" + strconv.Itoa(msn) + ".mp4"}
		ps := parts(5)
		if i >= gaps+segments-2 {
			start := t0.Add(time.Duration(msn-gohlslibFirstMSN) * time.Second)
			seg.DateTime = &start
			seg.Parts = ps
		}
		pl.Segments = append(pl.Segments, seg)
	}
	pl.Parts = parts(open)
	pl.PreloadHint = &playlist.MediaPreloadHint{URI: "p_video1_part" + strconv.Itoa(part) + ".mp4"}
	b, err := pl.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// segs are the segments from msn first to last, 1 s each from t0 at
// msn 7, the last two with their 5 parts (parts numbered from firstPart).
func segs(first, last, firstPart int) []liveSegment {
	var out []liveSegment
	part := firstPart
	for msn := first; msn <= last; msn++ {
		s := liveSegment{msn: msn, uri: "p_video1_seg" + strconv.Itoa(msn) + ".mp4", duration: time.Second, start: t0.Add(time.Duration(msn-7) * time.Second)}
		ps := partsFrom(part, 5)
		part += 5
		if msn >= last-1 {
			s.parts = ps
		}
		out = append(out, s)
	}
	return out
}

func partsFrom(first, n int) []livePart {
	var ps []livePart
	for i := range n {
		ps = append(ps, livePart{uri: "p_video1_part" + strconv.Itoa(first+i) + ".mp4", duration: partDuration, independent: i == 0})
	}
	return ps
}

func TestFromGohlslib(t *testing.T) {
	for _, c := range []struct {
		name                                      string
		mediaSequence, gaps, segments, skip, open int
		want                                      mediaPlaylist
	}{
		{
			name: "placeholders dropped", mediaSequence: 1, gaps: 6, segments: 1, open: 2,
			want: mediaPlaylist{mediaSequence: 7, segments: segs(7, 7, 0), parts: partsFrom(5, 2), preloadHint: "p_video1_part7.mp4"},
		},
		{
			name: "window full, every segment dated", mediaSequence: 12, gaps: 0, segments: 7, open: 0,
			want: mediaPlaylist{mediaSequence: 12, segments: segs(12, 18, 0), preloadHint: "p_video1_part35.mp4"},
		},
		{
			name: "delta update over the placeholders", mediaSequence: 3, gaps: 4, segments: 3, skip: 2, open: 1,
			want: mediaPlaylist{mediaSequence: 7, segments: segs(7, 9, 0), parts: partsFrom(15, 1), preloadHint: "p_video1_part16.mp4"},
		},
		{
			name: "delta update past the placeholders", mediaSequence: 5, gaps: 2, segments: 5, skip: 4, open: 3,
			want: mediaPlaylist{mediaSequence: 7, skipped: 2, segments: segs(9, 11, 10), parts: partsFrom(25, 3), preloadHint: "p_video1_part28.mp4"},
		},
	} {
		t.Run(c.name, func(t *testing.T) {
			var starts segmentStarts
			got, err := fromGohlslib(gohlslibText(t, c.mediaSequence, c.gaps, c.segments, c.skip, c.open), &starts)
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, c.want) {
				t.Errorf("got  %+v\nwant %+v", got, c.want)
			}
		})
	}
}

// A segment's date is kept once known: gohlslib dates only the newest two.
func TestSegmentStartsRemembered(t *testing.T) {
	var starts segmentStarts
	// The newest ones dated...
	first := []liveSegment{{msn: 7, duration: time.Second}, {msn: 8, duration: 1100 * time.Millisecond}}
	starts.fill(first, []time.Time{t0, t0.Add(time.Second)})
	// ...then no longer, and one of them gone from the window.
	later := []liveSegment{{msn: 8, duration: 1100 * time.Millisecond}, {msn: 9, duration: time.Second}, {msn: 10, duration: time.Second}}
	starts.fill(later, []time.Time{{}, {}, t0.Add(3100 * time.Millisecond)})
	var got []time.Time
	for _, s := range later {
		got = append(got, s.start)
	}
	want := []time.Time{t0.Add(time.Second), t0.Add(2100 * time.Millisecond), t0.Add(3100 * time.Millisecond)}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("starts %v, want %v", got, want)
	}
	if _, ok := starts.starts[7]; ok {
		t.Error("a segment gone from the window is still remembered")
	}
}

func TestRender(t *testing.T) {
	cue := func(id string, start time.Time, d time.Duration) media.Cue {
		return media.Cue{ID: id, Class: "com.singoff.turn", Start: start, Duration: d, Data: map[string]string{"SLOT": "1", "ROUND": "2"}}
	}
	cues := []media.Cue{
		cue("early", t0.Add(-time.Minute), 90*time.Second),
		cue("in-8", t0.Add(1500*time.Millisecond), 0),
		cue("open", t0.Add(2100*time.Millisecond), 90*time.Second),
	}
	header := "#EXTM3U\n#EXT-X-VERSION:10\n#EXT-X-TARGETDURATION:1\n" +
		"#EXT-X-SERVER-CONTROL:CAN-BLOCK-RELOAD=YES,CAN-SKIP-UNTIL=6.00000,PART-HOLD-BACK=0.60000\n" +
		"#EXT-X-PART-INF:PART-TARGET=0.20000\n"
	dr := func(id, start, duration string) string {
		return `#EXT-X-DATERANGE:ID="` + id + `",CLASS="com.singoff.turn",START-DATE="` + start + `"` + duration + `,X-ROUND="2",X-SLOT="1"` + "\n"
	}
	part := func(n int, independent bool) string {
		s := `#EXT-X-PART:DURATION=0.20000,URI="p_video1_part` + strconv.Itoa(n) + `.mp4"`
		if independent {
			s += ",INDEPENDENT=YES"
		}
		return s + "\n"
	}
	seg8 := "#EXT-X-PROGRAM-DATE-TIME:2026-12-01T20:00:01.000Z\n" + part(5, true) + part(6, false) + part(7, false) + part(8, false) + part(9, false) + "#EXTINF:1.00000,\np_video1_seg8.mp4\n"
	for _, c := range []struct {
		name string
		p    mediaPlaylist
		want string
	}{
		{
			name: "live",
			p:    mediaPlaylist{mediaSequence: 7, segments: segs(7, 8, 0), parts: partsFrom(10, 1), preloadHint: "p_video1_part11.mp4"},
			want: header + "#EXT-X-MEDIA-SEQUENCE:7\n" + `#EXT-X-MAP:URI="p_video1_init.mp4"` + "\n" +
				dr("early", "2026-12-01T19:59:00.000Z", ",DURATION=90.000") +
				"#EXT-X-PROGRAM-DATE-TIME:2026-12-01T20:00:00.000Z\n" + part(0, true) + part(1, false) + part(2, false) + part(3, false) + part(4, false) + "#EXTINF:1.00000,\np_video1_seg7.mp4\n" +
				dr("in-8", "2026-12-01T20:00:01.500Z", "") + seg8 +
				dr("open", "2026-12-01T20:00:02.100Z", ",DURATION=90.000") + part(10, true) +
				`#EXT-X-PRELOAD-HINT:TYPE=PART,URI="p_video1_part11.mp4"` + "\n" +
				`#EXT-X-RENDITION-REPORT:URI="360p.m3u8",LAST-MSN=9,LAST-PART=0` + "\n",
		},
		{
			name: "delta update",
			p:    mediaPlaylist{mediaSequence: 7, skipped: 1, segments: segs(8, 8, 5), preloadHint: "p_video1_part10.mp4"},
			want: header + "#EXT-X-MEDIA-SEQUENCE:7\n#EXT-X-SKIP:SKIPPED-SEGMENTS=1\n" +
				dr("early", "2026-12-01T19:59:00.000Z", ",DURATION=90.000") + dr("in-8", "2026-12-01T20:00:01.500Z", "") + seg8 +
				dr("open", "2026-12-01T20:00:02.100Z", ",DURATION=90.000") +
				`#EXT-X-PRELOAD-HINT:TYPE=PART,URI="p_video1_part10.mp4"` + "\n" +
				`#EXT-X-RENDITION-REPORT:URI="360p.m3u8",LAST-MSN=8,LAST-PART=4` + "\n",
		},
		{
			name: "ended",
			p:    mediaPlaylist{mediaSequence: 8, segments: segs(8, 8, 5), ended: true},
			want: header + "#EXT-X-MEDIA-SEQUENCE:8\n" + `#EXT-X-MAP:URI="p_video1_init.mp4"` + "\n" +
				dr("early", "2026-12-01T19:59:00.000Z", ",DURATION=90.000") + dr("in-8", "2026-12-01T20:00:01.500Z", "") + seg8 +
				dr("open", "2026-12-01T20:00:02.100Z", ",DURATION=90.000") + "#EXT-X-ENDLIST\n",
		},
	} {
		t.Run(c.name, func(t *testing.T) {
			got := string(c.p.render("p_video1_init.mp4", cues, []string{"360p.m3u8"}))
			if got != c.want {
				t.Errorf("got\n%s\nwant\n%s", got, c.want)
			}
			if _, err := m3u8.Parse(got); err != nil {
				t.Error(err)
			}
		})
	}
}

// The meter cuts segments where gohlslib does and counts video, audio and
// the fMP4 boxes around them.
func TestMeter(t *testing.T) {
	m := newMeter()
	frame := [][]byte{make([]byte, 996)} // 1,000 bytes with its length
	aac := [][]byte{make([]byte, 396)}   // 400 bytes with its trun entry
	const frameTicks = media.VideoClockRate / 30
	firsts := 0
	m.audio(aac) // before the first keyframe: not counted
	// A frame before the first keyframe, then 3 s of 30 fps with a
	// keyframe every second and 47 AAC frames a second.
	if m.video(0, false, frame) {
		firsts++
	}
	for i := range 90 {
		if m.video(int64(i+1)*frameTicks, i%30 == 0, frame) {
			firsts++
		}
		if i%30 < 47*30/47 && i%2 == 0 {
			m.audio(aac)
		}
	}
	if m.video(91*frameTicks, true, frame) { // closes the third segment
		firsts++
	}
	if firsts != 1 || m.count != 3 {
		t.Fatalf("%d first segments, %d segments, want 1 and 3", firsts, m.count)
	}
	// Each segment: 30 frames of 1,016 bytes, 15 AAC frames of 400, 5
	// parts of overhead, in one second.
	const perSegment = 30*(1000+videoSampleOverhead) + 15*400 + 5*partOverhead
	peak, average := m.rates()
	if peak != perSegment*8 || average != perSegment*8 {
		t.Errorf("rates %d and %d, want %d", peak, average, perSegment*8)
	}
}

func TestAcceptsGzip(t *testing.T) {
	for _, c := range []struct {
		header string
		want   bool
	}{
		{"", false},
		{"gzip", true},
		{"GZIP", true},
		{"x-gzip", true},
		{"gzip, deflate, br, zstd", true},
		{"deflate, gzip;q=1.0, *;q=0.5", true},
		{"br;q=1.0, gzip;q=0.5", true},
		{"*", true},
		{"identity", false},
		{"br", false},
		{"gzip;q=0", false},
		{"gzip;q=0.000", false},
		{"*, gzip;q=0", false},
		{"gzip;q=junk", false},
		{"*;q=0", false},
	} {
		t.Run(c.header, func(t *testing.T) {
			if got := acceptsGzip(c.header); got != c.want {
				t.Errorf("acceptsGzip(%q) = %v, want %v", c.header, got, c.want)
			}
		})
	}
}

func TestDirectives(t *testing.T) {
	for _, c := range []struct{ name, query, want, nonBlocking, err string }{
		{name: "none", query: "", want: ""},
		{name: "all three", query: "_HLS_skip=YES&_HLS_part=2&_HLS_msn=7", want: "_HLS_msn=7&_HLS_part=2&_HLS_skip=YES", nonBlocking: "_HLS_skip=YES"},
		{name: "others dropped", query: "a=1&_HLS_msn=7&token=x&_HLS_part=2", want: "_HLS_msn=7&_HLS_part=2"},
		{name: "only others", query: "cachebuster=123", want: ""},
		{name: "first value counts", query: "_HLS_msn=7&_HLS_msn=9", want: "_HLS_msn=7"},
		{name: "skip v2", query: "_HLS_skip=v2", want: "_HLS_skip=v2", nonBlocking: "_HLS_skip=v2"},
		{name: "unknown skip left out", query: "_HLS_msn=7&_HLS_skip=maybe", want: "_HLS_msn=7"},
		{name: "leading zeros", query: "_HLS_msn=007", want: "_HLS_msn=7"},
		{name: "escaped", query: "_HLS_%6Dsn=%37&_HLS_part=2", want: "_HLS_msn=7&_HLS_part=2"},
		{name: "badly escaped dropped", query: "_HLS_msn=%zz&_HLS_msn=8", want: "_HLS_msn=8"},
		{name: "empty number", query: "_HLS_msn=", err: `_HLS_msn "" is not a number`},
		{name: "negative", query: "_HLS_msn=7&_HLS_part=-1", err: `_HLS_part "-1" is not a number`},
		{name: "huge", query: "_HLS_msn=99999999999999999999", err: `_HLS_msn "99999999999999999999" is not a number`},
		{name: "part alone", query: "_HLS_part=2", err: "_HLS_part without _HLS_msn"},
	} {
		t.Run(c.name, func(t *testing.T) {
			d, err := parseDirectives(c.query)
			if c.err != "" {
				if err == nil || err.Error() != c.err {
					t.Errorf("error %v, want %s", err, c.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got := d.String(); got != c.want {
				t.Errorf("%q = %q, want %q", c.query, got, c.want)
			}
			if got := d.key("720p.m3u8"); got != "720p.m3u8?"+c.want {
				t.Errorf("key %q", got)
			}
			if got := d.nonBlocking(); got != c.nonBlocking {
				t.Errorf("%q non-blocking = %q, want %q", c.query, got, c.nonBlocking)
			}
		})
	}
}
