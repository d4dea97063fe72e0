package recording

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"syscall"
	"testing"
	"time"
)

// benchProgram is the length of program one op records.
const benchProgram = 20 * time.Second

func cpuTime(b *testing.B) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		b.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

func programBitrate() float64 {
	var bytes int
	for _, v := range program.Video[0] {
		for _, n := range v.NALUs {
			bytes += len(n)
		}
	}
	for _, a := range program.Audio {
		bytes += len(a.AU)
	}
	return float64(bytes*8) / program.Duration.Seconds() / 1e6
}

// BenchmarkRecorder measures the CPU the recorder takes per second of
// program, fsyncs included: one op records benchProgram of the ~2.5 Mb/s
// program fed as fast as the recorder takes it, then ends the recording.
func BenchmarkRecorder(b *testing.B) {
	l := newStore(b, LocalOptions{})
	cpu0 := cpuTime(b)
	for i := range b.N {
		rec, err := l.Create("b"+strconv.Itoa(i), program.Info)
		if err != nil {
			b.Fatal(err)
		}
		if err := program.Feed(context.Background(), rec, benchProgram, 0); err != nil {
			b.Fatal(err)
		}
		if err := rec.Close(true); err != nil {
			b.Fatal(err)
		}
	}
	cpu := cpuTime(b) - cpu0
	b.ReportMetric(cpu.Seconds()/(float64(b.N)*benchProgram.Seconds()), "cpu-s/program-s")
	b.ReportMetric(programBitrate(), "program-Mbit/s")
}

// BenchmarkFFmpegRemux is the peer of BenchmarkRecorder: the ffmpeg CLI
// remuxing the same program into fMP4 HLS segments of 2 s (no fsync). It
// counts the ffmpeg process's CPU, start-up included.
func BenchmarkFFmpegRemux(b *testing.B) {
	// Raw streams loop by concatenation; ffmpeg cannot seek them to loop.
	in := b.TempDir()
	loops := int(benchProgram / program.Duration)
	for _, name := range []string{"program.h264", "program.aac"} {
		clip, err := os.ReadFile(filepath.Join(clipDir, name))
		if err != nil {
			b.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(in, name), bytes.Repeat(clip, loops), 0o644); err != nil {
			b.Fatal(err)
		}
	}
	var cpu time.Duration
	for range b.N {
		out := b.TempDir()
		cmd := exec.Command("ffmpeg", "-hide_banner", "-loglevel", "error",
			"-f", "h264", "-framerate", "30", "-i", filepath.Join(in, "program.h264"),
			"-i", filepath.Join(in, "program.aac"),
			"-c", "copy", "-bsf:a", "aac_adtstoasc", "-f", "hls", "-hls_time", "2", "-hls_segment_type", "fmp4",
			"-hls_playlist_type", "vod", filepath.Join(out, "index.m3u8"))
		cmd.Stderr = os.Stderr
		if err := cmd.Run(); err != nil {
			b.Fatal(err)
		}
		cpu += cmd.ProcessState.UserTime() + cmd.ProcessState.SystemTime()
	}
	b.ReportMetric(cpu.Seconds()/(float64(b.N)*benchProgram.Seconds()), "cpu-s/program-s")
}
