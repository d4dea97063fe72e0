// Package synth is a synthetic singer: a moving test picture showing the
// slot number and the wall-clock time, and a tone, encoded in real time as
// a browser would send them (H264 constrained baseline or VP8, Opus).
package synth

import (
	"context"
	"errors"
	"fmt"
	"image/color"
	"math"
	"math/rand/v2"
	"sync/atomic"
	"time"

	"github.com/asticode/go-astiav"

	"github.com/singoff/singoff/internal/avframe"
	"github.com/singoff/singoff/internal/pacing"
	"github.com/singoff/singoff/media"
)

// Config describes a synthetic singer. Zero values take the defaults.
type Config struct {
	Slot          int // shown on the picture; picks the default tone
	Width, Height int // default 640x480
	FPS           int // default 30
	// VideoCodec is media.CodecH264 (default) or media.CodecVP8.
	VideoCodec media.Codec
	// ToneHz defaults to 440 Hz for slot 1 and 660 Hz for slot 2.
	ToneHz float64
	// Color, when set, makes the whole picture that one colour.
	Color *color.RGBA
	// Noise makes the picture moving noise, expensive to code like a
	// real camera; VideoBitrate then defaults to 2 Mb/s.
	Noise bool
	// Pulse makes the picture black with a white flash, and the tone a
	// beep, during the first PulseLength of every second of media time:
	// a lip-sync probe.
	Pulse        bool
	VideoBitrate int    // default 1 Mb/s
	Preset       string // x264 preset, default "veryfast"
}

// PulseLength is how long the flash and beep of Config.Pulse last.
const PulseLength = 100 * time.Millisecond

const (
	audioFrameSamples = 960 // 20 ms at 48 kHz
	audioRate         = 48000
)

// Source generates and encodes a synthetic singer's media.
type Source struct {
	cfg      Config
	video    *astiav.CodecContext
	audio    *astiav.CodecContext
	picture  *astiav.Frame
	sound    *astiav.Frame
	pkt      *astiav.Packet
	text     *textDrawer
	noise    []byte
	frames   int64 // video frames encoded
	samples  int64 // audio samples encoded
	start    time.Time
	keyframe atomic.Bool
	pending  []timedPacket
	// rtpBase is each track's random first RTP timestamp, as senders do.
	rtpBase map[bool]uint32
}

// timedPacket is an encoded unit with its media time from the start.
type timedPacket struct {
	at  time.Duration
	pkt media.AccessUnit
}

// New opens the encoders.
func New(cfg Config) (*Source, error) {
	if cfg.Width == 0 {
		cfg.Width, cfg.Height = 640, 480
	}
	if cfg.FPS == 0 {
		cfg.FPS = 30
	}
	if cfg.VideoCodec == media.CodecUnknown {
		cfg.VideoCodec = media.CodecH264
	}
	if cfg.ToneHz == 0 {
		cfg.ToneHz = 440 * (1 + 0.5*float64(max(cfg.Slot-1, 0)))
	}
	if cfg.VideoBitrate == 0 {
		cfg.VideoBitrate = 1_000_000
		if cfg.Noise {
			cfg.VideoBitrate = 2_000_000
		}
	}
	if cfg.Preset == "" {
		cfg.Preset = "veryfast"
	}
	if cfg.Width%2 != 0 || cfg.Height%2 != 0 || cfg.Width < 64 || cfg.Height < 64 {
		return nil, fmt.Errorf("synth: size %dx%d must be even and at least 64x64", cfg.Width, cfg.Height)
	}
	s := &Source{cfg: cfg, pkt: astiav.AllocPacket(), rtpBase: map[bool]uint32{true: rand.Uint32(), false: rand.Uint32()}}
	if err := s.open(); err != nil {
		s.Close()
		return nil, err
	}
	return s, nil
}

func (s *Source) open() error {
	cfg := s.cfg
	var err error
	if s.video, err = openVideoEncoder(cfg); err != nil {
		return err
	}
	if s.audio, err = openOpusEncoder(); err != nil {
		return err
	}
	s.picture = astiav.AllocFrame()
	s.picture.SetWidth(cfg.Width)
	s.picture.SetHeight(cfg.Height)
	s.picture.SetPixelFormat(astiav.PixelFormatYuv420P)
	if err := s.picture.AllocBuffer(0); err != nil {
		return fmt.Errorf("synth: picture buffer: %w", err)
	}
	s.sound = astiav.AllocFrame()
	s.sound.SetNbSamples(audioFrameSamples)
	s.sound.SetSampleFormat(astiav.SampleFormatFlt)
	s.sound.SetChannelLayout(astiav.ChannelLayoutMono)
	s.sound.SetSampleRate(audioRate)
	if err := s.sound.AllocBuffer(0); err != nil {
		return fmt.Errorf("synth: sound buffer: %w", err)
	}
	if s.text, err = newTextDrawer(cfg.Slot, cfg.Width, cfg.Height); err != nil {
		return err
	}
	if cfg.Noise {
		s.noise = makeNoise(2*cfg.Width, 2*cfg.Height)
	}
	return nil
}

func openVideoEncoder(cfg Config) (*astiav.CodecContext, error) {
	name := "libx264"
	if cfg.VideoCodec == media.CodecVP8 {
		name = "libvpx"
	}
	codec := astiav.FindEncoderByName(name)
	if codec == nil {
		return nil, fmt.Errorf("synth: encoder %s not available", name)
	}
	cc := astiav.AllocCodecContext(codec)
	cc.SetWidth(cfg.Width)
	cc.SetHeight(cfg.Height)
	cc.SetPixelFormat(astiav.PixelFormatYuv420P)
	cc.SetTimeBase(astiav.NewRational(1, cfg.FPS))
	cc.SetFramerate(astiav.NewRational(cfg.FPS, 1))
	cc.SetBitRate(int64(cfg.VideoBitrate))
	cc.SetGopSize(cfg.FPS)
	opts := astiav.NewDictionary()
	defer opts.Free()
	set := map[string]string{
		"maxrate": fmt.Sprint(cfg.VideoBitrate),
		"bufsize": fmt.Sprint(cfg.VideoBitrate / 2),
	}
	if cfg.VideoCodec == media.CodecVP8 {
		set["deadline"] = "realtime"
		set["cpu-used"] = "8"
		set["lag-in-frames"] = "0"
	} else {
		set["preset"] = cfg.Preset
		set["tune"] = "zerolatency"
		set["profile"] = "baseline"
		set["bf"] = "0"
		set["x264-params"] = fmt.Sprintf("keyint=%d:min-keyint=%d:scenecut=0:repeat-headers=1", cfg.FPS, cfg.FPS)
	}
	for k, v := range set {
		if err := opts.Set(k, v, 0); err != nil {
			cc.Free()
			return nil, fmt.Errorf("synth: option %s: %w", k, err)
		}
	}
	if err := cc.Open(codec, opts); err != nil {
		cc.Free()
		return nil, fmt.Errorf("synth: opening %s: %w", name, err)
	}
	return cc, nil
}

func openOpusEncoder() (*astiav.CodecContext, error) {
	codec := astiav.FindEncoderByName("libopus")
	if codec == nil {
		return nil, errors.New("synth: encoder libopus not available")
	}
	cc := astiav.AllocCodecContext(codec)
	cc.SetSampleRate(audioRate)
	cc.SetSampleFormat(astiav.SampleFormatFlt)
	cc.SetChannelLayout(astiav.ChannelLayoutMono)
	cc.SetBitRate(48000)
	cc.SetTimeBase(astiav.NewRational(1, audioRate))
	opts := astiav.NewDictionary()
	defer opts.Free()
	if err := opts.Set("frame_duration", "20", 0); err != nil {
		cc.Free()
		return nil, err
	}
	if err := cc.Open(codec, opts); err != nil {
		cc.Free()
		return nil, fmt.Errorf("synth: opening libopus: %w", err)
	}
	return cc, nil
}

// Close frees the encoders.
func (s *Source) Close() {
	for _, cc := range []*astiav.CodecContext{s.video, s.audio} {
		if cc != nil {
			cc.Free()
		}
	}
	for _, f := range []*astiav.Frame{s.picture, s.sound} {
		if f != nil {
			f.Free()
		}
	}
	s.pkt.Free()
	s.video, s.audio, s.picture, s.sound = nil, nil, nil, nil
}

// RequestKeyframe makes the next video frame a keyframe (a receiver's
// PLI).
func (s *Source) RequestKeyframe() { s.keyframe.Store(true) }

// Run generates media in real time until ctx is done, handing each
// encoded unit to emit as it is due, then closes the Source. Arrival is
// the emit time and SenderNTP the wall clock of the unit's media time.
func (s *Source) Run(ctx context.Context, emit func(media.AccessUnit)) error {
	defer s.Close()
	s.start = time.Now()
	timer := pacing.NewTimer()
	defer timer.Stop()
	for {
		tp, err := s.next()
		if err != nil {
			return err
		}
		if !pacing.Until(ctx, timer, s.start.Add(tp.at)) {
			return nil
		}
		tp.pkt.Arrival = time.Now()
		tp.pkt.SenderNTP = s.start.Add(tp.at)
		emit(tp.pkt)
	}
}

// next returns the next encoded unit in media-time order.
func (s *Source) next() (timedPacket, error) {
	for len(s.pending) == 0 {
		videoAt := time.Duration(s.frames) * time.Second / time.Duration(s.cfg.FPS)
		audioAt := time.Duration(s.samples) * time.Second / audioRate
		var err error
		if videoAt <= audioAt {
			err = s.encodeVideo(videoAt)
		} else {
			err = s.encodeAudio(audioAt)
		}
		if err != nil {
			return timedPacket{}, err
		}
	}
	tp := s.pending[0]
	s.pending = s.pending[1:]
	return tp, nil
}

func (s *Source) encodeVideo(at time.Duration) error {
	if err := avframe.MakeWritable(s.picture); err != nil {
		return err
	}
	s.draw(at)
	s.picture.SetPts(s.frames)
	s.picture.SetPictureType(astiav.PictureTypeNone)
	if s.frames == 0 || s.keyframe.Swap(false) {
		s.picture.SetPictureType(astiav.PictureTypeI)
	}
	s.frames++
	if err := s.video.SendFrame(s.picture); err != nil {
		return fmt.Errorf("synth: encoding video: %w", err)
	}
	return s.drain(s.video, s.cfg.VideoCodec, media.VideoClockRate, func(pts int64) time.Duration {
		return time.Duration(pts) * time.Second / time.Duration(s.cfg.FPS)
	})
}

func (s *Source) encodeAudio(at time.Duration) error {
	if err := avframe.MakeWritable(s.sound); err != nil {
		return err
	}
	pcm := avframe.FloatPlane(s.sound, 0)
	w := 2 * math.Pi * s.cfg.ToneHz / audioRate
	for i := range pcm {
		n := s.samples + int64(i)
		amp := 0.3
		if s.cfg.Pulse && time.Duration(n%audioRate)*time.Second/audioRate >= PulseLength {
			amp = 0
		}
		pcm[i] = float32(amp * math.Sin(w*float64(n)))
	}
	s.sound.SetPts(s.samples)
	s.samples += audioFrameSamples
	if err := s.audio.SendFrame(s.sound); err != nil {
		return fmt.Errorf("synth: encoding audio: %w", err)
	}
	return s.drain(s.audio, media.CodecOpus, audioRate, func(pts int64) time.Duration {
		return time.Duration(pts) * time.Second / audioRate
	})
}

func (s *Source) drain(cc *astiav.CodecContext, codec media.Codec, clockRate int64, at func(int64) time.Duration) error {
	for {
		err := cc.ReceivePacket(s.pkt)
		if errors.Is(err, astiav.ErrEagain) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("synth: receiving %s packet: %w", codec, err)
		}
		t := at(s.pkt.Pts())
		s.pending = append(s.pending, timedPacket{at: max(t, 0), pkt: media.AccessUnit{
			Codec:     codec,
			Data:      s.pkt.Data(),
			Keyframe:  codec.IsVideo() && s.pkt.Flags().Has(astiav.PacketFlagKey),
			RTPTime:   s.rtpBase[codec.IsVideo()] + uint32(int64(t)*clockRate/int64(time.Second)),
			ClockRate: uint32(clockRate),
		}})
		s.pkt.Unref()
	}
}
