package recording

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/singoff/singoff/internal/battleid"
	"github.com/singoff/singoff/internal/m3u8"
	"github.com/singoff/singoff/internal/mediacheck"
	"github.com/singoff/singoff/internal/testprogram"
	"github.com/singoff/singoff/internal/tmpfs"
	"github.com/singoff/singoff/media"
)

// The crash test re-runs this test binary as a recording writer that it
// kills; these variables tell the child what to do.
const (
	envWriterStore = "SINGOFF_RECORDING_TEST_WRITER_STORE"
	envClip        = "SINGOFF_RECORDING_TEST_CLIP"
)

var (
	clipDir string
	program *testprogram.Program
)

func TestMain(m *testing.M) {
	if store := os.Getenv(envWriterStore); store != "" {
		runWriter(store, os.Getenv(envClip))
		return
	}
	var err error
	clipDir, err = os.MkdirTemp("", "recording-test")
	if err == nil {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		program, err = testprogram.Generate(ctx, clipDir, 4, "2500k")
		cancel()
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	code := m.Run()
	stopS3Server()
	os.RemoveAll(clipDir)
	os.Exit(code)
}

// crashedID is the battle the writer child records until it is killed.
const crashedID = "crashed"

// runWriter records the clip, looped at four times real time, until the
// process is killed.
func runWriter(store, clip string) {
	fail := func(err error) {
		fmt.Fprintln(os.Stderr, "writer:", err)
		os.Exit(2)
	}
	p, err := testprogram.Load(clip)
	if err != nil {
		fail(err)
	}
	l, err := NewLocal(store, LocalOptions{})
	if err != nil {
		fail(err)
	}
	rec, err := l.Create(crashedID, p.Info)
	if err != nil {
		fail(err)
	}
	if err := p.Feed(context.Background(), withStills(rec), 10*time.Minute, 4); err != nil {
		fail(err)
	}
	fail(errors.New("fed everything without being killed"))
}

func testLogger(t testing.TB) *slog.Logger {
	return slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelWarn}))
}

func newStore(t testing.TB, opts LocalOptions) *Local {
	t.Helper()
	opts.Logger = testLogger(t)
	l, err := NewLocal(t.TempDir(), opts)
	if err != nil {
		t.Fatal(err)
	}
	return l
}

// record records length of the program (fed as fast as it goes) as
// battle id and closes the recording with ended.
func record(t testing.TB, l *Local, id string, length time.Duration, ended bool) {
	t.Helper()
	rec, err := l.Create(id, program.Info)
	if err != nil {
		t.Fatal(err)
	}
	if err := program.Feed(context.Background(), rec, length, 0); err != nil {
		t.Fatal(err)
	}
	if err := rec.Close(ended); err != nil {
		t.Fatal(err)
	}
}

func serve(t *testing.T, h http.Handler) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &httptest.Server{Listener: ln, Config: &http.Server{Handler: h}}
	srv.Start()
	t.Cleanup(srv.Close)
	return srv.URL
}

func get(t *testing.T, url string, header http.Header) (*http.Response, []byte) {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), http.MethodGet, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range header {
		req.Header[k] = v
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp, body
}

func wantHeader(t *testing.T, resp *http.Response, key, want string) {
	t.Helper()
	if got := resp.Header.Get(key); got != want {
		t.Errorf("%s: %s = %q, want %q", resp.Request.URL.Path, key, got, want)
	}
}

// checkPlayable has ffprobe and ffmpeg read the recording at url: both
// streams, a duration within 2 s of want, and a decode without errors.
func checkPlayable(t *testing.T, url string, want time.Duration) {
	t.Helper()
	p, err := mediacheck.ProbeURL(t.Context(), url)
	if err != nil {
		t.Fatal(err)
	}
	if err := p.IsProgram(); err != nil {
		t.Error(err)
	}
	if d, err := p.Duration(); err != nil || (d-want).Abs() > 2*time.Second {
		t.Errorf("duration %v (%v), want %v ± 2 s", d, err, want)
	}
	if err := mediacheck.Decode(t.Context(), url, 0); err != nil {
		t.Error(err)
	}
}

func TestRecordAndEnd(t *testing.T) {
	l := newStore(t, LocalOptions{})
	base := serve(t, l.Handler())
	const id = "battle_1"

	// While live: an EVENT playlist, cached briefly.
	rec, err := l.Create(id, program.Info)
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	if err := program.Feed(t.Context(), &shifted{rec, 0, start}, 7*time.Second, 0); err != nil {
		t.Fatal(err)
	}
	waitFor(t, func() bool { return l.Exists(id) })
	resp, body := get(t, base+"/vod/"+id+"/index.m3u8", nil)
	if resp.StatusCode != http.StatusOK || !strings.Contains(string(body), tagEvent) || strings.Contains(string(body), tagEndlist) {
		t.Errorf("live playlist: status %d\n%s", resp.StatusCode, body)
	}
	wantHeader(t, resp, "Cache-Control", cacheEventPlaylist)
	checkRules(t, body, true)
	// The recording follows the program on; feed the rest and end it.
	if err := program.Feed(t.Context(), &shifted{rec, 7 * time.Second, start}, 8*time.Second, 0); err != nil {
		t.Fatal(err)
	}
	if err := rec.Close(true); err != nil {
		t.Fatal(err)
	}
	if err := rec.Close(true); !errors.Is(err, ErrClosed) {
		t.Errorf("second Close: %v, want ErrClosed", err)
	}
	if n := l.BytesWritten(); n < 1<<20 {
		t.Errorf("BytesWritten = %d after 15 s of program, want over 1 MiB", n)
	}

	resp, body = get(t, base+"/vod/"+id+"/index.m3u8", nil)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("status %d", resp.StatusCode)
	}
	wantHeader(t, resp, "Content-Type", "application/vnd.apple.mpegurl")
	wantHeader(t, resp, "Cache-Control", cacheVODPlaylist)
	for _, want := range []string{"#EXT-X-PLAYLIST-TYPE:VOD\n", "#EXT-X-ENDLIST\n", `#EXT-X-MAP:URI="init.mp4"`,
		"#EXT-X-INDEPENDENT-SEGMENTS\n", "#EXT-X-TARGETDURATION:3\n", "\nseg0.m4s\n", "#EXTINF:2.00000,\n"} {
		if !strings.Contains(string(body), want) {
			t.Errorf("playlist lacks %q:\n%s", want, body)
		}
	}
	checkRules(t, body, false)
	checkPlayable(t, base+"/vod/"+id+"/index.m3u8", 15*time.Second)

	resp, _ = get(t, base+"/vod/"+id+"/init.mp4", nil)
	wantHeader(t, resp, "Content-Type", "video/mp4")
	wantHeader(t, resp, "Cache-Control", cacheMedia)
	resp, seg := get(t, base+"/vod/"+id+"/seg1.m4s", http.Header{"Range": {"bytes=100-199"}})
	if resp.StatusCode != http.StatusPartialContent || len(seg) != 100 {
		t.Errorf("range request: status %d, %d bytes", resp.StatusCode, len(seg))
	}
	wantHeader(t, resp, "Content-Type", "video/iso.segment")
	wantHeader(t, resp, "Cache-Control", cacheMedia)

	if _, err := l.Create(id, program.Info); !errors.Is(err, ErrExists) {
		t.Errorf("recording %s again: %v, want ErrExists", id, err)
	}
	if _, err := l.Create("../evil", program.Info); !errors.Is(err, ErrBadID) {
		t.Errorf("bad id: %v, want ErrBadID", err)
	}
	if closed, err := l.Recover(); err != nil || len(closed) != 0 {
		t.Errorf("Recover of finished recordings: %v, %v; want none", closed, err)
	}
}

// checkRules fails unless body is a recording's playlist that keeps the
// rules (m3u8.CheckMedia), live or not.
func checkRules(t *testing.T, body []byte, live bool) *m3u8.Media {
	t.Helper()
	pl, err := m3u8.Parse(string(body))
	if err != nil {
		t.Fatalf("%v\n%s", err, body)
	}
	if err := m3u8.CheckMedia(pl, false, live); err != nil {
		t.Errorf("%v\n%s", err, body)
	}
	return pl
}

// shifted delays a program by offset, to continue a feed, and runs its
// clock (ntp) from base, as a program's clock runs on across feeds.
type shifted struct {
	media.Recorder
	offset time.Duration
	base   time.Time
}

func (s *shifted) WriteVideo(rung int, _ time.Time, pts int64, au [][]byte) error {
	pts += int64(s.offset.Seconds() * media.VideoClockRate)
	return s.Recorder.WriteVideo(rung, s.base.Add(time.Duration(pts)*time.Second/media.VideoClockRate), pts, au)
}

func (s *shifted) WriteAudio(_ time.Time, pts int64, aus [][]byte) error {
	pts += int64(s.offset.Seconds() * media.AudioClockRate)
	return s.Recorder.WriteAudio(s.base.Add(time.Duration(pts)*time.Second/media.AudioClockRate), pts, aus)
}

func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("condition not met within 15 s")
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func listedSegments(t *testing.T, playlistPath string) []string {
	t.Helper()
	text, err := os.ReadFile(playlistPath)
	if err != nil {
		return nil
	}
	var segs []string
	for line := range strings.Lines(string(text)) {
		if line = strings.TrimSpace(line); line != "" && !strings.HasPrefix(line, "#") {
			segs = append(segs, line)
		}
	}
	return segs
}

func TestCrashRecover(t *testing.T) {
	store := t.TempDir()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), envWriterStore+"="+store, envClip+"="+clipDir)
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	killed := false
	defer func() {
		if !killed {
			cmd.Process.Kill()
			cmd.Wait()
		}
	}()
	playlist := filepath.Join(store, crashedID, playlistName)
	waitFor(t, func() bool { return len(listedSegments(t, playlist)) >= 4 })
	if err := cmd.Process.Kill(); err != nil { // SIGKILL: no chance to clean up
		t.Fatal(err)
	}
	cmd.Wait()
	killed = true

	// Leftovers a crash can leave: a temporary file, and a recording
	// killed before its first segment.
	if err := os.WriteFile(filepath.Join(store, crashedID, ".seg99.m4s.123"+tempSuffix), []byte("half"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(filepath.Join(store, "nosegment"), 0o755); err != nil {
		t.Fatal(err)
	}

	l, err := NewLocal(store, LocalOptions{Logger: testLogger(t)})
	if err != nil {
		t.Fatal(err)
	}
	closed, err := l.Recover()
	if err != nil {
		t.Fatal(err)
	}
	if strings.Join(closed, ",") != crashedID+",nosegment" {
		t.Errorf("Recover closed %v, want [%s nosegment]", closed, crashedID)
	}
	if l.Exists("nosegment") {
		t.Error("a recording without segments exists after Recover")
	}

	text, err := os.ReadFile(playlist)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasSuffix(string(text), "#EXT-X-ENDLIST\n") || !strings.Contains(string(text), tagVOD) {
		t.Errorf("recovered playlist not finished:\n%s", text)
	}
	segs := listedSegments(t, playlist)
	files, _ := os.ReadDir(filepath.Join(store, crashedID))
	if len(files) != len(segs)+3 { // the segments, init.mp4, index.m3u8, thumb.jpg
		var names []string
		for _, f := range files {
			names = append(names, f.Name())
		}
		t.Errorf("files %v, want only init.mp4, index.m3u8, thumb.jpg and the listed %v", names, segs)
	}
	base := serve(t, l.Handler())
	checkPlayable(t, base+"/vod/"+crashedID+"/index.m3u8", time.Duration(len(segs))*2*time.Second)

	if closed, err := l.Recover(); err != nil || len(closed) != 0 {
		t.Errorf("second Recover: %v, %v; want nothing to do", closed, err)
	}
}

func TestShutdownWhileLive(t *testing.T) {
	l := newStore(t, LocalOptions{})
	record(t, l, "paused", 5*time.Second, false)
	text, err := os.ReadFile(filepath.Join(l.dir, "paused", playlistName))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(text), tagEvent) || strings.Contains(string(text), tagEndlist) {
		t.Errorf("Close(false) should leave an EVENT playlist:\n%s", text)
	}
	closed, err := l.Recover()
	if err != nil || strings.Join(closed, ",") != "paused" {
		t.Errorf("Recover: %v, %v; want [paused]", closed, err)
	}
	checkPlayable(t, serve(t, l.Handler())+"/vod/paused/index.m3u8", 5*time.Second)
}

func TestServeRejects(t *testing.T) {
	l := newStore(t, LocalOptions{})
	record(t, l, "b1", 3*time.Second, true)
	// A file next to the store that no request may reach.
	secret := filepath.Join(filepath.Dir(l.dir), "secret.m3u8")
	if err := os.WriteFile(secret, []byte("#EXTM3U secret"), 0o644); err != nil {
		t.Fatal(err)
	}
	base := serve(t, l.Handler())
	if resp, _ := get(t, base+"/vod/b1/index.m3u8", nil); resp.StatusCode != http.StatusOK {
		t.Fatalf("the real playlist: status %d", resp.StatusCode)
	}
	for _, path := range []string{
		"/vod/../secret.m3u8",
		"/vod/b1/../../secret.m3u8",
		"/vod/b1/..%2F..%2Fsecret.m3u8",
		"/vod/..%2Fsecret.m3u8",
		"/vod/b1%2Findex.m3u8",
		"/vod/b1/%2e%2e/index.m3u8",
		"/vod/%2e%2e/secret.m3u8",
		"/vod//b1/index.m3u8",
		"/vod/b1//index.m3u8",
		"/vod/b1/sub/index.m3u8",
		"/vod/b1/%5Cindex.m3u8",
		`/vod/b1\index.m3u8`,
		"/vod/" + relative(secret),
		"/vod/b1/index.m3u8%00",
		"/vod/b1/seg0.m4s.tmp",
		"/vod/b1/.index.m3u8.1" + tempSuffix,
		"/vod/nope/index.m3u8",
		"/vod/b1/seg99.m4s",
		"/vod/b1/",
		"/vod/",
		"/b1/index.m3u8",
	} {
		resp, body := rawGet(t, base, path)
		if resp.StatusCode != http.StatusNotFound || !strings.HasPrefix(string(body), `{"error":`) {
			t.Errorf("GET %s: status %d body %q, want 404 JSON", path, resp.StatusCode, body)
		}
	}
}

// relative turns an absolute file path into a request path as is.
func relative(path string) string { return strings.TrimPrefix(path, "/") }

// rawGet sends path exactly as given, which http.NewRequest would not.
func rawGet(t *testing.T, base, path string) (*http.Response, []byte) {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), http.MethodGet, base, nil)
	if err != nil {
		t.Fatal(err)
	}
	req.URL.Opaque = path
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp, body
}

func TestParseVODPath(t *testing.T) {
	for path, want := range map[string]string{
		"/vod/abc/index.m3u8": "abc index.m3u8",
		"/vod/A-b_9/init.mp4": "A-b_9 init.mp4",
		"/vod/x/seg123.m4s":   "x seg123.m4s",
		"/vod/x/seg.m4s":      "",
		"/vod/x/seg1.mp4":     "",
		"/vod/x/index.m3u8/":  "",
		"/vod/x/./index.m3u8": "",
		"/vod/" + strings.Repeat("a", 33) + "/index.m3u8": "",
	} {
		id, file, ok := parseVODPath(path)
		got := ""
		if ok {
			got = id + " " + file
		}
		if got != want {
			t.Errorf("parseVODPath(%q) = %q, want %q", path, got, want)
		}
	}
}

func FuzzParseVODPath(f *testing.F) {
	for _, seed := range []string{"/vod/abc/index.m3u8", "/vod/../x", "/vod/a/..%2F..%2Fetc", "/vod/a/seg1.m4s", `/vod/a\b/init.mp4`} {
		f.Add(seed)
	}
	root := "/srv/recordings"
	f.Fuzz(func(t *testing.T, path string) {
		id, file, ok := parseVODPath(path)
		if !ok {
			return
		}
		full := filepath.Join(root, id, file)
		if filepath.Dir(full) != filepath.Join(root, id) || filepath.Dir(filepath.Dir(full)) != root {
			t.Fatalf("%q reaches %s", path, full)
		}
		if strings.ContainsAny(id+file, `/\%`) || strings.Contains(id+file, "..") || !battleid.Valid(id) || !servedName(file) {
			t.Fatalf("%q accepted as id %q file %q", path, id, file)
		}
	})
}

func TestDiskFloor(t *testing.T) {
	l := newStore(t, LocalOptions{MinFreeBytes: 1 << 62})
	_, err := l.Create("b1", program.Info)
	if !errors.Is(err, ErrDiskFloor) || !strings.Contains(err.Error(), "MiB free") {
		t.Fatalf("Create under the disk floor: %v, want ErrDiskFloor with the figures", err)
	}
	if _, err := os.Stat(filepath.Join(l.dir, "b1")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("a refused recording left %s behind: %v", filepath.Join(l.dir, "b1"), err)
	}
	if _, err := newStore(t, LocalOptions{MinFreeBytes: 1 << 20}).Create("b1", program.Info); err != nil {
		t.Errorf("Create with a 1 MiB floor: %v", err)
	}
}

// RunRetention deletes finished recordings past the age when it starts
// and then on every round, reports them, and keeps the recent ones and
// those in progress.
func TestRunRetention(t *testing.T) {
	const age = 7 * 24 * time.Hour
	l := newStore(t, LocalOptions{})
	tenDaysAgo := time.Now().Add(-10 * 24 * time.Hour)
	backdate := func(id string) {
		t.Helper()
		dir := filepath.Join(l.dir, id)
		// The playlist last: RunRetention may delete the recording as
		// soon as that is old.
		for _, path := range []string{dir, filepath.Join(dir, playlistName)} {
			if err := os.Chtimes(path, tenDaysAgo, tenDaysAgo); err != nil {
				t.Fatal(err)
			}
		}
	}
	record(t, l, "old", 3*time.Second, true)
	backdate("old")
	record(t, l, "recent", 3*time.Second, true)
	live, err := l.Create("live", program.Info)
	if err != nil {
		t.Fatal(err)
	}
	defer live.Close(true)
	// Long enough for its playlist to list segments, which a goroutine
	// of the recorder writes.
	if err := program.Feed(t.Context(), live, 8*time.Second, 0); err != nil {
		t.Fatal(err)
	}
	waitFor(t, func() bool { return l.Exists("live") })
	backdate("live")

	// run runs RunRetention until the test ends or the returned stop.
	run := func(every time.Duration) (reports chan []string, stop func()) {
		reports = make(chan []string, 10)
		ctx, cancel := context.WithCancel(t.Context())
		done := make(chan struct{})
		go func() {
			RunRetention(ctx, l, testLogger(t), age, every, func(ids []string) { reports <- ids })
			close(done)
		}()
		stop = func() {
			cancel()
			<-done
			close(reports)
			for ids := range reports {
				t.Errorf("purged %v as well", ids)
			}
		}
		return reports, stop
	}
	nextReport := func(reports chan []string) []string {
		t.Helper()
		select {
		case ids := <-reports:
			return ids
		case <-time.After(15 * time.Second):
			t.Fatal("no recording purged within 15 s")
			return nil
		}
	}

	// An hour between rounds: what goes is purged as the loop starts.
	reports, stop := run(time.Hour)
	if got := nextReport(reports); !slices.Equal(got, []string{"old"}) {
		t.Errorf("purged at the start: %v, want [old]", got)
	}
	stop()

	// A recording that ages while the loop runs goes on a later round.
	reports, stop = run(20 * time.Millisecond)
	record(t, l, "later", 3*time.Second, true)
	backdate("later")
	if got := nextReport(reports); !slices.Equal(got, []string{"later"}) {
		t.Errorf("purged on a later round: %v, want [later]", got)
	}
	stop()

	for _, c := range []struct {
		id   string
		kept bool
	}{
		{"old", false},
		{"later", false},
		{"recent", true},
		{"live", true}, // in progress, however old its files
	} {
		_, err := os.Stat(filepath.Join(l.dir, c.id))
		if kept := err == nil; kept != c.kept || err != nil && !errors.Is(err, fs.ErrNotExist) {
			t.Errorf("%s: kept %v (%v), want %v", c.id, kept, err, c.kept)
		}
	}
}

// With no age, RunRetention keeps everything and returns at once.
func TestRunRetentionForever(t *testing.T) {
	l := newStore(t, LocalOptions{})
	record(t, l, "old", 3*time.Second, true)
	RunRetention(t.Context(), l, testLogger(t), 0, time.Hour, func(ids []string) { t.Errorf("purged %v", ids) })
	if !l.Exists("old") {
		t.Error("a recording was purged with no retention age")
	}
}

// A recording that finds the disk under its floor stops cleanly: what it
// recorded is finished as VOD and plays, its later writes fail with
// ErrDiskFloor, and its Close reports nothing more.
func TestRecordingStopsAtTheDiskFloor(t *testing.T) {
	const floor = 12 << 20
	dir := tmpfs.Mount(t, 32)
	l, err := NewLocal(filepath.Join(dir, "recordings"), LocalOptions{MinFreeBytes: floor, Logger: testLogger(t)})
	if err != nil {
		t.Fatal(err)
	}
	base := serve(t, l.Handler())
	const id = "lowdisk"
	rec, err := l.Create(id, program.Info)
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	if err := program.Feed(t.Context(), &shifted{rec, 0, start}, 6*time.Second, 0); err != nil {
		t.Fatal(err)
	}
	playlist := filepath.Join(l.dir, id, playlistName)
	waitFor(t, func() bool { return len(listedSegments(t, playlist)) >= 2 })
	tmpfs.Fill(t, dir, floor/2)
	// The program goes on; the recorder stops at its next segment, and
	// its writes fail from then on.
	offset := 6 * time.Second
	for err = nil; err == nil && offset < time.Minute; offset += 2 * time.Second {
		err = program.Feed(t.Context(), &shifted{rec, offset, start}, 2*time.Second, 4)
	}
	if !errors.Is(err, ErrDiskFloor) {
		t.Fatalf("writing under the floor for %v: %v, want ErrDiskFloor", offset-6*time.Second, err)
	}
	resp, body := get(t, base+"/vod/"+id+"/index.m3u8", nil)
	if resp.StatusCode != http.StatusOK || !strings.Contains(string(body), tagEndlist) || !strings.Contains(string(body), "#EXT-X-PLAYLIST-TYPE:VOD") {
		t.Fatalf("the stopped recording's playlist: %d\n%s", resp.StatusCode, body)
	}
	kept := listedSegments(t, playlist)
	if err := rec.Close(true); err != nil {
		t.Fatalf("Close after the stop: %v", err)
	}
	if after := listedSegments(t, playlist); !slices.Equal(after, kept) {
		t.Fatalf("segments listed %v after Close, %v at the stop", after, kept)
	}
	if err := mediacheck.Decode(t.Context(), base+"/vod/"+id+"/index.m3u8", 0); err != nil {
		t.Errorf("the stopped recording does not play: %v", err)
	}
	if _, err := l.Create("another", program.Info); !errors.Is(err, ErrDiskFloor) {
		t.Errorf("a new recording under the floor: %v", err)
	}
}
