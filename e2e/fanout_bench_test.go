package e2e

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"runtime/pprof"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/singoff/singoff/internal/loadtest"
	"github.com/singoff/singoff/internal/loadtest/testorigin"
)

// The fan-out benchmarks run the origin in a child process (this test
// binary again, which TestMain runs as the origin when edgeOriginEnv is
// set) so that its CPU time is told apart from the load generator's:
//
//	go test ./e2e/ -run '^$' -bench Fanout -benchtime 1x -timeout 30m
//
// SINGOFF_ORIGIN_CPUPROFILE=file has the origin process write its CPU
// profile there (-cpuprofile profiles the load generator).
const (
	edgeOriginEnv   = "SINGOFF_EDGE_ORIGIN"
	originProfEnv   = "SINGOFF_ORIGIN_CPUPROFILE"
	edgeOriginLine  = "edge-origin "
	edgeBenchWindow = 20 * time.Second
)

// runEdgeOrigin is the process of the fan-out benchmarks' origin: it
// prints its URL and serves until its stdin closes.
func runEdgeOrigin() error {
	if prof := os.Getenv(originProfEnv); prof != "" {
		f, err := os.Create(prof)
		if err != nil {
			return err
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			return err
		}
		defer pprof.StopCPUProfile()
	}
	dir, err := os.MkdirTemp("", "singoff-edge-origin-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	program, err := generateEdgeProgram(dir)
	if err != nil {
		return err
	}
	logger := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	origin, err := testorigin.Start(program, logger)
	if err != nil {
		return err
	}
	defer origin.Close()
	fmt.Printf("%s%s\n", edgeOriginLine, origin.URL)
	_, err = io.Copy(io.Discard, os.Stdin)
	return err
}

// edgeOrigin is the origin child process.
type edgeOrigin struct {
	url string
	pid int
}

func edgeStartOriginProcess(b *testing.B) edgeOrigin {
	b.Helper()
	cmd := exec.Command(os.Args[0])
	cmd.Env = append(os.Environ(), edgeOriginEnv+"=1")
	cmd.Stderr = os.Stderr
	stdin, err := cmd.StdinPipe()
	if err != nil {
		b.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		b.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() {
		stdin.Close()
		cmd.Wait()
	})
	lines := bufio.NewScanner(stdout)
	for lines.Scan() {
		if u, ok := strings.CutPrefix(lines.Text(), edgeOriginLine); ok {
			go io.Copy(io.Discard, stdout)
			return edgeOrigin{url: u, pid: cmd.Process.Pid}
		}
	}
	b.Fatalf("the origin process ended before it served: %v", lines.Err())
	return edgeOrigin{}
}

// edgeCPU tells the CPU time a process has used so far.
func edgeCPU(b *testing.B, pid int) time.Duration {
	b.Helper()
	stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		b.Fatal(err)
	}
	// The fields after the command name (which may hold spaces) start
	// at the state, field 3; utime and stime are fields 14 and 15, in
	// clock ticks of 1/100 s on Linux.
	fields := strings.Fields(string(stat[strings.LastIndexByte(string(stat), ')')+1:]))
	utime, _ := strconv.ParseInt(fields[11], 10, 64)
	stime, _ := strconv.ParseInt(fields[12], 10, 64)
	return time.Duration(utime+stime) * 10 * time.Millisecond
}

func edgeSelfCPU(b *testing.B) time.Duration {
	b.Helper()
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		b.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

func edgeBenchSetup(b *testing.B) {
	b.Helper()
	// Every watcher holds a connection on both sides.
	var limit syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &limit); err != nil {
		b.Fatal(err)
	}
	limit.Cur = limit.Max
	if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &limit); err != nil {
		b.Fatal(err)
	}
}

// BenchmarkFanoutOrigin ramps LL-HLS watchers on one origin. Bar: 2,000
// watchers with no missed part and parts delivered 500 ms p95 after they
// end.
func BenchmarkFanoutOrigin(b *testing.B) {
	edgeBenchSetup(b)
	origin := edgeStartOriginProcess(b)
	playlist := origin.url + "/hls/" + testorigin.BattleID + "/index.m3u8"
	for _, watchers := range []int{500, 1000, 2000, 3000} {
		b.Run(fmt.Sprintf("watchers=%d", watchers), func(b *testing.B) {
			originCPU, selfCPU, start := edgeCPU(b, origin.pid), edgeSelfCPU(b), time.Now()
			report := edgeRun(b, playlist, watchers)
			wall := time.Since(start)
			originUsed, selfUsed := edgeCPU(b, origin.pid)-originCPU, edgeSelfCPU(b)-selfCPU
			originCores := float64(originUsed) / float64(wall)
			selfCores := float64(selfUsed) / float64(wall)
			// CPU time per request depends less on what else the shared
			// machine runs than cores or latencies do.
			requests := 0
			for _, n := range report.RequestsByKind {
				requests += n
			}
			originPerReq := float64(originUsed.Microseconds()) / float64(max(requests, 1))
			selfPerReq := float64(selfUsed.Microseconds()) / float64(max(requests, 1))
			b.Logf("%d watchers on the origin:\n%sCPU: origin %.2f cores (%.1f µs/request), load generator %.2f cores (%.1f µs/request); machine load average %s",
				watchers, report, originCores, originPerReq, selfCores, selfPerReq, edgeLoadAverage())
			edgeReportMetrics(b, report)
			b.ReportMetric(originCores, "origin-cores")
			b.ReportMetric(selfCores, "generator-cores")
			b.ReportMetric(originPerReq, "origin-µs/req")
			b.ReportMetric(selfPerReq, "generator-µs/req")
		})
	}
}

// BenchmarkFanoutEdge ramps LL-HLS watchers through the nginx edge of
// deploy/ and reports the origin's request rate. Bar: flat.
func BenchmarkFanoutEdge(b *testing.B) {
	edgeBenchSetup(b)
	origin := edgeStartOriginProcess(b)
	edge := edgeStartNginx(b, strings.TrimPrefix(origin.url, "http://"))
	playlist := edge + "/hls/" + testorigin.BattleID + "/index.m3u8"
	for _, watchers := range []int{100, 500, 1000, 2000} {
		b.Run(fmt.Sprintf("watchers=%d", watchers), func(b *testing.B) {
			before, err := testorigin.GetCounts(b.Context(), origin.url)
			if err != nil {
				b.Fatal(err)
			}
			start := time.Now()
			report := edgeRun(b, playlist, watchers)
			wall := time.Since(start).Seconds()
			after, err := testorigin.GetCounts(b.Context(), origin.url)
			if err != nil {
				b.Fatal(err)
			}
			requests := (after.Playlists + after.BlockingPlaylists + after.Inits + after.Parts + after.Other) -
				(before.Playlists + before.BlockingPlaylists + before.Inits + before.Parts + before.Other)
			parts := after.DistinctParts - before.DistinctParts
			b.Logf("%d watchers through the edge:\n%sorigin: %d requests (%.1f/s), %d parts requested %d times; machine load average %s",
				watchers, report, requests, float64(requests)/wall, parts, after.Parts-before.Parts, edgeLoadAverage())
			edgeReportMetrics(b, report)
			b.ReportMetric(float64(requests)/wall, "origin-req/s")
			if parts > 0 {
				b.ReportMetric(float64(requests)/float64(parts), "origin-req/part")
			}
		})
	}
}

// edgeLoadAverage tells how busy the shared machine was over the last
// minute, which the figures depend on.
func edgeLoadAverage() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "unknown"
	}
	first, _, _ := strings.Cut(string(b), " ")
	return first
}

func edgeRun(b *testing.B, playlist string, watchers int) loadtest.Report {
	b.Helper()
	ctx, cancel := context.WithTimeout(b.Context(), 2*edgeBenchWindow)
	defer cancel()
	report, err := loadtest.Run(ctx, loadtest.Config{
		URL:      playlist,
		Watchers: watchers,
		Duration: edgeBenchWindow,
		Logger:   slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn})),
	})
	if err != nil {
		b.Fatal(err)
	}
	return report
}

func edgeReportMetrics(b *testing.B, r loadtest.Report) {
	errors := 0
	for _, n := range r.Errors {
		errors += n
	}
	b.ReportMetric(float64(r.PartsMissed), "missed")
	b.ReportMetric(float64(errors), "errors")
	b.ReportMetric(float64(r.PartLatencyP95.Milliseconds()), "p95-ms")
	b.ReportMetric(0, "ns/op")
}
