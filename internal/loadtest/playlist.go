package loadtest

import (
	"bytes"
	"errors"
	"strconv"
	"time"
)

// partKey orders parts: the media sequence number of the parent segment
// in the high bits, the part's index in it in the low ones.
type partKey uint64

func makePartKey(msn uint64, index int) partKey {
	return partKey(msn<<16 | uint64(index)&0xffff)
}

func (k partKey) msn() uint64 { return uint64(k) >> 16 }
func (k partKey) index() int  { return int(k & 0xffff) }

// maxPartsPerSegment bounds part indexes so that they fit a partKey.
const maxPartsPerSegment = 1 << 16

// playlistPart is one EXT-X-PART of a media playlist.
type playlistPart struct {
	key partKey
	uri string
	// rangeStart and rangeLength come from BYTERANGE; rangeLength is -1
	// without one.
	rangeStart, rangeLength int64
	// end is the wall time at which the part's media ends
	// (EXT-X-PROGRAM-DATE-TIME plus the durations before it); zero when
	// the playlist has no date.
	end time.Time
}

// mediaPlaylist holds the few things of a media playlist that a
// low-latency watcher acts on.
type mediaPlaylist struct {
	mapURI        string
	canBlock      bool
	canSkip       bool
	endList       bool
	mediaSequence uint64
	parts         []playlistPart
	// nextKey is the part to ask a blocking reload for: the one after
	// the last listed part.
	nextKey partKey
}

// multivariant holds the media playlists of a multivariant playlist that
// a watcher may follow.
type multivariant struct {
	// variantURIs are the variants' media playlists, in their order.
	variantURIs []string
	// audioURI is the media playlist of the first audio rendition that
	// has one (those without are in the variant's).
	audioURI string
}

var (
	errNotPlaylist = errors.New("not an M3U8 playlist")
	errNoVariant   = errors.New("multivariant playlist without a variant")
	errBadTag      = errors.New("malformed tag")
)

// isMultivariant tells a multivariant playlist from a media one.
func isMultivariant(b []byte) bool {
	return bytes.Contains(b, []byte("#EXT-X-STREAM-INF"))
}

func parseMultivariant(b []byte) (multivariant, error) {
	var m multivariant
	if !bytes.HasPrefix(b, []byte("#EXTM3U")) {
		return m, errNotPlaylist
	}
	wantURI := false
	for line := range bytes.Lines(b) {
		line = bytes.TrimSpace(line)
		switch {
		case len(line) == 0:
		case bytes.HasPrefix(line, []byte("#EXT-X-STREAM-INF:")):
			wantURI = true
		case bytes.HasPrefix(line, []byte("#EXT-X-MEDIA:")) && m.audioURI == "":
			var audio bool
			var uri string
			for name, value := range attributes(line[len("#EXT-X-MEDIA:"):]) {
				switch name {
				case "TYPE":
					audio = value == "AUDIO"
				case "URI":
					uri = value
				}
			}
			if audio {
				m.audioURI = uri
			}
		case line[0] == '#':
		case wantURI:
			m.variantURIs = append(m.variantURIs, string(line))
			wantURI = false
		}
	}
	if len(m.variantURIs) == 0 || wantURI {
		return m, errNoVariant
	}
	return m, nil
}

// parseMediaPlaylist reads the tags a low-latency watcher needs: it
// numbers the parts (EXT-X-SKIP included) and dates them from the
// latest EXT-X-PROGRAM-DATE-TIME.
func parseMediaPlaylist(b []byte) (mediaPlaylist, error) {
	var p mediaPlaylist
	if !bytes.HasPrefix(b, []byte("#EXTM3U")) {
		return p, errNotPlaylist
	}
	var (
		msn       uint64 // of the segment being read
		index     int    // of its next part
		sawFirst  bool   // a segment or skip has fixed msn
		segStart  time.Time
		offset    time.Duration // of the next part in its segment
		segLength time.Duration // EXTINF of the segment being read
	)
	startSegments := func() {
		if !sawFirst {
			sawFirst = true
			msn = p.mediaSequence
		}
	}
	for line := range bytes.Lines(b) {
		line = bytes.TrimSpace(line)
		if len(line) == 0 {
			continue
		}
		if line[0] != '#' {
			// A segment URI closes the segment; the next one starts
			// where it ends.
			startSegments()
			if !segStart.IsZero() && segLength > 0 {
				segStart = segStart.Add(segLength)
			} else {
				segStart = time.Time{}
			}
			msn++
			index, offset, segLength = 0, 0, 0
			continue
		}
		tag, attrs, _ := bytes.Cut(line, []byte(":"))
		switch string(tag) {
		case "#EXT-X-MEDIA-SEQUENCE":
			n, err := strconv.ParseUint(string(attrs), 10, 40) // room for the segments after it in a partKey
			if err != nil {
				return p, errBadTag
			}
			p.mediaSequence = n
		case "#EXT-X-SERVER-CONTROL":
			for name, value := range attributes(attrs) {
				switch name {
				case "CAN-BLOCK-RELOAD":
					p.canBlock = value == "YES"
				case "CAN-SKIP-UNTIL":
					p.canSkip = true
				}
			}
		case "#EXT-X-MAP":
			for name, value := range attributes(attrs) {
				if name == "URI" {
					p.mapURI = value
				}
			}
		case "#EXT-X-SKIP":
			startSegments()
			for name, value := range attributes(attrs) {
				if name == "SKIPPED-SEGMENTS" {
					n, err := strconv.ParseUint(value, 10, 32)
					if err != nil {
						return p, errBadTag
					}
					msn += n
				}
			}
		case "#EXT-X-PROGRAM-DATE-TIME":
			t, err := time.Parse(time.RFC3339Nano, string(attrs))
			if err != nil {
				return p, errBadTag
			}
			segStart = t
		case "#EXTINF":
			d, _, _ := bytes.Cut(attrs, []byte(","))
			segLength = parseSeconds(d)
		case "#EXT-X-PART":
			startSegments()
			if index >= maxPartsPerSegment {
				return p, errBadTag
			}
			part := playlistPart{key: makePartKey(msn, index), rangeLength: -1}
			var length time.Duration
			for name, value := range attributes(attrs) {
				switch name {
				case "URI":
					part.uri = value
				case "DURATION":
					length = parseSeconds([]byte(value))
				case "BYTERANGE":
					n, o, hasOffset := cutByteRange(value)
					part.rangeLength = n
					if hasOffset {
						part.rangeStart = o
					} else if k := len(p.parts); k > 0 && p.parts[k-1].rangeLength >= 0 && p.parts[k-1].uri == part.uri {
						part.rangeStart = p.parts[k-1].rangeStart + p.parts[k-1].rangeLength
					}
				}
			}
			if part.uri == "" || part.rangeLength < -1 {
				return p, errBadTag
			}
			offset += length
			if !segStart.IsZero() {
				part.end = segStart.Add(offset)
			}
			p.parts = append(p.parts, part)
			index++
		case "#EXT-X-ENDLIST":
			p.endList = true
		}
	}
	startSegments()
	p.nextKey = makePartKey(msn, index)
	return p, nil
}

// parseSeconds reads a decimal number of seconds; anything else is 0.
func parseSeconds(b []byte) time.Duration {
	f, err := strconv.ParseFloat(string(b), 64)
	if err != nil || f < 0 || f > 1e6 {
		return 0
	}
	return time.Duration(f * float64(time.Second))
}

// cutByteRange reads "n[@o]"; n is -2 when it does not parse.
func cutByteRange(s string) (n, o int64, hasOffset bool) {
	ns, offs, hasOffset := cutString(s, '@')
	n, err := strconv.ParseInt(ns, 10, 64)
	if err != nil || n < 0 {
		return -2, 0, false
	}
	if hasOffset {
		o, err = strconv.ParseInt(offs, 10, 64)
		if err != nil || o < 0 {
			return -2, 0, false
		}
	}
	return n, o, hasOffset
}

func cutString(s string, sep byte) (before, after string, found bool) {
	for i := 0; i < len(s); i++ {
		if s[i] == sep {
			return s[:i], s[i+1:], true
		}
	}
	return s, "", false
}

// attributes iterates over an attribute list (NAME=value,NAME="quoted
// value"), unquoting values.
func attributes(b []byte) func(yield func(name, value string) bool) {
	return func(yield func(name, value string) bool) {
		for len(b) > 0 {
			name, rest, ok := bytes.Cut(b, []byte("="))
			if !ok {
				return
			}
			var value []byte
			if len(rest) > 0 && rest[0] == '"' {
				end := bytes.IndexByte(rest[1:], '"')
				if end < 0 {
					return
				}
				value = rest[1 : 1+end]
				rest = rest[2+end:]
				_, rest, _ = bytes.Cut(rest, []byte(","))
			} else {
				value, rest, _ = bytes.Cut(rest, []byte(","))
			}
			if !yield(string(bytes.TrimSpace(name)), string(value)) {
				return
			}
			b = rest
		}
	}
}
