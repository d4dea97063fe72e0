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
	plain, _ := edgeStart(t, origin, "", "")
	return plain
}

// edgeStartNginxTLS runs the edge as edgeStartNginx does, with
// deploy/tls.conf (HTTPS and HTTP/2) on another port, with the given
// certificate and key. It returns the edge's plain and HTTPS root URLs.
func edgeStartNginxTLS(t testing.TB, origin, certPath, keyPath string) (plain, secure string) {
	t.Helper()
	return edgeStart(t, origin, certPath, keyPath)
}

func edgeStart(t testing.TB, origin, certPath, keyPath string) (plain, secure string) {
	t.Helper()
	nginx, err := exec.LookPath("nginx")
	if err != nil {
		nginx = "/usr/sbin/nginx"
	}
	if _, err := os.Stat(nginx); err != nil {
		t.Fatalf("nginx is not installed (make deps installs nginx-light): %v", err)
	}
	template, err := os.ReadFile(filepath.Join("..", "deploy", "nginx.conf"))
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
	conf := strings.NewReplacer(
		"${SINGOFF_NGINX_USER}", me,
		"${SINGOFF_LISTEN}", listen,
		"${SINGOFF_ORIGIN}", origin,
		"${SINGOFF_CACHE_DIR}", dir,
	).Replace(string(template))
	if strings.Contains(conf, "${SINGOFF_") {
		t.Fatalf("deploy/nginx.conf has a variable the test does not fill in")
	}
	confPath := filepath.Join(dir, "nginx.conf")
	if err := os.WriteFile(confPath, []byte(conf), 0o644); err != nil {
		t.Fatal(err)
	}
	var tlsListen string
	if certPath != "" {
		tlsTemplate, err := os.ReadFile(filepath.Join("..", "deploy", "tls.conf"))
		if err != nil {
			t.Fatal(err)
		}
		tlsListen = edgeFreeAddr(t)
		tlsConf := strings.NewReplacer(
			"${SINGOFF_TLS_LISTEN}", tlsListen,
			"${SINGOFF_TLS_CERT}", certPath,
			"${SINGOFF_TLS_KEY}", keyPath,
		).Replace(string(tlsTemplate))
		if strings.Contains(tlsConf, "${SINGOFF_") {
			t.Fatalf("deploy/tls.conf has a variable the test does not fill in")
		}
		// Where nginx.conf includes it from: next to it.
		if err := os.WriteFile(filepath.Join(dir, "singoff-tls.conf"), []byte(tlsConf), 0o644); err != nil {
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
			if tlsListen == "" {
				return "http://" + listen, ""
			}
			return "http://" + listen, "https://" + tlsListen
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
