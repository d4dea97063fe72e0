package e2e

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/singoff/singoff/internal/loadtest"
)

// The fan-out benchmarks run as production does: the real binary serves
// a live battle that two bots sing, composited on this machine, while
// the load generator (the engine of `singoff loadtest`, in the test
// process) watches it, on the same two cores:
//
//	go test ./e2e/ -run '^$' -bench Fanout -benchtime 1x -timeout 30m
//
// Each step reports the CPU of the server, of the bots and of the
// generator, apart. With SINGOFF_FANOUT_PERF=prefix, perf records the
// server's call stacks over each step into prefix-<watchers>.data
// (`perf report -i …` reads it).
const (
	fanoutWindow  = 20 * time.Second
	fanoutPerfEnv = "SINGOFF_FANOUT_PERF"
)

// recordPerf has perf sample the stacks of process pid for d into file,
// in the background.
func recordPerf(b *testing.B, pid int, d time.Duration, file string) {
	b.Helper()
	cmd := exec.Command("perf", "record", "-q", "-F", "499", "-g", "-p", strconv.Itoa(pid), "-o", file, "--", "sleep", strconv.Itoa(int(d.Seconds())))
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		b.Fatalf("perf: %v", err)
	}
	b.Cleanup(func() {
		if err := cmd.Wait(); err != nil {
			b.Errorf("perf: %v", err)
		}
		b.Logf("perf record of the server: %s", file)
	})
}

// fanoutBattle starts the server and a battle two bots sing (a 2 Mb/s
// top rung), and waits for its live program. It returns the server, the
// multivariant playlist's URL and the bots' process ids.
func fanoutBattle(b *testing.B) (*server, string, []int) {
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
	s := startServer(b, false, "--video-bitrate", "2000000")
	bt := s.createBattle(b, "fan-out")
	s.startBot(b, bt, 1)
	s.startBot(b, bt, 2)
	return s, s.liveProgram(b, bt.ID), s.bots
}

// procCPU tells the CPU time process pid has used so far.
func procCPU(b *testing.B, pid int) time.Duration {
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

func selfCPU(b *testing.B) time.Duration {
	b.Helper()
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		b.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// cpuMeter measures the cores the server, the bots and the generator
// use over a step.
type cpuMeter struct {
	b                      *testing.B
	server                 int
	bots                   []int
	start                  time.Time
	serverAt, botsAt, self time.Duration
}

func startCPU(b *testing.B, server int, bots []int) *cpuMeter {
	m := &cpuMeter{b: b, server: server, bots: bots, start: time.Now(), serverAt: procCPU(b, server), self: selfCPU(b)}
	for _, p := range bots {
		m.botsAt += procCPU(b, p)
	}
	return m
}

// cores returns the cores each used since startCPU, and the server's CPU
// time.
func (m *cpuMeter) cores() (server, bots, generator float64, serverUsed time.Duration) {
	wall := time.Since(m.start)
	serverUsed = procCPU(m.b, m.server) - m.serverAt
	var botsUsed time.Duration
	for _, p := range m.bots {
		botsUsed += procCPU(m.b, p)
	}
	botsUsed -= m.botsAt
	return float64(serverUsed) / float64(wall), float64(botsUsed) / float64(wall), float64(selfCPU(m.b)-m.self) / float64(wall), serverUsed
}

// BenchmarkFanoutOrigin ramps LL-HLS watchers of the top rung on the
// server of a live battle. Bar: 2,000 watchers with no missed part and
// parts delivered 500 ms p95 after they end.
func BenchmarkFanoutOrigin(b *testing.B) {
	s, live, bots := fanoutBattle(b)
	for _, watchers := range []int{500, 1000, 2000, 3000} {
		b.Run(fmt.Sprintf("watchers=%d", watchers), func(b *testing.B) {
			if prefix := os.Getenv(fanoutPerfEnv); prefix != "" {
				recordPerf(b, s.proc.cmd.Process.Pid, fanoutWindow, fmt.Sprintf("%s-%d.data", prefix, watchers))
			}
			cpu := startCPU(b, s.proc.cmd.Process.Pid, bots)
			report := fanoutRun(b, live, watchers)
			server, botCores, generator, used := cpu.cores()
			// CPU time per request depends less on what else the shared
			// machine runs than cores or latencies do.
			requests := 0
			for _, n := range report.RequestsByKind {
				requests += n
			}
			perRequest := float64(used.Microseconds()) / float64(max(requests, 1))
			b.Logf("%d watchers on the server of a live battle:\n%sCPU: server %.2f cores (compositing included; %.1f µs/request), bots %.2f, load generator %.2f; machine load average %s",
				watchers, report, server, perRequest, botCores, generator, loadAverage(b))
			reportFanout(b, report)
			b.ReportMetric(server, "server-cores")
			b.ReportMetric(botCores, "bots-cores")
			b.ReportMetric(generator, "generator-cores")
			b.ReportMetric(perRequest, "server-µs/req")
		})
	}
}

// BenchmarkFanoutEdge ramps LL-HLS watchers through the nginx edge of
// deploy/ in front of the server of a live battle, and reports the
// server's LL-HLS requests. Bar: flat.
func BenchmarkFanoutEdge(b *testing.B) {
	s, origin, _ := fanoutBattle(b)
	edge := edgeStartNginx(b, strings.TrimPrefix(s.base, "http://"))
	live := edge + strings.TrimPrefix(origin, s.base)
	for _, watchers := range []int{100, 500, 1000, 2000} {
		b.Run(fmt.Sprintf("watchers=%d", watchers), func(b *testing.B) {
			before := hlsRequests(b, s)
			start := time.Now()
			report := fanoutRun(b, live, watchers)
			wall := time.Since(start).Seconds()
			requests := hlsRequests(b, s) - before
			b.Logf("%d watchers through the edge:\n%sserver: %.0f LL-HLS requests (%.1f/s) for %d parts; machine load average %s",
				watchers, report, requests, requests/wall, report.PartsPublished, loadAverage(b))
			reportFanout(b, report)
			b.ReportMetric(requests/wall, "origin-req/s")
			if report.PartsPublished > 0 {
				b.ReportMetric(requests/float64(report.PartsPublished), "origin-req/part")
			}
		})
	}
}

// hlsRequests reads the server's count of LL-HLS requests (/metrics).
func hlsRequests(b *testing.B, s *server) float64 {
	b.Helper()
	_, text := s.get(b, s.base+"/metrics")
	var total float64
	for _, kind := range []string{"playlist", "init", "part", "segment"} {
		v := metricValue(text, `singoff_hls_requests_total{kind="`+kind+`"}`)
		if v < 0 {
			b.Fatalf("/metrics lacks the %s requests", kind)
		}
		total += v
	}
	return total
}

func fanoutRun(b *testing.B, playlist string, watchers int) loadtest.Report {
	b.Helper()
	ctx, cancel := context.WithTimeout(b.Context(), 2*fanoutWindow)
	defer cancel()
	report, err := loadtest.Run(ctx, loadtest.Config{
		URL:      playlist,
		Watchers: watchers,
		Duration: fanoutWindow,
		Logger:   slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn})),
	})
	if err != nil {
		b.Fatal(err)
	}
	return report
}

func reportFanout(b *testing.B, r loadtest.Report) {
	errors := 0
	for _, n := range r.Errors {
		errors += n
	}
	b.ReportMetric(float64(r.PartsMissed), "missed")
	b.ReportMetric(float64(errors), "errors")
	b.ReportMetric(float64(r.PartLatencyP95.Milliseconds()), "p95-ms")
	b.ReportMetric(0, "ns/op")
}
