package e2e

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"net/http"
	"net/http/cookiejar"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"regexp"
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
	listen := freeAddr(t)
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

// TestEdgeStopsRequestSmuggling sends the security review's smuggling
// requests through the nginx edges of deploy/ (for one origin, and for
// several) in front of the real binary, which trusts the edge
// (--trusted-proxy): a path whose decoded form carries CR LF and a whole
// second request is refused at the edge, the origin never receives the
// smuggled request nor the client's own forwarding headers, and honest
// watchers and voters still get through.
func TestEdgeStopsRequestSmuggling(t *testing.T) {
	for _, tc := range []struct {
		template string
		origin   string // the variable naming the origin
		value    func(addr string) string
	}{
		{"nginx.conf", "SINGOFF_ORIGIN", func(addr string) string { return addr }},
		{"nginx-origins.conf", "SINGOFF_ORIGIN_SERVERS", func(addr string) string { return "server " + addr + ";" }},
	} {
		t.Run(tc.template, func(t *testing.T) {
			t.Setenv("SINGOFF_LOG_LEVEL", "debug") // the origin logs every request it serves
			listen := freeAddr(t)
			// The edge connects from edgeAddr, the one address the origin
			// trusts; the test's own requests come from 127.0.0.1.
			s := startServerOn(t, false, listen, "--trusted-proxy", edgeAddr, "--max-waiting-per-network", "3",
				"--advertise-url", "http://"+listen)
			edge := startNginx(t, tc.template, map[string]string{tc.origin: tc.value(listen)}, "proxy_bind "+edgeAddr+";")
			edgeStopsSmuggling(t, s, edge)
		})
	}
}

func edgeStopsSmuggling(t *testing.T, s *server, edge string) {
	edgeHost := strings.TrimPrefix(edge, "http://")

	// Honest use through the edge: a battle made, sung, watched, voted.
	jar, err := cookiejar.New(nil)
	if err != nil {
		t.Fatal(err)
	}
	viewer := &http.Client{Jar: jar, Timeout: 10 * time.Second}
	edgeServer := &server{base: edge, client: viewer}
	b := edgeServer.createBattle(t, "through the edge")
	s.startBot(t, b, 1)
	live := edgeServer.liveProgram(t, b.ID)
	if !strings.HasPrefix(b.HLSURL, edge+"/hls/") {
		t.Errorf("hls_url %q does not name the edge the client used", b.HLSURL)
	}
	if status, body := edgeServer.get(t, edge+"/b/"+b.ID); status != 200 || !strings.Contains(body, "watch.js") {
		t.Fatalf("the watch page through the edge: %d", status)
	}
	edgeServer.call(t, http.MethodPost, "/api/battles/"+b.ID+"/start", b.HostToken, nil, http.StatusOK, nil)
	if status := edgeServer.vote(t, viewer, b.ID, 1); status != http.StatusNoContent {
		t.Fatalf("an honest vote through the edge: %d", status)
	}
	if status, _ := edgeServer.get(t, strings.Replace(live, "index.m3u8", "720p.m3u8", 1)+"?junk=1"); status != 200 {
		t.Errorf("a media playlist with a junk parameter through the edge: %d", status)
	}

	const forged = "203.0.113.77"
	smuggledCreate := "POST /api/battles HTTP/1.1\r\nHost: o\r\nX-Forwarded-For: " + forged +
		"\r\nContent-Type: application/json\r\nContent-Length: 20\r\n\r\n{\"title\":\"smuggled\"}"
	attacks := []struct {
		name   string
		target string
	}{
		{"header injection in a /hls path", "/hls/" + percentEncode("abc\r\nX-Injected: yes\r\n") + "/index.m3u8"},
		{"a request smuggled in a /hls path", "/hls/" + percentEncode("x HTTP/1.1\r\nHost: o\r\n\r\n"+smuggledCreate+"\r\nGET /hls/y") + "/index.m3u8"},
		{"a request smuggled in a /vod path", "/vod/" + b.ID + "/" + percentEncode("index.m3u8 HTTP/1.1\r\nHost: o\r\n\r\n"+smuggledCreate)},
		{"a request smuggled in an LL-HLS directive", "/hls/" + b.ID + "/720p.m3u8?_HLS_msn=" + percentEncode("1 HTTP/1.1\r\nHost: o\r\n\r\n"+smuggledCreate)},
		{"an encoded slash out of the battle", "/hls/" + b.ID + "%2F..%2F..%2Fapi%2Fbattles/index.m3u8"},
	}
	for _, a := range attacks {
		t.Run(a.name, func(t *testing.T) {
			status := rawGet(t, edgeHost, a.target, "X-Forwarded-For: "+forged, "X-Real-IP: "+forged)
			if status >= 500 || status == 0 {
				t.Fatalf("the edge answered %d", status)
			}
		})
	}

	time.Sleep(time.Second) // whatever reached the origin has been served
	var list struct {
		Battles []battle `json:"battles"`
	}
	s.call(t, http.MethodGet, "/api/battles", "", nil, http.StatusOK, &list)
	for _, got := range list.Battles {
		if got.Title == "smuggled" {
			t.Errorf("a smuggled request reached the origin: battle %s", got.ID)
		}
	}

	// A client's own forwarding headers through the edge: the origin
	// counts the edge's word (the client's address), so the forged
	// addresses share one network's cap of 3 waiting battles (the honest
	// battle is live).
	for i, want := range []int{http.StatusCreated, http.StatusCreated, http.StatusCreated, http.StatusTooManyRequests} {
		req, _ := http.NewRequest(http.MethodPost, edge+"/api/battles", strings.NewReader(`{"title":"forged"}`))
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("X-Forwarded-For", fmt.Sprintf("198.51.%d.9", 100+i))
		req.Header.Set("X-Real-IP", fmt.Sprintf("198.51.%d.9", 100+i))
		req.Header.Set("Forwarded", fmt.Sprintf("for=198.51.%d.9", 100+i))
		res, err := viewer.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		if res.StatusCode != want {
			t.Errorf("creation %d with a forged X-Forwarded-For: %d, want %d", i+1, res.StatusCode, want)
		}
	}

	// The origin's own account of every request it served.
	s.signal(t, os.Interrupt)
	if err := s.proc.wait(testDrainTimeout + stopWithin); err != nil {
		t.Fatal(err)
	}
	logText, err := os.ReadFile(artifactPath(t, "server.log"))
	if err != nil {
		t.Fatal(err)
	}
	// Every request the origin served came from the edge's word for the
	// client, and the only battles created are the 5 sent as such (one
	// honest, 4 with forged headers): none was smuggled. (A path that
	// decodes into CR LF may reach the origin, still encoded, as the one
	// request it is: a 404.)
	served, creations := 0, 0
	for line := range strings.Lines(string(logText)) {
		m := requestLogLine.FindStringSubmatch(line)
		if m == nil {
			continue
		}
		served++
		method, path, client := m[1], m[2], m[3]
		if client != "127.0.0.1" {
			t.Errorf("the origin served a request for client %s: %s", client, line)
		}
		if method == http.MethodPost && path == "/api/battles" {
			creations++
		}
	}
	if served < 10 {
		t.Fatalf("the origin logged %d requests: is SINGOFF_LOG_LEVEL=debug in force?", served)
	}
	if creations != 5 {
		t.Errorf("the origin served %d battle creations, want the 5 sent", creations)
	}
}

// requestLogLine is the origin's debug line of a request served: its
// method, path (unquoted) and client.
var requestLogLine = regexp.MustCompile(`msg=request .*method=(\S+) path=("(?:[^"\\]|\\.)*"|\S+) .*client=(\S+)`)

// percentEncode escapes every byte of s but the unreserved ones, as an
// attacker writes a path that decodes into anything.
func percentEncode(s string) string {
	var b strings.Builder
	for _, c := range []byte(s) {
		if c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || strings.IndexByte("-._~", c) >= 0 {
			b.WriteByte(c)
		} else {
			fmt.Fprintf(&b, "%%%02X", c)
		}
	}
	return b.String()
}

// rawGet sends "GET target" with the extra header lines over a raw TCP
// connection to addr, as no HTTP client would, and returns the answer's
// status (0 if none).
func rawGet(t testing.TB, addr, target string, headers ...string) int {
	t.Helper()
	conn, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(10 * time.Second))
	req := "GET " + target + " HTTP/1.1\r\nHost: " + addr + "\r\n"
	for _, h := range headers {
		req += h + "\r\n"
	}
	req += "Connection: close\r\n\r\n"
	if _, err := conn.Write([]byte(req)); err != nil {
		t.Fatal(err)
	}
	res, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		return 0
	}
	res.Body.Close()
	return res.StatusCode
}
