// Package battle is the domain: a battle's life (waiting → live → ended),
// its two singer slots and their tokens, and the wiring of one battle's
// pipeline: ingest → compositor → live HLS and recording.
package battle

import (
	"context"
	"errors"
	"fmt"
	"image"
	"log/slog"
	"sync"
	"time"

	"github.com/singoff/singoff/compositor"
	"github.com/singoff/singoff/compositor/overlay"
	"github.com/singoff/singoff/ingest"
	"github.com/singoff/singoff/internal/battleid"
	"github.com/singoff/singoff/media"
	"github.com/singoff/singoff/storage"
)

// Program composites the two slots into one program (the compositor).
type Program interface {
	Info() media.ProgramInfo
	Run(ctx context.Context, sink media.Sink) error
	Stats() compositor.Stats
	// SetOverlay draws positioned layers over the program; SetGains
	// sets each slot's audio level in the mix.
	SetOverlay(layers []*image.RGBA)
	SetGains(left, right float32)
	// Close frees a program that will not run.
	Close()
}

// ProgramFactory makes a battle's program from its two slots' feeds.
type ProgramFactory func(left, right media.Feed) (Program, error)

// LiveOutput publishes programs live (the hls package).
type LiveOutput interface {
	// Start begins the live output of battle id.
	Start(id string, info media.ProgramInfo) (media.Sink, error)
	// Stop ends it: the live URL then tells players the battle ended.
	Stop(id string)
	// Viewers counts the battle's recent distinct watchers.
	Viewers(id string) int
}

// Recordings makes recorders (storage/recording).
type Recordings interface {
	Create(id string, info media.ProgramInfo) (media.Recorder, error)
}

// Config wires a Manager.
type Config struct {
	Store      storage.Store
	Ingest     *ingest.Server
	NewProgram ProgramFactory
	Live       LiveOutput
	Recordings Recordings
	// Grace is how long a live battle may have no singer before it ends
	// (default 10 min); MaxDuration bounds a battle (default 2 h).
	Grace       time.Duration
	MaxDuration time.Duration
	// MaxLive bounds the battles live at once on this server (default
	// 8): a publish that would start one more is refused.
	MaxLive int
	// VoteGrace and ResultHold time the format (defaults 15 s, 30 s).
	VoteGrace  time.Duration
	ResultHold time.Duration
	Logger     *slog.Logger
}

// Errors the API maps to statuses.
var (
	ErrNotFound = errors.New("battle not found")
	ErrEnded    = errors.New("battle has ended")
	// ErrFull says the server has as many live battles as it may.
	ErrFull = errors.New("this server is running as many live battles as it can")
)

// Manager owns every battle's lifetime on this server.
type Manager struct {
	cfg Config
	log *slog.Logger

	mu      sync.Mutex
	running map[string]*running // battles with a room (not ended)
	closed  bool
	subs    map[string]map[chan struct{}]struct{} // event listeners by battle

	overlays *overlay.Renderer

	watchStop chan struct{}
	watchDone chan struct{}

	// retired sums the program stats of battles that ended, so totals
	// only grow.
	retired ProgramTotals
}

// running is the live part of a battle that is not ended: its room and,
// once live, its pipeline.
type running struct {
	id   string
	room *ingest.Room

	mu         sync.Mutex
	connected  [2]bool
	aloneSince time.Time // when the last singer left a live battle
	pipeline   *pipeline
	ended      bool
	format     format      // the battle's names and timing
	clock      time.Time   // when the rounds' clock started; zero before
	liveSince  time.Time   // when the program started
	lastSig    string      // what watchers last heard of, to spot changes
	shown      media.Scene // what the program shows, once everShown
	everShown  bool
}

type pipeline struct {
	program  Program
	cancel   context.CancelFunc
	done     chan struct{}
	recorder media.Recorder
}

// NewManager starts the manager and its watchdog (grace period, maximum
// duration, the format's timeline). Call Close to end it.
func NewManager(cfg Config) (*Manager, error) {
	if cfg.Grace == 0 {
		cfg.Grace = 10 * time.Minute
	}
	if cfg.MaxDuration == 0 {
		cfg.MaxDuration = 2 * time.Hour
	}
	if cfg.MaxLive == 0 {
		cfg.MaxLive = 8
	}
	if cfg.VoteGrace == 0 {
		cfg.VoteGrace = DefaultVoteGrace
	}
	if cfg.ResultHold == 0 {
		cfg.ResultHold = DefaultResultHold
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	m := &Manager{
		subs:      map[string]map[chan struct{}]struct{}{},
		cfg:       cfg,
		log:       cfg.Logger,
		running:   map[string]*running{},
		watchStop: make(chan struct{}),
		watchDone: make(chan struct{}),
	}
	var err error
	if m.overlays, err = overlay.NewRenderer(); err != nil {
		return nil, err
	}
	go m.watch()
	return m, nil
}

// Close ends every live battle cleanly (recordings finished), closes
// every room (waiting battles stay waiting) and stops the watchdog.
func (m *Manager) Close() {
	m.mu.Lock()
	if m.closed {
		m.mu.Unlock()
		return
	}
	m.closed = true
	rs := m.runningLocked()
	m.mu.Unlock()
	close(m.watchStop)
	<-m.watchDone
	for _, r := range rs {
		r.mu.Lock()
		live := r.pipeline != nil
		r.mu.Unlock()
		if live {
			if _, err := m.End(context.Background(), r.id, "server shutting down"); err != nil && !errors.Is(err, ErrEnded) {
				m.log.Error("ending battle at shutdown", "battle", r.id, "err", err)
			}
			continue
		}
		r.mu.Lock()
		r.ended = true
		r.mu.Unlock()
		r.room.Close()
	}
}

// Create stores a new battle and returns it with its tokens.
func (m *Manager) Create(ctx context.Context, p CreateParams) (*storage.Battle, Tokens, error) {
	var t Tokens
	b := &storage.Battle{
		ID:          battleid.New(),
		Title:       p.Title,
		State:       storage.StateWaiting,
		CreatedAt:   time.Now().UTC(),
		SingerNames: p.Singers,
		Rounds:      p.Rounds,
		TurnSeconds: p.TurnSeconds,
	}
	t.Host, b.HostTokenHash = newToken()
	for i := range t.Singers {
		t.Singers[i], b.SingerTokenHashs[i] = newToken()
	}
	if err := m.cfg.Store.CreateBattle(ctx, b); err != nil {
		return nil, t, err
	}
	m.log.Info("battle created", "battle", b.ID, "title", b.Title)
	return b, t, nil
}

// Tokens are a new battle's bearer tokens, shown once.
type Tokens struct {
	Host    string
	Singers [2]string
}

// Get returns the stored battle, or ErrNotFound.
func (m *Manager) Get(ctx context.Context, id string) (*storage.Battle, error) {
	if !battleid.Valid(id) {
		return nil, ErrNotFound
	}
	b, err := m.cfg.Store.GetBattle(ctx, id)
	if errors.Is(err, storage.ErrNotFound) {
		return nil, ErrNotFound
	}
	return b, err
}

// Connected tells which slots of battle id have a publisher.
func (m *Manager) Connected(id string) [2]bool {
	m.mu.Lock()
	r := m.running[id]
	m.mu.Unlock()
	if r == nil {
		return [2]bool{}
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.connected
}

// Viewers counts battle id's recent watchers.
func (m *Manager) Viewers(id string) int { return m.cfg.Live.Viewers(id) }

// Room returns the room of a battle that has not ended, making it if
// needed (after a restart, rooms come back on first use).
func (m *Manager) Room(ctx context.Context, id string) (*ingest.Room, error) {
	b, err := m.Get(ctx, id)
	if err != nil {
		return nil, err
	}
	if b.State == storage.StateEnded {
		return nil, ErrEnded
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed {
		return nil, ErrEnded
	}
	r := m.running[id]
	if r == nil {
		r = &running{id: id, format: m.formatOf(b), clock: b.ClockStartedAt}
		r.room = m.cfg.Ingest.NewRoom(id, func(slot int, connected bool) {
			m.slotChanged(r, slot, connected)
		})
		m.running[id] = r
	}
	return r.room, nil
}

// runningBattles lists the battles with a room, to visit without m.mu.
func (m *Manager) runningBattles() []*running {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.runningLocked()
}

func (m *Manager) runningLocked() []*running {
	rs := make([]*running, 0, len(m.running))
	for _, r := range m.running {
		rs = append(rs, r)
	}
	return rs
}

// Admit tells whether a publish to battle id may go ahead: a battle that
// is not live yet needs room for one more live battle.
func (m *Manager) Admit(id string) error {
	rs := m.runningBattles()
	live := 0
	for _, r := range rs {
		r.mu.Lock()
		isLive := r.pipeline != nil
		r.mu.Unlock()
		if r.id == id && isLive {
			return nil
		}
		if isLive {
			live++
		}
	}
	if live >= m.cfg.MaxLive {
		return ErrFull
	}
	return nil
}

// slotChanged follows a slot's publisher: the first one makes the battle
// live and starts its pipeline.
func (m *Manager) slotChanged(r *running, slot int, connected bool) {
	if slot < 1 || slot > 2 {
		return
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.ended {
		return
	}
	r.connected[slot-1] = connected
	defer m.notify(r.id)
	if connected {
		m.log.Info("singer connected", "battle", r.id, "slot", slot)
	} else {
		m.log.Info("singer disconnected", "battle", r.id, "slot", slot)
	}
	if r.connected[0] || r.connected[1] {
		r.aloneSince = time.Time{}
	} else if r.aloneSince.IsZero() {
		r.aloneSince = time.Now()
	}
	if connected && r.pipeline == nil {
		if err := m.goLive(r); err != nil {
			m.log.Error("starting the program", "battle", r.id, "err", err)
		}
	}
}

// Published tells the manager a singer's WHIP offer for battle id was
// accepted: the battle goes live there and then, so the program's first
// segment is being made while the singer's connection comes up.
func (m *Manager) Published(id string) {
	m.mu.Lock()
	r := m.running[id]
	m.mu.Unlock()
	if r == nil {
		return
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.ended || r.pipeline != nil {
		return
	}
	if err := m.goLive(r); err != nil {
		m.log.Error("starting the program", "battle", r.id, "err", err)
		return
	}
	if !r.connected[0] && !r.connected[1] && r.aloneSince.IsZero() {
		// Until the singer's connection is up, the grace period runs.
		r.aloneSince = time.Now()
	}
	m.notify(id)
}

// goLive marks the battle live and starts its pipeline; r.mu is held.
func (m *Manager) goLive(r *running) error {
	ctx := context.Background()
	b, err := m.cfg.Store.GetBattle(ctx, r.id)
	if err != nil {
		return err
	}
	prog, err := m.cfg.NewProgram(r.room.Slot(1).Feed(), r.room.Slot(2).Feed())
	if err != nil {
		return fmt.Errorf("compositor: %w", err)
	}
	info := prog.Info()
	live, err := m.cfg.Live.Start(r.id, info)
	if err != nil {
		prog.Close()
		return fmt.Errorf("live output: %w", err)
	}
	sink := &teeSink{log: m.log.With("battle", r.id), live: live}
	rec, err := m.cfg.Recordings.Create(r.id, info)
	if err != nil {
		b.RecordingError = err.Error()
		m.log.Warn("battle not recorded", "battle", r.id, "err", err)
	} else {
		b.Recorded = true
		b.RecordingError = ""
		sink.rec = rec
	}
	if b.State == storage.StateWaiting {
		b.State = storage.StateLive
		b.StartedAt = time.Now().UTC()
	}
	r.liveSince = b.StartedAt
	if err := m.cfg.Store.UpdateBattle(ctx, b); err != nil {
		prog.Close()
		m.cfg.Live.Stop(r.id)
		if rec != nil {
			rec.Close(false)
		}
		return err
	}
	pctx, cancel := context.WithCancel(context.Background())
	p := &pipeline{program: prog, cancel: cancel, done: make(chan struct{}), recorder: rec}
	go func() {
		defer close(p.done)
		if err := prog.Run(pctx, sink); err != nil && pctx.Err() == nil {
			m.log.Error("program stopped", "battle", r.id, "err", err)
		}
	}()
	r.pipeline = p
	m.log.Info("battle live", "battle", r.id)
	return nil
}

// End ends battle id: the program stops, the recording is finished, the
// room closes. ErrEnded if it had ended already.
func (m *Manager) End(ctx context.Context, id, reason string) (*storage.Battle, error) {
	b, err := m.Get(ctx, id)
	if err != nil {
		return nil, err
	}
	m.mu.Lock()
	r := m.running[id]
	m.mu.Unlock()
	if r != nil {
		r.mu.Lock()
		if r.ended {
			r.mu.Unlock()
			return nil, ErrEnded
		}
		r.ended = true
		p := r.pipeline
		r.pipeline = nil
		r.mu.Unlock()
		if p != nil {
			p.cancel()
			<-p.done
			m.mu.Lock()
			m.retired.add(p.program.Stats())
			m.mu.Unlock()
			m.cfg.Live.Stop(id)
			if p.recorder != nil {
				if err := p.recorder.Close(true); err != nil {
					m.log.Error("finishing the recording", "battle", id, "err", err)
				}
			}
		}
		// Outside r.mu: closing sessions reports disconnects, which
		// take r.mu (and find the battle ended).
		r.room.Close()
		m.mu.Lock()
		delete(m.running, id)
		m.mu.Unlock()
	}
	if b.State == storage.StateEnded {
		return nil, ErrEnded
	}
	b.State = storage.StateEnded
	b.EndedAt = time.Now().UTC()
	if err := m.cfg.Store.UpdateBattle(ctx, b); err != nil {
		return nil, err
	}
	m.log.Info("battle ended", "battle", id, "reason", reason)
	m.notify(id)
	return b, nil
}

// watch drives every battle with a room four times a second: the end
// of the grace period and of the maximum duration, the format's timeline
// (events on each change, the program's overlay and turn gains) and the
// end after the result.
func (m *Manager) watch() {
	defer close(m.watchDone)
	tick := time.NewTicker(watchInterval)
	defer tick.Stop()
	for {
		select {
		case <-m.watchStop:
			return
		case now := <-tick.C:
			for _, r := range m.runningBattles() {
				if reason := m.step(r, now); reason != "" {
					if _, err := m.End(context.Background(), r.id, reason); err != nil && !errors.Is(err, ErrEnded) {
						m.log.Error("ending battle", "battle", r.id, "err", err)
					}
				}
			}
		}
	}
}

const watchInterval = 250 * time.Millisecond

// teeSink hands the program to the live output and the recorder. A
// failing recorder is dropped (and said so) rather than stopping the
// live program.
type teeSink struct {
	log         *slog.Logger
	live        media.Sink
	mu          sync.Mutex
	rec         media.Sink
	lastLiveErr time.Time
}

// The program never stops for its outputs: a live write error is logged
// (once a second at most) and the sample skipped.
func (t *teeSink) WriteVideo(ntp time.Time, pts int64, au [][]byte) error {
	t.liveFailed(t.live.WriteVideo(ntp, pts, au))
	t.record(func(s media.Sink) error { return s.WriteVideo(ntp, pts, au) })
	return nil
}

func (t *teeSink) WriteAudio(ntp time.Time, pts int64, aus [][]byte) error {
	t.liveFailed(t.live.WriteAudio(ntp, pts, aus))
	t.record(func(s media.Sink) error { return s.WriteAudio(ntp, pts, aus) })
	return nil
}

func (t *teeSink) liveFailed(err error) {
	if err == nil {
		return
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	if now := time.Now(); now.Sub(t.lastLiveErr) > time.Second {
		t.lastLiveErr = now
		t.log.Error("live output rejected a sample", "err", err)
	}
}

func (t *teeSink) record(write func(media.Sink) error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.rec == nil {
		return
	}
	if err := write(t.rec); err != nil {
		t.log.Error("recording failed; the live program goes on unrecorded", "err", err)
		t.rec = nil
	}
}

// ProgramTotals sums program statistics over battles.
type ProgramTotals struct {
	FramesOut, FramesDropped, AudioFramesOut int64
	EncodeTime                               time.Duration
}

func (t *ProgramTotals) add(s compositor.Stats) {
	t.FramesOut += s.FramesOut
	t.FramesDropped += s.FramesDropped
	t.AudioFramesOut += s.AudioFramesOut
	t.EncodeTime += s.EncodeTime
}

// Snapshot is what the manager is doing now, for /metrics.
type Snapshot struct {
	Live, Waiting    int // battles with a program; with a room but no program yet
	SingersConnected int
	Viewers          int
	Program          ProgramTotals // every program of this process, ended ones included
}

// Snapshot counts battles, singers, viewers and program work.
func (m *Manager) Snapshot() Snapshot {
	m.mu.Lock()
	rs := m.runningLocked()
	s := Snapshot{Program: m.retired}
	m.mu.Unlock()
	for _, r := range rs {
		r.mu.Lock()
		p := r.pipeline
		for _, c := range r.connected {
			if c {
				s.SingersConnected++
			}
		}
		r.mu.Unlock()
		if p == nil {
			s.Waiting++
			continue
		}
		s.Live++
		s.Viewers += m.cfg.Live.Viewers(r.id)
		s.Program.add(p.program.Stats())
	}
	return s
}
