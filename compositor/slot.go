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
	voice        voice
	needKeyframe bool
	silent       int // video units in a row that decoded to no picture
	pkt          *astiav.Packet
	frame        *astiav.Frame
	scaler       *astiav.SoftwareScaleContext
	scalerKey    [5]int // source w, h, format; destination w, h
}

func newSlot(number int, feed media.Feed, log *slog.Logger) *slot {
	s := &slot{
		number: number,
		feed:   feed,
		log:    log.With("slot", number),
		pkt:    astiav.AllocPacket(),
		frame:  astiav.AllocFrame(),
	}
	s.voice.sound = &s.sound
	s.voice.pending = make([]heldPacket, 0, maxHeld)
	return s
}

// run decodes the feed until ctx is done or the feed closes; between
// units it wakes when missing audio is due to be concealed.
func (s *slot) run(ctx context.Context) {
	packets := s.feed.Units()
	timer := time.NewTimer(time.Hour)
	timer.Stop()
	defer timer.Stop()
	for {
		var wake time.Time
		select {
		case <-ctx.Done():
			return
		case p, ok := <-packets:
			if !ok {
				return
			}
			wake = s.handle(p)
		case <-timer.C:
			wake = s.drainAudio(time.Now())
		}
		if !wake.IsZero() {
			timer.Reset(time.Until(wake))
		}
	}
}

// handle decodes one unit of the feed. Nothing in p can make it fail:
// video that does not decode asks the publisher for a keyframe. It
// returns when missing audio is next due to be concealed (zero: not
// before the next unit).
func (s *slot) handle(p media.AccessUnit) time.Time {
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
	return s.drainAudio(time.Now())
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
	s.voice.close()
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
// a keyframe, which is asked for. (Audio errors need nothing: the voice
// conceals them, and the picture is not theirs to stop.)
func (s *slot) videoFailed(what string, err error) {
	s.decodeFailed(what, err)
	s.needKeyframe = true
	s.requestKeyframe()
}

// openDecoder opens a video decoder (audio is the voice's).
func openDecoder(codec media.Codec) (*astiav.CodecContext, error) {
	id := map[media.Codec]astiav.CodecID{
		media.CodecH264: astiav.CodecIDH264,
		media.CodecVP8:  astiav.CodecIDVp8,
	}[codec]
	c := astiav.FindDecoder(id)
	if c == nil {
		return nil, fmt.Errorf("compositor: no %v decoder", codec)
	}
	cc := astiav.AllocCodecContext(c)
	// One thread: frame threads would add a frame of delay each.
	cc.SetThreadCount(1)
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
	at, _ := s.clock.playAt(p)
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
		// A unit before this one is lost: decoding on would smear the
		// picture over a missing reference. It freezes instead until
		// the keyframe asked for arrives.
		s.needKeyframe = true
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
	at, ext := s.clock.playAt(p)
	if p.ClockRate != 0 && p.ClockRate != media.AudioClockRate {
		ext = ext * media.AudioClockRate / int64(p.ClockRate)
	}
	if err := s.voice.push(p.Data, ext, s.position(at)); err != nil {
		s.decodeFailed("audio", err)
	}
}

// drainAudio decodes and conceals what the voice has due by now, and
// returns when it is next due (zero: not before the next unit).
func (s *slot) drainAudio(now time.Time) time.Time {
	if !s.voice.started {
		return time.Time{}
	}
	again, ok, err := s.voice.drain(s.position(now), audioGuard.Nanoseconds()*media.AudioClockRate/int64(time.Second))
	if err != nil {
		s.decodeFailed("audio", err)
	}
	s.mu.Lock()
	s.stats.AudioFramesDecoded = s.voice.stats.Decoded
	s.mu.Unlock()
	if !ok {
		return time.Time{}
	}
	return s.start.Add(time.Duration(again * int64(time.Second) / media.AudioClockRate))
}

// position is the program sample of t.
func (s *slot) position(t time.Time) int64 {
	return t.Sub(s.start).Nanoseconds() * media.AudioClockRate / int64(time.Second)
}
