package compositor

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/singoff/singoff/compositor/overlay"
	"github.com/singoff/singoff/media"
)

// Live publishes programs live (the hls package's Server satisfies it).
type Live interface {
	// Start begins the live output of battle id.
	Start(id string, info media.ProgramInfo) (media.Sink, error)
	// Stop ends it: the live URL then tells players the battle ended.
	Stop(id string)
}

// Recordings makes recorders (storage/recording's Local satisfies it).
type Recordings interface {
	Create(id string, info media.ProgramInfo) (media.Recorder, error)
}

// PipelinesConfig wires Pipelines.
type PipelinesConfig struct {
	// Compositor holds the encoder settings of every program; its Logger
	// is not used: programs log to Logger, tagged with their battle.
	Compositor Config
	Live       Live
	Recordings Recordings
	// DiskFloor, when set, is the error Recordings.Create wraps when the
	// disk is below its floor (recording.ErrDiskFloor): such a battle is
	// then said to be unrecorded for lack of disk space.
	DiskFloor error
	// Overlay draws every program's overlay; nil: one with Go's fonts.
	Overlay *overlay.Renderer
	Logger  *slog.Logger
}

// Pipelines starts battles' media paths and keeps their totals.
type Pipelines struct {
	cfg      PipelinesConfig
	log      *slog.Logger
	overlays *overlay.Renderer

	mu      sync.Mutex
	running map[*Pipeline]struct{}
	retired Totals // of the pipelines that ended
}

// Totals sums the work of programs.
type Totals struct {
	FramesOut, FramesRepeated, AudioFramesOut int64
	EncodeTime                                time.Duration
}

func (t *Totals) add(s Stats) {
	t.FramesOut += s.FramesOut
	t.FramesRepeated += s.FramesRepeated
	t.AudioFramesOut += s.AudioFramesOut
	t.EncodeTime += s.EncodeTime
}

// NewPipelines makes the overlay renderer that every program shares.
func NewPipelines(cfg PipelinesConfig) (*Pipelines, error) {
	if cfg.Live == nil || cfg.Recordings == nil {
		return nil, errors.New("compositor: pipelines need a live output and recordings")
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	r := cfg.Overlay
	if r == nil {
		var err error
		if r, err = overlay.NewRenderer(); err != nil {
			return nil, err
		}
	}
	return &Pipelines{cfg: cfg, log: cfg.Logger, overlays: r, running: map[*Pipeline]struct{}{}}, nil
}

// Start opens the compositor for the two slots' feeds, starts the live
// output and the recording and runs the program. A recording that cannot
// start (disk floor, ...) does not stop the program: the pipeline runs
// unrecorded and RecordingError says why. When the live output cannot
// start, nothing is left running.
func (ps *Pipelines) Start(id string, feeds [2]media.Feed) (*Pipeline, error) {
	log := ps.log.With("battle", id)
	cfg := ps.cfg.Compositor
	cfg.Logger = log
	comp, err := New(cfg, feeds[0], feeds[1])
	if err != nil {
		return nil, err
	}
	return ps.start(id, comp, log)
}

// start runs comp as battle id's program; comp is freed whatever happens.
func (ps *Pipelines) start(id string, comp *Compositor, log *slog.Logger) (*Pipeline, error) {
	info := comp.Info()
	live, err := ps.cfg.Live.Start(id, info)
	if err != nil {
		comp.Close()
		return nil, fmt.Errorf("starting the live output: %w", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	p := &Pipeline{
		id:      id,
		ps:      ps,
		log:     log,
		comp:    comp,
		cancel:  cancel,
		stopped: make(chan struct{}),
	}
	rec, err := ps.cfg.Recordings.Create(id, info)
	if err != nil {
		reason := errNotRecorded
		if ps.cfg.DiskFloor != nil && errors.Is(err, ps.cfg.DiskFloor) {
			reason = errLowDisk
		}
		p.recErr = &notRecorded{reason: reason, cause: err}
		log.Warn("battle not recorded", "err", err)
	} else {
		p.rec = rec
	}
	p.tee = &tee{log: log, live: live, rec: p.rec, recorderFailed: p.recorderFailed}
	ps.mu.Lock()
	ps.running[p] = struct{}{}
	ps.mu.Unlock()
	go p.run(ctx)
	log.Info("program started", "recorded", p.rec != nil)
	return p, nil
}

// Totals sums every program this Pipelines ran, ended ones included, so
// counters only grow (for /metrics).
func (ps *Pipelines) Totals() Totals {
	ps.mu.Lock()
	defer ps.mu.Unlock()
	t := ps.retired
	for p := range ps.running {
		t.add(p.comp.Stats())
	}
	return t
}

// retire moves p's final stats from the running programs to the retired
// ones in one step, so Totals neither counts them twice nor misses them.
func (ps *Pipelines) retire(p *Pipeline) Totals {
	st := p.comp.Stats()
	var t Totals
	t.add(st)
	ps.mu.Lock()
	delete(ps.running, p)
	ps.retired.add(st)
	ps.mu.Unlock()
	return t
}

// Pipeline is one battle's running media path: its program, split to the
// live output and the recording.
type Pipeline struct {
	id      string
	ps      *Pipelines
	log     *slog.Logger
	comp    *Compositor
	tee     *tee
	rec     media.Recorder // nil when the battle was never recorded
	cancel  context.CancelFunc
	stopped chan struct{} // closed when the program has stopped

	showMu    sync.Mutex
	shown     media.Scene
	everShown bool

	recMu  sync.Mutex
	recErr error

	endOnce sync.Once
	totals  Totals
}

// run makes the program until ctx is done or it fails.
func (p *Pipeline) run(ctx context.Context) {
	defer close(p.stopped)
	if err := p.comp.Run(ctx, p.tee); ctx.Err() == nil {
		p.log.Error("the program stopped; the battle should end", "err", err)
	}
}

// Show makes the program show s: the overlay is redrawn, and the turn
// gains set, only when s differs from what is shown (the gains only when
// the turn changes, or on the first Show); it is cheap when nothing
// changed. Safe from any goroutine.
func (p *Pipeline) Show(s media.Scene) {
	p.showMu.Lock()
	defer p.showMu.Unlock()
	if p.everShown && s == p.shown {
		return
	}
	if !p.everShown || s.Turn != p.shown.Turn {
		p.comp.setGains(overlay.Gains(s))
	}
	p.shown, p.everShown = s, true
	p.comp.setOverlay(p.ps.overlays.Render(s))
}

// Cue places a battle event on the program: the live output and the
// recorder get it, if they take cues (media.Cuer), from the program's
// goroutine at its next frame. Safe from any goroutine; after End it
// does nothing.
func (p *Pipeline) Cue(c media.Cue) { p.comp.cue(c) }

// RecordingError is nil while the battle is being recorded, else why it
// is not (also once a failing recorder was dropped). Its message is a
// sentence fit for the public; errors.Unwrap gives the detailed cause.
func (p *Pipeline) RecordingError() error {
	p.recMu.Lock()
	defer p.recMu.Unlock()
	return p.recErr
}

// recorderFailed is the tee's hook for a recorder it dropped.
func (p *Pipeline) recorderFailed(err error) {
	if p.ps.cfg.DiskFloor != nil && errors.Is(err, p.ps.cfg.DiskFloor) {
		p.log.Warn("the recording stopped at the disk floor; the live program goes on unrecorded", "err", err)
		p.setRecordingError(&notRecorded{reason: errLowDiskStopped, cause: err})
		return
	}
	p.log.Error("recording failed; the live program goes on unrecorded", "err", err)
	p.setRecordingError(&notRecorded{reason: errRecordingFailed, cause: err})
}

// setRecordingError keeps the first reason the battle is not recorded.
func (p *Pipeline) setRecordingError(err error) {
	p.recMu.Lock()
	defer p.recMu.Unlock()
	if p.recErr == nil {
		p.recErr = err
	}
}

// Done is closed when the program has stopped: on its own (an encoder
// failure: the battle should then end) or, after End, because it was
// stopped.
func (p *Pipeline) Done() <-chan struct{} { return p.stopped }

// End stops the program and waits for it, stops the live output,
// finishes the recording (VOD) and returns this program's totals, which
// then count among the Pipelines' ended ones. It is idempotent: later
// calls wait for the first and return the same totals.
func (p *Pipeline) End() Totals {
	p.endOnce.Do(func() {
		p.cancel()
		<-p.stopped
		p.totals = p.ps.retire(p)
		p.ps.cfg.Live.Stop(p.id)
		// A recorder the tee dropped is finished too: what it recorded
		// stays playable, and it lets go of its resources.
		if p.rec != nil {
			if err := p.rec.Close(true); err != nil {
				p.log.Error("finishing the recording", "err", err)
				p.setRecordingError(&notRecorded{reason: errRecordingFailed, cause: err})
			}
		}
		p.log.Info("program ended", "frames", p.totals.FramesOut, "frames_repeated", p.totals.FramesRepeated)
	})
	return p.totals
}

// Public reasons a battle is not recorded. The causes carry paths, sizes
// and library errors that are for the logs only.
const (
	errNotRecorded     = "this battle is not being recorded"
	errLowDisk         = "the server is low on free disk space; this battle is not being recorded"
	errRecordingFailed = "the recording failed; this battle is no longer being recorded"
	errLowDiskStopped  = "the server ran low on free disk space; the recording stopped there"
)

// notRecorded says publicly why a battle is not recorded and keeps the
// detailed cause for logs and errors.Is.
type notRecorded struct {
	reason string
	cause  error
}

func (e *notRecorded) Error() string { return e.reason }
func (e *notRecorded) Unwrap() error { return e.cause }

// liveErrorEvery is how often, at most, a live output's rejections are
// logged.
const liveErrorEvery = time.Second

// tee hands every sample of the program, and its cues and stills, to
// the live output and the recorder (cues and stills to those that take
// them). The program never stops for its outputs: a sample the live
// output rejects is skipped (and logged at most once per liveErrorEvery),
// and a recorder that fails is dropped and reported through
// recorderFailed. Only the program's goroutine writes to it.
type tee struct {
	log            *slog.Logger
	live           media.Sink
	rec            media.Sink // nil: not recorded
	recorderFailed func(error)

	lastLiveLog time.Time
	liveSkipped int // samples rejected since lastLiveLog
}

func (t *tee) WriteVideo(rung int, ntp time.Time, pts int64, au [][]byte) error {
	t.liveWrote(t.live.WriteVideo(rung, ntp, pts, au))
	if t.rec != nil {
		t.recorded(t.rec.WriteVideo(rung, ntp, pts, au))
	}
	return nil
}

func (t *tee) WriteAudio(ntp time.Time, pts int64, aus [][]byte) error {
	t.liveWrote(t.live.WriteAudio(ntp, pts, aus))
	if t.rec != nil {
		t.recorded(t.rec.WriteAudio(ntp, pts, aus))
	}
	return nil
}

// Cue implements media.Cuer.
func (t *tee) Cue(c media.Cue) {
	for _, out := range []media.Sink{t.live, t.rec} {
		if cuer, ok := out.(media.Cuer); ok {
			cuer.Cue(c)
		}
	}
}

// Still implements media.Stills.
func (t *tee) Still(ntp time.Time, jpeg []byte) {
	for _, out := range []media.Sink{t.live, t.rec} {
		if stills, ok := out.(media.Stills); ok {
			stills.Still(ntp, jpeg)
		}
	}
}

func (t *tee) liveWrote(err error) {
	if err == nil {
		return
	}
	t.liveSkipped++
	if now := time.Now(); now.Sub(t.lastLiveLog) >= liveErrorEvery {
		t.log.Error("live output rejected samples; skipped", "err", err, "samples", t.liveSkipped)
		t.lastLiveLog, t.liveSkipped = now, 0
	}
}

func (t *tee) recorded(err error) {
	if err != nil {
		t.rec = nil
		t.recorderFailed(err)
	}
}
