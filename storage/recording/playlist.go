package recording

import (
	"fmt"
	"math"
	"strings"
	"time"
)

// segmentEntry is one segment as the playlist lists it.
type segmentEntry struct {
	name     string
	duration time.Duration
	// start is the wall-clock time of the segment's first frame.
	start time.Time
	// discontinuity marks a segment that does not follow the one before
	// (one was dropped in between).
	discontinuity bool
}

const (
	tagEndlist = "#EXT-X-ENDLIST"
	tagEvent   = "#EXT-X-PLAYLIST-TYPE:EVENT"
	tagVOD     = "#EXT-X-PLAYLIST-TYPE:VOD"
)

// renderPlaylist writes the media playlist of a recording. minTarget is
// the nominal segment duration; the target duration grows past it only
// if a segment came out longer, as the rules for EXTINF require.
func renderPlaylist(entries []segmentEntry, minTarget time.Duration, ended bool) []byte {
	target := int(math.Ceil(minTarget.Seconds()))
	for _, e := range entries {
		target = max(target, int(math.Round(e.duration.Seconds())))
	}
	var b strings.Builder
	b.WriteString("#EXTM3U\n#EXT-X-VERSION:7\n")
	fmt.Fprintf(&b, "#EXT-X-TARGETDURATION:%d\n", target)
	b.WriteString("#EXT-X-MEDIA-SEQUENCE:0\n")
	if ended {
		b.WriteString(tagVOD + "\n")
	} else {
		b.WriteString(tagEvent + "\n")
	}
	b.WriteString("#EXT-X-INDEPENDENT-SEGMENTS\n")
	fmt.Fprintf(&b, "#EXT-X-MAP:URI=%q\n", initName)
	for _, e := range entries {
		if e.discontinuity {
			b.WriteString("#EXT-X-DISCONTINUITY\n")
		}
		fmt.Fprintf(&b, "#EXT-X-PROGRAM-DATE-TIME:%s\n", e.start.UTC().Format("2006-01-02T15:04:05.000Z07:00"))
		fmt.Fprintf(&b, "#EXTINF:%.5f,\n%s\n", e.duration.Seconds(), e.name)
	}
	if ended {
		b.WriteString(tagEndlist + "\n")
	}
	return []byte(b.String())
}

// finishPlaylist turns an EVENT playlist into the VOD playlist of the
// same segments. It also returns the file names the playlist lists.
func finishPlaylist(text string) (finished string, listed map[string]bool) {
	listed = map[string]bool{initName: true}
	var b strings.Builder
	for line := range strings.Lines(text) {
		trimmed := strings.TrimSpace(line)
		switch {
		case trimmed == tagEvent:
			b.WriteString(tagVOD + "\n")
			continue
		case trimmed == tagEndlist:
			continue
		case trimmed != "" && !strings.HasPrefix(trimmed, "#"):
			listed[trimmed] = true
		}
		b.WriteString(line)
		if !strings.HasSuffix(line, "\n") {
			b.WriteString("\n") // the last line of a playlist cut short
		}
	}
	b.WriteString(tagEndlist + "\n")
	return b.String(), listed
}

// isFinished tells whether a playlist has its end tag.
func isFinished(text string) bool {
	for line := range strings.Lines(text) {
		if strings.TrimSpace(line) == tagEndlist {
			return true
		}
	}
	return false
}
