// Package hls publishes a battle's program as low-latency HLS (fMP4
// parts of ~200 ms, segments of ~1 s): a ladder of renditions, each
// muxed by gohlslib with the program's audio, listed in one multivariant
// playlist; it serves them over HTTP with headers a CDN can cache by,
// playlists gzip-encoded on request, the battle's cues as
// EXT-X-DATERANGE, a live thumbnail, and counts who watches.
package hls

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/singoff/singoff/internal/httpjson"
	"github.com/singoff/singoff/internal/m3u8"
	"github.com/singoff/singoff/media"
)

// Durations of the live playlists. Parts of 200 ms hold exactly six
// frames at 30 fps; a segment closes at the first keyframe after 1 s,
// which the compositor sends every 30 frames.
const (
	partDuration    = 200 * time.Millisecond
	segmentDuration = time.Second
)

// Cache-Control values. Init files, parts and segments never change under
// a name (gohlslib names them with a random per-muxer prefix). Playlists
// change with every part: a shared cache (a CDN, the nginx edge) may keep
// them briefly, a browser must not reuse them (max-age=0; s-maxage rules
// shared caches, RFC 9111 5.2.2.10), or a player that asks again gets the
// playlist it already has. A blocking playlist answer already holds what
// its URL asks for (_HLS_msn/_HLS_part), so a CDN may answer later
// identical requests with it for longer.
const (
	cacheMultivariant     = "public, max-age=2"
	cacheMediaPlaylist    = "public, max-age=0, s-maxage=1"
	cacheBlockingPlaylist = "public, max-age=0, s-maxage=6"
	cacheMedia            = "public, max-age=3600, immutable"
	cacheError            = "no-store"
)

// writeTimeout bounds each response, waiting included. It replaces the
// server's own write timeout, which is usually shorter than a blocking
// playlist reload may wait (up to a segment and more).
const writeTimeout = 30 * time.Second

// multivariantFor is how long a multivariant playlist written serves the
// requests after it: its bandwidths change slowly.
const multivariantFor = time.Second

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

// Muxer is the LL-HLS program of one battle: its ladder of rungs. It
// implements media.Sink, media.Cuer and media.Stills; its writes may come
// from several goroutines.
type Muxer struct {
	logger *slog.Logger
	fps    int
	rungs  []*rung
	// reports are, for each rung, the media playlists of the others.
	reports [][]string

	// unready counts the rungs without a complete segment; ready is
	// closed when none is left (the multivariant playlist then has
	// bandwidths to tell).
	unready atomic.Int32
	ready   chan struct{}

	closed atomic.Bool
	// ended is closed, and final set, when the battle has ended.
	ended chan struct{}
	final atomic.Pointer[final]

	cues  m3u8.Cues
	still atomic.Pointer[still]

	files *collapser
	// gzipWriters are the compressors of playlists (see gzipped).
	gzipWriters  sync.Pool
	viewers      *viewers
	counters     counters
	multivariant struct {
		sync.Mutex
		answer answer
		at     time.Time
	}
}

// newMuxer starts the muxers of the ladder of a program described by
// info.
func newMuxer(info media.ProgramInfo, logger *slog.Logger) (*Muxer, error) {
	if info.Audio.SampleRate != media.AudioClockRate {
		return nil, fmt.Errorf("hls: audio at %d Hz, want %d", info.Audio.SampleRate, media.AudioClockRate)
	}
	if len(info.Video) == 0 {
		return nil, errors.New("hls: a program without video")
	}
	m := &Muxer{
		logger:  logger,
		fps:     info.FPS,
		ready:   make(chan struct{}),
		ended:   make(chan struct{}),
		files:   newCollapser(logger),
		viewers: newViewers(),
	}
	names := make(map[string]bool)
	for i := range info.Video {
		r, err := newRung(i, info, logger)
		if err == nil && names[r.name] {
			r.closeMuxer()
			err = fmt.Errorf("hls: two rungs %d pixels high", r.height)
		}
		if err != nil {
			for _, r := range m.rungs {
				r.closeMuxer()
			}
			return nil, err
		}
		names[r.name] = true
		m.rungs = append(m.rungs, r)
	}
	for _, r := range m.rungs {
		var others []string
		for _, o := range m.rungs {
			if o != r {
				others = append(others, o.name)
			}
		}
		m.reports = append(m.reports, others)
	}
	m.unready.Store(int32(len(m.rungs)))
	return m, nil
}

// WriteVideo implements media.Sink.
func (m *Muxer) WriteVideo(rung int, ntp time.Time, pts int64, au [][]byte) error {
	if rung < 0 || rung >= len(m.rungs) {
		return fmt.Errorf("hls: no rung %d in a ladder of %d", rung, len(m.rungs))
	}
	first, err := m.rungs[rung].writeVideo(ntp, pts, au)
	if first && m.unready.Add(-1) == 0 {
		close(m.ready)
	}
	return err
}

// WriteAudio implements media.Sink: every rung carries the audio.
func (m *Muxer) WriteAudio(ntp time.Time, pts int64, aus [][]byte) error {
	for _, r := range m.rungs {
		if err := r.writeAudio(ntp, pts, aus); err != nil {
			return err
		}
	}
	return nil
}

// Viewers tells how many distinct clients fetched the stream's playlists
// in the last 30 seconds.
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
	kindThumb
)

// The names of the files the stream serves: index.m3u8, a media
// playlist per rung (720p.m3u8), thumb.jpg, and gohlslib's files of each
// rung, <prefix>_video1_init.mp4, <prefix>_video1_part3.mp4,
// <prefix>_video1_seg7.mp4.
const (
	multivariantName = "index.m3u8"
	thumbName        = "thumb.jpg"
)

// classify names the kind of file name is, and its rung.
func (m *Muxer) classify(name string) (fileKind, *rung) {
	switch name {
	case multivariantName:
		return kindMultivariant, nil
	case thumbName:
		return kindThumb, nil
	}
	for _, r := range m.rungs {
		if name == r.name {
			return kindMediaPlaylist, r
		}
		if !r.owns(name) {
			continue
		}
		switch {
		case strings.HasSuffix(name, "_init.mp4"):
			return kindInit, r
		case strings.Contains(name, "_part") && strings.HasSuffix(name, ".mp4"):
			return kindPart, r
		case strings.Contains(name, "_seg") && strings.HasSuffix(name, ".mp4"):
			return kindSegment, r
		}
	}
	return kindUnknown, nil
}

// serve answers a request for the stream's file name (e.g. "index.m3u8")
// from client (see Server.Serve).
func (m *Muxer) serve(w http.ResponseWriter, r *http.Request, name, client string) {
	kind, rg := m.classify(name)
	if kind == kindUnknown || strings.ContainsAny(name, `/\`) {
		w.Header().Set("Cache-Control", cacheError)
		httpjson.Error(w, http.StatusNotFound, "no such file")
		return
	}
	switch kind {
	case kindThumb:
		m.serveThumb(w, r)
		return
	case kindMultivariant, kindMediaPlaylist:
		// Players reload playlists all the time: counting viewers on
		// them counts everyone watching, once a request.
		m.viewers.seen(client, r.UserAgent(), time.Now())
		m.counters.playlists.Add(1)
	case kindInit:
		m.counters.inits.Add(1)
	case kindPart:
		m.counters.parts.Add(1)
	case kindSegment:
		m.counters.segments.Add(1)
	}
	if f := m.final.Load(); f != nil {
		m.write(w, r, f.answer(kind, name))
		return
	}

	var a answer
	var ok bool
	switch kind {
	case kindMultivariant:
		extendDeadline(w) // until every rung has a segment
		a, ok = m.multivariantAnswer(r.Context())
	case kindMediaPlaylist:
		d, err := parseDirectives(r.URL.RawQuery)
		if err != nil {
			w.Header().Set("Cache-Control", cacheError)
			httpjson.Error(w, http.StatusBadRequest, "%v", err)
			return
		}
		extendDeadline(w)
		a, ok = m.files.do(r.Context(), d.key(name), false, func() answer { return m.producePlaylist(rg, d) })
	default:
		if a, ok = m.files.cachedAnswer(name); ok {
			break
		}
		extendDeadline(w)
		a, ok = m.files.do(r.Context(), name, true, func() answer { return m.produceFile(rg, name, kind) })
	}
	if !ok {
		return // the client has gone
	}
	if a.status != http.StatusOK {
		// gohlslib answers the requests waiting on it when the battle
		// ends with an error: they get the battle's last answers.
		if f := m.final.Load(); f != nil {
			a = f.answer(kind, name)
		}
	}
	m.write(w, r, a)
}

// extendDeadline lifts the server's write timeout for a request that may
// wait for a part. A writer that cannot set deadlines has none to lift:
// the error is ignored.
func extendDeadline(w http.ResponseWriter) {
	_ = http.NewResponseController(w).SetWriteDeadline(time.Now().Add(writeTimeout))
}

// multivariantAnswer is the ladder's multivariant playlist, once every
// rung has a segment to measure; false when ctx ends first.
func (m *Muxer) multivariantAnswer(ctx context.Context) (answer, bool) {
	select {
	case <-m.ready:
	case <-m.ended:
		return answer{status: http.StatusGone}, true
	case <-ctx.Done():
		return answer{}, false
	}
	m.multivariant.Lock()
	defer m.multivariant.Unlock()
	if time.Since(m.multivariant.at) > multivariantFor {
		m.multivariant.answer = playlistAnswer(renderMultivariant(m.rungs, m.fps), cacheMultivariant)
		m.multivariant.at = time.Now()
	}
	return m.multivariant.answer, true
}

// producePlaylist answers with rung's media playlist for the LL-HLS
// directives d, as gohlslib does (waiting for the part a blocking
// request asks for) and with singoff's rules (see playlist.go). A
// blocking request for a segment already gone from the playlist is
// answered at once with the current playlist (gohlslib refuses it).
func (m *Muxer) producePlaylist(rg *rung, d directives) answer {
	cache := cacheMediaPlaylist
	status, p, err := http.StatusOK, mediaPlaylist{}, error(nil)
	if d.hasMSN && d.msn >= gohlslibFirstMSN {
		cache = cacheBlockingPlaylist
		status, p, err = rg.gohlslibPlaylist(d.String())
	}
	if !d.hasMSN || d.msn < gohlslibFirstMSN || status == http.StatusBadRequest {
		// gohlslib refuses a segment number out of its window, past or
		// too far ahead (more than the next two), with 400.
		cache = cacheMediaPlaylist
		status, p, err = rg.gohlslibPlaylist(d.nonBlocking())
		if status == http.StatusOK && d.hasMSN && d.msn > p.nextMSN()+1 {
			return errorAnswer(http.StatusBadRequest, fmt.Sprintf("_HLS_msn %d is more than two segments ahead of the playlist", d.msn))
		}
	}
	if err != nil {
		m.logger.Error("hls: writing a media playlist", "rung", rg.name, "err", err)
		return answer{status: http.StatusInternalServerError}
	}
	if status != http.StatusOK {
		return answer{status: status} // 500 when gohlslib was closed
	}
	return rg.playlistAnswer(p.render(rg.initName(), m.cues.List(), m.reports[rg.index]), d.skip != "", cache)
}

// produceFile answers a request for a rung's init file, part or
// segment, the audio merged into it (see muxed.go).
func (m *Muxer) produceFile(rg *rung, name string, kind fileKind) answer {
	audio, ok := audioName(name)
	if !ok {
		return answer{} // not a video file: a 404
	}
	return m.produceMuxed(rg, name, audio, kind)
}

// Cache-Control header values, made once.
var cacheHeaders = map[string][]string{
	cacheMultivariant:     {cacheMultivariant},
	cacheMediaPlaylist:    {cacheMediaPlaylist},
	cacheBlockingPlaylist: {cacheBlockingPlaylist},
	cacheMedia:            {cacheMedia},
}

var headerPlaylist = []string{"application/vnd.apple.mpegurl"}

// playlistAnswer is the answer of a playlist.
func playlistAnswer(body []byte, cache string) answer {
	return answer{
		status:        http.StatusOK,
		contentType:   headerPlaylist,
		contentLength: []string{strconv.Itoa(len(body))},
		cacheControl:  cacheHeaders[cache],
		body:          body,
		gzip:          &gzipped{},
	}
}

// errorAnswer is the contract's JSON error.
func errorAnswer(status int, msg string) answer {
	rec := &recorder{header: make(http.Header)}
	httpjson.Error(rec, status, "%s", msg)
	return rec.answer()
}

// write sends a to the client: compressed when it is a playlist and the
// client accepts gzip.
func (m *Muxer) write(w http.ResponseWriter, r *http.Request, a answer) {
	h := w.Header()
	switch a.status {
	case 0, http.StatusNotFound:
		// gohlslib answers nothing for a name it does not serve (a part
		// or segment that is gone or not there yet).
		h.Set("Cache-Control", cacheError)
		httpjson.Error(w, http.StatusNotFound, "no such file")
		return
	case http.StatusGone:
		answerEnded(w)
		return
	case http.StatusOK:
		h["Cache-Control"] = a.cacheControl
	default:
		h.Set("Cache-Control", cacheError)
	}
	if a.contentType != nil {
		h["Content-Type"] = a.contentType
	}
	body, length := a.body, a.contentLength
	if a.gzip != nil && a.status == http.StatusOK {
		h["Vary"] = headerAcceptEncoding
		if acceptsGzip(r.Header.Get("Accept-Encoding")) {
			body, length = a.gzip.get(a.body, &m.gzipWriters)
			h["Content-Encoding"] = headerGzip
		}
	}
	h["Content-Length"] = length
	w.WriteHeader(a.status)
	if r.Method == http.MethodHead {
		return
	}
	n, _ := w.Write(body)
	m.counters.bytesOut.Add(uint64(n))
}

func answerEnded(w http.ResponseWriter) {
	w.Header().Set("Cache-Control", cacheError)
	httpjson.Error(w, http.StatusGone, "the live program has ended")
}

// directives are the LL-HLS query parameters of a playlist request (RFC
// 8216bis 6.2.5): the only ones that change a playlist. Others are
// dropped before gohlslib sees a request, which would otherwise copy
// them into every URI it lists, and so do not defeat collapsing.
type directives struct {
	msn, part       int
	hasMSN, hasPart bool
	skip            string // "", "YES" or "v2"
}

// parseDirectives reads the first value of each directive of a raw
// query; a malformed number, or a part without a segment, is an error,
// an unknown skip value is left out.
func parseDirectives(rawQuery string) (directives, error) {
	var d directives
	var seen [3]bool // of msn, part and skip: their first values count
	for pair := range strings.SplitSeq(rawQuery, "&") {
		name, value, _ := strings.Cut(pair, "=")
		if strings.ContainsAny(pair, "%+") {
			var err1, err2 error
			name, err1 = url.QueryUnescape(name)
			value, err2 = url.QueryUnescape(value)
			if err1 != nil || err2 != nil {
				continue // not a directive any more than url.ParseQuery would read it
			}
		}
		var err error
		switch {
		case name == "_HLS_msn" && !seen[0]:
			seen[0] = true
			d.msn, err = parseUint(value)
			d.hasMSN = true
		case name == "_HLS_part" && !seen[1]:
			seen[1] = true
			d.part, err = parseUint(value)
			d.hasPart = true
		case name == "_HLS_skip" && !seen[2]:
			seen[2] = true
			if value == "YES" || value == "v2" {
				d.skip = value
			}
		}
		if err != nil {
			return d, fmt.Errorf("%s %q is not a number", name, value)
		}
	}
	if d.hasPart && !d.hasMSN {
		return d, errors.New("_HLS_part without _HLS_msn")
	}
	return d, nil
}

// parseUint reads a decimal number of at most nine digits.
func parseUint(s string) (int, error) {
	if s == "" || len(s) > 9 {
		return 0, errors.New("not a number")
	}
	n := 0
	for _, c := range []byte(s) {
		if c < '0' || c > '9' {
			return 0, errors.New("not a number")
		}
		n = n*10 + int(c-'0')
	}
	return n, nil
}

// String writes d as a query, in a canonical order.
func (d directives) String() string {
	return string(d.append(make([]byte, 0, 48)))
}

// key identifies a request for playlist name with d.
func (d directives) key(name string) string {
	b := make([]byte, 0, len(name)+49)
	b = append(b, name...)
	b = append(b, '?')
	return string(d.append(b))
}

func (d directives) append(b []byte) []byte {
	start := len(b)
	if d.hasMSN {
		b = append(b, "_HLS_msn="...)
		b = strconv.AppendInt(b, int64(d.msn), 10)
	}
	if d.hasPart {
		b = append(b, "&_HLS_part="...)
		b = strconv.AppendInt(b, int64(d.part), 10)
	}
	if d.skip != "" {
		if len(b) > start {
			b = append(b, '&')
		}
		b = append(b, "_HLS_skip="...)
		b = append(b, d.skip...)
	}
	return b
}

// nonBlocking is d without what makes a request wait.
func (d directives) nonBlocking() string {
	return directives{skip: d.skip}.String()
}
