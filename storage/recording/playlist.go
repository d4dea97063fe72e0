package recording

import (
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"

	"github.com/singoff/singoff/internal/m3u8"
	"github.com/singoff/singoff/media"
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

// targetDuration is the recording's EXT-X-TARGETDURATION for segments
// of nominal length: a second more than they take, so that it stays the
// same for the whole battle (RFC 8216bis 6.2.1) even when a segment runs
// a frame or two long; it grows past that only for a segment longer
// still, as the rule for EXTINF requires.
func targetDuration(nominal time.Duration, entries []segmentEntry) int {
	target := int(math.Ceil(nominal.Seconds())) + 1
	for _, e := range entries {
		target = max(target, int(math.Round(e.duration.Seconds())))
	}
	return target
}

// renderPlaylist writes the media playlist of a recording of segments of
// nominal length, with the battle's cues (sorted by start) as
// EXT-X-DATERANGE, each before the segment it starts in.
func renderPlaylist(entries []segmentEntry, nominal time.Duration, cues []media.Cue, ended bool) []byte {
	b := make([]byte, 0, 256+100*len(entries))
	b = append(b, "#EXTM3U\n#EXT-X-VERSION:7\n#EXT-X-TARGETDURATION:"...)
	b = strconv.AppendInt(b, int64(targetDuration(nominal, entries)), 10)
	b = append(b, "\n#EXT-X-MEDIA-SEQUENCE:0\n"...)
	if ended {
		b = append(b, tagVOD+"\n"...)
	} else {
		b = append(b, tagEvent+"\n"...)
	}
	b = append(b, "#EXT-X-INDEPENDENT-SEGMENTS\n"...)
	b = fmt.Appendf(b, "#EXT-X-MAP:URI=%q\n", initName)
	next := 0
	for _, e := range entries {
		b, next = m3u8.AppendDateRangesBefore(b, cues, next, e.start.Add(e.duration))
		if e.discontinuity {
			b = append(b, "#EXT-X-DISCONTINUITY\n"...)
		}
		b = m3u8.AppendProgramDateTime(b, e.start)
		b = m3u8.AppendSegment(b, e.duration, e.name)
	}
	b, _ = m3u8.AppendDateRangesBefore(b, cues, next, time.Time{})
	if ended {
		b = append(b, tagEndlist+"\n"...)
	}
	return b
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
