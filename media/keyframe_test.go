package media

import (
	"testing"

	"github.com/bluenviron/mediacommon/v2/pkg/codecs/h264"
)

func TestIsKeyframe(t *testing.T) {
	sps := []byte{0x67, 0x42, 0xc0, 0x1f}
	pps := []byte{0x68, 0xce, 0x3c, 0x80}
	idr := []byte{0x65, 0x88, 0x84}
	slice := []byte{0x41, 0x9a, 0x02}
	cat := func(parts ...[]byte) []byte {
		var b []byte
		for _, p := range parts {
			b = append(b, p...)
		}
		return b
	}
	long, short := []byte{0, 0, 0, 1}, []byte{0, 0, 1}
	cases := []struct {
		name  string
		codec Codec
		data  []byte
		want  bool
	}{
		{"H264 SPS PPS IDR", CodecH264, cat(long, sps, long, pps, long, idr), true},
		{"H264 IDR after a 3-byte start code", CodecH264, cat(short, idr), true},
		{"H264 non-IDR slice", CodecH264, cat(long, slice), false},
		{"H264 SPS PPS only", CodecH264, cat(long, sps, short, pps), false},
		{"H264 start code at the end", CodecH264, cat(long, slice, short), false},
		{"H264 IDR byte without a start code", CodecH264, idr, false},
		{"H264 empty", CodecH264, nil, false},
		{"VP8 key frame", CodecVP8, []byte{0x10, 0x02, 0x00}, true},
		{"VP8 inter frame", CodecVP8, []byte{0x11, 0x02, 0x00}, false},
		{"VP8 empty", CodecVP8, nil, false},
		{"Opus", CodecOpus, []byte{0xfc}, true},
		{"unknown", CodecUnknown, cat(long, idr), false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if got := IsKeyframe(c.codec, c.data); got != c.want {
				t.Errorf("IsKeyframe(%v, % x) = %v, want %v", c.codec, c.data, got, c.want)
			}
		})
	}
}

// FuzzIsKeyframeH264 checks the scan against mediacommon's parser on
// every access unit that parser takes.
func FuzzIsKeyframeH264(f *testing.F) {
	f.Add([]byte{0, 0, 0, 1, 0x67, 0x42, 0, 0, 0, 1, 0x65, 0x88})
	f.Add([]byte{0, 0, 1, 0x41, 0x9a, 0, 0, 1, 0x65})
	f.Add([]byte{0, 0, 1})
	f.Fuzz(func(t *testing.T, data []byte) {
		got := IsKeyframe(CodecH264, data)
		var au h264.AnnexB
		if au.Unmarshal(data) != nil {
			return
		}
		for _, nalu := range au {
			if len(nalu) == 0 {
				return
			}
		}
		if want := h264.IsRandomAccess(au); got != want {
			t.Fatalf("IsKeyframe(% x) = %v, mediacommon says %v", data, got, want)
		}
	})
}
