// Package hls publishes a battle's program as low-latency HLS (fMP4
// parts of ~200 ms, segments of ~1 s) with gohlslib, serves it over HTTP
// with headers a CDN can cache by, and counts who watches.
package hls

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/bluenviron/gohlslib/v2"
	"github.com/bluenviron/gohlslib/v2/pkg/codecs"

	"github.com/singoff/singoff/internal/httpjson"
	"github.com/singoff/singoff/media"
)

// Durations of the live playlist. Parts of 200 ms hold exactly six
// frames at 30 fps; a segment closes at the first keyframe after 1 s,
// which the compositor sends every second.
const (
	partDuration    = 200 * time.Millisecond
	segmentDuration = time.Second
)

// Cache-Control values. Init files, parts and segments never change under
// a name (gohlslib names them with a random per-muxer prefix); playlists
// change with every part. A blocking playlist response for a given
// _HLS_msn/_HLS_part already holds what its URL asks for, so an edge may
// answer later identical requests with it.
const (
	cacheMultivariant     = "public, max-age=2"
	cacheMediaPlaylist    = "public, max-age=1"
	cacheBlockingPlaylist = "public, max-age=6"
	cacheMedia            = "public, max-age=3600, immutable"
	cacheError            = "no-store"
)

// writeTimeout bounds each response, waiting included. It replaces the
// server's own write timeout, which is usually shorter than a blocking
// playlist reload may wait (up to a segment and more).
const writeTimeout = 30 * time.Second

// ErrClosed is returned by writes to a closed Muxer.
var ErrClosed = errors.New("hls: muxer closed")

// Stats counts what a Muxer served: requests by kind and response bytes.
type Stats struct {
	PlaylistRequests uint64
	InitRequests     uint64
	PartRequests     uint64
	SegmentRequests  uint64
	BytesOut         uint64
	// MuxerAnswers counts the answers gohlslib itself made: identical
	// requests in flight together (the same file and LL-HLS directives,
	// whatever else their query says) share one.
	MuxerAnswers uint64
}

func (s *Stats) add(o Stats) {
	s.PlaylistRequests += o.PlaylistRequests
	s.InitRequests += o.InitRequests
	s.PartRequests += o.PartRequests
	s.SegmentRequests += o.SegmentRequests
	s.BytesOut += o.BytesOut
	s.MuxerAnswers += o.MuxerAnswers
}

type counters struct {
	playlists, inits, parts, segments, bytesOut atomic.Uint64
}

// Muxer is the LL-HLS rendition of one battle's program. It implements
// media.Sink; its writes may come from several goroutines.
type Muxer struct {
	logger *slog.Logger
	muxer  *gohlslib.Muxer
	video  *gohlslib.Track
	audio  *gohlslib.Track

	// writeMu serializes writes: gohlslib's segmenter is not safe for
	// concurrent writers.
	writeMu sync.Mutex
	closed  atomic.Bool

	files    *collapser
	viewers  *viewers
	counters counters
}

// newMuxer starts a low-latency fMP4 HLS muxer for a program described by
// info.
func newMuxer(info media.ProgramInfo, logger *slog.Logger) (*Muxer, error) {
	if info.Audio.SampleRate != media.AudioClockRate {
		return nil, fmt.Errorf("hls: audio at %d Hz, want %d", info.Audio.SampleRate, media.AudioClockRate)
	}
	m := &Muxer{
		logger: logger,
		video: &gohlslib.Track{
			Codec:     &codecs.H264{SPS: info.Video[0].SPS, PPS: info.Video[0].PPS},
			ClockRate: media.VideoClockRate,
		},
		audio: &gohlslib.Track{
			Codec:     &codecs.MPEG4Audio{Config: info.Audio},
			ClockRate: media.AudioClockRate,
		},
		files:   newCollapser(logger),
		viewers: newViewers(),
	}
	m.muxer = &gohlslib.Muxer{
		Tracks:             []*gohlslib.Track{m.video, m.audio},
		Variant:            gohlslib.MuxerVariantLowLatency,
		SegmentMinDuration: segmentDuration,
		PartMinDuration:    partDuration,
		OnEncodeError: func(err error) {
			logger.Warn("hls: muxing", "err", err)
		},
	}
	if err := m.muxer.Start(); err != nil {
		return nil, fmt.Errorf("hls: starting muxer: %w", err)
	}
	return m, nil
}

// WriteVideo implements media.Sink.
func (m *Muxer) WriteVideo(rung int, ntp time.Time, pts int64, au [][]byte) error {
	if rung != 0 {
		return nil // one rendition so far
	}
	m.writeMu.Lock()
	defer m.writeMu.Unlock()
	if m.closed.Load() {
		return ErrClosed
	}
	return m.muxer.WriteH264(m.video, ntp, pts, au)
}

// WriteAudio implements media.Sink.
func (m *Muxer) WriteAudio(ntp time.Time, pts int64, aus [][]byte) error {
	m.writeMu.Lock()
	defer m.writeMu.Unlock()
	if m.closed.Load() {
		return ErrClosed
	}
	return m.muxer.WriteMPEG4Audio(m.audio, ntp, pts, aus)
}

// Close ends the stream: requests waiting on it are answered 410 Gone,
// and so are later ones.
func (m *Muxer) Close() {
	m.writeMu.Lock()
	defer m.writeMu.Unlock()
	if m.closed.Swap(true) {
		return
	}
	m.muxer.Close()
}

// Viewers tells how many distinct clients fetched any of the stream's
// files in the last 30 seconds.
func (m *Muxer) Viewers() int {
	return m.viewers.count(time.Now())
}

// Stats returns what the muxer has served so far.
func (m *Muxer) Stats() Stats {
	return Stats{
		PlaylistRequests: m.counters.playlists.Load(),
		InitRequests:     m.counters.inits.Load(),
		PartRequests:     m.counters.parts.Load(),
		SegmentRequests:  m.counters.segments.Load(),
		BytesOut:         m.counters.bytesOut.Load(),
		MuxerAnswers:     m.files.produced.Load(),
	}
}

type fileKind int

const (
	kindUnknown fileKind = iota
	kindMultivariant
	kindMediaPlaylist
	kindInit
	kindPart
	kindSegment
)

// classify names the kind of file gohlslib serves under name
// (index.m3u8, video1_stream.m3u8, <prefix>_video1_init.mp4,
// <prefix>_video1_part3.mp4, <prefix>_video1_seg7.mp4).
func classify(name string) fileKind {
	switch {
	case name == "index.m3u8":
		return kindMultivariant
	case strings.HasSuffix(name, "_stream.m3u8"):
		return kindMediaPlaylist
	case strings.HasSuffix(name, "_init.mp4"):
		return kindInit
	case strings.Contains(name, "_part") && strings.HasSuffix(name, ".mp4"):
		return kindPart
	case strings.Contains(name, "_seg") && strings.HasSuffix(name, ".mp4"):
		return kindSegment
	}
	return kindUnknown
}

// serve answers a request for the stream's file name (e.g. "index.m3u8")
// from client (see Server.Serve).
func (m *Muxer) serve(w http.ResponseWriter, r *http.Request, name, client string) {
	kind := classify(name)
	if kind == kindUnknown || strings.ContainsAny(name, `/\`) {
		w.Header().Set("Cache-Control", cacheError)
		httpjson.Error(w, http.StatusNotFound, "no such file")
		return
	}
	if m.closed.Load() {
		answerEnded(w)
		return
	}
	m.viewers.seen(client, r.UserAgent(), time.Now())
	switch kind {
	case kindMultivariant, kindMediaPlaylist:
		m.counters.playlists.Add(1)
	case kindInit:
		m.counters.inits.Add(1)
	case kindPart:
		m.counters.parts.Add(1)
	case kindSegment:
		m.counters.segments.Add(1)
	}

	// gohlslib gets the file name alone and, for playlists, the LL-HLS
	// directives alone; they are what identifies the answer.
	query := ""
	if kind == kindMultivariant || kind == kindMediaPlaylist {
		query = directives(r.URL.Query())
	}
	key := name
	if query != "" {
		key = name + "?" + query
	}
	cache := cacheMedia
	switch {
	case kind == kindMultivariant:
		cache = cacheMultivariant
	case kind == kindMediaPlaylist && r.URL.Query().Has("_HLS_msn"):
		cache = cacheBlockingPlaylist
	case kind == kindMediaPlaylist:
		cache = cacheMediaPlaylist
	}
	immutable := kind == kindInit || kind == kindPart
	if immutable {
		if a, ok := m.files.cachedAnswer(key); ok {
			m.write(w, r, a, cache)
			return
		}
	}
	// A writer that cannot set deadlines has none to lift: ignore the error.
	_ = http.NewResponseController(w).SetWriteDeadline(time.Now().Add(writeTimeout))
	// The request gohlslib answers may outlive r's handler (see
	// collapser.do): it keeps none of r's cancellation.
	gr := r.WithContext(context.WithoutCancel(r.Context()))
	gr.URL = &url.URL{Path: name, RawQuery: query}
	a, ok := m.files.do(r.Context(), key, immutable, func(w http.ResponseWriter) { m.produce(w, gr, name, kind) })
	if !ok {
		return // the client has gone
	}
	m.write(w, r, a, cache)
}

// produce answers the request for name, of the given kind, as gohlslib
// does, with the audio in the video's files (see muxed.go).
func (m *Muxer) produce(w http.ResponseWriter, r *http.Request, name string, kind fileKind) {
	if kind == kindMultivariant {
		m.produceMultivariant(w, r)
		return
	}
	if kind == kindInit || kind == kindPart || kind == kindSegment {
		if audio, ok := audioName(name); ok {
			m.produceMuxed(w, r, name, audio, kind)
			return
		}
	}
	m.muxer.Handle(w, r)
}

// write sends a, gohlslib's answer, with singoff's Cache-Control.
func (m *Muxer) write(w http.ResponseWriter, r *http.Request, a answer, cache string) {
	h := w.Header()
	switch {
	case a.status == 0:
		// gohlslib answers nothing for a name it does not serve (a part
		// or segment that is gone or not there yet).
		h.Set("Cache-Control", cacheError)
		httpjson.Error(w, http.StatusNotFound, "no such file")
		return
	case a.status == http.StatusInternalServerError && m.closed.Load():
		// gohlslib answers 500 to the requests waiting when it closes.
		answerEnded(w)
		return
	case a.status == http.StatusOK:
		h.Set("Cache-Control", cache)
	default:
		h.Set("Cache-Control", cacheError)
	}
	if a.contentType != nil {
		h["Content-Type"] = a.contentType
	}
	h["Content-Length"] = a.contentLength
	w.WriteHeader(a.status)
	if r.Method == http.MethodHead {
		return
	}
	n, _ := w.Write(a.body)
	m.counters.bytesOut.Add(uint64(n))
}

func answerEnded(w http.ResponseWriter) {
	w.Header().Set("Cache-Control", cacheError)
	httpjson.Error(w, http.StatusGone, "the live program has ended")
}
