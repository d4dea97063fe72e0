package compositor

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os/exec"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/bluenviron/gohlslib/v2/pkg/playlist"

	"github.com/singoff/singoff/hls"
	"github.com/singoff/singoff/media"
)

// busyLoops starves the machine's cores: n shell busy loops, stopped by
// the returned func (and at the test's end).
func busyLoops(t *testing.T, n int) (stop func()) {
	t.Helper()
	var cmds []*exec.Cmd
	for range n {
		cmd := exec.Command("sh", "-c", "while :; do :; done")
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		cmds = append(cmds, cmd)
	}
	stop = func() {
		for _, cmd := range cmds {
			if cmd.Process != nil {
				_ = cmd.Process.Kill()
				_ = cmd.Wait()
				cmd.Process = nil
			}
		}
	}
	t.Cleanup(stop)
	return stop
}

// playlistWatch follows the live playlists of one battle on an hls.Server:
// every media playlist the multivariant one names, polled until ctx ends.
type playlistWatch struct {
	target, partTarget map[time.Duration]bool // every value seen
	segments, parts    int                    // checked
	problems           []string               // each once
	seen               map[string]bool
}

func (w *playlistWatch) problem(format string, args ...any) {
	p := fmt.Sprintf(format, args...)
	if !w.seen[p] && len(w.problems) < 20 {
		w.seen[p] = true
		w.problems = append(w.problems, p)
	}
}

// check reads one media playlist: its targets, and every segment and
// part against them.
func (w *playlistWatch) check(name string, pl *playlist.Media) {
	target := time.Duration(pl.TargetDuration) * time.Second
	w.target[target] = true
	if pl.PartInf == nil {
		w.problem("%s: no EXT-X-PART-INF", name)
		return
	}
	w.partTarget[pl.PartInf.PartTarget] = true
	checkPart := func(p *playlist.MediaPart) {
		w.parts++
		// Six frames exactly; the playlist rounds to 5 decimals.
		if d := p.Duration - 200*time.Millisecond; d.Abs() > time.Millisecond {
			w.problem("%s: part %s lasts %v", name, p.URI, p.Duration)
		}
	}
	for _, s := range pl.Segments {
		if s.Gap {
			continue
		}
		w.segments++
		if d := s.Duration - time.Second; d.Abs() > time.Millisecond || s.Duration > target {
			w.problem("%s: segment %s lasts %v (target %v)", name, s.URI, s.Duration, target)
		}
		for _, p := range s.Parts {
			checkPart(p)
		}
	}
	for _, p := range pl.Parts {
		checkPart(p)
	}
}

// With the machine's cores starved by busy loops for 20 s, the live
// playlists keep their TARGETDURATION and PART-TARGET, and every segment
// is one second and every part 200 ms (RFC 8216 forbids the targets to
// change; a segment over its target breaks Safari): the program repeats
// its picture rather than skip frames.
func TestStarvedProgramKeepsItsPlaylistTargets(t *testing.T) {
	if testing.Short() {
		t.Skip("starves the machine for 20 s")
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	left, right := newTestFeed(), newTestFeed()
	left.publish(ctx, t, singer(1, red, media.CodecH264), 1, nil)
	right.publish(ctx, t, singer(2, blue, media.CodecVP8), 1, nil)
	c, err := New(Config{Logger: quietLogger()}, left, right)
	if err != nil {
		t.Fatal(err)
	}
	server := hls.NewServer(quietLogger(), nil)
	muxer, err := server.Start("b1", c.Info())
	if err != nil {
		c.Close()
		t.Fatal(err)
	}
	defer server.End("b1")
	web := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		server.Serve(w, r, "b1", strings.TrimPrefix(r.URL.Path, "/hls/b1/"), "test")
	}))
	defer web.Close()
	runCtx, stopProgram := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- c.Run(runCtx, muxer) }()
	defer func() {
		stopProgram()
		if err := <-done; err != nil {
			t.Error(err)
		}
	}()

	get := func(u string) []byte {
		resp, err := http.Get(u)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		if err != nil || resp.StatusCode != http.StatusOK {
			t.Fatalf("GET %s: %d %v", u, resp.StatusCode, err)
		}
		return b
	}
	index, _ := url.Parse(web.URL + "/hls/b1/index.m3u8")
	w := &playlistWatch{target: map[time.Duration]bool{}, partTarget: map[time.Duration]bool{}, seen: map[string]bool{}}
	var lists []*url.URL
	watch := func(until time.Time) {
		for time.Now().Before(until) {
			if lists == nil {
				pl, err := playlist.Unmarshal(get(index.String()))
				if err != nil {
					t.Fatal(err)
				}
				if mv, ok := pl.(*playlist.Multivariant); ok {
					for _, v := range mv.Variants {
						u, _ := index.Parse(v.URI)
						lists = append(lists, u)
					}
				}
			}
			for _, u := range lists {
				pl, err := playlist.Unmarshal(get(u.String()))
				if err != nil {
					t.Fatalf("%s: %v", u, err)
				}
				if m, ok := pl.(*playlist.Media); ok {
					w.check(u.Path, m)
				}
			}
			time.Sleep(250 * time.Millisecond)
		}
	}

	watch(time.Now().Add(3 * time.Second))
	// At the program's own priority (the scheduler is fair to each
	// thread), many loops leave each of its threads less than it needs.
	// How many depends on the machine and what else runs on it: more
	// are added every 4 s while the program still keeps up.
	var stops []func()
	for range 5 {
		before := c.Stats().FramesRepeated
		stops = append(stops, busyLoops(t, 12*runtime.NumCPU()))
		watch(time.Now().Add(4 * time.Second))
		if c.Stats().FramesRepeated > before {
			break
		}
	}
	watch(time.Now().Add(12 * time.Second))
	for _, stop := range stops {
		stop()
	}
	watch(time.Now().Add(3 * time.Second))

	st := c.Stats()
	t.Logf("%d frames, %d repeated; %d segments and %d parts checked in %d playlists; targets %v, part targets %v",
		st.FramesOut, st.FramesRepeated, w.segments, w.parts, len(lists), w.target, w.partTarget)
	if len(lists) == 0 || w.segments == 0 || w.parts == 0 {
		t.Fatalf("no media playlist checked: %d playlists, %d segments, %d parts", len(lists), w.segments, w.parts)
	}
	if st.FramesRepeated == 0 {
		t.Error("the busy loops repeated no picture: the test tests nothing")
	}
	if len(w.target) != 1 {
		t.Errorf("TARGETDURATION took the values %v", w.target)
	}
	if len(w.partTarget) != 1 {
		t.Errorf("PART-TARGET took the values %v", w.partTarget)
	}
	for _, p := range w.problems {
		t.Error(p)
	}
}
