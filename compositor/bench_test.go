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

// The program benchmarks run in real time: one op is one second of
// program, and they want the machine to themselves. A measurement:
//
//	go test -run '^$' -bench '^BenchmarkProgram' -benchtime 20x -timeout 30m ./compositor
//
// (-benchtime 1x is a quick check that they work.) Figures, besides the
// wall time per program second (ns/op):
//   - cores: CPU-seconds per program-second, the process's (so clip
//     playback included);
//   - ffmpeg-cores and x-ffmpeg: the ffmpeg CLI doing the same job on the
//     same input in the same run, and our cores over its;
//   - BenchmarkProgramCPU gives them for one rendition and for the
//     ladder (see there).

// programLength is the program a benchmark makes: b.N seconds.
func programLength(b *testing.B) time.Duration { return time.Duration(b.N) * time.Second }

// benchClips encodes the two singers of the benchmarks: moving noise at
// ~2 Mb/s, 640x480 at 30 fps, like a camera.
func benchClips(t testing.TB, length time.Duration) [2]*synth.Clip {
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

func rssBytes(t testing.TB) int64 {
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

func (s *countingSink) WriteVideo(rung int, _ time.Time, _ int64, au [][]byte) error {
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

func startBattle(ctx context.Context, t testing.TB, cfg Config, clips [2]*synth.Clip) *battle {
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

// BenchmarkProgramCPU measures the CPU one battle takes at x264
// veryfast, with one rendition and with the ladder, and the ffmpeg CLI
// doing the same two jobs on the same input in real time (ffmpegBattle),
// all in the same run, one after the other. Each op is one program second of each of the four.
// Figures: cores (the ladder's), one-cores, ffmpeg-cores (the CLI's
// ladder) and ffmpeg-one-cores; x-one (the ladder over one rendition,
// bar 1.3), x-ffmpeg (the ladder over the CLI's, bar 1.1) and
// x-ffmpeg-one; besides, the ladder's repeated program frames, its Mb/s
// (every rung), composing and encoding time per frame and the RSS it
// added half-way.
func BenchmarkProgramCPU(b *testing.B) {
	d := programLength(b)
	b.StopTimer()
	clips := benchClips(b, d)
	b.StartTimer()
	// Each job next to the one it is compared with (the CLI's one
	// rendition, ours, our ladder, the CLI's ladder), so that the drift
	// of a shared machine weighs on both sides of every ratio alike.
	cliOne := ffmpegBattle(b, clips, d, nil)
	one := measureBattle(b, Config{Renditions: []Rung{}}, clips, d)
	ladder := measureBattle(b, Config{}, clips, d)
	cliLadder := ffmpegBattle(b, clips, d, DefaultRenditions)
	b.StopTimer()

	per := func(cpu time.Duration) float64 { return cpu.Seconds() / d.Seconds() }
	b.ReportMetric(per(ladder.cpu), "cores")
	b.ReportMetric(per(one.cpu), "one-cores")
	b.ReportMetric(per(cliLadder), "ffmpeg-cores")
	b.ReportMetric(per(cliOne), "ffmpeg-one-cores")
	b.ReportMetric(ladder.cpu.Seconds()/one.cpu.Seconds(), "x-one")
	b.ReportMetric(ladder.cpu.Seconds()/cliLadder.Seconds(), "x-ffmpeg")
	b.ReportMetric(one.cpu.Seconds()/cliOne.Seconds(), "x-ffmpeg-one")
	b.ReportMetric(float64(ladder.stats.FramesRepeated+one.stats.FramesRepeated), "repeated")
	b.ReportMetric(float64(ladder.bytes*8)/d.Seconds()/1e6, "Mb/s")
	b.ReportMetric(float64(ladder.stats.EncodeTime.Microseconds())/1e3/float64(max(ladder.stats.FramesOut, 1)), "encode-ms/frame")
	b.ReportMetric(float64(ladder.rss)/1e6, "RSS-MB")
}

// battleRun is what measureBattle measured of one battle.
type battleRun struct {
	cpu   time.Duration // the process's
	stats Stats
	bytes int64 // of the program
	rss   int64 // added half-way
}

// measureBattle runs one battle of cfg on the clips for d.
func measureBattle(b *testing.B, cfg Config, clips [2]*synth.Clip, d time.Duration) battleRun {
	b.Helper()
	rssBefore := rssBytes(b)
	ctx, cancel := context.WithTimeout(context.Background(), d)
	defer cancel()
	cpuBefore := cpuTime()
	bt := startBattle(ctx, b, cfg, clips)
	time.Sleep(d / 2)
	rss := rssBytes(b) - rssBefore
	if err := <-bt.done; err != nil {
		b.Fatal(err)
	}
	run := battleRun{cpu: cpuTime() - cpuBefore, stats: bt.c.Stats(), bytes: bt.sink.bytes, rss: rss}
	time.Sleep(time.Second) // the clips' players stop, memory goes
	return run
}

// ffmpegBattle runs the ffmpeg CLI on the clips: decode, fit each into
// 640x720, hstack, amix, x264 veryfast zerolatency and AAC, reading in
// real time, and, for each of renditions, the stacked picture scaled as
// the compositor scales it and encoded too; it returns the CPU time the
// process used.
func ffmpegBattle(t testing.TB, clips [2]*synth.Clip, d time.Duration, renditions []Rung) time.Duration {
	t.Helper()
	dir := t.TempDir()
	var args []string
	for i, clip := range clips {
		h264, ogg := filepath.Join(dir, fmt.Sprintf("s%d.h264", i)), filepath.Join(dir, fmt.Sprintf("s%d.ogg", i))
		writeClipFiles(t, clip, h264, ogg)
		args = append(args, "-re", "-framerate", "30", "-i", h264, "-re", "-i", ogg)
	}
	fitHalf := "scale=640:720:force_original_aspect_ratio=decrease,pad=640:720:(ow-iw)/2:(oh-ih)/2"
	graph := "[0:v]" + fitHalf + "[l];[2:v]" + fitHalf + "[r];[1:a][3:a]amix=inputs=2[a];[l][r]hstack"
	maps := []string{"-map", "[v0]"}
	rates := []string{"-b:v:0", "2500k", "-maxrate:v:0", "2500k", "-bufsize:v:0", "2500k"}
	if len(renditions) == 0 {
		graph += "[v0]"
	} else {
		graph += fmt.Sprintf(",split=%d[v0]", len(renditions)+1)
		for i := range renditions {
			graph += fmt.Sprintf("[s%d]", i+1)
		}
		for i, r := range renditions {
			n := i + 1
			graph += fmt.Sprintf(";[s%d]scale=%d:%d:flags=area[v%d]", n, r.Width, r.Height, n)
			maps = append(maps, "-map", fmt.Sprintf("[v%d]", n))
			rate := fmt.Sprint(r.Bitrate)
			rates = append(rates, fmt.Sprintf("-b:v:%d", n), rate, fmt.Sprintf("-maxrate:v:%d", n), rate, fmt.Sprintf("-bufsize:v:%d", n), rate)
		}
	}
	args = append(args, "-filter_complex", graph)
	args = append(args, maps...)
	args = append(args, "-map", "[a]", "-r", "30",
		"-c:v", "libx264", "-preset", "veryfast", "-tune", "zerolatency", "-g", "30", "-keyint_min", "30",
		"-sc_threshold", "0", "-bf", "0")
	args = append(args, rates...)
	args = append(args, "-c:a", "aac", "-b:a", "128k", "-ar", "48000", "-ac", "2",
		"-t", strconv.Itoa(int(d.Seconds())), "-f", "mpegts", "-y", os.DevNull)
	cmd := exec.Command("ffmpeg", append([]string{"-v", "error", "-nostdin"}, args...)...)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("ffmpeg: %v: %s", err, out)
	}
	ru := cmd.ProcessState.SysUsage().(*syscall.Rusage)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

func writeClipFiles(t testing.TB, clip *synth.Clip, h264Path, oggPath string) {
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

// maxBattles bounds BenchmarkProgramCapacity's search: the default
// --max-live-battles.
const maxBattles = 8

// BenchmarkProgramCapacity finds how many battles composite at once at
// x264 superfast without dropping a program frame (battles), each
// trial of n battles making b.N seconds of program; at that many, the
// CPU cores they took and the RSS each added half-way. Every trial is
// logged.
func BenchmarkProgramCapacity(b *testing.B) {
	d := programLength(b)
	b.StopTimer()
	clips := benchClips(b, 10*time.Second)
	b.StartTimer()
	best, bestCores, bestRSS := 0, 0.0, 0.0
	for n := 2; n <= maxBattles; n++ {
		rssBefore := rssBytes(b)
		ctx, cancel := context.WithTimeout(context.Background(), d)
		cpuBefore := cpuTime()
		battles := make([]*battle, n)
		for i := range battles {
			battles[i] = startBattle(ctx, b, Config{Preset: "superfast"}, clips)
		}
		time.Sleep(d / 2)
		rss := float64(rssBytes(b)-rssBefore) / float64(n) / 1e6
		var repeated, frames int64
		for _, bt := range battles {
			if err := <-bt.done; err != nil {
				b.Fatal(err)
			}
			st := bt.c.Stats()
			repeated += st.FramesRepeated
			frames += st.FramesOut
		}
		cancel()
		cores := (cpuTime() - cpuBefore).Seconds() / d.Seconds()
		b.Logf("%d battles: %d frames, %d repeated, %.2f CPU cores, RSS +%.1f MB per battle", n, frames, repeated, cores, rss)
		if repeated > 0 {
			break
		}
		best, bestCores, bestRSS = n, cores, rss
		time.Sleep(time.Second) // let the last battles' memory go
	}
	b.ReportMetric(float64(best), "battles")
	b.ReportMetric(bestCores, "cores")
	b.ReportMetric(bestRSS, "RSS-MB/battle")
}
