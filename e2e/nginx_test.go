package e2e

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/singoff/singoff/internal/loadtest"
	"github.com/singoff/singoff/internal/loadtest/testorigin"
	"github.com/singoff/singoff/internal/testprogram"
)

// TestEdgeCollapsesRequests puts the nginx edge of deploy/ in front of an
// origin and has more and more watchers go through it: the origin must
// serve each part and each blocking playlist about once, not once per
// watcher, and the watchers must miss nothing.
func TestEdgeCollapsesRequests(t *testing.T) {
	origin, logger := startEdgeOrigin(t)
	edge := edgeStartNginx(t, strings.TrimPrefix(origin.URL, "http://"))
	playlist := edge + "/hls/" + testorigin.BattleID + "/index.m3u8"

	for _, watchers := range []int{10, 100} {
		before := origin.Counts()
		report, err := loadtest.Run(t.Context(), loadtest.Config{
			URL:      playlist,
			Watchers: watchers,
			Duration: 6 * time.Second,
			Logger:   logger,
		})
		if err != nil {
			t.Fatal(err)
		}
		after := origin.Counts()
		parts := after.Parts - before.Parts
		distinctParts := after.DistinctParts - before.DistinctParts
		blocking := after.BlockingPlaylists - before.BlockingPlaylists
		distinctBlocking := after.DistinctBlocking - before.DistinctBlocking
		t.Logf("%d watchers through the edge:\n%sorigin: %d part requests for %d parts, %d blocking playlist requests for %d (playlist, msn, part)",
			watchers, report, parts, distinctParts, blocking, distinctBlocking)

		if len(report.Errors) != 0 {
			t.Errorf("%d watchers: errors %v", watchers, report.Errors)
		}
		if report.PartsMissed != 0 || report.PartsPublished < 20 {
			t.Errorf("%d watchers: %d of %d parts missed", watchers, report.PartsMissed, report.PartsPublished)
		}
		if distinctParts < 20 || distinctBlocking < 20 {
			t.Fatalf("%d watchers: the origin saw only %d parts and %d blocking playlists", watchers, distinctParts, distinctBlocking)
		}
		// Without the cache these would be about the number of watchers.
		if perPart := float64(parts) / float64(distinctParts); perPart > 1.5 {
			t.Errorf("%d watchers: %.2f origin requests per part, want about 1", watchers, perPart)
		}
		if perUpdate := float64(blocking) / float64(distinctBlocking); perUpdate > 1.5 {
			t.Errorf("%d watchers: %.2f origin requests per blocking playlist, want about 1", watchers, perUpdate)
		}
	}
}

// edgeProgram encodes the 2 Mb/s clip the origins loop.
func edgeProgram(t testing.TB) *testprogram.Program {
	t.Helper()
	program, err := generateEdgeProgram(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	return program
}

// generateEdgeProgram encodes the 2 Mb/s clip the origins loop into dir.
func generateEdgeProgram(dir string) (*testprogram.Program, error) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	return testprogram.Generate(ctx, dir, 2, "2000k")
}

// edgeStartNginx runs nginx with deploy/nginx.conf in front of origin
// (host:port) on a free port of 127.0.0.1, every path of it in a
// temporary directory, until the test ends. It returns the edge's root
// URL.
func edgeStartNginx(t testing.TB, origin string) string {
	t.Helper()
	return startNginx(t, "nginx.conf", map[string]string{"SINGOFF_ORIGIN": origin}, "")
}

// startNginx runs nginx with the deploy/ template named, its variables
// filled in from vars (the listen address, cache directory and user
// are the test's), plus extra directives at the top of its http block,
// until the test ends. It returns the edge's root URL.
func startNginx(t testing.TB, template string, vars map[string]string, extra string) string {
	t.Helper()
	return startNginxWith(t, template, vars, extra, nil)
}

// startNginxWith runs nginx as startNginx does, with files (by name:
// their contents) written next to its configuration first, for it to
// include.
func startNginxWith(t testing.TB, template string, vars map[string]string, extra string, files map[string]string) string {
	t.Helper()
	nginx, err := exec.LookPath("nginx")
	if err != nil {
		nginx = "/usr/sbin/nginx"
	}
	if _, err := os.Stat(nginx); err != nil {
		t.Fatalf("nginx is not installed (make deps installs nginx-light): %v", err)
	}
	text, err := os.ReadFile(filepath.Join("..", "deploy", template))
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	// Workers run as root when the test does, so that they can read the
	// temporary directory; otherwise nginx ignores the directive.
	me := "root"
	if os.Geteuid() != 0 {
		u, err := user.Current()
		if err != nil {
			t.Fatal(err)
		}
		me = u.Username
	}
	listen := edgeFreeAddr(t)
	pairs := []string{
		"${SINGOFF_NGINX_USER}", me,
		"${SINGOFF_LISTEN}", listen,
		"${SINGOFF_CACHE_DIR}", dir,
		"http {", "http {\n" + extra,
	}
	for name, value := range vars {
		pairs = append(pairs, "${"+name+"}", value)
	}
	conf := strings.NewReplacer(pairs...).Replace(string(text))
	if strings.Contains(conf, "${SINGOFF_") {
		t.Fatalf("deploy/%s has a variable the test does not fill in", template)
	}
	confPath := filepath.Join(dir, "nginx.conf")
	if err := os.WriteFile(confPath, []byte(conf), 0o644); err != nil {
		t.Fatal(err)
	}
	for name, content := range files {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	cmd := exec.Command(nginx, "-p", dir, "-c", confPath,
		"-g", fmt.Sprintf("daemon off; pid %s; error_log stderr;", filepath.Join(dir, "nginx.pid")))
	logPath := filepath.Join(dir, "stderr.log")
	logFile, err := os.Create(logPath)
	if err != nil {
		t.Fatal(err)
	}
	defer logFile.Close()
	cmd.Stderr = logFile
	nginxLog := func() string {
		b, _ := os.ReadFile(logPath)
		return string(b)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	t.Cleanup(func() {
		cmd.Process.Signal(os.Interrupt) // fast shutdown
		select {
		case <-exited:
		case <-time.After(10 * time.Second):
			cmd.Process.Kill()
			<-exited
		}
		if s := nginxLog(); s != "" {
			t.Logf("nginx:\n%s", s)
		}
	})
	deadline := time.Now().Add(10 * time.Second)
	for {
		select {
		case err := <-exited:
			t.Fatalf("nginx exited: %v\n%s", err, nginxLog())
		default:
		}
		if conn, err := net.DialTimeout("tcp", listen, time.Second); err == nil {
			conn.Close()
			return "http://" + listen
		}
		if time.Now().After(deadline) {
			t.Fatalf("nginx does not listen on %s:\n%s", listen, nginxLog())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// edgeFreeAddr returns a 127.0.0.1 address with a port free a moment ago.
func edgeFreeAddr(t testing.TB) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}
