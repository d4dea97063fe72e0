// Package compositor is one battle's media path. The Compositor turns two
// singers' feeds into one program: each singer decoded and fitted into a
// half of a 1280x720 picture, the battle's overlay over it, their audio
// mixed with the turn's gains, encoded as a ladder of H264 renditions
// (each scaled once from the composed picture) and one AAC track, on a
// clock of its own that never stops nor skips while the battle is live,
// with a small JPEG still about once a second. A Pipeline runs it, splits
// the program to the live output and the recording and hands them the
// battle's cues.
package compositor

import (
	"context"
	"errors"
	"fmt"
	"image"
	"log/slog"
	"math"
	"sync"
	"sync/atomic"
	"time"

	"github.com/asticode/go-astiav"

	"github.com/singoff/singoff/internal/avframe"
	"github.com/singoff/singoff/internal/pacing"
	"github.com/singoff/singoff/media"
)

// Config tunes the program's encoders. Zero values take the defaults.
type Config struct {
	Preset       string // x264 preset, default "veryfast"
	VideoBitrate int    // of the top rung (the 1280x720 picture); default 2_500_000, with VBV
	// Renditions are the rungs below the top one, largest first: nil
	// takes DefaultRenditions, an empty slice makes the top one only.
	Renditions   []Rung
	AudioBitrate int // default 128_000
	Logger       *slog.Logger
}

// staleAfter is how long a singer may send no picture before their half
// shows a slate.
const staleAfter = 500 * time.Millisecond

// frameInterval is the program's frame duration.
const frameInterval = time.Second / media.ProgramFPS

// maxLag is how far the program may fall behind its clock before it
// repeats its last picture to catch up: a repeat costs no composing,
// no scaling and little encoding (x264 codes it as skipped blocks),
// and the program's frame grid, so its keyframes and HLS segments, stay
// what they are.
const maxLag = 4 * frameInterval

// SlotState is what a half of the program shows.
type SlotState int

// Slot states.
const (
	SlotWaiting      SlotState = iota // no picture yet: a slate
	SlotLive                          // the singer
	SlotReconnecting                  // no picture for a while: a slate
)

func (s SlotState) String() string {
	switch s {
	case SlotLive:
		return "live"
	case SlotReconnecting:
		return "reconnecting"
	}
	return "waiting"
}

// SlotStats describes one singer's feed.
type SlotStats struct {
	State              SlotState
	Session            uint64
	Width, Height      int // of the last decoded picture
	FramesDecoded      int64
	AudioFramesDecoded int64
	DecodeErrors       int64
	KeyframeRequests   int64
}

// Stats describes the program so far.
type Stats struct {
	FramesOut int64 // program frames encoded, each on every rung
	// FramesRepeated counts the frames that repeated the last picture
	// because the program was behind its clock (a loaded machine).
	FramesRepeated int64
	AudioFramesOut int64         // AAC frames encoded
	EncodeTime     time.Duration // composing and encoding video and audio, total
	Slots          [2]SlotStats
}

// Compositor makes the program of one battle.
type Compositor struct {
	cfg     Config
	log     *slog.Logger
	slots   [2]*slot
	slates  [2][2]*yuvImage // by slot, then slate kind
	rungs   []*rung         // the ladder, top first
	audio   *astiav.CodecContext
	picture *astiav.Frame // the program picture, the top rung's
	sound   *astiav.Frame // one AAC frame of the mix
	pkt     *astiav.Packet
	info    media.ProgramInfo
	stills  *stillMaker
	overlay atomic.Pointer[[]*layer]
	gains   atomic.Pointer[[2]float32] // wanted per slot, linear
	started atomic.Bool

	mu    sync.Mutex
	stats Stats
	cues  []media.Cue // waiting for the program's goroutine
	ended bool        // Run has returned: cues are dropped

	// Below: Run's goroutine only.
	start     time.Time
	shown     [2]*picture // what each half shows
	everShown [2]bool
	composed  bool       // a picture was composed: there is one to repeat
	audioPos  int64      // program samples encoded
	gain      [2]float32 // applied per slot to the last audio frame
}

// New opens the encoders; the program's parameters are known from then
// on. Run frees what New opened.
func New(cfg Config, left, right media.Feed) (*Compositor, error) {
	if cfg.Preset == "" {
		cfg.Preset = "veryfast"
	}
	if cfg.VideoBitrate == 0 {
		cfg.VideoBitrate = 2_500_000
	}
	if cfg.Renditions == nil {
		cfg.Renditions = DefaultRenditions
	}
	if cfg.AudioBitrate == 0 {
		cfg.AudioBitrate = 128_000
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	c := &Compositor{cfg: cfg, log: cfg.Logger, gain: [2]float32{1, 1}, stills: newStillMaker()}
	c.setGains(1, 1)
	if err := c.open(left, right); err != nil {
		c.free()
		return nil, err
	}
	return c, nil
}

func (c *Compositor) open(left, right media.Feed) error {
	var err error
	c.picture = astiav.AllocFrame()
	c.picture.SetWidth(media.ProgramWidth)
	c.picture.SetHeight(media.ProgramHeight)
	c.picture.SetPixelFormat(astiav.PixelFormatYuv420P)
	if err := c.picture.AllocBuffer(0); err != nil {
		return fmt.Errorf("compositor: picture: %w", err)
	}
	if c.rungs, err = openRungs(c.cfg, c.picture); err != nil {
		return err
	}
	if c.audio, err = openAudioEncoder(c.cfg); err != nil {
		return err
	}
	encoders := make([]*astiav.CodecContext, len(c.rungs))
	for i, r := range c.rungs {
		encoders[i] = r.enc
	}
	if c.info, err = programInfo(encoders, c.audio); err != nil {
		return err
	}
	for i := range c.slates {
		if c.slates[i], err = renderSlates(i + 1); err != nil {
			return err
		}
	}
	c.sound = astiav.AllocFrame()
	c.sound.SetNbSamples(media.AACFrameSamples)
	c.sound.SetSampleFormat(astiav.SampleFormatFltp)
	c.sound.SetChannelLayout(astiav.ChannelLayoutStereo)
	c.sound.SetSampleRate(media.AudioClockRate)
	if err := c.sound.AllocBuffer(0); err != nil {
		return fmt.Errorf("compositor: sound: %w", err)
	}
	c.pkt = astiav.AllocPacket()
	c.slots = [2]*slot{newSlot(1, left, c.log), newSlot(2, right, c.log)}
	return nil
}

func (c *Compositor) free() {
	for _, r := range c.rungs {
		r.free()
	}
	if c.audio != nil {
		c.audio.Free()
	}
	for _, f := range []*astiav.Frame{c.picture, c.sound} {
		if f != nil {
			f.Free()
		}
	}
	if c.pkt != nil {
		c.pkt.Free()
	}
	for _, s := range c.slots {
		if s != nil {
			s.free()
		}
	}
}

// Info describes the program: SPS, PPS and AAC configuration included.
func (c *Compositor) Info() media.ProgramInfo { return c.info }

// Stats returns counters of the program and both feeds.
func (c *Compositor) Stats() Stats {
	c.mu.Lock()
	st := c.stats
	c.mu.Unlock()
	for i, s := range c.slots {
		s.mu.Lock()
		state := st.Slots[i].State
		st.Slots[i] = s.stats
		st.Slots[i].State = state
		s.mu.Unlock()
	}
	return st
}

// setOverlay blends layers over every following program picture, in
// order, each placed by its bounds in the 1280x720 program and
// transparent where it shows nothing; nil or none removes the overlay.
// The layers are converted at once, so the caller may reuse them; each
// frame then blends only their rectangles. Pipeline.Show calls it.
func (c *Compositor) setOverlay(layers []*image.RGBA) {
	var ov []*layer
	for _, img := range layers {
		if l := toLayer(img); l != nil {
			ov = append(ov, l)
		}
	}
	if len(ov) == 0 {
		c.overlay.Store(nil)
		return
	}
	c.overlay.Store(&ov)
}

// setGains sets the linear gains applied to each singer's audio before
// mixing (default 1, 1). The change ramps over one audio frame (21 ms),
// so it does not click. Pipeline.Show calls it.
func (c *Compositor) setGains(left, right float32) {
	c.gains.Store(&[2]float32{left, right})
}

// cue hands c, a battle event, to the outputs at the next tick, from the
// program's goroutine like every sample. Pipeline.Cue calls it.
func (c *Compositor) cue(cue media.Cue) {
	c.mu.Lock()
	if !c.ended {
		c.cues = append(c.cues, cue)
	}
	c.mu.Unlock()
}

// Close frees a compositor that will never Run (Run frees its own).
func (c *Compositor) Close() {
	if c.started.CompareAndSwap(false, true) {
		c.free()
	}
}

// Run makes the program into sink until ctx is done, then frees
// everything. It runs once.
func (c *Compositor) Run(ctx context.Context, sink media.Sink) error {
	if !c.started.CompareAndSwap(false, true) {
		return errors.New("compositor: Run called twice, or after Close")
	}
	c.start = time.Now()
	slotCtx, cancel := context.WithCancel(ctx)
	var wg sync.WaitGroup
	for _, s := range c.slots {
		s.start = c.start
		wg.Go(func() { s.run(slotCtx) })
	}
	wg.Go(func() { c.stills.run(slotCtx) })
	defer func() {
		c.mu.Lock()
		c.ended, c.cues = true, nil
		c.mu.Unlock()
		cancel()
		wg.Wait()
		for i, p := range c.shown {
			if p != nil {
				c.slots[i].pictures.release(p)
			}
		}
		c.free()
	}()

	stillSource := stillFrom(c.rungs)
	timer := pacing.NewTimer()
	// Every tick makes a frame: the program's clock never skips, so
	// its timestamps have no gap and its keyframes stay every
	// keyframeEvery frames, and the HLS segments and parts keep their
	// lengths however loaded the machine is. A late frame or two is
	// caught up by encoding back to back; further behind, the last
	// picture is repeated until the program is back on its clock.
	for tick := int64(0); ; tick++ {
		due := c.start.Add(time.Duration(tick * int64(time.Second) / media.ProgramFPS))
		if !pacing.Until(ctx, timer, due) {
			return nil
		}
		repeat := c.composed && time.Since(due) >= maxLag
		began := time.Now()
		c.handOn(sink)
		// The tick's audio before its video: the muxer closes a part
		// when a video frame comes, so the part then carries the audio
		// of its time.
		if err := c.audioFrames(due, sink); err != nil {
			return err
		}
		if err := c.videoFrame(tick, due, repeat, sink); err != nil {
			return err
		}
		if tick%stillEvery == stillEvery/2 && !repeat {
			c.stills.offer(stillSource, due)
		}
		c.mu.Lock()
		c.stats.EncodeTime += time.Since(began)
		if repeat {
			c.stats.FramesRepeated++
		}
		c.mu.Unlock()
	}
}

// handOn gives the outputs what waits for them besides samples: the
// battle's cues and the latest still, to those that take them.
func (c *Compositor) handOn(sink media.Sink) {
	c.mu.Lock()
	cues := c.cues
	c.cues = nil
	c.mu.Unlock()
	if cuer, ok := sink.(media.Cuer); ok {
		for _, cue := range cues {
			cuer.Cue(cue)
		}
	}
	if st := c.stills.take(); st != nil {
		if stills, ok := sink.(media.Stills); ok {
			stills.Still(st.ntp, st.jpeg)
		}
	}
}

// videoFrame makes the program frame of tick on every rung: composed,
// scaled and encoded, or, when repeat, the last picture encoded again.
// Every keyframeEvery-th frame is a keyframe, on every rung.
func (c *Compositor) videoFrame(tick int64, due time.Time, repeat bool, sink media.Sink) error {
	key := tick%keyframeEvery == 0
	if !repeat {
		if err := c.compose(due); err != nil {
			return err
		}
		c.composed = true
		// Scaled while the composed picture is still in the cache,
		// before an encoder evicts it (perf: a third of the scaling
		// time went waiting for memory).
		for _, r := range c.rungs {
			if err := r.scale(c.picture); err != nil {
				return err
			}
		}
	}
	for _, r := range c.rungs {
		if err := r.encode(tick, key, c.start, c.pkt, sink); err != nil {
			return err
		}
	}
	c.mu.Lock()
	c.stats.FramesOut++
	c.mu.Unlock()
	return nil
}

// compose draws the program picture due: both halves and the overlay.
func (c *Compositor) compose(due time.Time) error {
	if err := avframe.MakeWritable(c.picture); err != nil {
		return fmt.Errorf("compositor: picture: %w", err)
	}
	y, ys := avframe.Plane(c.picture, 0, media.ProgramHeight)
	cb, cs := avframe.Plane(c.picture, 1, media.ProgramHeight/2)
	cr, _ := avframe.Plane(c.picture, 2, media.ProgramHeight/2)
	dst := planes{y: y, cb: cb, cr: cr, ys: ys, cs: cs}
	var states [2]SlotState
	for i, s := range c.slots {
		states[i] = c.drawSlot(i, s, due, dst)
	}
	if ov := c.overlay.Load(); ov != nil {
		for _, l := range *ov {
			l.img.blendOnto(dst, l.x, l.y)
		}
	}
	c.mu.Lock()
	for i := range states {
		c.stats.Slots[i].State = states[i]
	}
	c.mu.Unlock()
	return nil
}

// drawSlot draws slot i's half: the singer's latest due picture, or a
// slate when there has been none for staleAfter.
func (c *Compositor) drawSlot(i int, s *slot, due time.Time, dst planes) SlotState {
	if p := s.pictures.due(due); p != nil {
		if c.shown[i] != nil {
			s.pictures.release(c.shown[i])
		}
		c.shown[i] = p
		c.everShown[i] = true
	}
	x0 := i * halfWidth
	p := c.shown[i]
	if p == nil || due.Sub(p.playAt) > staleAfter {
		if p != nil {
			s.pictures.release(p)
			c.shown[i] = nil
		}
		kind, state := slateWaiting, SlotWaiting
		if c.everShown[i] {
			kind, state = slateReconnecting, SlotReconnecting
		}
		c.slates[i][kind].copyTo(dst, x0, 0)
		return state
	}
	f := p.frame
	w, h := f.Width(), f.Height()
	x, y := x0+(halfWidth-w)/2&^1, (media.ProgramHeight-h)/2&^1
	// Black bars around a picture that does not fill the half.
	if y > 0 {
		dst.fillRect(x0, 0, halfWidth, y, 16, 128, 128)
		dst.fillRect(x0, y+h, halfWidth, media.ProgramHeight-y-h, 16, 128, 128)
	}
	if x > x0 {
		dst.fillRect(x0, y, x-x0, h, 16, 128, 128)
		dst.fillRect(x+w, y, x0+halfWidth-x-w, h, 16, 128, 128)
	}
	sy, sys := avframe.Plane(f, 0, h)
	scb, scs := avframe.Plane(f, 1, h/2)
	scr, _ := avframe.Plane(f, 2, h/2)
	for r := range h {
		copy(dst.y[(y+r)*dst.ys+x:], sy[r*sys:r*sys+w])
	}
	for r := range h / 2 {
		o := (y/2+r)*dst.cs + x/2
		copy(dst.cb[o:], scb[r*scs:r*scs+w/2])
		copy(dst.cr[o:], scr[r*scs:r*scs+w/2])
	}
	return SlotLive
}

// audioFrames mixes and encodes the audio up to due, 1024 samples at a
// time.
func (c *Compositor) audioFrames(due time.Time, sink media.Sink) error {
	upTo := due.Sub(c.start).Nanoseconds() * media.AudioClockRate / int64(time.Second)
	for c.audioPos+media.AACFrameSamples <= upTo {
		if err := avframe.MakeWritable(c.sound); err != nil {
			return fmt.Errorf("compositor: sound: %w", err)
		}
		left, right := avframe.FloatPlane(c.sound, 0), avframe.FloatPlane(c.sound, 1)
		clear(left)
		clear(right)
		gains := *c.gains.Load()
		for i, s := range c.slots {
			s.sound.mixInto(left, right, c.gain[i], gains[i])
		}
		c.gain = gains
		limit(left)
		limit(right)
		c.sound.SetPts(c.audioPos)
		c.audioPos += media.AACFrameSamples
		if err := c.audio.SendFrame(c.sound); err != nil {
			return fmt.Errorf("compositor: encoding audio: %w", err)
		}
		for {
			err := c.audio.ReceivePacket(c.pkt)
			if errors.Is(err, astiav.ErrEagain) {
				break
			}
			if err != nil {
				return fmt.Errorf("compositor: encoding audio: %w", err)
			}
			// The encoder's first frame is its priming delay, before the
			// program starts: dropping it keeps PTS = sample position.
			pts := c.pkt.Pts()
			if pts >= 0 {
				au := [][]byte{append([]byte(nil), avframe.PacketData(c.pkt)...)}
				ntp := c.start.Add(time.Duration(pts * int64(time.Second) / media.AudioClockRate))
				if err := sink.WriteAudio(ntp, pts, au); err != nil {
					c.pkt.Unref()
					return fmt.Errorf("compositor: sink: %w", err)
				}
				c.mu.Lock()
				c.stats.AudioFramesOut++
				c.mu.Unlock()
			}
			c.pkt.Unref()
		}
	}
	return nil
}

// limit keeps the mix within full scale: linear up to the knee, then a
// smooth curve that approaches 1 instead of wrapping or clipping hard.
func limit(pcm []float32) {
	const knee = 0.8
	for i, v := range pcm {
		a := math.Abs(float64(v))
		if a <= knee {
			continue
		}
		l := knee + (1-knee)*math.Tanh((a-knee)/(1-knee))
		pcm[i] = float32(math.Copysign(l, float64(v)))
	}
}

// copyNALUs copies NAL units into one new buffer the sink may keep.
func copyNALUs(nalus [][]byte) [][]byte {
	n := 0
	for _, u := range nalus {
		n += len(u)
	}
	buf := make([]byte, 0, n)
	out := make([][]byte, len(nalus))
	for i, u := range nalus {
		buf = append(buf, u...)
		out[i] = buf[len(buf)-len(u):]
	}
	return out
}
