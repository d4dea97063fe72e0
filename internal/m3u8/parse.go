package m3u8

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// Media is a media playlist as Parse reads it.
type Media struct {
	Version        int
	TargetDuration int
	MediaSequence  int
	PlaylistType   string
	// ServerControl and PartInf are the attributes of those tags; nil
	// without them.
	ServerControl, PartInf map[string]string
	Map                    string // EXT-X-MAP's URI
	// Skipped is EXT-X-SKIP's SKIPPED-SEGMENTS: the segments before
	// Segments[0] that a delta update left out.
	Skipped  int
	Segments []Segment
	// Parts are those after the last segment: of the segment being made.
	Parts            []Part
	PreloadHint      map[string]string
	RenditionReports []map[string]string
	DateRanges       []DateRange
	Endlist          bool
}

// Segment is one media segment of a playlist.
type Segment struct {
	MSN      int
	URI      string
	Duration time.Duration
	// PDT is its EXT-X-PROGRAM-DATE-TIME, zero without one.
	PDT           time.Time
	Parts         []Part
	Discontinuity bool
	Gap           bool
}

// Part is one EXT-X-PART.
type Part struct {
	URI         string
	Duration    time.Duration
	Independent bool
	Gap         bool
}

// DateRange is one EXT-X-DATERANGE.
type DateRange struct {
	ID, Class string
	Start     time.Time
	// Duration is -1 without a DURATION attribute.
	Duration time.Duration
	// Attrs are all its attributes, the client ones (X-…) included.
	Attrs map[string]string
	// Before is the index in Segments of the segment the tag comes
	// before (len(Segments) when it comes after them all).
	Before int
}

// Variant is one EXT-X-STREAM-INF of a multivariant playlist.
type Variant struct {
	URI                         string
	Attrs                       map[string]string
	Bandwidth, AverageBandwidth int // AverageBandwidth 0 without one
	Codecs                      []string
	Width, Height               int
	FrameRate                   float64
}

// Multivariant is a multivariant playlist as ParseMultivariant reads it.
type Multivariant struct {
	Version             int
	IndependentSegments bool
	Variants            []Variant
	// Renditions are the attributes of each EXT-X-MEDIA.
	Renditions []map[string]string
}

// ErrSyntax is wrapped by every error of Parse and ParseMultivariant.
var ErrSyntax = errors.New("m3u8: bad playlist")

func syntaxError(line int, format string, args ...any) error {
	return fmt.Errorf("%w: line %d: %s", ErrSyntax, line, fmt.Sprintf(format, args...))
}

// lines splits a playlist into its lines, which must start with
// #EXTM3U and hold no CR without LF.
func lines(text string) ([]string, error) {
	ls := strings.Split(strings.TrimSuffix(text, "\n"), "\n")
	if len(ls) == 0 || strings.TrimRight(ls[0], "\r") != "#EXTM3U" {
		return nil, syntaxError(1, "no #EXTM3U")
	}
	for i, l := range ls {
		ls[i] = strings.TrimSuffix(l, "\r")
	}
	return ls[1:], nil
}

// Parse reads a media playlist. It refuses unknown tags, malformed
// attribute lists and values, a segment without EXTINF and tags out of
// place, so a test that parses a playlist also checks its syntax.
func Parse(text string) (*Media, error) {
	ls, err := lines(text)
	if err != nil {
		return nil, err
	}
	m := &Media{}
	var seg Segment
	var inSegment bool // a segment tag came since the last URI
	hasInf := false
	for i, l := range ls {
		n := i + 2
		if l == "" {
			continue
		}
		if !strings.HasPrefix(l, "#") {
			if !hasInf {
				return nil, syntaxError(n, "URI %q without EXTINF", l)
			}
			seg.URI = l
			seg.MSN = m.MediaSequence + m.Skipped + len(m.Segments)
			m.Segments = append(m.Segments, seg)
			seg, inSegment, hasInf = Segment{}, false, false
			continue
		}
		if !strings.HasPrefix(l, "#EXT") {
			continue // a comment
		}
		name, value, _ := strings.Cut(l[1:], ":")
		switch name {
		case "EXT-X-VERSION":
			m.Version, err = atoi(n, value)
		case "EXT-X-TARGETDURATION":
			m.TargetDuration, err = atoi(n, value)
		case "EXT-X-MEDIA-SEQUENCE":
			m.MediaSequence, err = atoi(n, value)
		case "EXT-X-PLAYLIST-TYPE":
			m.PlaylistType = value
		case "EXT-X-INDEPENDENT-SEGMENTS":
		case "EXT-X-SERVER-CONTROL":
			m.ServerControl, err = Attributes(value)
		case "EXT-X-PART-INF":
			m.PartInf, err = Attributes(value)
		case "EXT-X-MAP":
			var a map[string]string
			if a, err = Attributes(value); err == nil {
				m.Map = a["URI"]
			}
		case "EXT-X-SKIP":
			var a map[string]string
			if a, err = Attributes(value); err == nil {
				m.Skipped, err = atoi(n, a["SKIPPED-SEGMENTS"])
			}
		case "EXT-X-PROGRAM-DATE-TIME":
			inSegment = true
			seg.PDT, err = time.Parse(time.RFC3339Nano, value)
		case "EXT-X-DISCONTINUITY":
			inSegment = true
			seg.Discontinuity = true
		case "EXT-X-GAP":
			inSegment = true
			seg.Gap = true
		case "EXTINF":
			inSegment, hasInf = true, true
			d, _, _ := strings.Cut(value, ",")
			seg.Duration, err = seconds(n, d)
		case "EXT-X-PART":
			inSegment = true
			var p Part
			if p, err = parsePart(n, value); err == nil {
				seg.Parts = append(seg.Parts, p)
			}
		case "EXT-X-PRELOAD-HINT":
			m.PreloadHint, err = Attributes(value)
		case "EXT-X-RENDITION-REPORT":
			var a map[string]string
			if a, err = Attributes(value); err == nil {
				m.RenditionReports = append(m.RenditionReports, a)
			}
		case "EXT-X-DATERANGE":
			var d DateRange
			if d, err = parseDateRange(n, value); err == nil {
				d.Before = len(m.Segments)
				m.DateRanges = append(m.DateRanges, d)
			}
		case "EXT-X-ENDLIST":
			m.Endlist = true
		default:
			return nil, syntaxError(n, "unknown tag %s", name)
		}
		if err != nil {
			return nil, syntaxError(n, "%s: %v", name, err)
		}
	}
	if hasInf {
		return nil, syntaxError(len(ls)+1, "EXTINF without a URI")
	}
	if inSegment {
		if seg.PDT != (time.Time{}) || seg.Discontinuity || seg.Gap {
			return nil, syntaxError(len(ls)+1, "segment tags after the last segment")
		}
		m.Parts = seg.Parts
	}
	return m, nil
}

// ParseMultivariant reads a multivariant playlist.
func ParseMultivariant(text string) (*Multivariant, error) {
	ls, err := lines(text)
	if err != nil {
		return nil, err
	}
	m := &Multivariant{}
	var pending *Variant
	for i, l := range ls {
		n := i + 2
		if l == "" {
			continue
		}
		if !strings.HasPrefix(l, "#") {
			if pending == nil {
				return nil, syntaxError(n, "URI %q without EXT-X-STREAM-INF", l)
			}
			pending.URI = l
			m.Variants = append(m.Variants, *pending)
			pending = nil
			continue
		}
		if !strings.HasPrefix(l, "#EXT") {
			continue
		}
		name, value, _ := strings.Cut(l[1:], ":")
		switch name {
		case "EXT-X-VERSION":
			m.Version, err = atoi(n, value)
		case "EXT-X-INDEPENDENT-SEGMENTS":
			m.IndependentSegments = true
		case "EXT-X-MEDIA":
			var a map[string]string
			if a, err = Attributes(value); err == nil {
				m.Renditions = append(m.Renditions, a)
			}
		case "EXT-X-STREAM-INF":
			var v Variant
			if v, err = parseVariant(n, value); err == nil {
				pending = &v
			}
		default:
			return nil, syntaxError(n, "unknown tag %s", name)
		}
		if err != nil {
			return nil, syntaxError(n, "%s: %v", name, err)
		}
	}
	if pending != nil {
		return nil, syntaxError(len(ls)+1, "EXT-X-STREAM-INF without a URI")
	}
	return m, nil
}

func parsePart(line int, value string) (Part, error) {
	a, err := Attributes(value)
	if err != nil {
		return Part{}, err
	}
	p := Part{URI: a["URI"], Independent: a["INDEPENDENT"] == "YES", Gap: a["GAP"] == "YES"}
	if p.URI == "" {
		return p, syntaxError(line, "part without URI")
	}
	p.Duration, err = seconds(line, a["DURATION"])
	return p, err
}

func parseDateRange(line int, value string) (DateRange, error) {
	a, err := Attributes(value)
	if err != nil {
		return DateRange{}, err
	}
	d := DateRange{ID: a["ID"], Class: a["CLASS"], Attrs: a, Duration: -1}
	if d.ID == "" {
		return d, syntaxError(line, "date range without ID")
	}
	if d.Start, err = time.Parse(time.RFC3339Nano, a["START-DATE"]); err != nil {
		return d, err
	}
	if s, ok := a["DURATION"]; ok {
		if d.Duration, err = seconds(line, s); err != nil {
			return d, err
		}
	}
	return d, nil
}

func parseVariant(line int, value string) (Variant, error) {
	a, err := Attributes(value)
	if err != nil {
		return Variant{}, err
	}
	v := Variant{Attrs: a}
	if v.Bandwidth, err = atoi(line, a["BANDWIDTH"]); err != nil {
		return v, err
	}
	if s, ok := a["AVERAGE-BANDWIDTH"]; ok {
		if v.AverageBandwidth, err = atoi(line, s); err != nil {
			return v, err
		}
	}
	if s, ok := a["CODECS"]; ok {
		v.Codecs = strings.Split(s, ",")
	}
	if s, ok := a["RESOLUTION"]; ok {
		if _, err := fmt.Sscanf(s, "%dx%d", &v.Width, &v.Height); err != nil {
			return v, syntaxError(line, "RESOLUTION %q", s)
		}
	}
	if s, ok := a["FRAME-RATE"]; ok {
		if v.FrameRate, err = strconv.ParseFloat(s, 64); err != nil {
			return v, err
		}
	}
	return v, nil
}

// Attributes reads an attribute list (RFC 8216bis 4.2): NAME=value
// pairs separated by commas, quoted-string values unquoted. It refuses
// a name that is not upper case, a name given twice, an unterminated
// quoted string and an empty unquoted value.
func Attributes(s string) (map[string]string, error) {
	a := make(map[string]string)
	for s != "" {
		name, rest, ok := strings.Cut(s, "=")
		if !ok || !validAttributeName(name) {
			return nil, fmt.Errorf("attribute name %q", name)
		}
		if _, dup := a[name]; dup {
			return nil, fmt.Errorf("attribute %s twice", name)
		}
		var value string
		if strings.HasPrefix(rest, `"`) {
			end := strings.IndexByte(rest[1:], '"')
			if end < 0 {
				return nil, fmt.Errorf("attribute %s: unterminated quoted string", name)
			}
			value, rest = rest[1:1+end], rest[2+end:]
			if rest != "" && rest[0] != ',' {
				return nil, fmt.Errorf("attribute %s: text after its quoted string", name)
			}
			rest = strings.TrimPrefix(rest, ",")
		} else {
			value, rest, _ = strings.Cut(rest, ",")
			if value == "" {
				return nil, fmt.Errorf("attribute %s: empty value", name)
			}
		}
		a[name] = value
		s = rest
	}
	return a, nil
}

func atoi(line int, s string) (int, error) {
	n, err := strconv.Atoi(s)
	if err != nil || n < 0 {
		return 0, syntaxError(line, "integer %q", s)
	}
	return n, nil
}

func seconds(line int, s string) (time.Duration, error) {
	f, err := strconv.ParseFloat(s, 64)
	if err != nil || f < 0 {
		return 0, syntaxError(line, "seconds %q", s)
	}
	return time.Duration(f * float64(time.Second)), nil
}
