package compositor

import (
	"bytes"
	"errors"
	"fmt"

	"github.com/asticode/go-astiav"
	"github.com/bluenviron/mediacommon/v2/pkg/codecs/mpeg4audio"

	"github.com/singoff/singoff/media"
)

// videoTicksPerFrame is one program frame on the video clock.
const videoTicksPerFrame = media.VideoClockRate / media.ProgramFPS

// keyframeEvery is the program's keyframe interval in frames: one a
// second. Keyframes are placed by frame count (videoFrame), and the
// program never skips a frame, so every HLS segment is exactly one
// second and every 200 ms part six frames.
const keyframeEvery = media.ProgramFPS

// Rung is one rendition of the program's ladder.
type Rung struct {
	Width, Height int // even, at most the program's size
	Bitrate       int // bit/s, with VBV
}

// DefaultRenditions are the rungs below the top one: 640x360 at
// 600 kb/s. A middle rung (960x540) would cost about half a top rung
// more x264 time, past the ladder's CPU bar (docs/BENCHMARKS.md).
var DefaultRenditions = []Rung{{Width: 640, Height: 360, Bitrate: 600_000}}

// openVideoEncoder opens x264 for rung r; threads 0 lets x264 choose
// (sliced threads, as zerolatency asks).
func openVideoEncoder(preset string, r Rung, threads int) (*astiav.CodecContext, error) {
	codec := astiav.FindEncoderByName("libx264")
	if codec == nil {
		return nil, errors.New("compositor: encoder libx264 not available")
	}
	cc := astiav.AllocCodecContext(codec)
	if threads > 0 {
		cc.SetThreadCount(threads)
	}
	cc.SetWidth(r.Width)
	cc.SetHeight(r.Height)
	cc.SetPixelFormat(astiav.PixelFormatYuv420P)
	cc.SetTimeBase(astiav.NewRational(1, media.ProgramFPS))
	cc.SetFramerate(astiav.NewRational(media.ProgramFPS, 1))
	cc.SetBitRate(int64(r.Bitrate))
	cc.SetGopSize(2 * keyframeEvery)
	// Global header: SPS and PPS in extradata, for ProgramInfo.
	cc.SetFlags(cc.Flags().Add(astiav.CodecContextFlagGlobalHeader))
	opts := astiav.NewDictionary()
	defer opts.Free()
	for _, kv := range [][2]string{
		{"preset", preset},
		{"tune", "zerolatency"},
		{"bf", "0"},
		{"maxrate", fmt.Sprint(r.Bitrate)},
		{"bufsize", fmt.Sprint(r.Bitrate)},
		// Keyframes are forced every keyframeEvery frames, on every
		// rung at the same frames (videoFrame); x264's own keyint is
		// only a fallback.
		{"forced-idr", "1"},
		{"x264-params", fmt.Sprintf("keyint=%d:scenecut=0:repeat-headers=1", 2*keyframeEvery)},
	} {
		if err := opts.Set(kv[0], kv[1], 0); err != nil {
			cc.Free()
			return nil, fmt.Errorf("compositor: x264 option %s: %w", kv[0], err)
		}
	}
	if err := cc.Open(codec, opts); err != nil {
		cc.Free()
		return nil, fmt.Errorf("compositor: opening libx264: %w", err)
	}
	return cc, nil
}

func openAudioEncoder(cfg Config) (*astiav.CodecContext, error) {
	codec := astiav.FindEncoderByName("aac")
	if codec == nil {
		return nil, errors.New("compositor: encoder aac not available")
	}
	cc := astiav.AllocCodecContext(codec)
	cc.SetSampleRate(media.AudioClockRate)
	cc.SetSampleFormat(astiav.SampleFormatFltp)
	cc.SetChannelLayout(astiav.ChannelLayoutStereo)
	cc.SetBitRate(int64(cfg.AudioBitrate))
	cc.SetTimeBase(astiav.NewRational(1, media.AudioClockRate))
	cc.SetFlags(cc.Flags().Add(astiav.CodecContextFlagGlobalHeader))
	if err := cc.Open(codec, nil); err != nil {
		cc.Free()
		return nil, fmt.Errorf("compositor: opening aac: %w", err)
	}
	if cc.FrameSize() != media.AACFrameSamples {
		cc.Free()
		return nil, fmt.Errorf("compositor: aac frame size %d", cc.FrameSize())
	}
	return cc, nil
}

// programInfo reads every rung's SPS and PPS and the
// AudioSpecificConfig from the encoders' global headers.
func programInfo(video []*astiav.CodecContext, audio *astiav.CodecContext) (media.ProgramInfo, error) {
	info := media.ProgramInfo{FPS: media.ProgramFPS, AudioBitrate: int(audio.BitRate())}
	for _, cc := range video {
		r := media.VideoRung{Width: cc.Width(), Height: cc.Height(), Bitrate: int(cc.BitRate())}
		for _, nalu := range splitAnnexB(cc.ExtraData()) {
			switch nalu[0] & 0x1f {
			case 7:
				r.SPS = bytes.Clone(nalu)
			case 8:
				r.PPS = bytes.Clone(nalu)
			}
		}
		if r.SPS == nil || r.PPS == nil {
			return info, fmt.Errorf("compositor: no SPS/PPS in the x264 header of the %dx%d rung", r.Width, r.Height)
		}
		info.Video = append(info.Video, r)
	}
	if err := info.Audio.Unmarshal(audio.ExtraData()); err != nil {
		return info, fmt.Errorf("compositor: AAC config: %w", err)
	}
	if info.Audio.Type != mpeg4audio.ObjectTypeAACLC {
		return info, fmt.Errorf("compositor: AAC object type %d", info.Audio.Type)
	}
	return info, nil
}

// splitAnnexB returns the NAL units of an Annex-B stream, sharing b.
func splitAnnexB(b []byte) [][]byte {
	var out [][]byte
	start := -1
	for i := 0; i+2 < len(b); {
		if b[i] == 0 && b[i+1] == 0 && b[i+2] == 1 {
			if start >= 0 {
				out = appendNALU(out, b[start:i])
			}
			i += 3
			start = i
			continue
		}
		i++
	}
	if start >= 0 {
		out = appendNALU(out, b[start:])
	}
	return out
}

// appendNALU drops the trailing zeros that belong to a four-byte start
// code or padding.
func appendNALU(out [][]byte, n []byte) [][]byte {
	n = bytes.TrimRight(n, "\x00")
	if len(n) > 0 {
		out = append(out, n)
	}
	return out
}
