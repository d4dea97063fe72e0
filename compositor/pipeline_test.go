package compositor

import (
	"context"
	"errors"
	"fmt"
	"image"
	"image/color"
	"io"
	"log/slog"
	"os/exec"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/singoff/singoff/compositor/overlay"
	"github.com/singoff/singoff/media"
)

// liveSink is what fakeLive hands out: it keeps the program, or refuses
// every sample with reject.
type liveSink struct {
	programRecorder
	reject   error
	rejected atomic.Int64
}

func (s *liveSink) WriteVideo(rung int, ntp time.Time, pts int64, au [][]byte) error {
	if s.reject != nil {
		s.rejected.Add(1)
		return s.reject
	}
	return s.programRecorder.WriteVideo(rung, ntp, pts, au)
}

func (s *liveSink) WriteAudio(ntp time.Time, pts int64, aus [][]byte) error {
	if s.reject != nil {
		s.rejected.Add(1)
		return s.reject
	}
	return s.programRecorder.WriteAudio(ntp, pts, aus)
}

// fakeLive is a live output keeping every battle's program.
type fakeLive struct {
	startErr error // Start fails with it, when set
	reject   error // every sample is refused with it, when set

	mu    sync.Mutex
	sinks map[string]*liveSink
	stops map[string]int
}

func newFakeLive() *fakeLive {
	return &fakeLive{sinks: map[string]*liveSink{}, stops: map[string]int{}}
}

func (l *fakeLive) Start(id string, _ media.ProgramInfo) (media.Sink, error) {
	if l.startErr != nil {
		return nil, l.startErr
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	s := &liveSink{reject: l.reject}
	l.sinks[id] = s
	return s, nil
}

func (l *fakeLive) Stop(id string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.stops[id]++
}

func (l *fakeLive) sink(id string) *liveSink {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.sinks[id]
}

func (l *fakeLive) stopped(id string) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.stops[id]
}

// fakeRecorder keeps the program; its failAfter-th video write fails.
type fakeRecorder struct {
	programRecorder
	failAfter int
	fail      error

	videoWrites  atomic.Int64
	afterFailing atomic.Int64 // writes after the failing one
	closeMu      sync.Mutex
	closes       []bool
}

func (r *fakeRecorder) WriteVideo(rung int, ntp time.Time, pts int64, au [][]byte) error {
	n := r.videoWrites.Add(1)
	switch {
	case r.failAfter == 0 || n < int64(r.failAfter):
		return r.programRecorder.WriteVideo(rung, ntp, pts, au)
	case n == int64(r.failAfter):
		return r.fail
	}
	r.afterFailing.Add(1)
	return r.fail
}

func (r *fakeRecorder) WriteAudio(ntp time.Time, pts int64, aus [][]byte) error {
	if r.failAfter != 0 && r.videoWrites.Load() >= int64(r.failAfter) {
		r.afterFailing.Add(1)
		return r.fail
	}
	return r.programRecorder.WriteAudio(ntp, pts, aus)
}

func (r *fakeRecorder) Close(ended bool) error {
	r.closeMu.Lock()
	defer r.closeMu.Unlock()
	r.closes = append(r.closes, ended)
	return nil
}

func (r *fakeRecorder) closed() []bool {
	r.closeMu.Lock()
	defer r.closeMu.Unlock()
	return slices.Clone(r.closes)
}

// fakeRecordings makes fakeRecorders, or fails with err.
type fakeRecordings struct {
	err       error
	failAfter int   // for the recorders
	fail      error // their failure
	// plain: the recorders take no cues nor stills.
	plain bool

	mu      sync.Mutex
	creates int
	recs    map[string]*fakeRecorder
}

func newFakeRecordings() *fakeRecordings { return &fakeRecordings{recs: map[string]*fakeRecorder{}} }

func (f *fakeRecordings) Create(id string, _ media.ProgramInfo) (media.Recorder, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.creates++
	if f.err != nil {
		return nil, f.err
	}
	r := &fakeRecorder{failAfter: f.failAfter, fail: f.fail}
	f.recs[id] = r
	if f.plain {
		return plainRecorder{r}, nil
	}
	return r, nil
}

// plainRecorder is a recorder that is only a media.Recorder.
type plainRecorder struct{ r *fakeRecorder }

func (p plainRecorder) WriteVideo(rung int, ntp time.Time, pts int64, au [][]byte) error {
	return p.r.WriteVideo(rung, ntp, pts, au)
}
func (p plainRecorder) WriteAudio(ntp time.Time, pts int64, aus [][]byte) error {
	return p.r.WriteAudio(ntp, pts, aus)
}
func (p plainRecorder) Close(ended bool) error { return p.r.Close(ended) }

func (f *fakeRecordings) recorder(id string) *fakeRecorder {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.recs[id]
}

func (r *programRecorder) counts() (video, audio int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.videoPTS), len(r.audioPTS)
}

func (r *programRecorder) pts() (video, audio []int64) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.videoPTS), slices.Clone(r.audioPTS)
}

// logRecorder is a slog.Handler keeping every record with its attributes.
type logRecorder struct {
	shared *logRecords
	attrs  []slog.Attr
}

type logRecords struct {
	mu      sync.Mutex
	records []logRecord
}

type logRecord struct {
	msg   string
	attrs map[string]string
}

func newLogRecorder() *logRecorder { return &logRecorder{shared: &logRecords{}} }

func (h *logRecorder) Enabled(context.Context, slog.Level) bool { return true }

func (h *logRecorder) Handle(_ context.Context, r slog.Record) error {
	rec := logRecord{msg: r.Message, attrs: map[string]string{}}
	add := func(a slog.Attr) bool {
		if _, dup := rec.attrs[a.Key]; dup {
			rec.attrs[a.Key] += " (twice)"
		}
		rec.attrs[a.Key] += a.Value.String()
		return true
	}
	for _, a := range h.attrs {
		add(a)
	}
	r.Attrs(add)
	h.shared.mu.Lock()
	defer h.shared.mu.Unlock()
	h.shared.records = append(h.shared.records, rec)
	return nil
}

func (h *logRecorder) WithAttrs(as []slog.Attr) slog.Handler {
	return &logRecorder{shared: h.shared, attrs: append(slices.Clip(h.attrs), as...)}
}

func (h *logRecorder) WithGroup(string) slog.Handler { return h }

func (h *logRecorder) all() []logRecord {
	h.shared.mu.Lock()
	defer h.shared.mu.Unlock()
	return slices.Clone(h.shared.records)
}

func (h *logRecorder) find(prefix string) []logRecord {
	var out []logRecord
	for _, r := range h.all() {
		if strings.HasPrefix(r.msg, prefix) {
			out = append(out, r)
		}
	}
	return out
}

// checkLogKeys checks every record is tagged with its battle, and none
// with a component (only main tags components).
func checkLogKeys(t *testing.T, logs *logRecorder, battle string) {
	t.Helper()
	for _, r := range logs.all() {
		if r.attrs["battle"] != battle {
			t.Errorf("log %q %v: battle is %q, want %q", r.msg, r.attrs, r.attrs["battle"], battle)
		}
		if _, ok := r.attrs["component"]; ok {
			t.Errorf("log %q tags a component: %v", r.msg, r.attrs)
		}
	}
}

// testPipelines wires Pipelines to fakes, logging into a logRecorder.
func testPipelines(t *testing.T, live *fakeLive, recs *fakeRecordings, diskFloor error) (*Pipelines, *logRecorder) {
	t.Helper()
	logs := newLogRecorder()
	ps, err := NewPipelines(PipelinesConfig{Live: live, Recordings: recs, DiskFloor: diskFloor, Logger: slog.New(logs)})
	if err != nil {
		t.Fatal(err)
	}
	return ps, logs
}

// idleFeeds are two slots nobody publishes to: the program shows slates.
func idleFeeds() [2]media.Feed { return [2]media.Feed{newTestFeed(), newTestFeed()} }

// waitFor polls until cond holds; the program runs in real time on a
// shared machine, so the deadline is generous.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// waitFrames waits until sink has at least n video and n audio samples.
func waitFrames(t *testing.T, name string, sink *programRecorder, n int) {
	t.Helper()
	waitFor(t, fmt.Sprintf("%d samples of each kind at the %s", n, name), func() bool {
		v, a := sink.counts()
		return v >= n && a >= n
	})
}

// endOnTestEnd ends p when the test ends, if it did not.
func endOnTestEnd(t *testing.T, p *Pipeline) { t.Cleanup(func() { p.End() }) }

func TestPipelineTeesTheProgramToLiveAndRecording(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	live, recs := newFakeLive(), newFakeRecordings()
	ps, logs := testPipelines(t, live, recs, nil)
	left, right := newTestFeed(), newTestFeed()
	left.publish(ctx, t, singer(1, red, media.CodecH264), 1, nil)
	right.publish(ctx, t, singer(2, blue, media.CodecVP8), 1, nil)

	p, err := ps.Start("b1", [2]media.Feed{left, right})
	if err != nil {
		t.Fatal(err)
	}
	endOnTestEnd(t, p)
	sink, rec := live.sink("b1"), recs.recorder("b1")
	if sink == nil || rec == nil {
		t.Fatalf("live sink %v, recorder %v", sink, rec)
	}
	waitFrames(t, "live output", &sink.programRecorder, 45)
	waitFrames(t, "recorder", &rec.programRecorder, 45)
	if err := p.RecordingError(); err != nil {
		t.Errorf("recording error while recording: %v", err)
	}
	if running := ps.Totals(); running.FramesOut == 0 || running.AudioFramesOut == 0 || running.EncodeTime == 0 {
		t.Errorf("totals of a running program: %+v", running)
	}
	select {
	case <-p.Done():
		t.Fatal("Done before End")
	default:
	}

	// End from two goroutines at once: one ending, the same totals.
	var other Totals
	var wg sync.WaitGroup
	wg.Go(func() { other = p.End() })
	totals := p.End()
	wg.Wait()
	if other != totals {
		t.Errorf("End returned %+v and %+v", totals, other)
	}
	select {
	case <-p.Done():
	default:
		t.Error("Done still open after End")
	}
	if again := p.End(); again != totals {
		t.Errorf("End again: %+v, first %+v", again, totals)
	}
	if n := live.stopped("b1"); n != 1 {
		t.Errorf("live output stopped %d times", n)
	}
	if got := rec.closed(); !slices.Equal(got, []bool{true}) {
		t.Errorf("recorder closes (ended?): %v, want [true]", got)
	}
	if got := ps.Totals(); got != totals {
		t.Errorf("Pipelines totals %+v after the only program ended with %+v", got, totals)
	}

	// Every sample went to both, in order, and nothing after End.
	liveVideo, liveAudio := sink.pts()
	recVideo, recAudio := rec.pts()
	if !slices.Equal(liveVideo, recVideo) || !slices.Equal(liveAudio, recAudio) {
		t.Errorf("live got %d video and %d audio samples, the recorder %d and %d", len(liveVideo), len(liveAudio), len(recVideo), len(recAudio))
	}
	if int64(len(liveVideo)) != totals.FramesOut || int64(len(liveAudio)) != totals.AudioFramesOut {
		t.Errorf("totals %+v for %d video and %d audio samples", totals, len(liveVideo), len(liveAudio))
	}
	checkMonotonePTS(t, "video", liveVideo, media.VideoClockRate/media.ProgramFPS, 1)
	checkMonotonePTS(t, "audio", liveAudio, media.AACFrameSamples, 1)
	time.Sleep(100 * time.Millisecond)
	if v, a := sink.counts(); v != len(liveVideo) || a != len(liveAudio) {
		t.Errorf("samples after End: %d video, %d audio, were %d, %d", v, a, len(liveVideo), len(liveAudio))
	}
	// ffmpeg, a peer we did not write, decodes what the live output got.
	h264, _ := sink.files(t)
	if frames := decodeFrames(t, h264); len(frames) != len(liveVideo) {
		t.Errorf("ffmpeg decoded %d frames of %d", len(frames), len(liveVideo))
	}
	checkLogKeys(t, logs, "b1")
}

// scene is round 1 of 3 with slot turn singing.
func scene(turn, remaining int) media.Scene {
	return media.Scene{Names: [2]string{"Ann", "Bob"}, Round: 1, Rounds: 3, Turn: turn, Remaining: remaining, VotingOpen: true}
}

// contrast finds a point, left or right of the middle, that is one solid
// opaque colour in a and something else in b, away from any text.
func contrast(a, b *image.RGBA, right bool) (image.Point, bool) {
	for y := 0; y < media.ProgramHeight; y++ {
		for x := 0; x < media.ProgramWidth; x++ {
			if (x >= halfWidth) != right {
				continue
			}
			if solid(a, x, y, 6) && !near(a.RGBAAt(x, y), b.RGBAAt(x, y), 100) {
				return image.Pt(x, y), true
			}
		}
	}
	return image.Point{}, false
}

// pixelsAt decodes a raw H264 program with ffmpeg and returns, per
// frame, the colours at points, without holding every frame.
func pixelsAt(t *testing.T, path string, points []image.Point) [][]color.RGBA {
	t.Helper()
	cmd := exec.Command("ffmpeg", "-v", "error", "-nostdin", "-i", path, "-f", "rawvideo", "-pix_fmt", "rgb24", "-")
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	frame := make([]byte, media.ProgramWidth*media.ProgramHeight*3)
	var got [][]color.RGBA
	for {
		if _, err := io.ReadFull(out, frame); err != nil {
			if err != io.EOF {
				t.Errorf("reading decoded frames: %v", err)
			}
			break
		}
		row := make([]color.RGBA, len(points))
		for i, p := range points {
			row[i] = pixel(frame, p.X, p.Y)
		}
		got = append(got, row)
	}
	if err := cmd.Wait(); err != nil || stderr.Len() > 0 {
		t.Fatalf("ffmpeg: %v: %s", err, stderr.String())
	}
	return got
}

func TestPipelineShow(t *testing.T) {
	live, recs := newFakeLive(), newFakeRecordings()
	ps, _ := testPipelines(t, live, recs, nil)
	p, err := ps.Start("b1", idleFeeds())
	if err != nil {
		t.Fatal(err)
	}
	endOnTestEnd(t, p)
	sink := &live.sink("b1").programRecorder
	// Overlay A: slot 1 singing, its name lit; B: slot 2's turn.
	turn1, turn1Later, turn2 := scene(1, 75), scene(1, 74), scene(2, 90)
	r, err := overlay.NewRenderer()
	if err != nil {
		t.Fatal(err)
	}
	flat1, flat2 := flatten(r.Render(turn1)), flatten(r.Render(turn2))
	lit1, ok1 := contrast(flat1, flat2, false)
	lit2, ok2 := contrast(flat2, flat1, true)
	if !ok1 || !ok2 {
		t.Fatal("no point tells the two turns' overlays apart")
	}
	gains := func() [2]float32 { return *p.comp.gains.Load() }
	if g := gains(); g != [2]float32{1, 1} {
		t.Fatalf("gains before any Show: %v", g)
	}

	waitFrames(t, "live output", sink, 10)
	beforeA, _ := sink.counts()
	p.Show(turn1)
	if l, r := overlay.Gains(turn1); gains() != [2]float32{l, r} {
		t.Errorf("gains after the first Show: %v, want %v, %v", gains(), l, r)
	}
	shownOverlay, shownGains := p.comp.overlay.Load(), p.comp.gains.Load()
	if shownOverlay == nil {
		t.Fatal("Show set no overlay")
	}

	t.Run("unchanged scene: nothing redrawn", func(t *testing.T) {
		p.Show(turn1)
		if p.comp.overlay.Load() != shownOverlay || p.comp.gains.Load() != shownGains {
			t.Error("showing the same scene again redrew the overlay or set the gains")
		}
	})
	t.Run("countdown: overlay redrawn, gains kept", func(t *testing.T) {
		p.Show(turn1Later)
		if p.comp.overlay.Load() == shownOverlay {
			t.Error("the countdown changed and the overlay was not redrawn")
		}
		if p.comp.gains.Load() != shownGains {
			t.Error("the gains were set again though the turn did not change")
		}
	})

	waitFor(t, "frames with overlay A", func() bool { v, _ := sink.counts(); return v >= beforeA+15 })
	beforeB, _ := sink.counts()
	p.Show(turn2)
	t.Run("turn change: gains follow", func(t *testing.T) {
		if l, r := overlay.Gains(turn2); gains() != [2]float32{l, r} {
			t.Errorf("gains on slot 2's turn: %v, want %v, %v", gains(), l, r)
		}
	})
	waitFor(t, "frames with overlay B", func() bool { v, _ := sink.counts(); return v >= beforeB+15 })
	p.End()

	// The program's pictures, decoded: the frame being made while Show
	// ran may show either overlay, so one frame of margin after each
	// switch; the following ones must show the new one.
	h264, _ := sink.files(t)
	pixels := pixelsAt(t, h264, []image.Point{lit1, lit2})
	if v, _ := sink.counts(); len(pixels) != v {
		t.Fatalf("decoded %d frames of %d", len(pixels), v)
	}
	want1, want2 := flat1.RGBAAt(lit1.X, lit1.Y), flat2.RGBAAt(lit2.X, lit2.Y)
	const margin = 2
	for i, px := range pixels {
		var phase string
		var on1, on2 bool
		switch {
		case i < beforeA:
			phase = "before any Show"
		case i >= beforeA+margin && i < beforeB:
			phase, on1 = "slot 1's turn", true
		case i >= beforeB+margin:
			phase, on2 = "slot 2's turn", true
		default:
			continue
		}
		if near(px[0], want1, 40) != on1 || near(px[1], want2, 40) != on2 {
			t.Fatalf("frame %d, %s: slot 1's name shows %s (lit: %s), slot 2's %s (lit: %s)",
				i, phase, describe(px[0]), describe(want1), describe(px[1]), describe(want2))
		}
	}
}

var errFakeDisk = errors.New("write /data/recordings/b1/seg7.mp4: input/output error")

func TestPipelineRecorderFailingMidwayIsDropped(t *testing.T) {
	live, recs := newFakeLive(), newFakeRecordings()
	recs.failAfter, recs.fail = 20, errFakeDisk
	ps, logs := testPipelines(t, live, recs, nil)
	p, err := ps.Start("b1", idleFeeds())
	if err != nil {
		t.Fatal(err)
	}
	endOnTestEnd(t, p)
	rec := recs.recorder("b1")
	waitFrames(t, "live output", &live.sink("b1").programRecorder, 60)

	err = p.RecordingError()
	switch {
	case err == nil:
		t.Fatal("no recording error after the recorder failed")
	case err.Error() != errRecordingFailed:
		t.Errorf("recording error %q, want the public %q", err, errRecordingFailed)
	case !errors.Is(err, errFakeDisk):
		t.Errorf("recording error %v does not wrap its cause", err)
	}
	if n, after := rec.videoWrites.Load(), rec.afterFailing.Load(); n != 20 || after != 0 {
		t.Errorf("recorder got %d video writes and %d writes after failing; want 20 and 0", n, after)
	}
	if failed := logs.find("recording failed"); len(failed) != 1 || failed[0].attrs["err"] != errFakeDisk.Error() {
		t.Errorf("the failure logged %d times, first: %v", len(failed), failed[:min(len(failed), 1)])
	}
	p.End()
	if got := rec.closed(); !slices.Equal(got, []bool{true}) {
		t.Errorf("the dropped recorder's closes (ended?): %v, want [true]: what it recorded is finished", got)
	}
	checkLogKeys(t, logs, "b1")
}

// A recorder that stops at the disk floor midway is said publicly as
// such, its cause kept for the logs.
func TestPipelineRecorderStoppedAtTheDiskFloor(t *testing.T) {
	errFloor := errors.New("recording: free disk space under the floor")
	live, recs := newFakeLive(), newFakeRecordings()
	recs.failAfter, recs.fail = 20, fmt.Errorf("%w: 12 MiB free on /data/recordings, the floor is 1024 MiB", errFloor)
	ps, _ := testPipelines(t, live, recs, errFloor)
	p, err := ps.Start("b1", idleFeeds())
	if err != nil {
		t.Fatal(err)
	}
	endOnTestEnd(t, p)
	waitFrames(t, "live output", &live.sink("b1").programRecorder, 60)
	if err := p.RecordingError(); err == nil || err.Error() != errLowDiskStopped || !errors.Is(err, errFloor) {
		t.Errorf("recording error %v, want %q wrapping the floor's", err, errLowDiskStopped)
	}
}

func TestPipelineUnrecorded(t *testing.T) {
	errFloor := errors.New("recording: free disk space under the floor")
	for _, tc := range []struct {
		name      string
		diskFloor error // configured
		create    error // Recordings.Create's
		want      string
	}{
		{"below the disk floor", errFloor, fmt.Errorf("%w: 12 MiB free on /data/recordings, the floor is 1024 MiB", errFloor), errLowDisk},
		{"disk floor not configured", nil, fmt.Errorf("%w: 12 MiB free on /data/recordings", errFloor), errNotRecorded},
		{"any other cause", errFloor, errors.New("recording: mkdir /data/recordings/b1: permission denied"), errNotRecorded},
	} {
		t.Run(tc.name, func(t *testing.T) {
			live, recs := newFakeLive(), newFakeRecordings()
			recs.err = tc.create
			ps, logs := testPipelines(t, live, recs, tc.diskFloor)
			p, err := ps.Start("b1", idleFeeds())
			if err != nil {
				t.Fatal(err)
			}
			endOnTestEnd(t, p)
			err = p.RecordingError()
			if err == nil || err.Error() != tc.want || !errors.Is(err, tc.create) {
				t.Errorf("recording error %v, want %q wrapping %v", err, tc.want, tc.create)
			}
			if err != nil && strings.Contains(err.Error(), "/data") {
				t.Errorf("the public recording error shows a path: %q", err)
			}
			if warned := logs.find("battle not recorded"); len(warned) != 1 || warned[0].attrs["err"] != tc.create.Error() {
				t.Errorf("logs of the cause: %v", warned)
			}
			waitFrames(t, "live output", &live.sink("b1").programRecorder, 15)
			p.End()
			if n := live.stopped("b1"); n != 1 {
				t.Errorf("live output stopped %d times", n)
			}
		})
	}
}

func TestPipelineLiveOutputFailingStartsNothing(t *testing.T) {
	live, recs := newFakeLive(), newFakeRecordings()
	errTaken := errors.New("hls: battle b1 is already live")
	live.startErr = errTaken
	ps, logs := testPipelines(t, live, recs, nil)
	left := newTestFeed()
	left.ch <- media.AccessUnit{Codec: media.CodecH264, Data: []byte{0, 0, 0, 1, 0x65}, Keyframe: true, Session: 1}
	p, err := ps.Start("b1", [2]media.Feed{left, newTestFeed()})
	if p != nil || !errors.Is(err, errTaken) || strings.Count(err.Error(), "hls:") != 1 {
		t.Fatalf("Start: %v, %v; want no pipeline and an error wrapping %v once", p, err, errTaken)
	}
	if recs.creates != 0 {
		t.Errorf("a recording was created for a battle not live")
	}
	if got := ps.Totals(); got != (Totals{}) || len(ps.running) != 0 {
		t.Errorf("totals %+v, %d running, after a failed start", got, len(ps.running))
	}
	// Nothing reads the feeds: no slot runs.
	time.Sleep(200 * time.Millisecond)
	if len(left.ch) != 1 || left.keyframes.Load() != 0 {
		t.Errorf("the feed was read (%d units left, %d keyframe requests)", len(left.ch), left.keyframes.Load())
	}
	checkLogKeys(t, logs, "b1")
}

func TestPipelineLiveRejectingSamples(t *testing.T) {
	live, recs := newFakeLive(), newFakeRecordings()
	live.reject = errors.New("hls: muxer closed")
	ps, logs := testPipelines(t, live, recs, nil)
	began := time.Now()
	p, err := ps.Start("b1", idleFeeds())
	if err != nil {
		t.Fatal(err)
	}
	endOnTestEnd(t, p)
	// The program goes on: the recorder gets it all.
	waitFrames(t, "recorder", &recs.recorder("b1").programRecorder, 60)
	p.End()
	elapsed := time.Since(began)
	rejected := live.sink("b1").rejected.Load()
	logged := logs.find("live output rejected")
	if rejected < 120 {
		t.Fatalf("live output refused %d samples", rejected)
	}
	// Once a second at most: the first, then one per whole second.
	if most := 1 + int(elapsed/liveErrorEvery); len(logged) == 0 || len(logged) > most {
		t.Errorf("%d samples refused in %v: logged %d times, want 1 to %d", rejected, elapsed.Round(time.Millisecond), len(logged), most)
	}
	if err := p.RecordingError(); err != nil {
		t.Errorf("recording error %v: the live output's troubles are not the recording's", err)
	}
}

func TestPipelineStoppingOnItsOwn(t *testing.T) {
	live, recs := newFakeLive(), newFakeRecordings()
	ps, logs := testPipelines(t, live, recs, nil)
	// A compositor that cannot run: Run fails at once, as it would on an
	// encoder failure.
	log := ps.log.With("battle", "b1")
	comp, err := New(Config{Logger: log}, newTestFeed(), newTestFeed())
	if err != nil {
		t.Fatal(err)
	}
	comp.Close()
	p, err := ps.start("b1", comp, log)
	if err != nil {
		t.Fatal(err)
	}
	select {
	case <-p.Done():
	case <-time.After(10 * time.Second):
		t.Fatal("Done did not close when the program stopped")
	}
	if stopped := logs.find("the program stopped"); len(stopped) != 1 || stopped[0].attrs["err"] == "" {
		t.Errorf("logs of the stop: %v", stopped)
	}
	if n := live.stopped("b1"); n != 0 {
		t.Errorf("live output stopped before End")
	}
	if totals := p.End(); totals.FramesOut != 0 {
		t.Errorf("totals %+v of a program that never ran", totals)
	}
	if n := live.stopped("b1"); n != 1 {
		t.Errorf("live output stopped %d times", n)
	}
	if got := recs.recorder("b1").closed(); !slices.Equal(got, []bool{true}) {
		t.Errorf("recorder closes (ended?): %v, want [true]", got)
	}
	checkLogKeys(t, logs, "b1")
}

func TestPipelinesTotalsOnlyGrow(t *testing.T) {
	live, recs := newFakeLive(), newFakeRecordings()
	ps, _ := testPipelines(t, live, recs, nil)
	var ps2 [2]*Pipeline
	for i := range ps2 {
		p, err := ps.Start(fmt.Sprintf("b%d", i+1), idleFeeds())
		if err != nil {
			t.Fatal(err)
		}
		endOnTestEnd(t, p)
		ps2[i] = p
	}
	for i := range ps2 {
		waitFrames(t, "live output", &live.sink(fmt.Sprintf("b%d", i+1)).programRecorder, 10)
	}
	grew := func(before, after Totals) bool {
		return after.FramesOut >= before.FramesOut && after.FramesRepeated >= before.FramesRepeated &&
			after.AudioFramesOut >= before.AudioFramesOut && after.EncodeTime >= before.EncodeTime
	}
	running := ps.Totals()
	first := ps2[0].End()
	afterFirst := ps.Totals()
	if !grew(running, afterFirst) || !grew(first, afterFirst) {
		t.Errorf("totals went from %+v to %+v as a program ended with %+v", running, afterFirst, first)
	}
	second := ps2[1].End()
	want := first
	want.FramesOut += second.FramesOut
	want.FramesRepeated += second.FramesRepeated
	want.AudioFramesOut += second.AudioFramesOut
	want.EncodeTime += second.EncodeTime
	if got := ps.Totals(); got != want {
		t.Errorf("totals %+v after both ended, want the sum %+v", got, want)
	}
}
