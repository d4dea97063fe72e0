package recording

import (
	"slices"
	"sync"
	"time"

	"github.com/singoff/singoff/media"
)

// A recording carries the battle's cues in its playlist as
// EXT-X-DATERANGE (see renderPlaylist), and a thumbnail: thumb.jpg, a
// picture from the middle of the battle. While the battle goes on the
// recorder keeps a few of the program's pictures spread over it, and
// every thumbEvery or so writes the one nearest the middle so far, so
// that a recording a crash left open has a thumbnail too; at the end it
// writes the middle one.

// Cue implements media.Cuer: c is written into the playlist from its
// next write on. A malformed cue, or a second one with the ID of
// another, is dropped (and logged).
func (r *recorder) Cue(c media.Cue) {
	if !r.cues.Add(c) {
		r.logger.Warn("recording: cue dropped: malformed, a repeated ID or too many", "cue", c.ID, "class", c.Class)
	}
}

// Still implements media.Stills.
func (r *recorder) Still(ntp time.Time, jpeg []byte) {
	r.stills.add(ntp, jpeg)
}

// maxStills bounds the pictures a recording keeps to choose its
// thumbnail from: the one kept nearest the middle of the battle is at
// most 1/30th of the battle away from it.
const maxStills = 16

// thumbEvery is how often at most the thumbnail is written while the
// battle goes on.
const thumbEvery = 10 * time.Second

// stills keeps pictures spread evenly over a battle: every one at first;
// when full, every other one, and from then on one per twice the spacing.
type stills struct {
	mu      sync.Mutex
	kept    []still // oldest first
	spacing time.Duration
	newest  time.Time // the newest picture's time, kept or not
	saved   time.Time // the time of the picture in thumb.jpg
	savedAt time.Time // when it was written
}

type still struct {
	ntp  time.Time
	jpeg []byte
}

func (s *stills) add(ntp time.Time, jpeg []byte) {
	if len(jpeg) == 0 {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if !ntp.After(s.newest) {
		return // out of order
	}
	s.newest = ntp
	if n := len(s.kept); n > 0 && ntp.Sub(s.kept[n-1].ntp) < s.spacing {
		return
	}
	if len(s.kept) == maxStills {
		for i := range maxStills / 2 {
			s.kept[i] = s.kept[2*i]
		}
		clear(s.kept[maxStills/2:])
		s.kept = s.kept[:maxStills/2]
		s.spacing = s.kept[1].ntp.Sub(s.kept[0].ntp)
		if ntp.Sub(s.kept[len(s.kept)-1].ntp) < s.spacing {
			return
		}
	}
	s.kept = append(s.kept, still{ntp: ntp, jpeg: slices.Clone(jpeg)})
}

// middle is the kept picture nearest the middle of the pictures given.
func (s *stills) middle() (still, bool) {
	if len(s.kept) == 0 {
		return still{}, false
	}
	mid := s.kept[0].ntp.Add(s.newest.Sub(s.kept[0].ntp) / 2)
	best := s.kept[0]
	for _, k := range s.kept[1:] {
		if k.ntp.Sub(mid).Abs() < best.ntp.Sub(mid).Abs() {
			best = k
		}
	}
	return best, true
}

// toSave returns the picture to write as the thumbnail at now, if it is
// not the one written already and, unless final, the last was written
// thumbEvery ago or more.
func (s *stills) toSave(now time.Time, final bool) ([]byte, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	m, ok := s.middle()
	if !ok || m.ntp.Equal(s.saved) || !final && now.Sub(s.savedAt) < thumbEvery {
		return nil, false
	}
	s.saved, s.savedAt = m.ntp, now
	return m.jpeg, true
}

// saveThumb writes the thumbnail if it is due (see stills.toSave). A
// failure is logged: the recording goes on without it.
func (r *recorder) saveThumb(final bool) {
	jpeg, ok := r.stills.toSave(time.Now(), final)
	if !ok {
		return
	}
	if err := writeFileAtomic(r.dir, thumbName, jpeg); err != nil {
		r.logger.Warn("recording: writing the thumbnail", "dir", r.dir, "err", err)
		return
	}
	if r.stage != nil {
		r.stage.file(thumbName)
	}
}
