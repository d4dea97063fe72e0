package compositor

import (
	"errors"
	"fmt"
	"time"

	"github.com/asticode/go-astiav"

	"github.com/singoff/singoff/internal/avframe"
	"github.com/singoff/singoff/media"
)

// rung is one rendition of the program being encoded: the top one
// encodes the composed picture itself; each one below encodes that
// picture scaled once to its size.
type rung struct {
	index  int
	enc    *astiav.CodecContext
	frame  *astiav.Frame                // what it encodes
	scaler *astiav.SoftwareScaleContext // from the composed picture; nil for the top
}

// ladderScaling is how the rungs below the top are scaled from the
// composed picture: swscale's area averaging, what a 2:1 reduction
// wants (no aliasing), and about as cheap as bilinear.
const ladderScaling = astiav.SoftwareScaleContextFlagArea

// openRungs opens the encoders of the ladder: the top at the program's
// size and VideoBitrate, then cfg.Renditions, each with a frame and a
// scaler from picture.
func openRungs(cfg Config, picture *astiav.Frame) ([]*rung, error) {
	ladder := append([]Rung{{Width: media.ProgramWidth, Height: media.ProgramHeight, Bitrate: cfg.VideoBitrate}}, cfg.Renditions...)
	rungs := make([]*rung, 0, len(ladder))
	fail := func(err error) ([]*rung, error) {
		for _, r := range rungs {
			r.free()
		}
		return nil, err
	}
	for i, spec := range ladder {
		if i > 0 && (spec.Width <= 0 || spec.Height <= 0 || spec.Width%2 != 0 || spec.Height%2 != 0 ||
			spec.Width > media.ProgramWidth || spec.Height > media.ProgramHeight || spec.Bitrate <= 0) {
			return fail(fmt.Errorf("compositor: rendition %dx%d at %d bit/s: want an even size within the program's and a bitrate", spec.Width, spec.Height, spec.Bitrate))
		}
		// The top rung takes x264's sliced threads, so a frame is
		// encoded on both cores at once; a smaller rung is cheaper on
		// one thread (no slices to synchronise), and quick enough.
		threads := 0
		if i > 0 {
			threads = 1
		}
		enc, err := openVideoEncoder(cfg.Preset, spec, threads)
		if err != nil {
			return fail(err)
		}
		r := &rung{index: i, enc: enc, frame: picture}
		rungs = append(rungs, r)
		if i == 0 {
			continue
		}
		r.frame = astiav.AllocFrame()
		r.frame.SetWidth(spec.Width)
		r.frame.SetHeight(spec.Height)
		r.frame.SetPixelFormat(astiav.PixelFormatYuv420P)
		if err := r.frame.AllocBuffer(0); err != nil {
			return fail(fmt.Errorf("compositor: rendition picture: %w", err))
		}
		r.scaler, err = astiav.CreateSoftwareScaleContext(media.ProgramWidth, media.ProgramHeight, astiav.PixelFormatYuv420P,
			spec.Width, spec.Height, astiav.PixelFormatYuv420P, astiav.NewSoftwareScaleContextFlags(ladderScaling))
		if err != nil {
			return fail(fmt.Errorf("compositor: rendition scaler: %w", err))
		}
	}
	return rungs, nil
}

// free releases the rung; the top's frame is the compositor's.
func (r *rung) free() {
	r.enc.Free()
	if r.scaler != nil {
		r.scaler.Free()
		r.frame.Free()
	}
}

// scale redraws a lower rung's picture from the composed one.
func (r *rung) scale(picture *astiav.Frame) error {
	if r.scaler == nil {
		return nil
	}
	if err := avframe.MakeWritable(r.frame); err != nil {
		return fmt.Errorf("compositor: rendition picture: %w", err)
	}
	if err := r.scaler.ScaleFrame(picture, r.frame); err != nil {
		return fmt.Errorf("compositor: scaling a rendition: %w", err)
	}
	return nil
}

// encode encodes the rung's picture as program frame n (a keyframe when
// key) and writes what the encoder gives back to sink.
func (r *rung) encode(n int64, key bool, start time.Time, pkt *astiav.Packet, sink media.Sink) error {
	r.frame.SetPts(n)
	if key {
		r.frame.SetPictureType(astiav.PictureTypeI)
	} else {
		r.frame.SetPictureType(astiav.PictureTypeNone)
	}
	if err := r.enc.SendFrame(r.frame); err != nil {
		return fmt.Errorf("compositor: encoding video: %w", err)
	}
	for {
		err := r.enc.ReceivePacket(pkt)
		if errors.Is(err, astiav.ErrEagain) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("compositor: encoding video: %w", err)
		}
		pts := pkt.Pts()
		au := copyNALUs(splitAnnexB(avframe.PacketData(pkt)))
		pkt.Unref()
		if err := sink.WriteVideo(r.index, start.Add(time.Duration(pts)*frameInterval), pts*videoTicksPerFrame, au); err != nil {
			return fmt.Errorf("compositor: sink: %w", err)
		}
	}
}
