// Package testmedia makes short test clips with the ffmpeg CLI and plays
// them in real time into a whipclient publisher.
package testmedia

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"time"

	"github.com/pion/webrtc/v4/pkg/media"
	"github.com/pion/webrtc/v4/pkg/media/h264reader"
	"github.com/pion/webrtc/v4/pkg/media/ivfreader"
	"github.com/pion/webrtc/v4/pkg/media/oggreader"
	"github.com/singoff/singoff/ingest/whipclient"
)

// Files are the clips Generate made.
type Files struct {
	// H264 is a baseline Annex-B stream, 640x480 at 30 fps, an IDR with
	// SPS and PPS every second.
	H264 string
	// VP8 is an IVF file, 640x480 at 30 fps, a keyframe every second.
	VP8 string
	// Opus is an Ogg file of a 440 Hz tone, one 20 ms packet per page.
	Opus string
}

// FrameRate of the video clips.
const FrameRate = 30

// clipSeconds is each clip's length; players loop them.
const clipSeconds = "2"

// Generate writes the clips into dir with the ffmpeg CLI.
func Generate(ctx context.Context, dir string) (*Files, error) {
	f := &Files{
		H264: filepath.Join(dir, "video.h264"),
		VP8:  filepath.Join(dir, "video.ivf"),
		Opus: filepath.Join(dir, "audio.ogg"),
	}
	video := []string{"-f", "lavfi", "-i", fmt.Sprintf("testsrc2=size=640x480:rate=%d", FrameRate), "-t", clipSeconds, "-pix_fmt", "yuv420p"}
	jobs := [][]string{
		append(append([]string{}, video...), "-c:v", "libx264", "-profile:v", "baseline", "-bf", "0", "-g", "30",
			"-x264-params", "repeat-headers=1", "-f", "h264", f.H264),
		append(append([]string{}, video...), "-c:v", "libvpx", "-g", "30", "-deadline", "realtime", "-b:v", "1M", "-f", "ivf", f.VP8),
		{"-f", "lavfi", "-i", "sine=frequency=440:sample_rate=48000", "-t", clipSeconds, "-c:a", "libopus",
			"-frame_duration", "20", "-page_duration", "20000", "-f", "ogg", f.Opus},
	}
	for _, args := range jobs {
		args = append([]string{"-hide_banner", "-loglevel", "error", "-y"}, args...)
		if out, err := exec.CommandContext(ctx, "ffmpeg", args...).CombinedOutput(); err != nil {
			return nil, fmt.Errorf("testmedia: ffmpeg %v: %w: %s", args, err, out)
		}
	}
	return f, nil
}

// Play sends files in real time, looping, into pub until ctx ends: the
// VP8 clip when vp8 is set, else the H264 one, and the Opus clip. It
// returns nil when ctx ends.
func Play(ctx context.Context, pub *whipclient.Publisher, files *Files, vp8 bool) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	video := func() error { return PlayH264(ctx, pub, files.H264) }
	if vp8 {
		video = func() error { return PlayVP8(ctx, pub, files.VP8) }
	}
	errs := make(chan error, 2)
	go func() { errs <- video() }()
	go func() { errs <- PlayOpus(ctx, pub, files.Opus) }()
	err := <-errs
	cancel()
	return errors.Join(err, <-errs)
}

// frameDuration is one video frame at FrameRate.
const frameDuration = time.Second / FrameRate

// PlayH264 sends the Annex-B file path as access units, one per frame
// interval, looping until ctx ends.
func PlayH264(ctx context.Context, pub *whipclient.Publisher, path string) error {
	return loop(ctx, path, frameDuration, func(r io.Reader) (func() ([]byte, error), error) {
		h, err := h264reader.NewReader(r)
		if err != nil {
			return nil, err
		}
		return func() ([]byte, error) { return nextAccessUnit(h) }, nil
	}, func(data []byte) error {
		return pub.WriteVideo(media.Sample{Data: data, Duration: frameDuration})
	})
}

// nextAccessUnit gathers NAL units up to and including the next coded
// slice (the clips have one slice per picture), in Annex-B form.
func nextAccessUnit(h *h264reader.H264Reader) ([]byte, error) {
	var au []byte
	for {
		nal, err := h.NextNAL()
		if err != nil {
			return nil, err
		}
		au = append(au, 0, 0, 0, 1)
		au = append(au, nal.Data...)
		if nal.UnitType == h264reader.NalUnitTypeCodedSliceNonIdr || nal.UnitType == h264reader.NalUnitTypeCodedSliceIdr {
			return au, nil
		}
	}
}

// PlayVP8 sends the IVF file path frame by frame, looping until ctx ends.
func PlayVP8(ctx context.Context, pub *whipclient.Publisher, path string) error {
	return loop(ctx, path, frameDuration, func(r io.Reader) (func() ([]byte, error), error) {
		ivf, _, err := ivfreader.NewWith(r)
		if err != nil {
			return nil, err
		}
		return func() ([]byte, error) {
			frame, _, err := ivf.ParseNextFrame()
			return frame, err
		}, nil
	}, func(data []byte) error {
		return pub.WriteVideo(media.Sample{Data: data, Duration: frameDuration})
	})
}

// opusPacketDuration is the clips' Opus frame length.
const opusPacketDuration = 20 * time.Millisecond

// PlayOpus sends the Ogg file path packet by packet, looping until ctx
// ends.
func PlayOpus(ctx context.Context, pub *whipclient.Publisher, path string) error {
	return loop(ctx, path, opusPacketDuration, func(r io.Reader) (func() ([]byte, error), error) {
		ogg, _, err := oggreader.NewWith(r)
		if err != nil {
			return nil, err
		}
		return func() ([]byte, error) {
			for {
				page, header, err := ogg.ParseNextPage()
				if err != nil {
					return nil, err
				}
				if header.GranulePosition > 0 && len(page) > 0 {
					return page, nil // skip the OpusHead and OpusTags pages
				}
			}
		}, nil
	}, func(data []byte) error {
		return pub.WriteAudio(media.Sample{Data: data, Duration: opusPacketDuration})
	})
}

// loop reads units from path with the reader open makes, writing one
// every interval, and starts over at the end of the file.
func loop(ctx context.Context, path string, interval time.Duration,
	open func(io.Reader) (func() ([]byte, error), error), write func([]byte) error,
) error {
	ticker := time.NewTicker(interval)
	defer ticker.Stop()
	for {
		f, err := os.Open(path)
		if err != nil {
			return err
		}
		next, err := open(f)
		if err != nil {
			_ = f.Close()
			return fmt.Errorf("testmedia: %s: %w", path, err)
		}
		err = playFile(ctx, ticker, next, write)
		_ = f.Close()
		if ctx.Err() != nil {
			return nil
		}
		if !errors.Is(err, io.EOF) && !errors.Is(err, io.ErrUnexpectedEOF) {
			return fmt.Errorf("testmedia: %s: %w", path, err)
		}
	}
}

func playFile(ctx context.Context, ticker *time.Ticker, next func() ([]byte, error), write func([]byte) error) error {
	for {
		data, err := next()
		if err != nil {
			return err
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-ticker.C:
		}
		if err := write(data); err != nil {
			return err
		}
	}
}
