package ingest

import (
	"fmt"
	"strconv"
	"sync"
	"sync/atomic"

	"github.com/pion/rtcp"
	"github.com/pion/webrtc/v4"
	"github.com/singoff/singoff/media"
)

// Hooks tell a room's owner what happens in its slots. Any may be nil.
//
// Admit and Negotiated are called on the goroutine of Publish. Connected
// is called one report at a time, in the order the changes happened, on
// whichever goroutine made the change (Hangup's, Close's or one of
// pion's), possibly after that call returned. No lock of the room is held
// during a hook: a hook may call the room's methods, but it should not
// block, since it holds up the room's other reports.
type Hooks struct {
	// Admit is asked before a publish offer for slot is negotiated; an
	// error refuses the offer: Publish returns that error unchanged.
	Admit func(slot int) error
	// Negotiated follows every admitted offer: ok when it was answered
	// (the singer's session exists), false when negotiation failed
	// after admission.
	Negotiated func(slot int, ok bool)
	// Connected reports a slot's publisher connecting, or going away
	// (disconnected, failed, hung up, room closed while connected). A
	// publisher replaced by a new offer for the same slot is not
	// reported gone: the slot stays connected until its new publisher
	// fails or leaves.
	Connected func(slot int, connected bool)
}

// Room is one battle's ingest: two singer slots.
type Room struct {
	id      string
	srv     *Server
	hooks   Hooks
	slots   [2]slot
	reports reportQueue
	once    sync.Once
}

// OpenRoom opens the room id. It fails if a room with id is open
// already, or the server is closed.
func (s *Server) OpenRoom(id string, h Hooks) (*Room, error) {
	r := &Room{id: id, srv: s, hooks: h}
	for i := range r.slots {
		r.slots[i].init(r, i+1)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil, errServerClosed
	}
	if _, ok := s.rooms[id]; ok {
		return nil, fmt.Errorf("room %s is open already", id)
	}
	s.rooms[id] = r
	return r, nil
}

// Room returns the open room id, nil if there is none.
func (s *Server) Room(id string) *Room {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.rooms[id]
}

// Feed is slot's depacketized media for the compositor (slot 1 or 2;
// nil for any other). It lives as long as the room, across the
// publisher's reconnects, and closes with the room.
func (r *Room) Feed(slot int) media.Feed {
	sl, err := r.slot(slot)
	if err != nil {
		return nil
	}
	return &sl.feed
}

// Close ends every session; the feeds close, a connected publisher is
// reported gone, and the id is free again.
func (r *Room) Close() {
	r.once.Do(func() {
		for i := range r.slots {
			r.slots[i].close()
		}
		r.reports.deliver(r.hooks.Connected)
		r.srv.forgetRoom(r)
	})
}

func (r *Room) slot(n int) (*slot, error) {
	if n < 1 || n > len(r.slots) {
		return nil, fmt.Errorf("%w: %d", errNoSlot, n)
	}
	return &r.slots[n-1], nil
}

// slot is one singer's place in a room: at most one publisher at a time,
// any number of subscribers, and the feed for the compositor. It outlives
// the publisher's sessions.
type slot struct {
	room      *Room
	n         int
	video     forwardTrack
	audio     forwardTrack
	feed      feed
	keyframes keyframeLimiter
	bitrate   bitrateCap
	publisher atomic.Pointer[session]

	mu        sync.Mutex
	sessions  map[string]*session
	connected bool // as last reported
	closed    bool
}

func (sl *slot) init(r *Room, n int) {
	sl.room, sl.n = r, n
	streamID := r.id + "-" + strconv.Itoa(n)
	sl.video.init(webrtc.RTPCodecTypeVideo, streamID, &r.srv.counters)
	sl.audio.init(webrtc.RTPCodecTypeAudio, streamID, &r.srv.counters)
	sl.feed = feed{keyframes: &sl.keyframes, counters: &r.srv.counters}
	sl.keyframes = keyframeLimiter{interval: keyframeInterval, send: sl.sendKeyframeRequest}
	sl.sessions = map[string]*session{}
}

// add registers sess; a publisher replaces the current one, which is
// closed without a report.
func (sl *slot) add(sess *session) error {
	sl.mu.Lock()
	if sl.closed {
		sl.mu.Unlock()
		return errRoomClosed
	}
	if !sess.publish && sl.subscribersLocked() >= maxSubscribers {
		sl.mu.Unlock()
		return errTooManySubscribers
	}
	sl.sessions[sess.id] = sess
	var replaced *session
	if sess.publish {
		replaced = sl.publisher.Swap(sess)
		if replaced != nil {
			delete(sl.sessions, replaced.id)
		}
	}
	sl.mu.Unlock()
	if sess.publish {
		sl.feed.open()
	}
	if replaced != nil {
		replaced.close()
	}
	return nil
}

// subscribersLocked counts the slot's WHEP sessions; sl.mu is held.
func (sl *slot) subscribersLocked() int {
	n := len(sl.sessions)
	if sl.publisher.Load() != nil {
		n--
	}
	return n
}

// subscribers counts the slot's WHEP sessions.
func (sl *slot) subscribers() int {
	sl.mu.Lock()
	defer sl.mu.Unlock()
	return sl.subscribersLocked()
}

func (sl *slot) isClosed() bool {
	sl.mu.Lock()
	defer sl.mu.Unlock()
	return sl.closed
}

// lookup returns the session id.
func (sl *slot) lookup(id string) (*session, error) {
	sl.mu.Lock()
	defer sl.mu.Unlock()
	if sl.closed {
		return nil, errRoomClosed
	}
	sess := sl.sessions[id]
	if sess == nil {
		return nil, ErrNoSession
	}
	return sess, nil
}

// remove ends sess (hung up, or its connection failed).
func (sl *slot) remove(sess *session) {
	sl.mu.Lock()
	_, known := sl.sessions[sess.id]
	delete(sl.sessions, sess.id)
	if sl.publisher.CompareAndSwap(sess, nil) {
		sl.setConnectedLocked(false)
	}
	sl.mu.Unlock()
	if known {
		sess.close()
	}
	sl.room.reports.deliver(sl.room.hooks.Connected)
}

// publisherChanged brings the slot's connected state to that of sess's
// peer connection now, if sess is still the slot's publisher. pion calls
// state handlers on goroutines of their own, which may run out of order,
// so the state is read here rather than passed.
func (sl *slot) publisherChanged(sess *session) {
	sl.mu.Lock()
	if sl.publisher.Load() == sess {
		switch sess.pc.ConnectionState() {
		case webrtc.PeerConnectionStateConnected:
			sl.setConnectedLocked(true)
		case webrtc.PeerConnectionStateDisconnected, webrtc.PeerConnectionStateFailed:
			sl.setConnectedLocked(false)
		}
	}
	sl.mu.Unlock()
	sl.room.reports.deliver(sl.room.hooks.Connected)
}

// setConnectedLocked queues a report when connected is news. sl.mu is
// held, so reports queue in the order of the changes.
func (sl *slot) setConnectedLocked(connected bool) {
	if sl.connected == connected {
		return
	}
	sl.connected = connected
	sl.room.reports.add(slotReport{slot: sl.n, connected: connected})
}

// close ends every session of the slot and its feed; the caller delivers
// the report it may queue.
func (sl *slot) close() {
	sl.mu.Lock()
	sl.closed = true
	sessions := sl.sessions
	sl.sessions = nil
	sl.publisher.Store(nil)
	sl.setConnectedLocked(false)
	sl.mu.Unlock()
	sl.keyframes.stop()
	for _, sess := range sessions {
		sess.close()
	}
	sl.feed.close()
}

// sendKeyframeRequest sends a PLI to the slot's publisher. A publisher
// whose video has not started gets it as soon as it does.
func (sl *slot) sendKeyframeRequest() bool {
	pub := sl.publisher.Load()
	if pub == nil {
		return false // a new publisher starts with a keyframe
	}
	ssrc := pub.videoSSRC.Load()
	if ssrc == 0 {
		pub.keyframeWanted.Store(true)
		return false
	}
	sl.room.srv.counters.plisOut.Add(1)
	_ = pub.pc.WriteRTCP([]rtcp.Packet{&rtcp.PictureLossIndication{MediaSSRC: ssrc}})
	return true
}

// slotReport is one Connected report.
type slotReport struct {
	slot      int
	connected bool
}

// reportQueue hands a room's Connected reports to the hook one at a time
// and in order, without a goroutine of its own: whoever delivers while no
// one else does drains the queue, reports others queue meanwhile
// included. So a hook may call back into the room without deadlock.
type reportQueue struct {
	mu       sync.Mutex
	pending  []slotReport
	draining bool
}

func (q *reportQueue) add(r slotReport) {
	q.mu.Lock()
	q.pending = append(q.pending, r)
	q.mu.Unlock()
}

// deliver calls hook with each queued report, unless another goroutine
// is at it already; hook may be nil.
func (q *reportQueue) deliver(hook func(slot int, connected bool)) {
	q.mu.Lock()
	if q.draining {
		q.mu.Unlock()
		return
	}
	q.draining = true
	for len(q.pending) > 0 {
		r := q.pending[0]
		q.pending = q.pending[1:]
		q.mu.Unlock()
		if hook != nil {
			hook(r.slot, r.connected)
		}
		q.mu.Lock()
	}
	q.pending = nil
	q.draining = false
	q.mu.Unlock()
}

// feedBuffer is how many units a feed holds for a slow reader: a few
// seconds of audio and video.
const feedBuffer = 512

// feed implements media.Feed for a slot. Sends never block forwarding: a
// full channel drops the unit and counts it, and the next unit of the same
// kind that gets through carries Loss, so that the compositor asks for a
// keyframe instead of decoding over a missing picture. The channel is made
// for the slot's first publisher or the first reader, whichever comes
// first, so that a room costs little until it is used.
type feed struct {
	keyframes *keyframeLimiter
	counters  *counters
	// dropped is set for video and audio (by kindOf) when a unit of
	// that kind was dropped since the last one sent.
	dropped [2]atomic.Bool

	mu     sync.RWMutex
	ch     chan media.AccessUnit
	closed bool
}

// kindOf indexes feed.dropped.
func kindOf(c media.Codec) int {
	if c.IsVideo() {
		return 0
	}
	return 1
}

func (f *feed) Units() <-chan media.AccessUnit { return f.open() }

// open makes the channel unless it is made, and returns it.
func (f *feed) open() <-chan media.AccessUnit {
	f.mu.Lock()
	defer f.mu.Unlock()
	switch {
	case f.ch != nil:
	case f.closed:
		f.ch = make(chan media.AccessUnit)
		close(f.ch)
	default:
		f.ch = make(chan media.AccessUnit, feedBuffer)
	}
	return f.ch
}

func (f *feed) RequestKeyframe() { f.keyframes.request() }

func (f *feed) send(u media.AccessUnit) {
	f.mu.RLock()
	defer f.mu.RUnlock()
	if f.closed || f.ch == nil {
		return
	}
	// Each track sends from its own goroutine: the flag of a kind is
	// only its track's.
	dropped := &f.dropped[kindOf(u.Codec)]
	if dropped.Load() {
		u.Loss = true
	}
	select {
	case f.ch <- u:
		dropped.Store(false)
	default:
		dropped.Store(true)
		f.counters.feedDropped.Add(1)
	}
}

func (f *feed) close() {
	f.mu.Lock()
	defer f.mu.Unlock()
	if !f.closed {
		f.closed = true
		if f.ch != nil {
			close(f.ch)
		}
	}
}
