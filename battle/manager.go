package battle

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/singoff/singoff/internal/battleid"
	"github.com/singoff/singoff/storage"
)

// Manager owns every battle's lifetime on this server.
//
// Locks: Manager.mu may be taken before a running battle's mu, never
// after it.
type Manager struct {
	cfg Config

	// createMu makes counting a network's waiting battles and adding
	// one a single step on this server.
	createMu sync.Mutex

	mu       sync.Mutex
	running  map[string]*running // battles with a room, not ended
	places   int                 // live places held: live battles and admitted first offers
	netLive  map[string]int      // places held by battles of each creator network
	draining bool
	closed   bool
	// unwritten are battles ended here whose ended state could not be
	// stored yet; the watchdog retries.
	unwritten map[string]time.Time

	// subs listen for battles' changes, chat for their chats'.
	subs, chat listeners

	watchStop chan struct{}
	watchDone chan struct{}

	origin origin // when several origins share the store
}

// running is a battle that has a room: waiting for its singers, or live.
type running struct {
	id      string
	network string // the creator's network, "" unknown
	room    Room
	format  format

	// holdsPlace is guarded by Manager.mu: the battle counts against
	// MaxLive (it is live, or its first offer was admitted).
	holdsPlace bool

	mu            sync.Mutex
	ended         bool
	connected     [2]bool
	everConnected bool
	aloneSince    time.Time // when the last singer left; zero while one is connected
	program       Program
	liveSince     time.Time // when the program started (monotonic)
	clock         time.Time // when the rounds' clock started; zero before
	tally         [][2]int  // votes per round, refreshed on every vote
	seen          watched   // what watchers last heard of
	cued          cueLog    // the cues handed to program
	// storedPresence is what the other origins were last told of the
	// singers and viewers.
	storedPresence presence
	// recorded tells whether the program's recording started;
	// storedWhy is the recording error the store has (unstored when a
	// write failed), so the watchdog stores a change, e.g. a recording
	// stopped at the disk floor.
	recorded  bool
	storedWhy string

	// cheers are the cheers stored; pendingCheers those since the last
	// tick, which the watchdog stores.
	cheers, pendingCheers [2]int
}

// unstored marks a recording error the store does not have yet.
const unstored = "\x00"

// recordingError is why p is not recorded, a public sentence, or "".
func recordingError(p Program) string {
	if err := p.RecordingError(); err != nil {
		return err.Error()
	}
	return ""
}

// watched is what watchers see change without asking: a change is news.
type watched struct {
	round, turn      int
	votingOpen, done bool
	connected        [2]bool
	live             bool
	viewers          int
}

// NewManager starts the manager and its watchdog. Call Close to stop it.
func NewManager(cfg Config) *Manager {
	cfg.setDefaults()
	m := &Manager{
		cfg:       cfg,
		running:   map[string]*running{},
		netLive:   map[string]int{},
		unwritten: map[string]time.Time{},
		watchStop: make(chan struct{}),
		watchDone: make(chan struct{}),
	}
	if cfg.Origin != "" {
		m.origin.presenceDirty = make(chan struct{}, 1)
	}
	go m.watch()
	return m
}

// Tokens are a new battle's bearer tokens, shown once.
type Tokens struct {
	Host    string
	Singers [2]string
}

// Create stores a new battle and returns it with its tokens. Its
// settings are checked (ErrInvalid); a draining server takes none
// (ErrDraining), and a network with MaxWaitingPerNetwork battles waiting
// gets no more (ErrNetworkLimit).
func (m *Manager) Create(ctx context.Context, req CreateRequest) (*storage.Battle, Tokens, error) {
	var t Tokens
	if m.isDraining() {
		return nil, t, ErrDraining
	}
	p, err := req.Check(m.cfg.MinTurnSeconds)
	if err != nil {
		return nil, t, err
	}
	b := &storage.Battle{
		ID:             battleid.New(),
		Title:          p.Title,
		State:          storage.StateWaiting,
		CreatedAt:      time.Now().UTC(),
		SingerNames:    p.Singers,
		Rounds:         p.Rounds,
		TurnSeconds:    p.TurnSeconds,
		CreatorNetwork: req.Network,
	}
	t.Host, b.HostTokenHash = newToken()
	for i := range t.Singers {
		t.Singers[i], b.SingerTokenHashs[i] = newToken()
	}
	if err := m.store(ctx, b); err != nil {
		return nil, t, err
	}
	m.cfg.Logger.Info("battle created", "battle", b.ID, "origin", b.Origin)
	return b, t, nil
}

// store adds b, within its network's cap of waiting battles (counted on
// this server at once; with several origins sharing the store, creations
// racing on two of them may pass it by one each), on this server or,
// with several origins, on the one with the most free capacity.
func (m *Manager) store(ctx context.Context, b *storage.Battle) error {
	if b.CreatorNetwork != "" {
		m.createMu.Lock()
		defer m.createMu.Unlock()
		n, err := m.cfg.Store.CountWaiting(ctx, b.CreatorNetwork)
		if err != nil {
			return err
		}
		if n >= m.cfg.MaxWaitingPerNetwork {
			return errWaitingCap
		}
	}
	var err error
	if m.cfg.Origin == "" {
		err = m.cfg.Store.CreateBattle(ctx, b)
	} else {
		// On the origin with the most free capacity.
		err = m.cfg.Store.PlaceBattle(ctx, b, time.Now().Add(-m.cfg.OriginTimeout))
	}
	if errors.Is(err, storage.ErrNoOrigin) {
		return ErrFull
	}
	return err
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

// Status is a battle as its watchers see it now.
type Status struct {
	Battle    *storage.Battle
	Connected [2]bool
	Viewers   int
	Votes     [][2]int // per round: [slot 1, slot 2]
	Timeline  Timeline
	// Winner, once Timeline.Finished: 1 or 2, or 0 for a draw.
	Winner int
}

// Status returns battle id as its watchers see it now.
func (m *Manager) Status(ctx context.Context, id string) (Status, error) {
	b, err := m.Get(ctx, id)
	if err != nil {
		return Status{}, err
	}
	sts, err := m.statuses(ctx, []*storage.Battle{b})
	if err != nil {
		return Status{}, err
	}
	return sts[0], nil
}

// List returns up to limit battles in state ("" for all), newest first.
func (m *Manager) List(ctx context.Context, state string, limit int) ([]Status, error) {
	bs, err := m.cfg.Store.ListBattles(ctx, state, limit)
	if err != nil {
		return nil, err
	}
	return m.statuses(ctx, bs)
}

// StatusOf returns stored battle b as its watchers see it now.
func (m *Manager) StatusOf(ctx context.Context, b *storage.Battle) (Status, error) {
	sts, err := m.statuses(ctx, []*storage.Battle{b})
	if err != nil {
		return Status{}, err
	}
	return sts[0], nil
}

// statuses completes stored battles with what is live, with one query
// for all their votes.
func (m *Manager) statuses(ctx context.Context, bs []*storage.Battle) ([]Status, error) {
	tallies, err := m.cfg.Store.Tallies(ctx, bs)
	if err != nil {
		return nil, err
	}
	now := time.Now()
	out := make([]Status, len(bs))
	for i, b := range bs {
		st := Status{Battle: b, Votes: tallies[b.ID]}
		clock := b.ClockStartedAt
		r := m.lookup(b.ID)
		if b.State != storage.StateEnded && r != nil {
			r.mu.Lock()
			st.Connected = r.connected
			if !r.clock.IsZero() {
				clock = r.clock // with its monotonic reading
			}
			r.mu.Unlock()
		}
		switch {
		case b.State != storage.StateLive:
		case r != nil:
			st.Viewers = m.cfg.Viewers(b.ID)
		default:
			// Live on another origin: what it last stored.
			st.Connected, st.Viewers = b.Connected, b.Viewers
		}
		at := now
		if b.State == storage.StateEnded && !b.EndedAt.IsZero() {
			at = b.EndedAt // an ended battle stands still where it ended
		}
		st.Timeline = m.formatOf(b).timing.at(clock, at)
		if b.State == storage.StateEnded {
			st.Timeline.Turn, st.Timeline.VotingOpen = 0, false
		}
		if st.Timeline.Finished {
			st.Winner = winner(st.Votes)
		}
		out[i] = st
	}
	return out, nil
}

func (m *Manager) lookup(id string) *running {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.running[id]
}

func (m *Manager) isDraining() bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.draining || m.closed
}

// Open makes sure battle id has its room, for a singer or a subscriber
// about to arrive: ErrEnded when the battle has ended, ErrDraining when
// the server is stopping.
func (m *Manager) Open(ctx context.Context, id string) error {
	_, err := m.open(ctx, id)
	return err
}

func (m *Manager) open(ctx context.Context, id string) (*running, error) {
	if r := m.lookup(id); r != nil {
		return r, nil
	}
	b, err := m.Get(ctx, id)
	if err != nil {
		return nil, err
	}
	if b.State == storage.StateEnded {
		return nil, ErrEnded
	}
	if !m.here(b) {
		return nil, ErrElsewhere
	}
	tally, err := m.cfg.Store.Tally(ctx, id, max(b.Rounds, 1))
	if err != nil {
		return nil, err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed {
		return nil, ErrDraining
	}
	if r := m.running[id]; r != nil {
		return r, nil
	}
	r := &running{id: id, network: b.CreatorNetwork, format: m.formatOf(b), clock: b.ClockStartedAt, tally: tally, cheers: b.Cheers}
	room, err := m.cfg.Rooms.Open(id, RoomHooks{
		Admit:      func(int) error { return m.admit(r) },
		Negotiated: func(_ int, ok bool) { m.negotiated(r, ok) },
		Connected:  func(slot int, on bool) { m.connected(r, slot, on) },
	})
	if err != nil {
		return nil, fmt.Errorf("opening the room: %w", err)
	}
	r.room = room
	m.running[id] = r
	return r, nil
}

// admit lets a publish offer for r go ahead: a battle that is not live
// yet takes one of the server's live places, atomically, so concurrent
// first offers can never exceed MaxLive, nor its network's
// MaxLivePerNetwork.
func (m *Manager) admit(r *running) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if r.holdsPlace {
		return nil
	}
	if m.draining || m.closed {
		return ErrDraining
	}
	r.mu.Lock()
	ended := r.ended
	r.mu.Unlock()
	if ended {
		return ErrEnded
	}
	return m.takePlace(r)
}

// takePlace gives r a live place if the server and r's network have one
// free; m.mu is held.
func (m *Manager) takePlace(r *running) error {
	switch {
	case m.places >= m.cfg.MaxLive:
		return ErrFull
	case r.network != "" && m.netLive[r.network] >= m.cfg.MaxLivePerNetwork:
		return errLiveCap
	}
	r.holdsPlace = true
	m.places++
	if r.network != "" {
		m.netLive[r.network]++
	}
	return nil
}

// dropPlace gives r's live place back, if it holds one; m.mu is held.
func (m *Manager) dropPlace(r *running) {
	if !r.holdsPlace {
		return
	}
	r.holdsPlace = false
	m.places--
	if r.network != "" {
		if m.netLive[r.network]--; m.netLive[r.network] == 0 {
			delete(m.netLive, r.network)
		}
	}
}

// release gives r's live place back.
func (m *Manager) release(r *running) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.dropPlace(r)
}

// negotiated follows an admitted offer: an answered one makes the battle
// live; a failed one frees the place of a battle that is not live.
func (m *Manager) negotiated(r *running, ok bool) {
	if ok {
		m.goLive(r)
		return
	}
	r.mu.Lock()
	live := r.program != nil
	r.mu.Unlock()
	if !live {
		m.release(r)
	}
}

// holdPlace makes sure r holds a live place, checking the limit again if
// it gave its admitted place back meanwhile.
func (m *Manager) holdPlace(r *running) bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	r.mu.Lock()
	ended := r.ended
	r.mu.Unlock()
	switch {
	case ended:
		return false
	case r.holdsPlace:
		return true
	}
	return m.takePlace(r) == nil
}

// goLive starts r's program and marks the battle live, at the first
// answered offer: the program's first segment is being made while the
// singer's connection comes up.
func (m *Manager) goLive(r *running) {
	log := m.cfg.Logger.With("battle", r.id)
	if !m.holdPlace(r) {
		log.Warn("an answered offer found no live place")
		return
	}
	r.mu.Lock()
	if r.ended || r.program != nil {
		r.mu.Unlock()
		return
	}
	prog, err := m.cfg.Programs.Start(r.id, r.room.Feeds())
	if err != nil {
		r.mu.Unlock()
		m.release(r)
		log.Error("starting the program", "err", err)
		return
	}
	ctx := context.Background()
	now := time.Now()
	if ok, err := m.cfg.Store.SetLive(ctx, r.id, now.UTC()); err != nil || !ok {
		r.mu.Unlock()
		prog.End()
		m.release(r)
		if err != nil {
			log.Error("marking the battle live", "err", err)
		} else {
			log.Warn("the battle ended before it could go live")
		}
		return
	}
	why := recordingError(prog)
	if why != "" {
		log.Warn("battle not recorded", "why", why)
	}
	r.recorded, r.storedWhy = why == "", why
	if err := m.cfg.Store.SetRecording(ctx, r.id, r.recorded, why); err != nil {
		r.storedWhy = unstored // the watchdog tries again
		log.Error("storing whether the battle is recorded", "err", err)
	}
	r.program, r.liveSince = prog, now
	r.mu.Unlock()
	log.Info("battle live")
	m.notify(r.id)
}

// connected follows a slot's publisher connecting or leaving.
func (m *Manager) connected(r *running, slot int, on bool) {
	if slot < 1 || slot > 2 {
		return
	}
	r.mu.Lock()
	if r.ended {
		r.mu.Unlock()
		return
	}
	r.connected[slot-1] = on
	switch {
	case r.connected[0] || r.connected[1]:
		r.everConnected = true
		r.aloneSince = time.Time{}
	case r.aloneSince.IsZero():
		r.aloneSince = time.Now()
	}
	r.mu.Unlock()
	if on {
		m.cfg.Logger.Info("singer connected", "battle", r.id, "slot", slot)
	} else {
		m.cfg.Logger.Info("singer disconnected", "battle", r.id, "slot", slot)
	}
	m.presenceChanged()
	m.notify(r.id)
}

// End ends battle id for reason: the program stops, the recording is
// finished, the room closes. ErrEnded if it had ended already.
func (m *Manager) End(ctx context.Context, id, reason string) (*storage.Battle, error) {
	b, err := m.Get(ctx, id)
	if err != nil {
		return nil, err
	}
	r := m.detach(id)
	if r == nil && b.State == storage.StateEnded {
		return nil, ErrEnded
	}
	if r != nil {
		r.stop()
	}
	at := time.Now().UTC()
	changed, err := m.cfg.Store.SetEnded(ctx, id, at)
	if err != nil {
		// The battle has ended here; its stored state follows when the
		// store answers again.
		m.mu.Lock()
		m.unwritten[id] = at
		m.mu.Unlock()
		return nil, fmt.Errorf("storing the end: %w", err)
	}
	if !changed {
		return nil, ErrEnded
	}
	m.cfg.Logger.Info("battle ended", "battle", id, "reason", reason)
	m.notify(id)
	return m.Get(ctx, id)
}

// Drain stops taking new battles and new live battles; the live ones go
// on.
func (m *Manager) Drain() {
	m.mu.Lock()
	m.draining = true
	m.mu.Unlock()
}

// Close drains, waits until every live battle has ended or ctx is done,
// then ends the live battles that are left (their recordings finished),
// closes every room (waiting battles stay waiting) and stops the
// watchdog.
func (m *Manager) Close(ctx context.Context) {
	m.Drain()
	wait := time.NewTicker(watchInterval)
	defer wait.Stop()
	for m.livePlaces() > 0 && ctx.Err() == nil {
		select {
		case <-ctx.Done():
		case <-wait.C:
		}
	}
	m.mu.Lock()
	if m.closed {
		m.mu.Unlock()
		return
	}
	m.closed = true
	rs := make([]*running, 0, len(m.running))
	for _, r := range m.running {
		rs = append(rs, r)
	}
	m.mu.Unlock()
	close(m.watchStop)
	<-m.watchDone
	for _, r := range rs {
		r.mu.Lock()
		live := r.program != nil
		r.mu.Unlock()
		if live {
			if _, err := m.End(context.Background(), r.id, "the server stopped"); err != nil && !errors.Is(err, ErrEnded) {
				m.cfg.Logger.Error("ending a battle at shutdown", "battle", r.id, "err", err)
			}
			continue
		}
		m.drop(r)
	}
	m.leave()
}

// drop closes the room of battle r, which is not live here, and forgets
// it; the stored battle is left as it is (waiting).
func (m *Manager) drop(r *running) {
	m.detach(r.id)
	r.stop()
}

// detach forgets battle id's room here, if it has one, and gives its live
// place back; it returns the room's battle (nil without a room).
func (m *Manager) detach(id string) *running {
	m.mu.Lock()
	defer m.mu.Unlock()
	r := m.running[id]
	delete(m.running, id)
	if r != nil {
		m.dropPlace(r)
	}
	return r
}

// stop ends r here: its program stops (the recording finished) and its
// room closes.
func (r *running) stop() {
	r.mu.Lock()
	r.ended = true
	prog := r.program
	r.program = nil
	r.mu.Unlock()
	if prog != nil {
		prog.End()
	}
	// Outside r.mu: closing sessions reports disconnects, which take
	// r.mu (and find the battle ended).
	r.room.Close()
}

// runningNow is every battle with a room here, at this moment.
func (m *Manager) runningNow() []*running {
	m.mu.Lock()
	defer m.mu.Unlock()
	rs := make([]*running, 0, len(m.running))
	for _, r := range m.running {
		rs = append(rs, r)
	}
	return rs
}

func (m *Manager) livePlaces() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.places
}

// Unrecorded tells the manager the recordings of battles ids are gone
// (the retention period): their battle objects stop offering a replay.
func (m *Manager) Unrecorded(ctx context.Context, ids []string, why string) {
	for _, id := range ids {
		if err := m.cfg.Store.SetRecording(ctx, id, false, why); err != nil && !errors.Is(err, storage.ErrNotFound) {
			m.cfg.Logger.Error("storing that a recording is gone", "battle", id, "err", err)
		}
	}
}

// RecordingTrouble says in battle id's object why its recording, which
// goes on, is incomplete (why is a sentence fit for the public).
func (m *Manager) RecordingTrouble(ctx context.Context, id, why string) {
	if err := m.cfg.Store.SetRecording(ctx, id, true, why); err != nil {
		m.cfg.Logger.Error("storing a recording's trouble", "battle", id, "err", err)
		return
	}
	m.notify(id)
}

// Stats is what the manager is doing now, for /metrics.
type Stats struct {
	Live, Waiting    int // battles with a program; with a room but no program yet
	SingersConnected int
	Viewers          int
}

// Stats counts battles, singers and viewers.
func (m *Manager) Stats() Stats {
	var s Stats
	for _, r := range m.runningNow() {
		r.mu.Lock()
		live := r.program != nil
		for _, c := range r.connected {
			if c {
				s.SingersConnected++
			}
		}
		r.mu.Unlock()
		if !live {
			s.Waiting++
			continue
		}
		s.Live++
		s.Viewers += m.cfg.Viewers(r.id)
	}
	return s
}
