package hls

import (
	"bytes"
	"fmt"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/bluenviron/gohlslib/v2"
	"github.com/bluenviron/gohlslib/v2/pkg/codecparams"
	"github.com/bluenviron/gohlslib/v2/pkg/codecs"
	"github.com/bluenviron/mediacommon/v2/pkg/codecs/h264"

	"github.com/singoff/singoff/media"
)

// rung is one rendition of the ladder: a gohlslib muxer of its video and
// the program's audio, whose media playlist singoff serves as name.
type rung struct {
	index         int
	name          string // e.g. "720p.m3u8"
	width, height int
	// codecs is the variant's CODECS: its video's and the audio's.
	codecs string

	muxer *gohlslib.Muxer
	video *gohlslib.Track
	audio *gohlslib.Track

	// mu serializes writes: gohlslib's segmenter is not safe for
	// concurrent writers.
	mu     sync.Mutex
	closed bool
	meter  meter

	// prefix is the random prefix gohlslib gives the rung's files,
	// learnt from its first playlist (no file can be asked for before).
	prefix atomic.Pointer[string]
	starts segmentStarts

	// latest are the rung's latest playlist answers, full and delta
	// update: requests with other directives that get the same playlist
	// share its answer, and its compressed form.
	latestMu sync.Mutex
	latest   [2]answer
}

// playlistAnswer is the answer of a playlist of the rung, body, a delta
// update or not: the latest one of its kind when it is the same
// playlist.
func (r *rung) playlistAnswer(body []byte, delta bool, cache string) answer {
	kind := 0
	if delta {
		kind = 1
	}
	r.latestMu.Lock()
	defer r.latestMu.Unlock()
	latest := r.latest[kind]
	if latest.status != http.StatusOK || !bytes.Equal(latest.body, body) {
		latest = playlistAnswer(body, cache)
		r.latest[kind] = latest
	}
	latest.cacheControl = cacheHeaders[cache]
	return latest
}

func newRung(index int, info media.ProgramInfo, logger *slog.Logger) (*rung, error) {
	v := info.Video[index]
	r := &rung{
		index:  index,
		name:   fmt.Sprintf("%dp.m3u8", v.Height),
		width:  v.Width,
		height: v.Height,
		video: &gohlslib.Track{
			Codec:     &codecs.H264{SPS: v.SPS, PPS: v.PPS},
			ClockRate: media.VideoClockRate,
		},
		audio: &gohlslib.Track{
			Codec:     &codecs.MPEG4Audio{Config: info.Audio},
			ClockRate: media.AudioClockRate,
		},
		meter: newMeter(),
	}
	var sps h264.SPS
	if err := sps.Unmarshal(v.SPS); err != nil {
		return nil, fmt.Errorf("hls: rung %d: reading its SPS: %w", index, err)
	}
	if sps.Width() != v.Width || sps.Height() != v.Height {
		return nil, fmt.Errorf("hls: rung %d is %dx%d, its SPS says %dx%d", index, v.Width, v.Height, sps.Width(), sps.Height())
	}
	r.codecs = codecparams.Marshal(r.video.Codec) + "," + codecparams.Marshal(r.audio.Codec)
	r.muxer = &gohlslib.Muxer{
		Tracks:             []*gohlslib.Track{r.video, r.audio},
		Variant:            gohlslib.MuxerVariantLowLatency,
		SegmentMinDuration: segmentDuration,
		PartMinDuration:    partDuration,
		OnEncodeError: func(err error) {
			logger.Warn("hls: muxing", "rung", r.name, "err", err)
		},
	}
	if err := r.muxer.Start(); err != nil {
		return nil, fmt.Errorf("hls: starting the muxer of rung %d: %w", index, err)
	}
	return r, nil
}

// writeVideo takes one access unit of the rung's video. It tells whether
// the rung's first segment was completed by it.
func (r *rung) writeVideo(ntp time.Time, pts int64, au [][]byte) (firstSegment bool, err error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closed {
		return false, ErrClosed
	}
	if err := r.muxer.WriteH264(r.video, ntp, pts, au); err != nil {
		return false, err
	}
	return r.meter.video(pts, h264.IsRandomAccess(au), au), nil
}

// writeAudio takes AAC access units, the first at pts.
func (r *rung) writeAudio(ntp time.Time, pts int64, aus [][]byte) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closed {
		return ErrClosed
	}
	if err := r.muxer.WriteMPEG4Audio(r.audio, ntp, pts, aus); err != nil {
		return err
	}
	r.meter.audio(aus)
	return nil
}

// close stops the rung's writes; gohlslib's muxer goes on serving until
// closeMuxer.
func (r *rung) close() {
	r.mu.Lock()
	r.closed = true
	r.mu.Unlock()
}

// closeMuxer closes gohlslib's muxer: requests waiting on it are
// answered 500.
func (r *rung) closeMuxer() { r.muxer.Close() }

// bandwidth returns the rung's peak and average segment bit rates.
func (r *rung) bandwidth() (peak, average int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.meter.rates()
}

// owns tells whether a file name is one of the rung's (its prefix).
func (r *rung) owns(name string) bool {
	p := r.prefix.Load()
	return p != nil && len(name) > len(*p) && name[len(*p)] == '_' && strings.HasPrefix(name, *p)
}

// initName is the name of the rung's init file, "" before its prefix is
// known.
func (r *rung) initName() string {
	p := r.prefix.Load()
	if p == nil {
		return ""
	}
	return *p + "_" + videoStreamID + "_init.mp4"
}

// segmentName is the name gohlslib gives the rung's segment msn.
func (r *rung) segmentName(msn int) string {
	return *r.prefix.Load() + "_" + videoStreamID + "_seg" + strconv.Itoa(msn) + ".mp4"
}

// gohlslibPlaylist asks gohlslib for the rung's media playlist with the
// given LL-HLS directives: it waits as they ask. It returns the status
// and, when 200, the playlist as singoff serves it.
func (r *rung) gohlslibPlaylist(directives string) (int, mediaPlaylist, error) {
	rec := &recorder{header: make(http.Header)}
	r.muxer.Handle(rec, fileRequest(videoStreamID+"_stream.m3u8", directives))
	if rec.status != http.StatusOK {
		return rec.status, mediaPlaylist{}, nil
	}
	p, err := fromGohlslib(rec.body.Bytes(), &r.starts)
	if err != nil {
		return http.StatusInternalServerError, p, err
	}
	if r.prefix.Load() == nil {
		if err := r.learnPrefix(p.preloadHint); err != nil {
			return http.StatusInternalServerError, p, err
		}
	}
	return http.StatusOK, p, nil
}

// learnPrefix reads the rung's file prefix from the name of one of its
// files (prefix_video1_part7.mp4): gohlslib lists a preload hint in
// every live playlist.
func (r *rung) learnPrefix(name string) error {
	prefix, _, ok := strings.Cut(name, "_"+videoStreamID+"_")
	if !ok || prefix == "" || strings.ContainsAny(prefix, "_/") {
		return fmt.Errorf("hls: no file prefix in %q, of gohlslib's first playlist of rung %s", name, r.name)
	}
	r.prefix.Store(&prefix)
	return nil
}
