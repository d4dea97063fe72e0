// Package m3u8 writes the HLS tags that the live muxer (hls) and the
// recorder (storage/recording) both write, the same way: dates and
// EXT-X-DATERANGE for the battle's cues. It also reads playlists for
// tests (Parse), strictly enough to check the rules they follow.
package m3u8

import (
	"maps"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/singoff/singoff/media"
)

// DateLayout is how playlists write dates (EXT-X-PROGRAM-DATE-TIME,
// START-DATE): ISO 8601 with milliseconds, in UTC.
const DateLayout = "2006-01-02T15:04:05.000Z07:00"

// AppendDate appends t as a playlist date.
func AppendDate(b []byte, t time.Time) []byte {
	return t.UTC().AppendFormat(b, DateLayout)
}

// AppendProgramDateTime appends the EXT-X-PROGRAM-DATE-TIME line of a
// segment starting at t.
func AppendProgramDateTime(b []byte, t time.Time) []byte {
	b = append(b, "#EXT-X-PROGRAM-DATE-TIME:"...)
	b = AppendDate(b, t)
	return append(b, '\n')
}

// AppendSegment appends a segment's EXTINF line and URI.
func AppendSegment(b []byte, d time.Duration, uri string) []byte {
	b = append(b, "#EXTINF:"...)
	b = AppendSeconds(b, d)
	b = append(b, ",\n"...)
	b = append(b, uri...)
	return append(b, '\n')
}

// AppendSeconds appends d in seconds with five decimals, as EXTINF and
// DURATION attributes write it.
func AppendSeconds(b []byte, d time.Duration) []byte {
	return strconv.AppendFloat(b, d.Seconds(), 'f', 5, 64)
}

// ValidCue tells whether c can be written as an EXT-X-DATERANGE: an ID
// and a CLASS of printable text without quotes, a START-DATE, no
// negative duration, and client attribute names of upper-case letters,
// digits and '-' (RFC 8216bis 4.4.5.1). Values are made fit by
// AppendDateRange.
func ValidCue(c media.Cue) bool {
	if !validQuoted(c.ID) || !validQuoted(c.Class) || c.Start.IsZero() || c.Duration < 0 {
		return false
	}
	for name := range c.Data {
		if !validAttributeName(name) {
			return false
		}
	}
	return true
}

// AppendDateRange appends the EXT-X-DATERANGE line (with its newline) of
// a cue that ValidCue accepts: ID, CLASS, START-DATE, DURATION (left out
// when the cue is open-ended) and the data as X- attributes in the order
// of their names. Quotes and line breaks in the data's values become
// apostrophes and spaces.
func AppendDateRange(b []byte, c media.Cue) []byte {
	b = append(b, `#EXT-X-DATERANGE:ID="`...)
	b = append(b, c.ID...)
	b = append(b, `",CLASS="`...)
	b = append(b, c.Class...)
	b = append(b, `",START-DATE="`...)
	b = AppendDate(b, c.Start)
	b = append(b, '"')
	if c.Duration > 0 {
		b = append(b, ",DURATION="...)
		b = strconv.AppendFloat(b, c.Duration.Seconds(), 'f', 3, 64)
	}
	names := make([]string, 0, len(c.Data))
	for name := range c.Data {
		names = append(names, name)
	}
	slices.Sort(names)
	for _, name := range names {
		b = append(b, ",X-"...)
		b = append(b, name...)
		b = append(b, `="`...)
		b = appendQuotable(b, c.Data[name])
		b = append(b, '"')
	}
	return append(b, '\n')
}

func validQuoted(s string) bool {
	if s == "" {
		return false
	}
	for _, r := range s {
		if r == '"' || r < ' ' || r == 0x7f {
			return false
		}
	}
	return true
}

func validAttributeName(s string) bool {
	if s == "" {
		return false
	}
	for _, r := range s {
		if !(r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-') {
			return false
		}
	}
	return true
}

// appendQuotable appends s with what a quoted-string cannot hold (a
// double quote, CR, LF) replaced.
func appendQuotable(b []byte, s string) []byte {
	for _, r := range s {
		switch {
		case r == '"':
			b = append(b, '\'')
		case r < ' ' || r == 0x7f:
			b = append(b, ' ')
		default:
			b = append(b, string(r)...)
		}
	}
	return b
}

// maxCues bounds the cues a battle keeps: nine rounds of two turns and a
// result each, and the winner, are 28.
const maxCues = 256

// Cues holds a battle's cues, sorted by start, for its playlists to
// write as EXT-X-DATERANGE. Readers take the current list without a
// lock; a cue makes a new one. The zero value is empty.
type Cues struct {
	mu     sync.Mutex
	sorted atomic.Pointer[[]media.Cue]
}

// Add keeps c, unless ValidCue refuses it, its ID is known already (a
// date range keeps its attributes once published) or the list is full.
// It tells whether c was kept.
func (l *Cues) Add(c media.Cue) bool {
	if !ValidCue(c) {
		return false
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	old := l.List()
	if len(old) >= maxCues || slices.ContainsFunc(old, func(o media.Cue) bool { return o.ID == c.ID }) {
		return false
	}
	c.Data = maps.Clone(c.Data)
	cues := append(slices.Clone(old), c)
	slices.SortStableFunc(cues, func(a, b media.Cue) int {
		if c := a.Start.Compare(b.Start); c != 0 {
			return c
		}
		return strings.Compare(a.ID, b.ID)
	})
	l.sorted.Store(&cues)
	return true
}

// List returns the cues sorted by start; the caller must not change it.
func (l *Cues) List() []media.Cue {
	if p := l.sorted.Load(); p != nil {
		return *p
	}
	return nil
}

// AppendDateRangesBefore appends the EXT-X-DATERANGE lines of cues[next:]
// that start before end and returns the index of the first cue left: a
// playlist writes the cues that start in a segment before it, those that
// started before its first segment before that one, and the others after
// its last (end zero: all of them).
func AppendDateRangesBefore(b []byte, cues []media.Cue, next int, end time.Time) ([]byte, int) {
	for ; next < len(cues) && (end.IsZero() || cues[next].Start.Before(end)); next++ {
		b = AppendDateRange(b, cues[next])
	}
	return b, next
}
