package compositor

import (
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
	"image/color"
	"io"
	"log/slog"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/asticode/go-astiav"
	"github.com/bluenviron/mediacommon/v2/pkg/codecs/h264"
	"github.com/bluenviron/mediacommon/v2/pkg/codecs/mpeg4audio"

	"github.com/singoff/singoff/internal/synth"
	"github.com/singoff/singoff/media"
)

func TestMain(m *testing.M) {
	// Junk fed on purpose makes FFmpeg's decoders complain on stderr.
	astiav.SetLogLevel(astiav.LogLevelFatal)
	os.Exit(m.Run())
}

func quietLogger() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

// testFeed is an in-memory media.Feed carrying real encoded media.
type testFeed struct {
	ch        chan media.AccessUnit
	keyframes atomic.Int64
	mu        sync.Mutex
	source    *synth.Source
}

func newTestFeed() *testFeed { return &testFeed{ch: make(chan media.AccessUnit, 1024)} }

func (f *testFeed) Units() <-chan media.AccessUnit { return f.ch }

func (f *testFeed) RequestKeyframe() {
	f.keyframes.Add(1)
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.source != nil {
		f.source.RequestKeyframe()
	}
}

// publish runs a synthetic singer into the feed as session until ctx
// ends; edit, when set, changes each packet first.
func (f *testFeed) publish(ctx context.Context, t *testing.T, cfg synth.Config, session uint64, edit func(*media.AccessUnit)) {
	t.Helper()
	src, err := synth.New(cfg)
	if err != nil {
		t.Error(err) // may run outside the test's goroutine
		return
	}
	f.mu.Lock()
	f.source = src
	f.mu.Unlock()
	go func() {
		err := src.Run(ctx, func(p media.AccessUnit) {
			p.Session = session
			if edit != nil {
				edit(&p)
			}
			select {
			case f.ch <- p:
			default: // a stalled compositor loses media, as over a network
			}
		})
		f.mu.Lock()
		f.source = nil
		f.mu.Unlock()
		if err != nil {
			t.Error(err)
		}
	}()
}

// programRecorder is a media.Sink keeping the program as raw H264 (the
// top rung; the others apart) and ADTS AAC files, with every sample's
// timestamps, and the cues and stills it is handed.
type programRecorder struct {
	mu        sync.Mutex
	h264, aac bytes.Buffer
	videoPTS  []int64
	videoNTP  []time.Time
	audioPTS  []int64
	keyframes int
	lower     map[int]*rungRecord // the rungs below the top
	// audioAtVideo is, at each top frame's write, where the audio
	// written so far ends (audio clock).
	audioAtVideo []int64
	cues         []media.Cue
	stills       []stillRecord
}

type stillRecord struct {
	ntp  time.Time
	jpeg []byte
}

func (r *programRecorder) Cue(c media.Cue) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.cues = append(r.cues, c)
}

func (r *programRecorder) Still(ntp time.Time, jpeg []byte) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.stills = append(r.stills, stillRecord{ntp, jpeg})
}

// rungRecord is one lower rung of the program.
type rungRecord struct {
	h264   bytes.Buffer
	pts    []int64
	keyPTS []int64
}

func (r *programRecorder) WriteVideo(rung int, ntp time.Time, pts int64, au [][]byte) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	key := h264.IsRandomAccess(au)
	out := &r.h264
	if rung == 0 {
		if key {
			r.keyframes++
		}
		r.videoPTS = append(r.videoPTS, pts)
		r.videoNTP = append(r.videoNTP, ntp)
		audioEnd := int64(0)
		if n := len(r.audioPTS); n > 0 {
			audioEnd = r.audioPTS[n-1] + media.AACFrameSamples
		}
		r.audioAtVideo = append(r.audioAtVideo, audioEnd)
	} else {
		if r.lower == nil {
			r.lower = map[int]*rungRecord{}
		}
		if r.lower[rung] == nil {
			r.lower[rung] = &rungRecord{}
		}
		low := r.lower[rung]
		low.pts = append(low.pts, pts)
		if key {
			low.keyPTS = append(low.keyPTS, pts)
		}
		out = &low.h264
	}
	for _, nalu := range au {
		out.Write([]byte{0, 0, 0, 1})
		out.Write(nalu)
	}
	return nil
}

func (r *programRecorder) WriteAudio(_ time.Time, pts int64, aus [][]byte) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	for i, au := range aus {
		b, err := mpeg4audio.ADTSPackets{{Type: mpeg4audio.ObjectTypeAACLC, SampleRate: 48000, ChannelConfig: 2, AU: au}}.Marshal()
		if err != nil {
			return err
		}
		r.aac.Write(b)
		r.audioPTS = append(r.audioPTS, pts+int64(i*media.AACFrameSamples))
	}
	return nil
}

// files writes the program out for ffmpeg.
func (r *programRecorder) files(t *testing.T) (h264, aac string) {
	t.Helper()
	r.mu.Lock()
	defer r.mu.Unlock()
	dir := t.TempDir()
	h264, aac = filepath.Join(dir, "program.h264"), filepath.Join(dir, "program.aac")
	if err := os.WriteFile(h264, r.h264.Bytes(), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(aac, r.aac.Bytes(), 0o600); err != nil {
		t.Fatal(err)
	}
	return h264, aac
}

// lowerFile writes a lower rung of the program out for ffmpeg.
func (r *programRecorder) lowerFile(t *testing.T, rung int) string {
	t.Helper()
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.lower[rung] == nil {
		t.Fatalf("no rung %d", rung)
	}
	path := filepath.Join(t.TempDir(), fmt.Sprintf("rung%d.h264", rung))
	if err := os.WriteFile(path, r.lower[rung].h264.Bytes(), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// runProgram runs a compositor over the feeds for d into a recorder;
// during, if set, runs alongside with the compositor.
func runProgram(t *testing.T, left, right media.Feed, d time.Duration, during func(ctx context.Context, c *Compositor)) (*programRecorder, *Compositor) {
	t.Helper()
	c, err := New(Config{Logger: quietLogger()}, left, right)
	if err != nil {
		t.Fatal(err)
	}
	rec := &programRecorder{}
	ctx, cancel := context.WithTimeout(context.Background(), d)
	defer cancel()
	duringDone := make(chan struct{})
	go func() {
		defer close(duringDone)
		if during != nil {
			during(ctx, c)
		}
	}()
	err = c.Run(ctx, rec)
	cancel()
	<-duringDone
	if err != nil {
		t.Fatal(err)
	}
	return rec, c
}

func ffmpegOut(t *testing.T, args ...string) []byte {
	t.Helper()
	cmd := exec.Command("ffmpeg", append([]string{"-v", "error", "-nostdin"}, args...)...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("ffmpeg %v: %v: %s", args, err, stderr.String())
	}
	if stderr.Len() > 0 {
		t.Errorf("ffmpeg reported errors decoding: %s", stderr.String())
	}
	return out
}

// decodeFrames decodes a raw H264 rung of the program to RGB frames at
// the program's size.
func decodeFrames(t *testing.T, path string) [][]byte {
	t.Helper()
	raw := ffmpegOut(t, "-i", path, "-f", "rawvideo", "-pix_fmt", "rgb24",
		"-s", fmt.Sprintf("%dx%d", media.ProgramWidth, media.ProgramHeight), "-")
	const size = media.ProgramWidth * media.ProgramHeight * 3
	if len(raw)%size != 0 {
		t.Fatalf("decoded %d bytes, not whole frames", len(raw))
	}
	var frames [][]byte
	for len(raw) > 0 {
		frames = append(frames, raw[:size])
		raw = raw[size:]
	}
	return frames
}

// decodePCM decodes the ADTS program to mono float samples at 48 kHz.
func decodePCM(t *testing.T, path string) []float64 {
	t.Helper()
	raw := ffmpegOut(t, "-i", path, "-f", "f32le", "-ac", "1", "-")
	pcm := make([]float64, len(raw)/4)
	for i := range pcm {
		pcm[i] = float64(math.Float32frombits(binary.LittleEndian.Uint32(raw[4*i:])))
	}
	return pcm
}

func pixel(frame []byte, x, y int) color.RGBA {
	i := (y*media.ProgramWidth + x) * 3
	return color.RGBA{frame[i], frame[i+1], frame[i+2], 255}
}

func near(a, b color.RGBA, tolerance int) bool {
	d := func(x, y uint8) int { return int(math.Abs(float64(int(x) - int(y)))) }
	return d(a.R, b.R) <= tolerance && d(a.G, b.G) <= tolerance && d(a.B, b.B) <= tolerance
}

func checkMonotonePTS(t *testing.T, name string, pts []int64, step int64, maxGap int64) {
	t.Helper()
	if len(pts) == 0 {
		t.Fatalf("no %s samples", name)
	}
	if pts[0] > maxGap*step {
		t.Errorf("%s starts at %d", name, pts[0])
	}
	for i := 1; i < len(pts); i++ {
		d := pts[i] - pts[i-1]
		if d <= 0 || d%step != 0 || d > maxGap*step {
			t.Fatalf("%s PTS %d after %d (step %d)", name, pts[i], pts[i-1], step)
		}
	}
}

func describe(c color.RGBA) string { return fmt.Sprintf("rgb(%d,%d,%d)", c.R, c.G, c.B) }
