package compositor

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/pion/rtp"
	"github.com/pion/webrtc/v4/pkg/media/oggwriter"

	"github.com/singoff/singoff/internal/synth"
	"github.com/singoff/singoff/media"
)

// The benchmarks run for a while and want the machine to themselves:
//
//	SINGOFF_BENCH=1 go test -run TestBench -v -timeout 30m ./compositor
//
// SINGOFF_BENCH_SECONDS sets each measurement's length (default 20).
func benchSeconds(t *testing.T) time.Duration {
	t.Helper()
	if os.Getenv("SINGOFF_BENCH") == "" {
		t.Skip("set SINGOFF_BENCH=1 to run the benchmarks")
	}
	if s, err := strconv.Atoi(os.Getenv("SINGOFF_BENCH_SECONDS")); err == nil && s > 0 {
		return time.Duration(s) * time.Second
	}
	return 20 * time.Second
}

// benchClips encodes the two singers of the benchmarks: moving noise at
// ~2 Mb/s, 640x480 at 30 fps, like a camera.
func benchClips(t *testing.T, length time.Duration) [2]*synth.Clip {
	t.Helper()
	var clips [2]*synth.Clip
	for i := range clips {
		clip, err := synth.Encode(synth.Config{Slot: i + 1, Noise: true}, length)
		if err != nil {
			t.Fatal(err)
		}
		clips[i] = clip
	}
	return clips
}

func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		panic(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

func rssBytes(t *testing.T) int64 {
	t.Helper()
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(b), "\n") {
		if f := strings.Fields(line); len(f) >= 2 && f[0] == "VmRSS:" {
			kb, _ := strconv.ParseInt(f[1], 10, 64)
			return kb * 1024
		}
	}
	t.Fatal("no VmRSS")
	return 0
}

// countingSink takes the program and keeps only its size.
type countingSink struct {
	mu    sync.Mutex
	bytes int64
}

func (s *countingSink) WriteVideo(_ time.Time, _ int64, au [][]byte) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, n := range au {
		s.bytes += int64(len(n))
	}
	return nil
}

func (s *countingSink) WriteAudio(_ time.Time, _ int64, aus [][]byte) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, n := range aus {
		s.bytes += int64(len(n))
	}
	return nil
}

// battle is one compositor fed by two clips played in real time.
type battle struct {
	c    *Compositor
	sink countingSink
	done chan error
}

func startBattle(ctx context.Context, t *testing.T, cfg Config, clips [2]*synth.Clip) *battle {
	t.Helper()
	feeds := [2]*testFeed{newTestFeed(), newTestFeed()}
	for i, clip := range clips {
		go clip.Play(ctx, func(p media.AccessUnit) {
			p.Session = 1
			select {
			case feeds[i].ch <- p:
			case <-ctx.Done():
			}
		})
	}
	cfg.Logger = quietLogger()
	c, err := New(cfg, feeds[0], feeds[1])
	if err != nil {
		t.Fatal(err)
	}
	b := &battle{c: c, done: make(chan error, 1)}
	go func() { b.done <- c.Run(ctx, &b.sink) }()
	return b
}

// TestBenchCPU measures the CPU one battle takes at x264 veryfast, and
// the ffmpeg CLI doing the same job on the same input in real time.
func TestBenchCPU(t *testing.T) {
	d := benchSeconds(t)
	clips := benchClips(t, d)

	rssBefore := rssBytes(t)
	ctx, cancel := context.WithTimeout(context.Background(), d)
	cpuBefore := cpuTime()
	b := startBattle(ctx, t, Config{}, clips)
	time.Sleep(d / 2)
	rss := rssBytes(t) - rssBefore
	if err := <-b.done; err != nil {
		t.Fatal(err)
	}
	cancel()
	ours := cpuTime() - cpuBefore
	st := b.c.Stats()
	t.Logf("singoff: %.3f CPU-s per program-s, %d frames, %d dropped, %.2f Mb/s, encode %.1f ms/frame, RSS +%.1f MB",
		ours.Seconds()/d.Seconds(), st.FramesOut, st.FramesDropped, float64(b.sink.bytes*8)/d.Seconds()/1e6,
		float64(st.EncodeTime.Milliseconds())/float64(max(st.FramesOut, 1)), float64(rss)/1e6)

	cli := ffmpegBattle(t, clips, d)
	t.Logf("ffmpeg CLI: %.3f CPU-s per program-s; singoff/ffmpeg = %.2f", cli.Seconds()/d.Seconds(), ours.Seconds()/cli.Seconds())
}

// ffmpegBattle runs the ffmpeg CLI on the clips: decode, fit each into
// 640x720, hstack, amix, x264 veryfast zerolatency and AAC, reading in
// real time; it returns the CPU time the process used.
func ffmpegBattle(t *testing.T, clips [2]*synth.Clip, d time.Duration) time.Duration {
	t.Helper()
	dir := t.TempDir()
	var args []string
	for i, clip := range clips {
		h264, ogg := filepath.Join(dir, fmt.Sprintf("s%d.h264", i)), filepath.Join(dir, fmt.Sprintf("s%d.ogg", i))
		writeClipFiles(t, clip, h264, ogg)
		args = append(args, "-re", "-framerate", "30", "-i", h264, "-re", "-i", ogg)
	}
	fitHalf := "scale=640:720:force_original_aspect_ratio=decrease,pad=640:720:(ow-iw)/2:(oh-ih)/2"
	args = append(args,
		"-filter_complex", "[0:v]"+fitHalf+"[l];[2:v]"+fitHalf+"[r];[l][r]hstack[v];[1:a][3:a]amix=inputs=2[a]",
		"-map", "[v]", "-map", "[a]", "-r", "30",
		"-c:v", "libx264", "-preset", "veryfast", "-tune", "zerolatency", "-g", "30", "-keyint_min", "30",
		"-sc_threshold", "0", "-bf", "0", "-b:v", "2500k", "-maxrate", "2500k", "-bufsize", "2500k",
		"-c:a", "aac", "-b:a", "128k", "-ar", "48000", "-ac", "2",
		"-t", strconv.Itoa(int(d.Seconds())), "-f", "mpegts", "-y", os.DevNull)
	cmd := exec.Command("ffmpeg", append([]string{"-v", "error", "-nostdin"}, args...)...)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("ffmpeg: %v: %s", err, out)
	}
	ru := cmd.ProcessState.SysUsage().(*syscall.Rusage)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

func writeClipFiles(t *testing.T, clip *synth.Clip, h264Path, oggPath string) {
	t.Helper()
	h264, err := os.Create(h264Path)
	if err != nil {
		t.Fatal(err)
	}
	defer h264.Close()
	ogg, err := oggwriter.New(oggPath, 48000, 1)
	if err != nil {
		t.Fatal(err)
	}
	defer ogg.Close()
	for i, p := range clip.Packets() {
		if p.Codec.IsVideo() {
			if _, err := h264.Write(p.Data); err != nil {
				t.Fatal(err)
			}
			continue
		}
		if err := ogg.WriteRTP(&rtp.Packet{Header: rtp.Header{Timestamp: p.RTPTime, SequenceNumber: uint16(i)}, Payload: p.Data}); err != nil {
			t.Fatal(err)
		}
	}
}

// TestBenchCapacity finds how many battles composite at once at x264
// superfast without dropping a program frame, and their memory.
func TestBenchCapacity(t *testing.T) {
	d := benchSeconds(t)
	clips := benchClips(t, 10*time.Second)
	most := 8
	if s, err := strconv.Atoi(os.Getenv("SINGOFF_BENCH_MAX_BATTLES")); err == nil && s > 0 {
		most = s
	}
	best := 0
	for n := 2; n <= most; n++ {
		rssBefore := rssBytes(t)
		ctx, cancel := context.WithTimeout(context.Background(), d)
		cpuBefore := cpuTime()
		battles := make([]*battle, n)
		for i := range battles {
			battles[i] = startBattle(ctx, t, Config{Preset: "superfast"}, clips)
		}
		time.Sleep(d / 2)
		rss := rssBytes(t) - rssBefore
		var dropped, frames int64
		for _, b := range battles {
			if err := <-b.done; err != nil {
				t.Fatal(err)
			}
			st := b.c.Stats()
			dropped += st.FramesDropped
			frames += st.FramesOut
		}
		cancel()
		cpu := cpuTime() - cpuBefore
		t.Logf("%d battles: %d frames, %d dropped, %.2f CPU cores, RSS +%.1f MB per battle",
			n, frames, dropped, cpu.Seconds()/d.Seconds(), float64(rss)/float64(n)/1e6)
		if dropped > 0 {
			break
		}
		best = n
		time.Sleep(time.Second) // let the last battles' memory go
	}
	t.Logf("battles composited at once without a dropped frame: %d", best)
}
