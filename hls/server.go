package hls

import (
	"fmt"
	"log/slog"
	"net/http"
	"sync"
	"time"

	"github.com/singoff/singoff/internal/battleid"
	"github.com/singoff/singoff/internal/httpjson"
	"github.com/singoff/singoff/media"
)

// EndedFor is how long a battle's stream is served after the battle
// ends, its playlists closed with #EXT-X-ENDLIST, before its URLs answer
// 410 Gone: long enough for players that are behind (a second or so, or
// paused) to play it to the end.
const EndedFor = time.Minute

// Server holds the live muxers of a process by battle id and answers the
// requests for their files (see Serve).
type Server struct {
	logger *slog.Logger
	// endedFor is EndedFor, shorter in tests.
	endedFor time.Duration

	mu sync.Mutex
	// live holds the muxers of live battles, and of ended ones for
	// endedFor after their end.
	live    map[string]*Muxer
	ended   *endedSet // the latest ended battles, answered 410
	retired Stats     // what muxers gone from live had served
}

// NewServer returns a Server with no live battle. endedBefore are ids of
// battles that ended before this process started (the latest first), so
// that they answer 410 Gone rather than 404; the Server remembers the
// latest maxEnded ended battles and answers any other id that is not
// live with 404, from memory.
func NewServer(logger *slog.Logger, endedBefore []string) *Server {
	s := &Server{
		logger:   logger,
		endedFor: EndedFor,
		live:     make(map[string]*Muxer),
		ended:    newEndedSet(maxEnded),
	}
	for i := min(len(endedBefore), maxEnded) - 1; i >= 0; i-- {
		s.ended.add(endedBefore[i])
	}
	return s
}

// Start creates and serves the muxer of battle id.
func (s *Server) Start(id string, info media.ProgramInfo) (*Muxer, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if m, ok := s.live[id]; ok {
		if !m.closed.Load() {
			return nil, fmt.Errorf("hls: battle %s is already live", id)
		}
		s.retireLocked(id, m)
	}
	m, err := newMuxer(info, s.logger.With("battle", id))
	if err != nil {
		return nil, err
	}
	s.live[id] = m // a live battle is answered live, whatever ended says
	return m, nil
}

// End ends battle id's stream: its playlists close with #EXT-X-ENDLIST
// and are served so for EndedFor; then its URLs answer 410 Gone.
func (s *Server) End(id string) {
	s.mu.Lock()
	m, ok := s.live[id]
	if !ok {
		s.ended.add(id)
	}
	s.mu.Unlock()
	if !ok {
		return
	}
	m.end()
	time.AfterFunc(s.endedFor, func() {
		s.mu.Lock()
		defer s.mu.Unlock()
		if s.live[id] == m {
			s.retireLocked(id, m)
		}
	})
}

// retireLocked drops the ended muxer m of battle id.
func (s *Server) retireLocked(id string, m *Muxer) {
	delete(s.live, id)
	s.ended.add(id)
	s.retired.add(m.Stats())
}

// Muxer returns battle id's muxer while it is live.
func (s *Server) Muxer(id string) (*Muxer, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	m, ok := s.live[id]
	if ok && m.closed.Load() {
		return nil, false
	}
	return m, ok
}

// Stats sums what every muxer of the process has served, ended ones
// included, so that the counts only grow.
func (s *Server) Stats() Stats {
	s.mu.Lock()
	defer s.mu.Unlock()
	total := s.retired
	for _, m := range s.live {
		total.add(m.Stats())
	}
	return total
}

// Serve answers a request for file of battle id's live program, the
// decoded parts of /hls/{id}/{file}: index.m3u8 and the files it names,
// and thumb.jpg, the latest picture. client is the client's address as
// the HTTP layer determined it (its one client-IP rule): viewers are
// counted by it, and by User-Agent. Serve reads no forwarding header
// itself.
//
// Blocking playlist reloads and preload hints wait for the part they ask
// for, so Serve sets the connection's write deadline to writeTimeout; a
// handler in front must not time requests out sooner (no
// http.TimeoutHandler).
func (s *Server) Serve(w http.ResponseWriter, r *http.Request, id, file, client string) {
	if !battleid.Valid(id) {
		w.Header().Set("Cache-Control", cacheError)
		httpjson.Error(w, http.StatusNotFound, "no such battle")
		return
	}
	s.mu.Lock()
	m, live := s.live[id]
	ended := s.ended.has(id)
	s.mu.Unlock()
	if !live {
		w.Header().Set("Cache-Control", cacheError)
		if ended {
			httpjson.Error(w, http.StatusGone, "battle ended; the replay is at /vod/%s/index.m3u8", id)
			return
		}
		httpjson.Error(w, http.StatusNotFound, "battle %s is not live", id)
		return
	}
	m.serve(w, r, file, client)
}
