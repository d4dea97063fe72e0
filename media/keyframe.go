package media

import (
	"bytes"

	"github.com/bluenviron/mediacommon/v2/pkg/codecs/h264"
)

// IsKeyframe tells whether data, a unit of codec c in the form of
// AccessUnit.Data, decodes on its own: an H264 access unit holding an IDR
// picture, a VP8 key frame, any Opus packet.
func IsKeyframe(c Codec, data []byte) bool {
	switch c {
	case CodecH264:
		return hasIDR(data)
	case CodecVP8:
		// The frame tag's P bit is 0 on key frames (RFC 6386 9.1).
		return len(data) > 0 && data[0]&0x01 == 0
	case CodecOpus:
		return true
	}
	return false
}

// annexBStartCode ends every Annex-B start code, the 3-byte and the
// 4-byte one; emulation prevention keeps it out of NAL unit payloads.
var annexBStartCode = []byte{0, 0, 1}

// hasIDR tells whether an Annex-B access unit holds an IDR NAL unit.
func hasIDR(au []byte) bool {
	for {
		i := bytes.Index(au, annexBStartCode)
		if i < 0 || i+len(annexBStartCode) >= len(au) {
			return false
		}
		au = au[i+len(annexBStartCode):]
		if h264.NALUType(au[0]&0x1f) == h264.NALUTypeIDR {
			return true
		}
	}
}
