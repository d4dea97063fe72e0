// Package mediacheck has peers no one here wrote read singoff's output:
// ffprobe says what a URL holds, ffmpeg decodes it. Tests of every layer
// use it, so they all judge the program the same way.
package mediacheck

import (
	"context"
	"encoding/json"
	"fmt"
	"math"
	"os/exec"
	"strconv"
	"strings"
	"time"
)

// Probe is what ffprobe says of a URL.
type Probe struct {
	Streams []struct {
		CodecName  string `json:"codec_name"`
		Width      int    `json:"width"`
		Height     int    `json:"height"`
		SampleRate string `json:"sample_rate"`
		Channels   int    `json:"channels"`
	} `json:"streams"`
	Format struct {
		Duration string `json:"duration"`
	} `json:"format"`
}

// ProbeURL runs ffprobe on url.
func ProbeURL(ctx context.Context, url string) (Probe, error) {
	var p Probe
	out, err := exec.CommandContext(ctx, "ffprobe", "-v", "error", "-print_format", "json",
		"-show_streams", "-show_format", url).Output()
	if err != nil {
		return p, fmt.Errorf("ffprobe %s: %w", url, err)
	}
	if err := json.Unmarshal(out, &p); err != nil {
		return p, fmt.Errorf("ffprobe %s: %w", url, err)
	}
	return p, nil
}

// IsProgram tells whether p holds singoff's program: H264 1280×720 and
// AAC 48 kHz stereo.
func (p Probe) IsProgram() error {
	var video, audio bool
	var found []string
	for _, s := range p.Streams {
		switch s.CodecName {
		case "h264":
			video = video || s.Width == 1280 && s.Height == 720
			found = append(found, fmt.Sprintf("h264 %dx%d", s.Width, s.Height))
		case "aac":
			audio = audio || s.SampleRate == "48000" && s.Channels == 2
			found = append(found, fmt.Sprintf("aac %s Hz %d ch", s.SampleRate, s.Channels))
		default:
			found = append(found, s.CodecName)
		}
	}
	if !video || !audio {
		return fmt.Errorf("want h264 1280x720 and aac 48000 Hz stereo, ffprobe found [%s]", strings.Join(found, ", "))
	}
	return nil
}

// Duration is the media's duration as ffprobe reads it.
func (p Probe) Duration() (time.Duration, error) {
	s, err := strconv.ParseFloat(p.Format.Duration, 64)
	if err != nil {
		return 0, fmt.Errorf("ffprobe duration %q: %w", p.Format.Duration, err)
	}
	return time.Duration(s * float64(time.Second)), nil
}

// Decode has ffmpeg decode url (its first limit of media when limit >
// 0) and fails on any error it reports.
func Decode(ctx context.Context, url string, limit time.Duration) error {
	args := []string{"-hide_banner", "-v", "error", "-i", url}
	if limit > 0 {
		args = append(args, "-t", strconv.FormatFloat(limit.Seconds(), 'f', -1, 64))
	}
	out, err := exec.CommandContext(ctx, "ffmpeg", append(args, "-f", "null", "-")...).CombinedOutput()
	if err != nil || len(strings.TrimSpace(string(out))) > 0 {
		return fmt.Errorf("ffmpeg decoding %s: %v\n%s", url, err, out)
	}
	return nil
}

// TonePower is the power of the frequency hz in pcm (48 kHz samples),
// by Goertzel's algorithm, per sample squared: a sine of amplitude a
// alone gives a²/4.
func TonePower(pcm []float64, hz float64) float64 {
	w := 2 * math.Pi * hz / 48000
	coeff := 2 * math.Cos(w)
	var s1, s2 float64
	for _, x := range pcm {
		s1, s2 = x+coeff*s1-s2, s1
	}
	return (s1*s1 + s2*s2 - coeff*s1*s2) / float64(len(pcm)*len(pcm))
}
