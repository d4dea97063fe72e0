package m3u8

import (
	"errors"
	"maps"
	"strings"
	"testing"
	"time"

	"github.com/singoff/singoff/media"
)

var t0 = time.Date(2026, 12, 1, 20, 0, 0, 0, time.UTC)

func TestAppendDateRange(t *testing.T) {
	for _, c := range []struct {
		name string
		cue  media.Cue
		want string
	}{
		{
			name: "turn",
			cue:  media.Cue{ID: "turn-2-1", Class: "com.singoff.turn", Start: t0.Add(1500 * time.Millisecond), Duration: 90 * time.Second, Data: map[string]string{"SLOT": "1", "ROUND": "2"}},
			want: `#EXT-X-DATERANGE:ID="turn-2-1",CLASS="com.singoff.turn",START-DATE="2026-12-01T20:00:01.500Z",DURATION=90.000,X-ROUND="2",X-SLOT="1"` + "\n",
		},
		{
			name: "open-ended, in another zone",
			cue:  media.Cue{ID: "result", Class: "com.singoff.result", Start: t0.In(time.FixedZone("x", 3600))},
			want: `#EXT-X-DATERANGE:ID="result",CLASS="com.singoff.result",START-DATE="2026-12-01T20:00:00.000Z"` + "\n",
		},
		{
			name: "values made quotable",
			cue:  media.Cue{ID: "x", Class: "c", Start: t0, Data: map[string]string{"NAME": "Ann \"the voice\"\r\nBee"}},
			want: `#EXT-X-DATERANGE:ID="x",CLASS="c",START-DATE="2026-12-01T20:00:00.000Z",X-NAME="Ann 'the voice'  Bee"` + "\n",
		},
	} {
		t.Run(c.name, func(t *testing.T) {
			if !ValidCue(c.cue) {
				t.Fatal("not valid")
			}
			got := string(AppendDateRange(nil, c.cue))
			if got != c.want {
				t.Errorf("got  %s\nwant %s", got, c.want)
			}
			// It reads back.
			a, err := Attributes(strings.TrimPrefix(strings.TrimSuffix(got, "\n"), "#EXT-X-DATERANGE:"))
			if err != nil || a["ID"] != c.cue.ID {
				t.Errorf("reads back as %v, %v", a, err)
			}
		})
	}
}

func TestValidCue(t *testing.T) {
	ok := media.Cue{ID: "a", Class: "c", Start: t0, Data: map[string]string{"A-1": "x"}}
	for _, c := range []struct {
		name   string
		change func(*media.Cue)
	}{
		{"no ID", func(c *media.Cue) { c.ID = "" }},
		{"quote in ID", func(c *media.Cue) { c.ID = `a"b` }},
		{"newline in class", func(c *media.Cue) { c.Class = "a\nb" }},
		{"no class", func(c *media.Cue) { c.Class = "" }},
		{"no start", func(c *media.Cue) { c.Start = time.Time{} }},
		{"negative duration", func(c *media.Cue) { c.Duration = -1 }},
		{"lower-case name", func(c *media.Cue) { c.Data = map[string]string{"slot": "1"} }},
		{"empty name", func(c *media.Cue) { c.Data = map[string]string{"": "1"} }},
		{"name with =", func(c *media.Cue) { c.Data = map[string]string{"A=B": "1"} }},
	} {
		t.Run(c.name, func(t *testing.T) {
			cue := ok
			cue.Data = maps.Clone(ok.Data)
			c.change(&cue)
			if ValidCue(cue) {
				t.Errorf("%+v accepted", cue)
			}
		})
	}
	if !ValidCue(ok) {
		t.Error("a good cue refused")
	}
}

func TestCues(t *testing.T) {
	var l Cues
	data := map[string]string{"ROUND": "1"}
	for _, c := range []struct {
		cue  media.Cue
		kept bool
	}{
		{media.Cue{ID: "b", Class: "c", Start: t0.Add(time.Second), Data: data}, true},
		{media.Cue{ID: "a", Class: "c", Start: t0.Add(time.Second)}, true},
		{media.Cue{ID: "z", Class: "c", Start: t0}, true},
		{media.Cue{ID: "b", Class: "c", Start: t0}, false}, // a repeated ID
		{media.Cue{ID: "", Class: "c", Start: t0}, false},
	} {
		if got := l.Add(c.cue); got != c.kept {
			t.Errorf("Add(%s) = %v, want %v", c.cue.ID, got, c.kept)
		}
	}
	data["ROUND"] = "changed" // the list keeps its own copy
	var ids []string
	for _, c := range l.List() {
		ids = append(ids, c.ID)
	}
	if strings.Join(ids, ",") != "z,a,b" || l.List()[2].Data["ROUND"] != "1" {
		t.Errorf("list %v (data %v), want z,a,b by start then ID", ids, l.List()[2].Data)
	}
	for i := len(l.List()); i < maxCues; i++ {
		l.Add(media.Cue{ID: "n" + time.Duration(i).String(), Class: "c", Start: t0})
	}
	if l.Add(media.Cue{ID: "one-too-many", Class: "c", Start: t0}) || len(l.List()) != maxCues {
		t.Errorf("%d cues kept, want at most %d", len(l.List()), maxCues)
	}
}

func TestAttributes(t *testing.T) {
	for _, c := range []struct {
		name, in string
		want     map[string]string
		err      bool
	}{
		{name: "mixed", in: `URI="a,b.mp4",DURATION=0.20000,INDEPENDENT=YES`, want: map[string]string{"URI": "a,b.mp4", "DURATION": "0.20000", "INDEPENDENT": "YES"}},
		{name: "empty quoted", in: `A=""`, want: map[string]string{"A": ""}},
		{name: "empty", in: ``, want: map[string]string{}},
		{name: "lower-case name", in: `uri="a"`, err: true},
		{name: "twice", in: `A=1,A=2`, err: true},
		{name: "unterminated", in: `A="x`, err: true},
		{name: "text after quotes", in: `A="x"y`, err: true},
		{name: "empty value", in: `A=,B=1`, err: true},
		{name: "no value", in: `A`, err: true},
	} {
		t.Run(c.name, func(t *testing.T) {
			got, err := Attributes(c.in)
			if (err != nil) != c.err || !c.err && !maps.Equal(got, c.want) {
				t.Errorf("Attributes(%q) = %v, %v; want %v (error %v)", c.in, got, err, c.want, c.err)
			}
		})
	}
}

// good is a live low-latency playlist that keeps every rule.
const good = `#EXTM3U
#EXT-X-VERSION:10
#EXT-X-TARGETDURATION:1
#EXT-X-SERVER-CONTROL:CAN-BLOCK-RELOAD=YES,CAN-SKIP-UNTIL=6.00000,PART-HOLD-BACK=0.60000
#EXT-X-PART-INF:PART-TARGET=0.20000
#EXT-X-MEDIA-SEQUENCE:7
#EXT-X-MAP:URI="init.mp4"
#EXT-X-DATERANGE:ID="turn-1-1",CLASS="com.singoff.turn",START-DATE="2026-12-01T20:00:00.500Z",DURATION=90.000,X-ROUND="1"
#EXT-X-PROGRAM-DATE-TIME:2026-12-01T20:00:00.000Z
#EXT-X-PART:DURATION=0.20000,URI="p0.mp4",INDEPENDENT=YES
#EXT-X-PART:DURATION=0.20000,URI="p1.mp4"
#EXT-X-PART:DURATION=0.20000,URI="p2.mp4"
#EXT-X-PART:DURATION=0.20000,URI="p3.mp4"
#EXT-X-PART:DURATION=0.20000,URI="p4.mp4"
#EXTINF:1.00000,
s7.mp4
#EXT-X-PROGRAM-DATE-TIME:2026-12-01T20:00:01.000Z
#EXT-X-PART:DURATION=0.20000,URI="p5.mp4",INDEPENDENT=YES
#EXT-X-PART:DURATION=0.20000,URI="p6.mp4"
#EXT-X-PART:DURATION=0.20000,URI="p7.mp4"
#EXT-X-PART:DURATION=0.20000,URI="p8.mp4"
#EXT-X-PART:DURATION=0.20000,URI="p9.mp4"
#EXTINF:1.00000,
s8.mp4
#EXT-X-PART:DURATION=0.20000,URI="p10.mp4",INDEPENDENT=YES
#EXT-X-PRELOAD-HINT:TYPE=PART,URI="p11.mp4"
#EXT-X-RENDITION-REPORT:URI="360p.m3u8",LAST-MSN=9,LAST-PART=0
`

func TestParse(t *testing.T) {
	m, err := Parse(good)
	if err != nil {
		t.Fatal(err)
	}
	if err := CheckMedia(m, true, true); err != nil {
		t.Fatalf("a good playlist breaks rules: %v", err)
	}
	type summary struct {
		target, sequence, segments, lastMSN, parts, dateRanges, before int
		pdt                                                            time.Time
		hint                                                           string
	}
	got := summary{m.TargetDuration, m.MediaSequence, len(m.Segments), m.Segments[1].MSN, len(m.Parts), len(m.DateRanges), m.DateRanges[0].Before, m.Segments[1].PDT, m.PreloadHint["URI"]}
	want := summary{1, 7, 2, 8, 1, 1, 0, t0.Add(time.Second), "p11.mp4"}
	if got != want {
		t.Errorf("parsed %+v, want %+v", got, want)
	}
	for _, bad := range []string{
		"",
		"#EXT-X-VERSION:3\n",
		"#EXTM3U\n#EXT-X-UNKNOWN:1\n",
		"#EXTM3U\ns.mp4\n",
		"#EXTM3U\n#EXTINF:1.0,\n",
		"#EXTM3U\n#EXT-X-PART:DURATION=0.2\n",
		"#EXTM3U\n#EXT-X-TARGETDURATION:x\n",
		"#EXTM3U\n#EXT-X-PROGRAM-DATE-TIME:yesterday\n#EXTINF:1,\ns.mp4\n",
		"#EXTM3U\n#EXT-X-DATERANGE:CLASS=\"c\",START-DATE=\"2026-12-01T20:00:00Z\"\n",
	} {
		if _, err := Parse(bad); !errors.Is(err, ErrSyntax) {
			t.Errorf("Parse(%q): %v, want ErrSyntax", bad, err)
		}
	}
}

// Each rule the checker knows fails a playlist that breaks it.
func TestCheckMediaCatches(t *testing.T) {
	for _, c := range []struct {
		name             string
		from, to         string // good with from replaced by to
		lowLatency, live bool
		want             string // in the error
	}{
		{"target too short", "#EXTINF:1.00000,\ns8", "#EXTINF:1.60000,\ns8", true, true, "over EXT-X-TARGETDURATION"},
		{"part over target", `DURATION=0.20000,URI="p3.mp4"`, `DURATION=0.23400,URI="p3.mp4"`, true, true, "over PART-TARGET"},
		{"part far under target", `DURATION=0.20000,URI="p3.mp4"`, `DURATION=0.10000,URI="p3.mp4"`, true, true, "under 85%"},
		{"hold-back too short", "PART-HOLD-BACK=0.60000", "PART-HOLD-BACK=0.50000", true, true, "PART-HOLD-BACK"},
		{"no blocking", "CAN-BLOCK-RELOAD=YES,", "", true, true, "CAN-BLOCK-RELOAD"},
		{"a gap", "s7.mp4", "gap.mp4", true, true, "gap"},
		{"no date", "#EXT-X-PROGRAM-DATE-TIME:2026-12-01T20:00:01.000Z\n", "", true, true, "no EXT-X-PROGRAM-DATE-TIME"},
		{"dates apart", "20:00:01.000Z", "20:00:01.100Z", true, true, "after the end of the one before"},
		{"no preload hint", "#EXT-X-PRELOAD-HINT:TYPE=PART,URI=\"p11.mp4\"\n", "", true, true, "PRELOAD-HINT"},
		{"ended while live", "#EXT-X-RENDITION-REPORT", "#EXT-X-ENDLIST\n#EXT-X-RENDITION-REPORT", true, true, "ENDLIST"},
		{"not ended", "", "", true, false, "ENDLIST"},
		{"first part not independent", `URI="p5.mp4",INDEPENDENT=YES`, `URI="p5.mp4"`, true, true, "INDEPENDENT"},
		{"parts short of the segment", "#EXTINF:1.00000,\ns8", "#EXTINF:0.90000,\ns8", true, true, "parts of"},
		{"no map", "#EXT-X-MAP:URI=\"init.mp4\"\n", "", true, true, "EXT-X-MAP"},
		{"no class", `CLASS="com.singoff.turn",`, "", true, true, "without CLASS"},
	} {
		t.Run(c.name, func(t *testing.T) {
			text := good
			if c.from != "" {
				if !strings.Contains(text, c.from) {
					t.Fatalf("the playlist lacks %q", c.from)
				}
				text = strings.Replace(text, c.from, c.to, 1)
			}
			m, err := Parse(text)
			if err != nil {
				t.Fatal(err)
			}
			err = CheckMedia(m, c.lowLatency, c.live)
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Errorf("CheckMedia: %v, want an error about %q", err, c.want)
			}
		})
	}
}

func TestCheckMultivariant(t *testing.T) {
	const good = "#EXTM3U\n#EXT-X-VERSION:10\n#EXT-X-INDEPENDENT-SEGMENTS\n" +
		`#EXT-X-STREAM-INF:BANDWIDTH=2800000,AVERAGE-BANDWIDTH=2700000,CODECS="avc1.64001f,mp4a.40.2",RESOLUTION=1280x720,FRAME-RATE=30.000` + "\n720p.m3u8\n"
	for _, c := range []struct{ name, from, to string }{
		{"good", "", ""},
		{"no average", "AVERAGE-BANDWIDTH=2700000,", ""},
		{"average above peak", "AVERAGE-BANDWIDTH=2700000", "AVERAGE-BANDWIDTH=2900000"},
		{"video alone", `avc1.64001f,mp4a.40.2`, "avc1.64001f"},
		{"no resolution", "RESOLUTION=1280x720,", ""},
		{"no frame rate", ",FRAME-RATE=30.000", ""},
		{"no independent segments", "#EXT-X-INDEPENDENT-SEGMENTS\n", ""},
	} {
		t.Run(c.name, func(t *testing.T) {
			m, err := ParseMultivariant(strings.Replace(good, c.from, c.to, 1))
			if err != nil {
				t.Fatal(err)
			}
			if err := CheckMultivariant(m); (err == nil) != (c.name == "good") {
				t.Errorf("CheckMultivariant: %v", err)
			}
		})
	}
}
