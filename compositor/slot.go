package compositor

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/asticode/go-astiav"

	"github.com/singoff/singoff/internal/avframe"
	"github.com/singoff/singoff/media"
)

// maxPixels is the largest singer picture decoded: 4K UHD.
const maxPixels = 3840 * 2160

// halfWidth is the width of each singer's half of the program.
const halfWidth = media.ProgramWidth / 2

// slot decodes one singer's feed and places the result on the program
// clock: pictures in a queue, audio in a ring.
type slot struct {
	number int // 1 or 2
	feed   media.Feed
	log    *slog.Logger
	start  time.Time // the program's start; set before run

	pictures pictureQueue
	sound    audioRing

	mu    sync.Mutex
	stats SlotStats

	// Below: the slot's decoding goroutine only.
	started      bool
	session      uint64
	clock        playoutClock
	video        *astiav.CodecContext
	videoCodec   media.Codec
	audio        *astiav.CodecContext
	needKeyframe bool
	silent       int   // video units in a row that decoded to no picture
	nextSample   int64 // where the previous audio frame ended
	pkt          *astiav.Packet
	frame        *astiav.Frame
	scaler       *astiav.SoftwareScaleContext
	scalerKey    [5]int // source w, h, format; destination w, h
}

func newSlot(number int, feed media.Feed, log *slog.Logger) *slot {
	return &slot{
		number: number,
		feed:   feed,
		log:    log.With("slot", number),
		pkt:    astiav.AllocPacket(),
		frame:  astiav.AllocFrame(),
	}
}

// run decodes the feed until ctx is done or the feed closes.
func (s *slot) run(ctx context.Context) {
	packets := s.feed.Units()
	for {
		select {
		case <-ctx.Done():
			return
		case p, ok := <-packets:
			if !ok {
				return
			}
			s.handle(p)
		}
	}
}

// handle decodes one unit of the feed. Nothing in p can make it fail:
// video that does not decode asks the publisher for a keyframe.
func (s *slot) handle(p media.AccessUnit) {
	if !s.started || p.Session != s.session {
		s.newSession(p.Session)
	}
	if p.Arrival.IsZero() {
		p.Arrival = time.Now()
	}
	switch {
	case p.Codec.IsVideo():
		s.decodeVideo(&p)
	case p.Codec == media.CodecOpus:
		s.decodeAudio(&p)
	}
}

func (s *slot) newSession(session uint64) {
	if s.started {
		s.log.Info("new publisher session", "session", session)
	}
	s.started = true
	s.session = session
	s.clock = playoutClock{}
	s.pictures.clear()
	s.closeDecoders()
	s.nextSample = 0
	s.needKeyframe = true
	s.silent = 0
	s.mu.Lock()
	s.stats.Session = session
	s.mu.Unlock()
}

func (s *slot) closeDecoders() {
	if s.video != nil {
		s.video.Free()
		s.video = nil
	}
	if s.audio != nil {
		s.audio.Free()
		s.audio = nil
	}
	s.videoCodec = media.CodecUnknown
}

// free releases everything once run has returned.
func (s *slot) free() {
	s.closeDecoders()
	if s.scaler != nil {
		s.scaler.Free()
	}
	s.pictures.freeAll()
	s.frame.Free()
	s.pkt.Free()
}

// requestKeyframe asks the feed for a keyframe; the feed rate-limits
// (and defers, never drops) the requests it passes on to the singer.
func (s *slot) requestKeyframe() {
	s.feed.RequestKeyframe()
	s.mu.Lock()
	s.stats.KeyframeRequests++
	s.mu.Unlock()
}

// decodeFailed counts a unit that did not decode and logs the first of
// a burst.
func (s *slot) decodeFailed(what string, err error) {
	s.mu.Lock()
	s.stats.DecodeErrors++
	n := s.stats.DecodeErrors
	s.mu.Unlock()
	if n == 1 || n%100 == 0 {
		s.log.Warn("decoding failed", "what", what, "err", err, "errors", n)
	}
}

// videoFailed is a video unit that did not decode: the picture waits for
// a keyframe, which is asked for. (Audio errors need nothing: the Opus
// decoder conceals them, and the picture is not theirs to stop.)
func (s *slot) videoFailed(what string, err error) {
	s.decodeFailed(what, err)
	s.needKeyframe = true
	s.requestKeyframe()
}

func openDecoder(codec media.Codec) (*astiav.CodecContext, error) {
	id := map[media.Codec]astiav.CodecID{
		media.CodecH264: astiav.CodecIDH264,
		media.CodecVP8:  astiav.CodecIDVp8,
		media.CodecOpus: astiav.CodecIDOpus,
	}[codec]
	c := astiav.FindDecoder(id)
	if c == nil {
		return nil, fmt.Errorf("compositor: no %v decoder", codec)
	}
	cc := astiav.AllocCodecContext(c)
	if codec == media.CodecOpus {
		cc.SetSampleRate(media.AudioClockRate)
		cc.SetChannelLayout(astiav.ChannelLayoutStereo)
	} else {
		// One thread: frame threads would add a frame of delay each.
		cc.SetThreadCount(1)
	}
	// A junk header may claim a huge picture; refuse it before the
	// decoder allocates it.
	opts := astiav.NewDictionary()
	defer opts.Free()
	if err := opts.Set("max_pixels", fmt.Sprint(maxPixels), 0); err != nil {
		cc.Free()
		return nil, err
	}
	if err := cc.Open(c, opts); err != nil {
		cc.Free()
		return nil, fmt.Errorf("compositor: opening %v decoder: %w", codec, err)
	}
	return cc, nil
}

func (s *slot) decodeVideo(p *media.AccessUnit) {
	at := s.clock.playAt(p)
	if s.video == nil || s.videoCodec != p.Codec {
		if s.video != nil {
			s.video.Free()
			s.video = nil
		}
		cc, err := openDecoder(p.Codec)
		if err != nil {
			s.log.Error("video decoder", "err", err)
			return
		}
		s.video, s.videoCodec = cc, p.Codec
		s.needKeyframe = true
		s.silent = 0
	}
	if p.Loss {
		s.requestKeyframe()
	}
	if s.needKeyframe {
		// Asked until a picture decodes, even when this unit claims to
		// be a keyframe: junk can claim anything.
		s.requestKeyframe()
		if !p.Keyframe && !media.IsKeyframe(p.Codec, p.Data) {
			return
		}
	}
	if err := avframe.FillPacket(s.pkt, p.Data); err != nil {
		s.log.Error("video packet", "err", err)
		return
	}
	s.pkt.SetPts(at.UnixNano())
	err := s.video.SendPacket(s.pkt)
	s.pkt.Unref()
	if err != nil && !errors.Is(err, astiav.ErrEagain) {
		s.videoFailed("video", err)
		return
	}
	pictures := 0
	for {
		err := s.video.ReceiveFrame(s.frame)
		if errors.Is(err, astiav.ErrEagain) {
			break
		}
		if err != nil {
			s.videoFailed("video", err)
			return
		}
		pictures++
		s.needKeyframe = false
		if err := s.present(s.frame); err != nil {
			s.videoFailed("video frame", err)
		}
		s.frame.Unref()
	}
	if pictures > 0 {
		s.silent = 0
		return
	}
	// Decoded without an error yet nothing to show: a decoder that junk
	// sent out of step (e.g. H264 picture order) stays so until a
	// keyframe.
	if s.silent++; s.silent >= silentUnits {
		s.decodeFailed("video", errNoPicture)
		s.requestKeyframe()
	}
}

// silentUnits is how many video units in a row may decode to no picture
// before a keyframe is asked for: one may (a VP8 frame that is not
// shown), and the next then shows.
const silentUnits = 2

var errNoPicture = errors.New("units decode to no picture")

// present fits a decoded frame into the slot's half and queues it.
func (s *slot) present(f *astiav.Frame) error {
	w, h := f.Width(), f.Height()
	if w <= 0 || h <= 0 {
		return errors.New("empty frame")
	}
	dw, dh := fit(w, h)
	pic := s.pictures.get()
	pic.playAt = time.Unix(0, f.Pts())
	if f.Pts() == astiav.NoPtsValue {
		pic.playAt = time.Now().Add(playoutDelay)
	}
	if f.PixelFormat() == astiav.PixelFormatYuv420P && dw == w && dh == h {
		// Already the right size: keep a reference, copy nothing.
		if err := pic.frame.Ref(f); err != nil {
			s.pictures.release(pic)
			return err
		}
	} else if err := s.scale(f, pic.frame, dw, dh); err != nil {
		s.pictures.release(pic)
		return err
	}
	s.pictures.put(pic)
	s.mu.Lock()
	s.stats.FramesDecoded++
	s.stats.Width, s.stats.Height = w, h
	s.mu.Unlock()
	return nil
}

func (s *slot) scale(src, dst *astiav.Frame, dw, dh int) error {
	key := [5]int{src.Width(), src.Height(), int(src.PixelFormat()), dw, dh}
	if s.scaler == nil || key != s.scalerKey {
		if s.scaler != nil {
			s.scaler.Free()
			s.scaler = nil
		}
		sc, err := astiav.CreateSoftwareScaleContext(key[0], key[1], src.PixelFormat(), dw, dh,
			astiav.PixelFormatYuv420P, astiav.NewSoftwareScaleContextFlags(astiav.SoftwareScaleContextFlagBilinear))
		if err != nil {
			return err
		}
		s.scaler, s.scalerKey = sc, key
	}
	dst.SetWidth(dw)
	dst.SetHeight(dh)
	dst.SetPixelFormat(astiav.PixelFormatYuv420P)
	if err := dst.AllocBuffer(0); err != nil {
		return err
	}
	return s.scaler.ScaleFrame(src, dst)
}

// fit returns the even size that fits w x h into a half of the program,
// keeping its aspect.
func fit(w, h int) (int, int) {
	dw, dh := halfWidth, h*halfWidth/w
	if dh > media.ProgramHeight {
		dw, dh = w*media.ProgramHeight/h, media.ProgramHeight
	}
	return max(dw&^1, 2), max(dh&^1, 2)
}

func (s *slot) decodeAudio(p *media.AccessUnit) {
	at := s.clock.playAt(p)
	if s.audio == nil {
		cc, err := openDecoder(media.CodecOpus)
		if err != nil {
			s.log.Error("audio decoder", "err", err)
			return
		}
		s.audio = cc
	}
	if err := avframe.FillPacket(s.pkt, p.Data); err != nil {
		s.log.Error("audio packet", "err", err)
		return
	}
	s.pkt.SetPts(at.UnixNano())
	err := s.audio.SendPacket(s.pkt)
	s.pkt.Unref()
	if err != nil && !errors.Is(err, astiav.ErrEagain) {
		s.decodeFailed("audio", err)
		return
	}
	for {
		err := s.audio.ReceiveFrame(s.frame)
		if errors.Is(err, astiav.ErrEagain) {
			return
		}
		if err != nil {
			s.decodeFailed("audio", err)
			return
		}
		s.place(s.frame)
		s.frame.Unref()
	}
}

// place writes a decoded audio frame into the ring at its program sample.
func (s *slot) place(f *astiav.Frame) {
	if f.SampleFormat() != astiav.SampleFormatFltp || f.SampleRate() != media.AudioClockRate {
		return
	}
	left, right := avframe.FloatPlane(f, 0), avframe.FloatPlane(f, 1)
	if right == nil { // mono
		right = left
	}
	if f.Pts() == astiav.NoPtsValue {
		return
	}
	at := time.Unix(0, f.Pts()).Sub(s.start).Nanoseconds() * media.AudioClockRate / int64(time.Second)
	// Small mapping jitter would click: keep consecutive frames
	// contiguous unless the gap is real.
	if d := at - s.nextSample; d > -audioSnap && d < audioSnap {
		at = s.nextSample
	}
	s.nextSample = at + int64(len(left))
	s.sound.write(at, left, right)
	s.mu.Lock()
	s.stats.AudioFramesDecoded++
	s.mu.Unlock()
}

// audioSnap is the gap in samples (10 ms) under which consecutive audio
// frames are joined.
const audioSnap = media.AudioClockRate / 100
