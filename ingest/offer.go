package ingest

import (
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/pion/ice/v4"
	"github.com/pion/sdp/v3"
)

// offerInfo is what a checked offer holds that the server can use.
type offerInfo struct {
	video, audio bool
}

// staticPayloadNames names the static payload types (RFC 3551) that
// offers use without an rtpmap.
var staticPayloadNames = map[int]string{0: "PCMU", 8: "PCMA", 9: "G722", 18: "G729", 34: "H263"}

// checkOffer tells whether offer is an SDP offer the server can answer:
// for a publisher (publish) at most one audio section it can send with
// Opus and one video section with H264 (packetization-mode 1) or VP8; for
// a subscriber the same, receiving. It returns an ErrMalformed or
// ErrUnusable otherwise.
func checkOffer(offer []byte, publish bool) (offerInfo, error) {
	var sd sdp.SessionDescription
	if err := sd.Unmarshal(offer); err != nil {
		return offerInfo{}, fmt.Errorf("%w: the offer is not SDP", ErrMalformed)
	}
	if len(sd.MediaDescriptions) == 0 {
		return offerInfo{}, fmt.Errorf("%w: the offer has no media", ErrUnusable)
	}
	var info offerInfo
	var offered []string
	for _, md := range sd.MediaDescriptions {
		kind := md.MediaName.Media
		if (kind != "audio" && kind != "video") || md.MediaName.Port.Value == 0 || !usableDirection(md, publish) {
			continue
		}
		usable := false
		for _, f := range md.MediaName.Formats {
			name, ok := describePayload(md, f)
			offered = append(offered, name)
			usable = usable || ok && (kind == "video") == (name == "H264" || name == "VP8")
		}
		if !usable {
			continue
		}
		if (kind == "video" && info.video) || (kind == "audio" && info.audio) {
			return offerInfo{}, fmt.Errorf("%w: at most one audio and one video track are supported", ErrUnusable)
		}
		if kind == "video" {
			info.video = true
		} else {
			info.audio = true
		}
	}
	if !info.video && !info.audio {
		slices.Sort(offered)
		offered = slices.Compact(offered)
		if len(offered) == 0 {
			return offerInfo{}, fmt.Errorf("%w: no audio or video section the server can use", ErrUnusable)
		}
		return offerInfo{}, fmt.Errorf("%w: no supported video or audio codec: offered %s", ErrUnusable, strings.Join(offered, ", "))
	}
	return info, nil
}

// usableDirection tells whether md lets the publisher send (publish) or
// the subscriber receive.
func usableDirection(md *sdp.MediaDescription, publish bool) bool {
	for _, a := range md.Attributes {
		switch a.Key {
		case "inactive":
			return false
		case "recvonly":
			return !publish
		case "sendonly":
			return publish
		}
	}
	return true
}

// describePayload names payload type format of md and tells whether the
// server supports it (H264 packetization-mode 1, VP8, Opus).
func describePayload(md *sdp.MediaDescription, format string) (string, bool) {
	var name string
	for _, a := range md.Attributes {
		if a.Key != "rtpmap" {
			continue
		}
		pt, enc, ok := strings.Cut(a.Value, " ")
		if ok && pt == format {
			name, _, _ = strings.Cut(enc, "/")
			break
		}
	}
	if name == "" {
		n, err := strconv.Atoi(format)
		if sn, ok := staticPayloadNames[n]; ok && err == nil {
			return sn, false
		}
		return "payload type " + format, false
	}
	switch strings.ToUpper(name) {
	case "H264":
		for _, a := range md.Attributes {
			pt, params, ok := strings.Cut(a.Value, " ")
			if a.Key == "fmtp" && ok && pt == format && packetizationMode1(params) {
				return "H264", true
			}
		}
		return "H264 (packetization-mode 0)", false
	case "VP8":
		return "VP8", true
	case "OPUS":
		return "opus", true
	}
	return name, false
}

// sdpFrag is a trickle-ICE SDP fragment (RFC 8840) as WHIP PATCHes carry.
type sdpFrag struct {
	ufrag, pwd string
	candidates []fragCandidate
}

type fragCandidate struct {
	mid   string
	index uint16
	// value is the attribute without "a=": "candidate:...".
	value string
}

// parseSDPFrag parses and checks a trickle-ICE fragment: only ICE
// attributes and media lines, candidates that parse. It returns an
// ErrMalformed otherwise.
func parseSDPFrag(body []byte) (sdpFrag, error) {
	var frag sdpFrag
	mid, index := "", -1
	for line := range strings.Lines(string(body)) {
		line = strings.TrimRight(line, "\r\n")
		if line == "" {
			continue
		}
		if len(line) < 2 || line[1] != '=' {
			return sdpFrag{}, fmt.Errorf("%w: not an SDP line: %.40q", ErrMalformed, line)
		}
		switch line[0] {
		case 'm':
			index++
			mid = strconv.Itoa(index)
			continue
		case 'a':
		default:
			return sdpFrag{}, fmt.Errorf("%w: unexpected line in a trickle-ICE fragment: %.40q", ErrMalformed, line)
		}
		key, value, _ := strings.Cut(line[2:], ":")
		switch key {
		case "ice-ufrag":
			frag.ufrag = value
		case "ice-pwd":
			frag.pwd = value
		case "mid":
			mid = value
		case "candidate":
			if _, err := ice.UnmarshalCandidate(value); err != nil {
				return sdpFrag{}, fmt.Errorf("%w: bad candidate %.60q", ErrMalformed, value)
			}
			frag.candidates = append(frag.candidates, fragCandidate{mid: mid, index: uint16(max(index, 0)), value: line[2:]})
		}
	}
	if (frag.ufrag == "") != (frag.pwd == "") {
		return sdpFrag{}, fmt.Errorf("%w: ice-ufrag and ice-pwd go together", ErrMalformed)
	}
	return frag, nil
}

// CheckOffer tells whether a WHIP (publish) or WHEP offer is one the
// server can answer, before any room or session is made for it: an
// ErrMalformed or ErrUnusable error says why not.
func CheckOffer(offer []byte, publish bool) error {
	_, err := checkOffer(offer, publish)
	return err
}
