package battle

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/singoff/singoff/media"
	"github.com/singoff/singoff/storage"
)

// The manager's tests run it against real SQLite and fakes of its two
// seams: rooms whose hooks the test fires as the ingest would, and
// programs that record what they are asked to show.

type fakeRooms struct {
	mu    sync.Mutex
	rooms map[string]*fakeRoom
}

type fakeRoom struct {
	hooks  RoomHooks
	closed atomic.Int32
}

func (f *fakeRooms) Open(id string, h RoomHooks) (Room, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.rooms == nil {
		f.rooms = map[string]*fakeRoom{}
	}
	if r := f.rooms[id]; r != nil && r.closed.Load() == 0 {
		return nil, errors.New("room open twice")
	}
	r := &fakeRoom{hooks: h}
	f.rooms[id] = r
	return r, nil
}

func (f *fakeRooms) room(t *testing.T, id string) *fakeRoom {
	t.Helper()
	f.mu.Lock()
	defer f.mu.Unlock()
	r := f.rooms[id]
	if r == nil {
		t.Fatalf("battle %s has no room", id)
	}
	return r
}

func (f *fakeRooms) has(id string) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.rooms[id] != nil
}

func (r *fakeRoom) Feeds() [2]media.Feed { return [2]media.Feed{} }
func (r *fakeRoom) Close()               { r.closed.Add(1) }

// publish does what the ingest does with an offer the room can answer:
// ask, then report, then (if connect) the connection.
func (r *fakeRoom) publish(slot int, connect bool) error {
	if err := r.hooks.Admit(slot); err != nil {
		return err
	}
	r.hooks.Negotiated(slot, true)
	if connect {
		r.hooks.Connected(slot, true)
	}
	return nil
}

type fakePrograms struct {
	mu       sync.Mutex
	started  map[string]*fakeProgram
	recError error // what every new program says of its recording
	startErr error
}

type fakeProgram struct {
	recError error
	done     chan struct{}
	ends     atomic.Int32
	mu       sync.Mutex
	scenes   []media.Scene
	cues     []media.Cue
}

func (f *fakePrograms) Start(id string, _ [2]media.Feed) (Program, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.startErr != nil {
		return nil, f.startErr
	}
	if f.started == nil {
		f.started = map[string]*fakeProgram{}
	}
	p := &fakeProgram{recError: f.recError, done: make(chan struct{})}
	f.started[id] = p
	return p, nil
}

func (f *fakePrograms) program(id string) *fakeProgram {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.started[id]
}

func (f *fakePrograms) count() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.started)
}

func (p *fakeProgram) Show(s media.Scene) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if n := len(p.scenes); n == 0 || p.scenes[n-1] != s {
		p.scenes = append(p.scenes, s)
	}
}
func (p *fakeProgram) Cue(c media.Cue) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.cues = append(p.cues, c)
}
func (p *fakeProgram) RecordingError() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.recError
}

// recordingFails makes the program's recording stop with err, as the
// recorder at the disk floor does.
func (p *fakeProgram) recordingFails(err error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.recError = err
}
func (p *fakeProgram) Done() <-chan struct{} { return p.done }
func (p *fakeProgram) End()                  { p.ends.Add(1) }

func (p *fakeProgram) shown() []media.Scene {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]media.Scene(nil), p.scenes...)
}

type harness struct {
	m        *Manager
	store    storage.Store
	rooms    *fakeRooms
	programs *fakePrograms
}

func newHarness(t *testing.T, cfg Config) *harness {
	t.Helper()
	h := &harness{rooms: &fakeRooms{}, programs: &fakePrograms{}}
	if cfg.Store == nil {
		store, err := storage.OpenSQLite(context.Background(), t.TempDir())
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { store.Close() })
		cfg.Store = store
	}
	h.store = cfg.Store
	cfg.Rooms, cfg.Programs = h.rooms, h.programs
	if cfg.MinTurnSeconds == 0 {
		cfg.MinTurnSeconds = 1
	}
	h.m = NewManager(cfg)
	t.Cleanup(func() {
		ctx, cancel := context.WithCancel(context.Background())
		cancel() // no drain: end what is live at once
		h.m.Close(ctx)
	})
	return h
}

func ptr[T any](v T) *T { return &v }

// create makes a battle and opens its room, as a singer's first request
// does.
func (h *harness) create(t *testing.T, req CreateRequest) (*storage.Battle, *fakeRoom) {
	t.Helper()
	if req.Title == nil {
		req.Title = ptr("a battle")
	}
	b, _, err := h.m.Create(context.Background(), req)
	if err != nil {
		t.Fatal(err)
	}
	if err := h.m.Open(context.Background(), b.ID); err != nil {
		t.Fatal(err)
	}
	return b, h.rooms.room(t, b.ID)
}

func (h *harness) status(t *testing.T, id string) Status {
	t.Helper()
	st, err := h.m.Status(context.Background(), id)
	if err != nil {
		t.Fatal(err)
	}
	return st
}

// eventually polls cond for up to 5 s.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("never: %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func TestGoingLiveAndEnding(t *testing.T) {
	h := newHarness(t, Config{})
	b, room := h.create(t, CreateRequest{Singers: []string{"Ann", "Bo"}})
	if st := h.status(t, b.ID); st.Battle.State != storage.StateWaiting || st.Connected != [2]bool{} {
		t.Fatalf("before a publish: %+v", st)
	}
	changes, stop := h.m.Subscribe(b.ID)
	defer stop()

	if err := room.publish(1, true); err != nil {
		t.Fatal(err)
	}
	st := h.status(t, b.ID)
	if st.Battle.State != storage.StateLive || st.Battle.StartedAt.IsZero() || !st.Battle.Recorded ||
		st.Connected != [2]bool{true, false} {
		t.Fatalf("after the first publish: %+v", st)
	}
	select {
	case <-changes:
	case <-time.After(time.Second):
		t.Fatal("going live was not announced")
	}
	prog := h.programs.program(b.ID)
	eventually(t, "the program shows the names", func() bool {
		s := prog.shown()
		return len(s) > 0 && s[len(s)-1].Names == [2]string{"Ann", "Bo"}
	})

	// A reload (a second offer) neither starts a second program nor
	// takes a second place.
	if err := room.publish(1, true); err != nil {
		t.Fatal(err)
	}
	if n := h.programs.count(); n != 1 {
		t.Fatalf("%d programs after a reload", n)
	}

	ended, err := h.m.End(context.Background(), b.ID, "test")
	if err != nil || ended.State != storage.StateEnded || ended.EndedAt.IsZero() {
		t.Fatalf("End = %+v, %v", ended, err)
	}
	if prog.ends.Load() != 1 || room.closed.Load() != 1 {
		t.Fatalf("program ended %d times, room closed %d times", prog.ends.Load(), room.closed.Load())
	}
	if _, err := h.m.End(context.Background(), b.ID, "again"); !errors.Is(err, ErrEnded) {
		t.Fatalf("second End: %v", err)
	}
	if err := h.m.Open(context.Background(), b.ID); !errors.Is(err, ErrEnded) {
		t.Fatalf("Open after the end: %v", err)
	}
	// A singer's late disconnect changes nothing.
	room.hooks.Connected(1, false)
	if st := h.status(t, b.ID); st.Battle.State != storage.StateEnded {
		t.Fatalf("after the end: %+v", st)
	}
}

func TestRecordingErrorIsStored(t *testing.T) {
	h := newHarness(t, Config{})
	h.programs.recError = errors.New("the server is low on disk space; this battle is not being recorded")
	b, room := h.create(t, CreateRequest{})
	if err := room.publish(2, false); err != nil {
		t.Fatal(err)
	}
	st := h.status(t, b.ID)
	if st.Battle.State != storage.StateLive || st.Battle.Recorded || st.Battle.RecordingError != h.programs.recError.Error() {
		t.Fatalf("unrecorded live battle: %+v", st.Battle)
	}
}

// A recording that stops while the battle is live (the disk floor) is
// said in the battle object, and its watchers hear of it; the recording
// made so far stays offered.
func TestStoppedRecordingIsStored(t *testing.T) {
	h := newHarness(t, Config{})
	b, room := h.create(t, CreateRequest{})
	if err := room.publish(1, true); err != nil {
		t.Fatal(err)
	}
	if st := h.status(t, b.ID).Battle; !st.Recorded || st.RecordingError != "" {
		t.Fatalf("recorded live battle: %+v", st)
	}
	changes, stop := h.m.Subscribe(b.ID)
	defer stop()
	const why = "the server ran low on free disk space; the recording stopped there"
	h.programs.program(b.ID).recordingFails(errors.New(why))
	eventually(t, "the stopped recording is stored", func() bool {
		st := h.status(t, b.ID).Battle
		return st.RecordingError == why && st.Recorded
	})
	select {
	case <-changes:
	case <-time.After(time.Second):
		t.Fatal("watchers were not told")
	}
}

// Capacity is taken atomically: however many first offers arrive at
// once, no more battles go live than the server may run, and a place
// comes back when an offer fails or a battle ends.
func TestAdmissionReservesLivePlaces(t *testing.T) {
	const maxLive = 3
	h := newHarness(t, Config{MaxLive: maxLive})
	rooms := make([]*fakeRoom, 12)
	ids := make([]string, len(rooms))
	for i := range rooms {
		b, room := h.create(t, CreateRequest{})
		rooms[i], ids[i] = room, b.ID
	}
	if admitted := admitAtOnce(t, rooms, ErrFull); len(admitted) != maxLive {
		t.Fatalf("%d offers admitted at once, want %d", len(admitted), maxLive)
	}
	// The admitted offers: one fails, the others go live.
	var live []string
	failed := false
	for i, room := range rooms {
		if !room.hasPlace(h.m) {
			continue
		}
		if !failed {
			room.hooks.Negotiated(1, false)
			failed = true
			continue
		}
		room.hooks.Negotiated(1, true)
		live = append(live, ids[i])
	}
	if len(live) != maxLive-1 {
		t.Fatalf("%d live", len(live))
	}
	// The failed offer's place is free again: one more goes live, then
	// the server is full.
	var extra *fakeRoom
	for _, room := range rooms {
		if !room.hasPlace(h.m) {
			extra = room
			break
		}
	}
	if err := extra.publish(1, false); err != nil {
		t.Fatalf("the freed place: %v", err)
	}
	for _, room := range rooms {
		if !room.hasPlace(h.m) {
			if err := room.hooks.Admit(1); !errors.Is(err, ErrFull) {
				t.Fatalf("past the limit: %v", err)
			}
			break
		}
	}
	if _, err := h.m.End(context.Background(), live[0], "test"); err != nil {
		t.Fatal(err)
	}
	admittedAfterEnd := false
	for _, room := range rooms {
		if !room.hasPlace(h.m) && room.hooks.Admit(1) == nil {
			admittedAfterEnd = true
			break
		}
	}
	if !admittedAfterEnd {
		t.Fatal("an ended battle's place did not come back")
	}
}

// admitAtOnce asks every room's Admit at once, as concurrent first
// offers do, and returns the rooms admitted; a refusal other than
// refused fails the test.
func admitAtOnce(t *testing.T, rooms []*fakeRoom, refused error) []*fakeRoom {
	t.Helper()
	var mu sync.Mutex
	var admitted []*fakeRoom
	var wg sync.WaitGroup
	for _, room := range rooms {
		wg.Go(func() {
			err := room.hooks.Admit(1)
			switch {
			case err == nil:
				mu.Lock()
				admitted = append(admitted, room)
				mu.Unlock()
			case !errors.Is(err, refused):
				t.Errorf("Admit: %v", err)
			}
		})
	}
	wg.Wait()
	return admitted
}

// hasPlace tells whether the battle of this room holds a live place.
func (r *fakeRoom) hasPlace(m *Manager) bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, run := range m.running {
		if run.room == Room(r) {
			return run.holdsPlace
		}
	}
	return false
}

// The watchdog ends a live battle for each of its reasons.
func TestLiveBattleEnds(t *testing.T) {
	for _, tc := range []struct {
		name   string
		cfg    Config
		act    func(room *fakeRoom, prog func() *fakeProgram)
		within time.Duration
	}{
		{
			name: "its singer never connects",
			cfg:  Config{ConnectGrace: 300 * time.Millisecond},
			act:  func(room *fakeRoom, _ func() *fakeProgram) { room.publish(1, false) },
		},
		{
			name: "no singer for the grace period",
			cfg:  Config{Grace: 300 * time.Millisecond},
			act: func(room *fakeRoom, _ func() *fakeProgram) {
				room.publish(1, true)
				room.hooks.Connected(1, false)
			},
		},
		{
			name: "the maximum duration",
			cfg:  Config{MaxDuration: 300 * time.Millisecond},
			act:  func(room *fakeRoom, _ func() *fakeProgram) { room.publish(2, true) },
		},
		{
			name: "its program stops",
			act: func(room *fakeRoom, prog func() *fakeProgram) {
				room.publish(1, true)
				close(prog().done)
			},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness(t, tc.cfg)
			b, room := h.create(t, CreateRequest{})
			tc.act(room, func() *fakeProgram { return h.programs.program(b.ID) })
			eventually(t, "the battle ends", func() bool { return h.status(t, b.ID).Battle.State == storage.StateEnded })
			if n := h.programs.program(b.ID).ends.Load(); n != 1 {
				t.Fatalf("program ended %d times", n)
			}
		})
	}
	t.Run("a singer in time keeps it live", func(t *testing.T) {
		h := newHarness(t, Config{ConnectGrace: 300 * time.Millisecond, Grace: 300 * time.Millisecond})
		b, room := h.create(t, CreateRequest{})
		room.publish(1, false)
		time.Sleep(100 * time.Millisecond)
		room.hooks.Connected(1, true)
		time.Sleep(800 * time.Millisecond)
		if st := h.status(t, b.ID); st.Battle.State != storage.StateLive {
			t.Fatalf("a connected battle ended: %+v", st.Battle)
		}
	})
}

// A whole battle in fast motion as the program sees it: turns with the
// countdown, votes, the result, and the end after it.
func TestFormatReachesTheProgram(t *testing.T) {
	h := newHarness(t, Config{VoteGrace: 500 * time.Millisecond, ResultHold: 500 * time.Millisecond})
	b, room := h.create(t, CreateRequest{Singers: []string{"Ann", "Bo"}, Rounds: ptr(1), TurnSeconds: ptr(1)})
	if err := room.publish(1, true); err != nil {
		t.Fatal(err)
	}
	issued := time.Now() // the watchers arrived before the start
	if _, err := h.m.Start(context.Background(), b.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := h.m.Start(context.Background(), b.ID); !errors.Is(err, ErrStarted) {
		t.Fatalf("second start: %v", err)
	}
	for i, slot := range []int{2, 2, 1} {
		if err := h.m.Vote(context.Background(), b.ID, VoteRequest{Watcher: newWatcher(), IssuedAt: issued, Slot: slot}); err != nil {
			t.Fatalf("vote %d: %v", i, err)
		}
	}
	eventually(t, "the battle ends after its result", func() bool { return h.status(t, b.ID).Battle.State == storage.StateEnded })
	var turns []int
	var result *media.Scene
	for _, s := range h.programs.program(b.ID).shown() {
		if s.Turn != 0 && (len(turns) == 0 || turns[len(turns)-1] != s.Turn) {
			turns = append(turns, s.Turn)
		}
		if s.Finished {
			result = &s
		}
	}
	if len(turns) != 2 || turns[0] != 1 || turns[1] != 2 {
		t.Fatalf("turns shown %v, want [1 2]", turns)
	}
	if result == nil || result.Winner != 2 || result.Votes != [2]int{1, 2} || result.Score != [2]int{0, 1} {
		t.Fatalf("result shown %+v", result)
	}
	st := h.status(t, b.ID)
	if !st.Timeline.Finished || st.Winner != 2 {
		t.Fatalf("ended battle's status: %+v", st)
	}
	if err := h.m.Vote(context.Background(), b.ID, VoteRequest{Watcher: newWatcher(), IssuedAt: issued, Slot: 1}); !errors.Is(err, ErrEnded) {
		t.Fatalf("vote after the end: %v", err)
	}
}

// Start racing the first publish: neither undoes the other.
func TestStartRacingFirstPublish(t *testing.T) {
	for range 20 {
		h := newHarness(t, Config{})
		b, room := h.create(t, CreateRequest{})
		var wg sync.WaitGroup
		wg.Go(func() { room.publish(1, true) })
		wg.Go(func() {
			if _, err := h.m.Start(context.Background(), b.ID); err != nil {
				t.Error(err)
			}
		})
		wg.Wait()
		st := h.status(t, b.ID).Battle
		if st.State != storage.StateLive || st.StartedAt.IsZero() || st.ClockStartedAt.IsZero() || !st.Recorded {
			t.Fatalf("after the race: %+v", st)
		}
	}
}

// flakyStore fails SetEnded while broken, as a full disk would.
type flakyStore struct {
	storage.Store
	broken atomic.Bool
}

func (s *flakyStore) SetEnded(ctx context.Context, id string, at time.Time) (bool, error) {
	if s.broken.Load() {
		return false, errors.New("disk full")
	}
	return s.Store.SetEnded(ctx, id, at)
}

func TestAFailedEndIsStoredLater(t *testing.T) {
	store, err := storage.OpenSQLite(context.Background(), t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	flaky := &flakyStore{Store: store}
	h := newHarness(t, Config{Store: flaky})
	b, room := h.create(t, CreateRequest{})
	room.publish(1, true)
	flaky.broken.Store(true)
	if _, err := h.m.End(context.Background(), b.ID, "test"); err == nil {
		t.Fatal("End reported success with a broken store")
	}
	if n := h.programs.program(b.ID).ends.Load(); n != 1 {
		t.Fatalf("program ended %d times", n)
	}
	flaky.broken.Store(false)
	eventually(t, "the end is stored", func() bool {
		got, err := store.GetBattle(context.Background(), b.ID)
		return err == nil && got.State == storage.StateEnded
	})
}

// Close drains: no new battle or live battle is taken, live ones go on
// until the deadline, then end with their programs.
func TestCloseDrainsThenEnds(t *testing.T) {
	h := newHarness(t, Config{})
	live, room := h.create(t, CreateRequest{})
	room.publish(1, true)
	waiting, other := h.create(t, CreateRequest{})

	ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
	defer cancel()
	closed := make(chan struct{})
	go func() {
		h.m.Close(ctx)
		close(closed)
	}()
	eventually(t, "draining", h.m.isDraining)
	if _, _, err := h.m.Create(context.Background(), CreateRequest{Title: ptr("late")}); !errors.Is(err, ErrDraining) {
		t.Fatalf("create while draining: %v", err)
	}
	if err := other.hooks.Admit(1); !errors.Is(err, ErrDraining) {
		t.Fatalf("a first publish while draining: %v", err)
	}
	if err := room.hooks.Admit(1); err != nil {
		t.Fatalf("a live battle's singer reloading while draining: %v", err)
	}
	if st := h.status(t, live.ID); st.Battle.State != storage.StateLive {
		t.Fatalf("a live battle ended before the drain deadline: %+v", st.Battle)
	}
	<-closed
	if st := h.status(t, live.ID); st.Battle.State != storage.StateEnded {
		t.Fatalf("after Close: %+v", st.Battle)
	}
	if st := h.status(t, waiting.ID); st.Battle.State != storage.StateWaiting {
		t.Fatalf("a waiting battle changed at Close: %+v", st.Battle)
	}
	if h.programs.program(live.ID).ends.Load() != 1 || other.closed.Load() != 1 {
		t.Fatal("Close left a program or a room open")
	}
}

func TestCreateChecksSettings(t *testing.T) {
	long := string(make([]rune, 101))
	for _, tc := range []struct {
		name string
		req  CreateRequest
		ok   bool
	}{
		{"defaults", CreateRequest{Title: ptr("t")}, true},
		{"no title", CreateRequest{}, false},
		{"blank title", CreateRequest{Title: ptr("   ")}, false},
		{"long title", CreateRequest{Title: &long}, false},
		{"one singer", CreateRequest{Title: ptr("t"), Singers: []string{"a"}}, false},
		{"blank singer", CreateRequest{Title: ptr("t"), Singers: []string{"a", " "}}, false},
		{"no rounds", CreateRequest{Title: ptr("t"), Rounds: ptr(0)}, false},
		{"ten rounds", CreateRequest{Title: ptr("t"), Rounds: ptr(10)}, false},
		{"short turn", CreateRequest{Title: ptr("t"), TurnSeconds: ptr(29)}, false},
		{"long turn", CreateRequest{Title: ptr("t"), TurnSeconds: ptr(601)}, false},
		{"bounds", CreateRequest{Title: ptr("t"), Rounds: ptr(9), TurnSeconds: ptr(30)}, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p, err := tc.req.Check(30)
			if tc.ok != (err == nil) {
				t.Fatalf("err = %v", err)
			}
			if err != nil && !errors.Is(err, ErrInvalid) {
				t.Fatalf("not ErrInvalid: %v", err)
			}
			if tc.ok && tc.req.Singers == nil && p.Singers != [2]string{"Singer 1", "Singer 2"} {
				t.Fatalf("default names %q", p.Singers)
			}
		})
	}
}
