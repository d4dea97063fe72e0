package loadtest

import (
	"slices"
	"testing"
	"time"
)

const lowLatencyPlaylist = `#EXTM3U
#EXT-X-VERSION:10
#EXT-X-TARGETDURATION:1
#EXT-X-SERVER-CONTROL:CAN-BLOCK-RELOAD=YES,PART-HOLD-BACK=0.50000,CAN-SKIP-UNTIL=6
#EXT-X-PART-INF:PART-TARGET=0.20000
#EXT-X-MEDIA-SEQUENCE:7
#EXT-X-MAP:URI="abc_video1_init.mp4"
#EXTINF:1.00000,
abc_video1_seg7.mp4
#EXT-X-PROGRAM-DATE-TIME:2026-11-26T11:00:00.000Z
#EXT-X-PART:DURATION=0.50000,URI="abc_video1_part40.mp4",INDEPENDENT=YES
#EXT-X-PART:DURATION=0.50000,URI="abc_video1_part41.mp4"
#EXTINF:1.00000,
abc_video1_seg8.mp4
#EXT-X-PART:DURATION=0.20000,URI="abc_video1_part42.mp4",INDEPENDENT=YES
#EXT-X-PART:DURATION=0.20000,URI="multi.mp4",BYTERANGE=100@0
#EXT-X-PART:DURATION=0.20000,URI="multi.mp4",BYTERANGE=50
#EXT-X-PRELOAD-HINT:TYPE=PART,URI="abc_video1_part45.mp4"
`

func TestParseMediaPlaylist(t *testing.T) {
	p, err := parseMediaPlaylist([]byte(lowLatencyPlaylist))
	if err != nil {
		t.Fatal(err)
	}
	if !p.canBlock || !p.canSkip || p.endList || p.mapURI != "abc_video1_init.mp4" || p.mediaSequence != 7 {
		t.Errorf("header: %+v", p)
	}
	date := time.Date(2026, 11, 26, 11, 0, 0, 0, time.UTC)
	want := []playlistPart{
		{makePartKey(8, 0), "abc_video1_part40.mp4", 0, -1, date.Add(500 * time.Millisecond)},
		{makePartKey(8, 1), "abc_video1_part41.mp4", 0, -1, date.Add(time.Second)},
		{makePartKey(9, 0), "abc_video1_part42.mp4", 0, -1, date.Add(1200 * time.Millisecond)},
		{makePartKey(9, 1), "multi.mp4", 0, 100, date.Add(1400 * time.Millisecond)},
		{makePartKey(9, 2), "multi.mp4", 100, 50, date.Add(1600 * time.Millisecond)},
	}
	if len(p.parts) != len(want) {
		t.Fatalf("parts %+v, want %+v", p.parts, want)
	}
	for i, got := range p.parts {
		if got.key != want[i].key || got.uri != want[i].uri || got.rangeStart != want[i].rangeStart ||
			got.rangeLength != want[i].rangeLength || !got.end.Equal(want[i].end) {
			t.Errorf("part %d: %+v, want %+v", i, got, want[i])
		}
	}
	if p.nextKey != makePartKey(9, 3) {
		t.Errorf("next part %d/%d, want 9/3", p.nextKey.msn(), p.nextKey.index())
	}
}

func TestParseDeltaPlaylist(t *testing.T) {
	const delta = `#EXTM3U
#EXT-X-SERVER-CONTROL:CAN-BLOCK-RELOAD=YES,CAN-SKIP-UNTIL=6
#EXT-X-MEDIA-SEQUENCE:3
#EXT-X-SKIP:SKIPPED-SEGMENTS=4
#EXT-X-PART:DURATION=0.2,URI="p1.mp4"
#EXTINF:0.2,
s7.mp4
`
	p, err := parseMediaPlaylist([]byte(delta))
	if err != nil {
		t.Fatal(err)
	}
	if len(p.parts) != 1 || p.parts[0].key != makePartKey(7, 0) || !p.parts[0].end.IsZero() {
		t.Errorf("parts %+v, want p1.mp4 as 7/0 without date", p.parts)
	}
	// After a whole segment, the next part is the first of the next one.
	if p.nextKey != makePartKey(8, 0) {
		t.Errorf("next part %d/%d, want 8/0", p.nextKey.msn(), p.nextKey.index())
	}
}

func TestParseMultivariant(t *testing.T) {
	const mv = `#EXTM3U
#EXT-X-VERSION:9
#EXT-X-INDEPENDENT-SEGMENTS

#EXT-X-MEDIA:TYPE=SUBTITLES,GROUP-ID="subs",NAME="en",URI="subs.m3u8"
#EXT-X-MEDIA:TYPE=AUDIO,GROUP-ID="audio",NAME="audio2",AUTOSELECT=YES,DEFAULT=YES,URI="audio2_stream.m3u8"

#EXT-X-STREAM-INF:BANDWIDTH=2232504,CODECS="avc1.42c01f,mp4a.40.2",RESOLUTION=1280x720,AUDIO="audio"
video1_stream.m3u8
#EXT-X-STREAM-INF:BANDWIDTH=500000
low.m3u8
`
	if !isMultivariant([]byte(mv)) || isMultivariant([]byte(lowLatencyPlaylist)) {
		t.Fatal("isMultivariant does not tell the playlists apart")
	}
	m, err := parseMultivariant([]byte(mv))
	if err != nil || !slices.Equal(m.variantURIs, []string{"video1_stream.m3u8", "low.m3u8"}) || m.audioURI != "audio2_stream.m3u8" {
		t.Errorf("got %+v, %v", m, err)
	}
	if _, err := parseMultivariant([]byte("#EXTM3U\n#EXT-X-STREAM-INF:BANDWIDTH=1\n")); err == nil {
		t.Error("no error for a variant without URI")
	}
}

func TestParseRejectsGarbage(t *testing.T) {
	for _, bad := range []string{
		"",
		"<html>",
		"#EXTM3U\n#EXT-X-MEDIA-SEQUENCE:x\n",
		"#EXTM3U\n#EXT-X-PROGRAM-DATE-TIME:yesterday\n",
		"#EXTM3U\n#EXT-X-PART:DURATION=0.2\n",
		"#EXTM3U\n#EXT-X-PART:URI=\"a\",BYTERANGE=-3\n",
	} {
		if _, err := parseMediaPlaylist([]byte(bad)); err == nil {
			t.Errorf("%q: no error", bad)
		}
	}
}

func FuzzParsePlaylist(f *testing.F) {
	f.Add([]byte(lowLatencyPlaylist))
	f.Add([]byte("#EXTM3U\n#EXT-X-SKIP:SKIPPED-SEGMENTS=2\n#EXT-X-PART:URI=\"x\",BYTERANGE=5@7\n"))
	f.Add([]byte("#EXTM3U\n#EXT-X-STREAM-INF:BANDWIDTH=1\nv.m3u8\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		if isMultivariant(b) {
			if m, err := parseMultivariant(b); err == nil && (len(m.variantURIs) == 0 || slices.Contains(m.variantURIs, "")) {
				t.Error("a variant without URI")
			}
		}
		p, err := parseMediaPlaylist(b)
		if err != nil {
			return
		}
		for i, part := range p.parts {
			if part.uri == "" || part.rangeLength < -1 || part.rangeStart < 0 {
				t.Errorf("part %d: %+v", i, part)
			}
			if i > 0 && part.key <= p.parts[i-1].key {
				t.Errorf("part %d: key %d not after %d", i, part.key, p.parts[i-1].key)
			}
			if part.key >= p.nextKey {
				t.Errorf("part %d: key %d not before the next %d", i, part.key, p.nextKey)
			}
		}
	})
}

func BenchmarkParseMediaPlaylist(b *testing.B) {
	playlist := []byte(lowLatencyPlaylist)
	b.SetBytes(int64(len(playlist)))
	for b.Loop() {
		if _, err := parseMediaPlaylist(playlist); err != nil {
			b.Fatal(err)
		}
	}
}
