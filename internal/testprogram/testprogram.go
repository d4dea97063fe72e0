// Package testprogram makes a real program for tests and benchmarks: a
// clip encoded by the ffmpeg CLI the way the compositor encodes (H264
// 1280x720@30 without B-frames, a keyframe every second, AAC-LC 48 kHz
// stereo), split into the access units a media.Sink receives.
package testprogram

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"github.com/bluenviron/mediacommon/v2/pkg/codecs/h264"
	"github.com/bluenviron/mediacommon/v2/pkg/codecs/mpeg4audio"

	"github.com/singoff/singoff/media"
)

// VideoAU is one H264 access unit of the program.
type VideoAU struct {
	PTS   int64 // media.VideoClockRate units
	NALUs [][]byte
}

// AudioAU is one AAC access unit (1024 samples) of the program.
type AudioAU struct {
	PTS int64 // media.AudioClockRate units
	AU  []byte
}

// Program is an encoded clip, ready to be fed to a media.Sink.
type Program struct {
	Info media.ProgramInfo
	// Video holds the access units of each rung of the ladder, top rung
	// first (as Info.Video): every rung has a frame at the same PTS and
	// keyframes at the same frames.
	Video    [][]VideoAU
	Audio    []AudioAU
	Duration time.Duration
}

// Rung is one rendition of a clip: its size and ffmpeg bitrate (such as
// "2500k").
type Rung struct {
	Width, Height int
	Bitrate       string
}

// Generate encodes a clip of the given length (whole seconds) into dir
// and loads it: one 1280×720 rendition at videoBitrate, an ffmpeg
// bitrate such as "2500k"; the picture carries noise so that the encoder
// reaches it, as a camera would.
func Generate(ctx context.Context, dir string, seconds int, videoBitrate string) (*Program, error) {
	return GenerateLadder(ctx, dir, seconds, []Rung{{media.ProgramWidth, media.ProgramHeight, videoBitrate}})
}

// GenerateLadder encodes a clip as Generate does, as the renditions of
// ladder (top first), scaled from one picture by one ffmpeg run with the
// same keyframe grid, as the compositor's ladder is.
func GenerateLadder(ctx context.Context, dir string, seconds int, ladder []Rung) (*Program, error) {
	if len(ladder) == 0 {
		return nil, fmt.Errorf("testprogram: an empty ladder")
	}
	length := fmt.Sprint(seconds)
	args := []string{"-hide_banner", "-loglevel", "error", "-y",
		"-f", "lavfi", "-i", "testsrc2=size=1280x720:rate=30,noise=alls=12:allf=t",
		"-f", "lavfi", "-i", "sine=frequency=440:sample_rate=48000",
	}
	var rungs strings.Builder
	fmt.Fprintf(&rungs, "[0:v]split=%d", len(ladder))
	for i := range ladder {
		fmt.Fprintf(&rungs, "[s%d]", i)
	}
	for i, r := range ladder {
		fmt.Fprintf(&rungs, ";[s%d]scale=%d:%d[v%d]", i, r.Width, r.Height, i)
	}
	args = append(args, "-filter_complex", rungs.String())
	for i, r := range ladder {
		args = append(args, "-map", fmt.Sprintf("[v%d]", i), "-t", length,
			"-c:v", "libx264", "-preset", "ultrafast", "-tune", "zerolatency",
			"-bf", "0", "-g", "30", "-keyint_min", "30", "-sc_threshold", "0", "-pix_fmt", "yuv420p",
			"-b:v", r.Bitrate, "-maxrate", r.Bitrate, "-bufsize", r.Bitrate,
			"-x264-params", "aud=1", "-f", "h264", filepath.Join(dir, videoFile(i)))
	}
	args = append(args, "-map", "1:a", "-t", length, "-ac", "2", "-c:a", "aac", "-b:a", "128k", "-f", "adts", filepath.Join(dir, audioFile))
	if out, err := exec.CommandContext(ctx, "ffmpeg", args...).CombinedOutput(); err != nil {
		return nil, fmt.Errorf("ffmpeg: %w: %s", err, out)
	}
	var sizes strings.Builder
	for _, r := range ladder {
		fmt.Fprintf(&sizes, "%dx%d\n", r.Width, r.Height)
	}
	if err := os.WriteFile(filepath.Join(dir, ladderFile), []byte(sizes.String()), 0o644); err != nil {
		return nil, err
	}
	return Load(dir)
}

// Names of the encoded clip's files.
const (
	audioFile  = "program.aac"
	ladderFile = "ladder.txt" // the rungs' sizes, a WxH line each
)

func videoFile(rung int) string { return fmt.Sprintf("program%d.h264", rung) }

// Load reads a clip that Generate or GenerateLadder encoded into dir.
func Load(dir string) (*Program, error) {
	p := &Program{Info: media.ProgramInfo{FPS: 30}}
	ladder, err := os.ReadFile(filepath.Join(dir, ladderFile))
	if err != nil {
		return nil, err
	}
	for _, size := range strings.Fields(string(ladder)) {
		var rung media.VideoRung
		if _, err := fmt.Sscanf(size, "%dx%d", &rung.Width, &rung.Height); err != nil {
			return nil, fmt.Errorf("%s: %q: %w", ladderFile, size, err)
		}
		if err := p.parseVideo(filepath.Join(dir, videoFile(len(p.Video))), rung); err != nil {
			return nil, err
		}
	}
	for i := 1; i < len(p.Video); i++ {
		if len(p.Video[i]) != len(p.Video[0]) {
			return nil, fmt.Errorf("rung %d has %d frames, rung 0 %d", i, len(p.Video[i]), len(p.Video[0]))
		}
	}
	if err := p.parseAudio(filepath.Join(dir, audioFile)); err != nil {
		return nil, err
	}
	p.Duration = time.Duration(len(p.Video[0])) * time.Second / time.Duration(p.Info.FPS)
	return p, nil
}

// parseVideo reads the access units of the next rung, of the given size.
func (p *Program) parseVideo(path string, rung media.VideoRung) error {
	raw, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	// x264 was told to write an access unit delimiter before every
	// access unit, which is where one ends and the next begins.
	var aus []VideoAU
	var au [][]byte
	flush := func() {
		if len(au) > 0 {
			aus = append(aus, VideoAU{
				PTS:   int64(len(aus)) * media.VideoClockRate / 30,
				NALUs: au,
			})
			au = nil
		}
	}
	for _, nalu := range splitAnnexB(raw) {
		switch h264.NALUType(nalu[0] & 0x1f) {
		case h264.NALUTypeAccessUnitDelimiter:
			flush()
			continue
		case h264.NALUTypeSPS:
			if rung.SPS == nil {
				rung.SPS = nalu
			}
		case h264.NALUTypePPS:
			if rung.PPS == nil {
				rung.PPS = nalu
			}
		}
		au = append(au, nalu)
	}
	flush()
	if rung.SPS == nil || rung.PPS == nil || len(aus) == 0 {
		return fmt.Errorf("%s: no SPS, PPS or frames", path)
	}
	p.Info.Video = append(p.Info.Video, rung)
	p.Video = append(p.Video, aus)
	return nil
}

// splitAnnexB cuts an Annex-B byte stream at its start codes. (mediacommon's
// AnnexB.Unmarshal takes one access unit at a time.)
func splitAnnexB(buf []byte) [][]byte {
	var nalus [][]byte
	start := -1
	for i := 0; i+2 < len(buf); i++ {
		if buf[i] != 0 || buf[i+1] != 0 || buf[i+2] != 1 {
			continue
		}
		if start >= 0 {
			end := i
			for end > start && buf[end-1] == 0 { // trailing zeros belong to a 4-byte start code
				end--
			}
			nalus = append(nalus, buf[start:end])
		}
		start = i + 3
		i += 2
	}
	if start >= 0 && start < len(buf) {
		nalus = append(nalus, buf[start:])
	}
	return nalus
}

func (p *Program) parseAudio(path string) error {
	raw, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	var pkts mpeg4audio.ADTSPackets
	if err := pkts.Unmarshal(raw); err != nil {
		return fmt.Errorf("parsing %s: %w", path, err)
	}
	if len(pkts) == 0 {
		return fmt.Errorf("%s: no audio", path)
	}
	p.Info.Audio = mpeg4audio.AudioSpecificConfig{
		Type:          pkts[0].Type,
		SampleRate:    pkts[0].SampleRate,
		ChannelConfig: pkts[0].ChannelConfig,
	}
	for i, pkt := range pkts {
		p.Audio = append(p.Audio, AudioAU{PTS: int64(i) * 1024, AU: pkt.AU})
	}
	return nil
}

// Feed writes the program into sink for the given length, looping the
// clip, audio and video interleaved in time order. speed paces the writes
// against the program's clock: 1 is real time, as the compositor writes,
// 4 four times faster, and 0 as fast as sink takes them. ntp advances
// with the program from start.
func (p *Program) Feed(ctx context.Context, sink media.Sink, length time.Duration, speed float64) error {
	start := time.Now()
	clipVideo := p.Duration.Nanoseconds() * media.VideoClockRate / int64(time.Second)
	clipAudio := p.Duration.Nanoseconds() * media.AudioClockRate / int64(time.Second)
	frames := p.Video[0]
	for loop := int64(0); time.Duration(loop)*p.Duration < length; loop++ {
		vi, ai := 0, 0
		for vi < len(frames) || ai < len(p.Audio) {
			// Audio past the clip's end would overlap the next loop.
			if ai < len(p.Audio) && p.Audio[ai].PTS >= clipAudio {
				ai = len(p.Audio)
				continue
			}
			var at time.Duration
			var write func(ntp time.Time) error
			videoNext := ai >= len(p.Audio) || (vi < len(frames) &&
				frames[vi].PTS*media.AudioClockRate <= p.Audio[ai].PTS*media.VideoClockRate)
			if videoNext {
				frame := vi
				pts := loop*clipVideo + frames[vi].PTS
				at = time.Duration(pts * int64(time.Second) / media.VideoClockRate)
				// Every rung's picture of the frame, top first, as the
				// compositor writes them.
				write = func(ntp time.Time) error {
					for rung := range p.Video {
						if err := sink.WriteVideo(rung, ntp, pts, p.Video[rung][frame].NALUs); err != nil {
							return err
						}
					}
					return nil
				}
				vi++
			} else {
				a := p.Audio[ai]
				pts := loop*clipAudio + a.PTS
				at = time.Duration(pts * int64(time.Second) / media.AudioClockRate)
				write = func(ntp time.Time) error { return sink.WriteAudio(ntp, pts, [][]byte{a.AU}) }
				ai++
			}
			if at >= length {
				continue
			}
			if speed > 0 {
				select {
				case <-ctx.Done():
					return ctx.Err()
				case <-time.After(time.Until(start.Add(time.Duration(float64(at) / speed)))):
				}
			} else if err := ctx.Err(); err != nil {
				return err
			}
			if err := write(start.Add(at)); err != nil {
				return err
			}
		}
	}
	return nil
}
