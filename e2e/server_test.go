package e2e

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/singoff/singoff/internal/freeport"
)

// server is one running `singoff serve`.
type server struct {
	base    string
	client  *http.Client
	dataDir string
	args    []string // the serve command line, to start it again
	proc    *process // the running server
	starts  int
	bots    []int // the process ids of the bots startBot started
}

// process is one run of the server's command line.
type process struct {
	cmd    *exec.Cmd
	exited chan struct{} // closed when it has exited
	err    error         // cmd.Wait's, once exited is closed
	at     time.Time     // when it was seen to exit, once exited is closed
	// byTest is set when the test itself signalled or killed it: the
	// test's end sends no SIGINT (and checks nothing after a kill).
	byTest bool
}

// testDrainTimeout is how long the servers of the tests drain at their
// end: what they still have live after it is ended.
const testDrainTimeout = 2 * time.Second

// stopWithin bounds how long a server may take to stop after its drain:
// ending its battles and finishing their recordings.
const stopWithin = 30 * time.Second

// startServer runs `singoff serve` on free loopback ports with its own
// data directory and waits for /healthz. extra adds flags (they override
// the defaults here); tlsOn makes the base URL https.
func startServer(t testing.TB, tlsOn bool, extra ...string) *server {
	t.Helper()
	return startServerOn(t, tlsOn, freeAddr(t), extra...)
}

// startServerOn is startServer on the listen address given.
func startServerOn(t testing.TB, tlsOn bool, listen string, extra ...string) *server {
	t.Helper()
	needBinary(t)
	dataDir := t.TempDir()
	args := append([]string{
		"serve",
		"--listen", listen,
		"--data-dir", dataDir,
		"--webrtc-port", strconv.Itoa(freeTCPAndUDPPort(t)),
		"--loopback",
		"--drain-timeout", testDrainTimeout.String(),
	}, extra...)
	s := &server{base: "http://" + listen, client: &http.Client{Timeout: 10 * time.Second}, dataDir: dataDir, args: args}
	if tlsOn {
		s.base = "https://" + listen
		// The test made the certificate itself; only the browser is
		// under test for trusting it.
		s.client.Transport = &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}
	}
	s.start(t)
	return s
}

// start runs the server's command line and waits for /healthz. The
// test's end stops it with SIGINT, unless the test signalled it itself,
// and fails the test unless it exits with status 0 after its drain and
// within stopWithin; a server the test killed (kill) is left alone.
func (s *server) start(t testing.TB) {
	t.Helper()
	cmd := exec.Command(binary, s.args...)
	s.starts++
	if s.starts == 1 {
		logTo(t, cmd, "server")
	} else {
		logTo(t, cmd, fmt.Sprintf("server-%d", s.starts))
	}
	if err := cmd.Start(); err != nil {
		t.Fatalf("starting singoff serve: %v", err)
	}
	p := &process{cmd: cmd, exited: make(chan struct{})}
	go func() {
		p.err = cmd.Wait()
		p.at = time.Now()
		close(p.exited)
	}()
	s.proc = p
	run := s.starts
	t.Cleanup(func() {
		select {
		case <-p.exited:
			if !p.byTest {
				t.Errorf("singoff serve (run %d) stopped before the test's end: %v", run, p.err)
			}
			return
		default:
		}
		if !p.byTest {
			_ = cmd.Process.Signal(os.Interrupt)
		}
		if err := p.wait(testDrainTimeout + stopWithin); err != nil {
			t.Errorf("stopping singoff serve (run %d): %v", run, err)
		}
	})
	deadline := time.Now().Add(20 * time.Second)
	for {
		res, err := s.client.Get(s.base + "/healthz")
		if err == nil {
			res.Body.Close()
			if res.StatusCode == http.StatusOK {
				return
			}
		}
		select {
		case <-p.exited:
			t.Fatalf("singoff serve exited before it was healthy: %v", p.err)
		case <-time.After(100 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			t.Fatalf("singoff serve not healthy at %s/healthz after 20 s (last error %v)", s.base, err)
		}
	}
}

// wait waits for the process to exit, at most within; it kills it past
// that. It returns why the exit was not a clean one: status 0 in time.
func (p *process) wait(within time.Duration) error {
	select {
	case <-p.exited:
	case <-time.After(within):
		_ = p.cmd.Process.Kill()
		<-p.exited
		return fmt.Errorf("still running %v after the signal; killed", within)
	}
	if p.err != nil {
		return fmt.Errorf("exited with %v", p.err)
	}
	return nil
}

// signal sends the server sig; the test then waits for its exit itself
// (s.proc.wait).
func (s *server) signal(t testing.TB, sig os.Signal) {
	t.Helper()
	s.proc.byTest = true
	if err := s.proc.cmd.Process.Signal(sig); err != nil {
		t.Fatal(err)
	}
}

// kill ends the server at once, as a crash or power cut would.
func (s *server) kill(t testing.TB) {
	t.Helper()
	s.proc.byTest = true
	if err := s.proc.cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	<-s.proc.exited
}

// logTo sends cmd's output to a file among the test's artifacts, named
// after the test, so a failure can be read without flooding the output.
func logTo(t testing.TB, cmd *exec.Cmd, name string) {
	t.Helper()
	path := artifactPath(t, name+".log")
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stdout = f
	cmd.Stderr = f
	t.Cleanup(func() {
		f.Close()
		if t.Failed() {
			t.Logf("%s output: %s", name, path)
		}
	})
}

// freeAddr finds a free loopback TCP address for a server the test
// starts (freeport).
func freeAddr(t testing.TB) string {
	t.Helper()
	port, err := freeport.TCP()
	if err != nil {
		t.Fatal(err)
	}
	return "127.0.0.1:" + strconv.Itoa(port)
}

// freeTCPAndUDPPort finds a port free for both, as --webrtc-port takes
// both.
func freeTCPAndUDPPort(t testing.TB) int {
	t.Helper()
	port, err := freeport.TCPAndUDP()
	if err != nil {
		t.Fatal(err)
	}
	return port
}

// battle is the API's battle object with the creation-only fields.
type battle struct {
	ID           string     `json:"id"`
	Title        string     `json:"title"`
	State        string     `json:"state"`
	HLSURL       string     `json:"hls_url"`
	VODURL       *string    `json:"vod_url"`
	EndedAt      *time.Time `json:"ended_at"`
	Viewers      int        `json:"viewers"`
	ChatMode     string     `json:"chat_mode"`
	Cheers       [2]int     `json:"cheers"`
	RematchID    *string    `json:"rematch_id"`
	HostToken    string     `json:"host_token"`
	SingerTokens []string   `json:"singer_tokens"`
	Singers      []struct {
		Slot      int  `json:"slot"`
		Connected bool `json:"connected"`
	} `json:"singers"`
}

// call makes one API request and decodes a JSON answer into out (if not
// nil); it fails the test unless the status is want.
func (s *server) call(t testing.TB, method, path, token string, body any, want int, out any) {
	t.Helper()
	var reader io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			t.Fatal(err)
		}
		reader = bytes.NewReader(b)
	}
	req, err := http.NewRequest(method, s.base+path, reader)
	if err != nil {
		t.Fatal(err)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	res, err := s.client.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	defer res.Body.Close()
	data, _ := io.ReadAll(res.Body)
	if res.StatusCode != want {
		t.Fatalf("%s %s: status %d, want %d: %s", method, path, res.StatusCode, want, data)
	}
	if out != nil {
		if err := json.Unmarshal(data, out); err != nil {
			t.Fatalf("%s %s: decoding %q: %v", method, path, data, err)
		}
	}
}

func (s *server) createBattle(t testing.TB, title string) battle {
	t.Helper()
	var b battle
	s.call(t, http.MethodPost, "/api/battles", "", map[string]string{"title": title}, http.StatusCreated, &b)
	if b.ID == "" || b.HostToken == "" || len(b.SingerTokens) != 2 {
		t.Fatalf("created battle lacks id or tokens: %+v", b)
	}
	return b
}

// liveBotBattle creates a battle, has a bot sing in each slot and waits
// until it is live.
func (s *server) liveBotBattle(tb testing.TB, title string) battle {
	tb.Helper()
	b := s.createBattle(tb, title)
	s.startBot(tb, b, 1)
	s.startBot(tb, b, 2)
	s.waitLive(tb, b.ID)
	return b
}

// createRound creates a battle of one round of turnSeconds turns between
// the two singers.
func (s *server) createRound(t testing.TB, title string, singers [2]string, turnSeconds int) battle {
	t.Helper()
	var b battle
	s.call(t, http.MethodPost, "/api/battles", "", map[string]any{
		"title": title, "singers": singers, "rounds": 1, "turn_seconds": turnSeconds,
	}, http.StatusCreated, &b)
	return b
}

func (s *server) battle(t testing.TB, id string) battle {
	t.Helper()
	var b battle
	s.call(t, http.MethodGet, "/api/battles/"+id, "", nil, http.StatusOK, &b)
	return b
}

// startBot runs `singoff bot` as singer slot of b until the test ends
// or stop is called; stop waits for the bot to leave (it DELETEs its
// session on the way out).
func (s *server) startBot(t testing.TB, b battle, slot int) (stop func()) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	cmd := exec.CommandContext(ctx, binary, "bot",
		"--base", s.base, "--battle", b.ID, "--slot", strconv.Itoa(slot), "--token", b.SingerTokens[slot-1])
	logTo(t, cmd, fmt.Sprintf("bot%d-%d", slot, time.Now().UnixNano()))
	cmd.Cancel = func() error { return cmd.Process.Signal(os.Interrupt) }
	cmd.WaitDelay = 5 * time.Second
	if err := cmd.Start(); err != nil {
		cancel()
		t.Fatalf("starting singoff bot: %v", err)
	}
	s.bots = append(s.bots, cmd.Process.Pid)
	var once sync.Once
	stop = func() {
		once.Do(func() {
			cancel()
			_ = cmd.Wait()
		})
	}
	t.Cleanup(stop)
	return stop
}
