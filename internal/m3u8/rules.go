package m3u8

import (
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"
)

// The rules of RFC 8216bis and Apple's HLS authoring specification that
// singoff's playlists keep, checked by tests of every layer the same way.

// dateSlack is how far apart two dates written with millisecond
// precision may be and still be the same instant.
const dateSlack = 2 * time.Millisecond

// CheckMedia returns the rules a media playlist breaks (nil: none). A
// low-latency playlist has parts; a live one has no #EXT-X-ENDLIST and,
// when low-latency, a preload hint.
func CheckMedia(m *Media, lowLatency, live bool) error {
	var errs []error
	fail := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }
	if m.TargetDuration <= 0 {
		fail("no EXT-X-TARGETDURATION")
	}
	if len(m.Segments) == 0 {
		fail("no segment")
	}
	if m.Skipped == 0 && m.Map == "" {
		fail("no EXT-X-MAP")
	}
	if live == m.Endlist {
		fail("live %v but EXT-X-ENDLIST %v", live, m.Endlist)
	}
	var partTarget time.Duration
	if lowLatency {
		var err error
		if partTarget, err = seconds(0, m.PartInf["PART-TARGET"]); err != nil || partTarget <= 0 {
			fail("no PART-TARGET")
		}
		if m.ServerControl["CAN-BLOCK-RELOAD"] != "YES" {
			fail("no CAN-BLOCK-RELOAD=YES")
		}
		holdBack, err := seconds(0, m.ServerControl["PART-HOLD-BACK"])
		if err != nil || holdBack < 3*partTarget {
			fail("PART-HOLD-BACK %q under three PART-TARGET (%v)", m.ServerControl["PART-HOLD-BACK"], partTarget)
		}
		if live && m.PreloadHint == nil {
			fail("a live low-latency playlist without EXT-X-PRELOAD-HINT")
		}
		if !live && m.PreloadHint != nil {
			fail("EXT-X-PRELOAD-HINT after EXT-X-ENDLIST")
		}
	}
	checkParts := func(where string, parts []Part, closed bool) time.Duration {
		var sum time.Duration
		for i, p := range parts {
			sum += p.Duration
			if p.Gap || strings.Contains(p.URI, "gap") {
				fail("%s: gap part %s", where, p.URI)
			}
			if p.Duration > partTarget+time.Millisecond/2 {
				fail("%s: part %s of %v, over PART-TARGET %v", where, p.URI, p.Duration, partTarget)
			}
			if last := closed && i == len(parts)-1; !last && p.Duration*100 < partTarget*85 {
				fail("%s: part %s of %v, under 85%% of PART-TARGET %v", where, p.URI, p.Duration, partTarget)
			}
		}
		if len(parts) > 0 && !parts[0].Independent {
			fail("%s: its first part is not INDEPENDENT", where)
		}
		return sum
	}
	for i, s := range m.Segments {
		where := fmt.Sprintf("segment %d (%s)", s.MSN, s.URI)
		if s.Gap || strings.Contains(s.URI, "gap") {
			fail("%s: a gap", where)
		}
		if got := int(math.Round(s.Duration.Seconds())); got > m.TargetDuration {
			fail("%s: EXTINF %v over EXT-X-TARGETDURATION %d", where, s.Duration, m.TargetDuration)
		}
		if s.PDT.IsZero() {
			fail("%s: no EXT-X-PROGRAM-DATE-TIME", where)
		} else if i > 0 && !s.Discontinuity {
			prev := m.Segments[i-1]
			if d := s.PDT.Sub(prev.PDT.Add(prev.Duration)); d > dateSlack || d < -dateSlack {
				fail("%s: dated %v, %v after the end of the one before", where, s.PDT, d)
			}
		}
		if len(s.Parts) > 0 {
			if sum := checkParts(where, s.Parts, true); sum-s.Duration > dateSlack || s.Duration-sum > dateSlack {
				fail("%s: parts of %v in all, EXTINF %v", where, sum, s.Duration)
			}
		} else if lowLatency && i >= len(m.Segments)-2 {
			fail("%s: one of the last two segments without parts", where)
		}
	}
	checkParts("the segment being made", m.Parts, false)
	if len(m.DateRanges) > 0 && (len(m.Segments) == 0 || m.Segments[0].PDT.IsZero()) {
		fail("EXT-X-DATERANGE without EXT-X-PROGRAM-DATE-TIME")
	}
	seen := make(map[string]DateRange)
	for _, d := range m.DateRanges {
		if d.Class == "" {
			fail("date range %s without CLASS", d.ID)
		}
		if o, ok := seen[d.ID]; ok && !sameAttributes(o.Attrs, d.Attrs) {
			fail("date range %s twice with other attributes", d.ID)
		}
		seen[d.ID] = d
	}
	return errors.Join(errs...)
}

func sameAttributes(a, b map[string]string) bool {
	for k, v := range a {
		if w, ok := b[k]; ok && w != v {
			return false
		}
	}
	return true
}

// CheckMultivariant returns the rules a multivariant playlist breaks:
// every variant has BANDWIDTH and AVERAGE-BANDWIDTH (not above it),
// CODECS with a video and an audio codec, RESOLUTION and FRAME-RATE.
func CheckMultivariant(m *Multivariant) error {
	var errs []error
	fail := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }
	if len(m.Variants) == 0 {
		fail("no variant")
	}
	if !m.IndependentSegments {
		fail("no EXT-X-INDEPENDENT-SEGMENTS")
	}
	for _, v := range m.Variants {
		if v.Bandwidth <= 0 || v.AverageBandwidth <= 0 || v.AverageBandwidth > v.Bandwidth {
			fail("variant %s: BANDWIDTH %d, AVERAGE-BANDWIDTH %d", v.URI, v.Bandwidth, v.AverageBandwidth)
		}
		var video, audio bool
		for _, c := range v.Codecs {
			video = video || strings.HasPrefix(c, "avc1.")
			audio = audio || strings.HasPrefix(c, "mp4a.")
		}
		if !video || !audio {
			fail("variant %s: CODECS %q without avc1 and mp4a", v.URI, v.Attrs["CODECS"])
		}
		if v.Width <= 0 || v.Height <= 0 {
			fail("variant %s: no RESOLUTION", v.URI)
		}
		if _, err := strconv.ParseFloat(v.Attrs["FRAME-RATE"], 64); err != nil {
			fail("variant %s: no FRAME-RATE", v.URI)
		}
	}
	return errors.Join(errs...)
}
