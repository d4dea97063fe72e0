package hls

import (
	"fmt"
	"strconv"
	"sync"
	"time"

	"github.com/bluenviron/gohlslib/v2/pkg/playlist"

	"github.com/singoff/singoff/internal/m3u8"
	"github.com/singoff/singoff/media"
)

// gohlslib writes each rung's media playlist; singoff serves its own
// version of it, built from gohlslib's, that keeps the rules of Apple's
// HLS authoring specification (RFC 8216bis) where gohlslib does not:
//
//   - real segments only: gohlslib lists seven EXT-X-GAP placeholders
//     (gap.mp4, which nothing serves) before the first segment until the
//     window fills, and some players (Shaka) refuse them;
//   - EXT-X-TARGETDURATION and PART-TARGET fixed for the whole battle
//     (gohlslib recomputes them from the segments and parts listed);
//   - PART-HOLD-BACK three times PART-TARGET (gohlslib: 2.5 times);
//   - an EXT-X-PROGRAM-DATE-TIME on every segment (gohlslib: the last
//     two);
//   - the battle's cues as EXT-X-DATERANGE, rendition reports for the
//     other rungs, and #EXT-X-ENDLIST once the battle has ended.
//
// Media sequence numbers stay gohlslib's, so that blocking requests pass
// through to it unchanged.

// gohlslibFirstMSN is the media sequence number of the first segment
// gohlslib makes: it numbers its seven placeholders 0–6.
const gohlslibFirstMSN = 7

// The playlist's fixed durations.
const (
	// targetDuration is EXT-X-TARGETDURATION, in whole seconds: the
	// segments are one second long (a keyframe every 30 frames, cut at
	// the first one past segmentDuration).
	targetDuration = 1
	// partTarget is PART-TARGET: parts of six frames at 30 fps.
	partTarget = partDuration
	// partHoldBack is PART-HOLD-BACK, three part targets (Apple's rule).
	partHoldBack = 3 * partTarget
	// canSkipUntil is CAN-SKIP-UNTIL, six target durations (RFC 8216bis
	// 4.4.3.8), as gohlslib computes the delta updates it makes.
	canSkipUntil = 6 * targetDuration * time.Second
)

// livePart is one part of a media playlist.
type livePart struct {
	uri         string
	duration    time.Duration
	independent bool
}

// liveSegment is one segment of a media playlist.
type liveSegment struct {
	msn      int
	uri      string
	duration time.Duration
	start    time.Time // its EXT-X-PROGRAM-DATE-TIME
	parts    []livePart
}

// mediaPlaylist is one rung's media playlist: what gohlslib lists, less
// its placeholders.
type mediaPlaylist struct {
	// mediaSequence is the number of the first segment, skipped ones
	// included; skipped counts the segments a delta update leaves out.
	mediaSequence, skipped int
	segments               []liveSegment
	// parts are those of the segment being made; preloadHint names the
	// next one ("" once the battle has ended).
	parts       []livePart
	preloadHint string
	ended       bool
}

// nextMSN is the number of the segment after the last complete one:
// the segment being made.
func (p *mediaPlaylist) nextMSN() int {
	return p.mediaSequence + p.skipped + len(p.segments)
}

// lastPart is the newest part listed: its segment's number and its
// index in the segment; ok is false without parts.
func (p *mediaPlaylist) lastPart() (msn, index int, ok bool) {
	if n := len(p.parts); n > 0 {
		return p.nextMSN(), n - 1, true
	}
	if n := len(p.segments); n > 0 && len(p.segments[n-1].parts) > 0 {
		return p.segments[n-1].msn, len(p.segments[n-1].parts) - 1, true
	}
	return 0, 0, false
}

// segmentStarts remembers when each segment of a rung starts: gohlslib
// dates only the last two segments of its playlists, singoff every one.
// A segment is the newest one (and dated) in gohlslib's playlist for a
// second after it closes, so its date is nearly always known before it
// is needed; otherwise it is counted back from a later one.
type segmentStarts struct {
	mu     sync.Mutex
	starts map[int]time.Time // by media sequence number
}

// fill gives every segment its start: the one gohlslib dated it with, a
// remembered one, or one counted from a neighbour's. It remembers those
// it learnt and forgets those before segments[0].
func (s *segmentStarts) fill(segments []liveSegment, dated []time.Time) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.starts == nil {
		s.starts = make(map[int]time.Time)
	}
	for i := range segments {
		if !dated[i].IsZero() {
			s.starts[segments[i].msn] = dated[i]
		}
		segments[i].start = s.starts[segments[i].msn]
	}
	for i := len(segments) - 2; i >= 0; i-- {
		if segments[i].start.IsZero() && !segments[i+1].start.IsZero() {
			segments[i].start = segments[i+1].start.Add(-segments[i].duration)
		}
	}
	for i := 1; i < len(segments); i++ {
		if segments[i].start.IsZero() && !segments[i-1].start.IsZero() {
			segments[i].start = segments[i-1].start.Add(segments[i-1].duration)
		}
	}
	for i := range segments {
		s.starts[segments[i].msn] = segments[i].start
	}
	if len(segments) > 0 {
		for msn := range s.starts {
			if msn < segments[0].msn {
				delete(s.starts, msn)
			}
		}
	}
}

// fromGohlslib reads a media playlist gohlslib wrote and drops its
// placeholders; starts dates the segments.
func fromGohlslib(body []byte, starts *segmentStarts) (mediaPlaylist, error) {
	var pl playlist.Media
	if err := pl.Unmarshal(body); err != nil {
		return mediaPlaylist{}, fmt.Errorf("hls: reading gohlslib's media playlist: %w", err)
	}
	first := max(pl.MediaSequence, gohlslibFirstMSN)
	msn := pl.MediaSequence
	if pl.Skip != nil {
		msn += pl.Skip.SkippedSegments
	}
	p := mediaPlaylist{mediaSequence: first, skipped: max(msn-first, 0)}
	var dated []time.Time
	for _, seg := range pl.Segments {
		switch {
		case seg.Gap && msn < first:
		case seg.Gap || msn < first:
			return mediaPlaylist{}, fmt.Errorf("hls: gohlslib listed segment %d (gap %v) where %d comes first", msn, seg.Gap, first)
		default:
			s := liveSegment{msn: msn, uri: seg.URI, duration: seg.Duration, parts: fromGohlslibParts(seg.Parts)}
			p.segments = append(p.segments, s)
			var d time.Time
			if seg.DateTime != nil {
				d = *seg.DateTime
			}
			dated = append(dated, d)
		}
		msn++
	}
	starts.fill(p.segments, dated)
	p.parts = fromGohlslibParts(pl.Parts)
	if pl.PreloadHint != nil {
		p.preloadHint = pl.PreloadHint.URI
	}
	return p, nil
}

func fromGohlslibParts(parts []*playlist.MediaPart) []livePart {
	var out []livePart
	for _, part := range parts {
		out = append(out, livePart{uri: part.URI, duration: part.Duration, independent: part.Independent})
	}
	return out
}

// render writes p as singoff serves it: mapURI is the rung's init file,
// cues the battle's events (sorted by start), reports the media
// playlists of the other rungs: every rung is cut at the same frames, so
// their newest part (EXT-X-RENDITION-REPORT) is this playlist's own.
func (p *mediaPlaylist) render(mapURI string, cues []media.Cue, reports []string) []byte {
	b := make([]byte, 0, 2048)
	b = append(b, "#EXTM3U\n#EXT-X-VERSION:10\n#EXT-X-TARGETDURATION:"...)
	b = strconv.AppendInt(b, targetDuration, 10)
	b = append(b, "\n#EXT-X-SERVER-CONTROL:CAN-BLOCK-RELOAD=YES,CAN-SKIP-UNTIL="...)
	b = m3u8.AppendSeconds(b, canSkipUntil)
	b = append(b, ",PART-HOLD-BACK="...)
	b = m3u8.AppendSeconds(b, partHoldBack)
	b = append(b, "\n#EXT-X-PART-INF:PART-TARGET="...)
	b = m3u8.AppendSeconds(b, partTarget)
	b = append(b, "\n#EXT-X-MEDIA-SEQUENCE:"...)
	b = strconv.AppendInt(b, int64(p.mediaSequence), 10)
	b = append(b, '\n')
	if p.skipped > 0 {
		// A delta update leaves EXT-X-MAP out with the segments it
		// skips, as gohlslib does.
		b = append(b, "#EXT-X-SKIP:SKIPPED-SEGMENTS="...)
		b = strconv.AppendInt(b, int64(p.skipped), 10)
		b = append(b, '\n')
	} else {
		b = append(b, `#EXT-X-MAP:URI="`...)
		b = append(b, mapURI...)
		b = append(b, "\"\n"...)
	}
	next := 0
	for _, seg := range p.segments {
		b, next = m3u8.AppendDateRangesBefore(b, cues, next, seg.start.Add(seg.duration))
		b = m3u8.AppendProgramDateTime(b, seg.start)
		b = appendParts(b, seg.parts)
		b = m3u8.AppendSegment(b, seg.duration, seg.uri)
	}
	b, _ = m3u8.AppendDateRangesBefore(b, cues, next, time.Time{})
	b = appendParts(b, p.parts)
	if p.ended {
		return append(b, "#EXT-X-ENDLIST\n"...)
	}
	if p.preloadHint != "" {
		b = append(b, `#EXT-X-PRELOAD-HINT:TYPE=PART,URI="`...)
		b = append(b, p.preloadHint...)
		b = append(b, "\"\n"...)
	}
	if msn, part, ok := p.lastPart(); ok {
		for _, uri := range reports {
			b = append(b, `#EXT-X-RENDITION-REPORT:URI="`...)
			b = append(b, uri...)
			b = append(b, `",LAST-MSN=`...)
			b = strconv.AppendInt(b, int64(msn), 10)
			b = append(b, ",LAST-PART="...)
			b = strconv.AppendInt(b, int64(part), 10)
			b = append(b, '\n')
		}
	}
	return b
}

func appendParts(b []byte, parts []livePart) []byte {
	for _, part := range parts {
		b = append(b, "#EXT-X-PART:DURATION="...)
		b = m3u8.AppendSeconds(b, part.duration)
		b = append(b, `,URI="`...)
		b = append(b, part.uri...)
		b = append(b, '"')
		if part.independent {
			b = append(b, ",INDEPENDENT=YES"...)
		}
		b = append(b, '\n')
	}
	return b
}
