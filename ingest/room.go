package ingest

import (
	"errors"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/pion/rtcp"
	"github.com/pion/webrtc/v4"
	"github.com/singoff/singoff/media"
)

// Room is one battle's ingest: two singer slots.
type Room struct {
	id       string
	srv      *Server
	onChange func(slot int, connected bool)
	slots    [2]*Slot
	once     sync.Once
}

// NewRoom makes the room of one battle. onChange, if not nil, is called
// when a slot's publisher becomes connected or goes away; a publisher
// replaced by a new POST is not reported as gone.
func (s *Server) NewRoom(id string, onChange func(slot int, connected bool)) *Room {
	if onChange == nil {
		onChange = func(int, bool) {}
	}
	r := &Room{id: id, srv: s, onChange: onChange}
	for i := range r.slots {
		r.slots[i] = newSlot(r, i+1)
	}
	s.mu.Lock()
	closed := s.closed
	if !closed {
		s.rooms[r] = struct{}{}
	}
	s.mu.Unlock()
	if closed {
		r.Close()
	}
	return r
}

// Slot returns slot n (1 or 2), nil for any other n.
func (r *Room) Slot(n int) *Slot {
	if n < 1 || n > len(r.slots) {
		return nil
	}
	return r.slots[n-1]
}

// Close ends every session of the room; the slots' feeds close.
func (r *Room) Close() {
	r.once.Do(func() {
		for _, sl := range r.slots {
			sl.close()
		}
		r.srv.forgetRoom(r)
	})
}

// Slot is one singer's place in a room: at most one publisher at a time,
// any number of subscribers, and the feed for the compositor. It outlives
// the publisher's sessions.
type Slot struct {
	room  *Room
	n     int
	video *forwardTrack
	audio *forwardTrack
	feed  *feed
	// lastKeyframeRequest is the UnixNano time of the last PLI sent.
	lastKeyframeRequest atomic.Int64
	// keyframeDeferred is set while a request waits for the interval.
	keyframeDeferred atomic.Bool
	publisher        atomic.Pointer[session]

	mu        sync.Mutex
	sessions  map[string]*session
	connected bool
	closed    bool
}

func newSlot(r *Room, n int) *Slot {
	sl := &Slot{room: r, n: n, sessions: map[string]*session{}}
	streamID := r.id + "-" + strconv.Itoa(n)
	sl.video = newForwardTrack(webrtc.RTPCodecTypeVideo, streamID, &r.srv.counters)
	sl.audio = newForwardTrack(webrtc.RTPCodecTypeAudio, streamID, &r.srv.counters)
	sl.feed = &feed{slot: sl, ch: make(chan media.AccessUnit, feedBuffer)}
	return sl
}

// Feed is the slot's depacketized media for the compositor.
func (sl *Slot) Feed() media.Feed { return sl.feed }

// Connected tells whether the slot's publisher is connected.
func (sl *Slot) Connected() bool {
	sl.mu.Lock()
	defer sl.mu.Unlock()
	return sl.connected
}

// DroppedUnits counts the units the feed dropped because its reader was
// behind.
func (sl *Slot) DroppedUnits() uint64 { return sl.feed.dropped.Load() }

var errSlotClosed = errors.New("ingest: slot closed")

// add registers sess; a publisher replaces the current one, which is
// closed without reporting a disconnect.
func (sl *Slot) add(sess *session) error {
	sl.mu.Lock()
	if sl.closed {
		sl.mu.Unlock()
		return errSlotClosed
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
	if replaced != nil {
		replaced.close()
	}
	return nil
}

func (sl *Slot) lookup(id string) *session {
	sl.mu.Lock()
	defer sl.mu.Unlock()
	return sl.sessions[id]
}

// remove ends sess (DELETE, or its connection failed).
func (sl *Slot) remove(sess *session) {
	sl.mu.Lock()
	_, known := sl.sessions[sess.id]
	delete(sl.sessions, sess.id)
	report := false
	if sl.publisher.CompareAndSwap(sess, nil) {
		report = sl.connected
		sl.connected = false
	}
	sl.mu.Unlock()
	if known {
		sess.close()
	}
	if report {
		sl.room.onChange(sl.n, false)
	}
}

// setConnected records the connection state of publisher sess; it is
// ignored unless sess is still the slot's publisher.
func (sl *Slot) setConnected(sess *session, connected bool) {
	sl.mu.Lock()
	if sl.publisher.Load() != sess || sl.connected == connected {
		sl.mu.Unlock()
		return
	}
	sl.connected = connected
	sl.mu.Unlock()
	sl.room.onChange(sl.n, connected)
}

func (sl *Slot) close() {
	sl.mu.Lock()
	sl.closed = true
	sessions := sl.sessions
	sl.sessions = map[string]*session{}
	sl.publisher.Store(nil)
	sl.connected = false
	sl.mu.Unlock()
	for _, sess := range sessions {
		sess.close()
	}
	sl.feed.close()
}

// requestKeyframe sends a PLI to the current publisher. One that comes
// less than keyframeInterval after the last is not dropped but sent when
// the interval is over (once, however many came): browsers send
// keyframes only when asked, so a lost request would leave a new
// subscriber waiting.
func (sl *Slot) requestKeyframe() {
	pub := sl.publisher.Load()
	if pub == nil {
		return
	}
	ssrc := pub.videoSSRC.Load()
	if ssrc == 0 {
		// Its video has not started: ask as soon as it does.
		pub.keyframeWanted.Store(true)
		return
	}
	now := time.Now().UnixNano()
	last := sl.lastKeyframeRequest.Load()
	if wait := int64(keyframeInterval) - (now - last); wait > 0 {
		if sl.keyframeDeferred.CompareAndSwap(false, true) {
			time.AfterFunc(time.Duration(wait), func() {
				sl.keyframeDeferred.Store(false)
				sl.requestKeyframe()
			})
		}
		return
	}
	if !sl.lastKeyframeRequest.CompareAndSwap(last, now) {
		return
	}
	sl.room.srv.counters.plisOut.Add(1)
	_ = pub.pc.WriteRTCP([]rtcp.Packet{&rtcp.PictureLossIndication{MediaSSRC: ssrc}})
}

// feedBuffer is how many units a feed holds for a slow reader: a few
// seconds of audio and video.
const feedBuffer = 512

// feed implements media.Feed for a slot. Sends never block forwarding: a
// full channel drops the unit and counts it.
type feed struct {
	slot    *Slot
	ch      chan media.AccessUnit
	dropped atomic.Uint64

	mu     sync.RWMutex
	closed bool
}

func (f *feed) Units() <-chan media.AccessUnit { return f.ch }

func (f *feed) RequestKeyframe() { f.slot.requestKeyframe() }

func (f *feed) send(p media.AccessUnit) {
	f.mu.RLock()
	defer f.mu.RUnlock()
	if f.closed {
		return
	}
	select {
	case f.ch <- p:
	default:
		f.dropped.Add(1)
		f.slot.room.srv.counters.feedDropped.Add(1)
	}
}

func (f *feed) close() {
	f.mu.Lock()
	defer f.mu.Unlock()
	if !f.closed {
		f.closed = true
		close(f.ch)
	}
}
