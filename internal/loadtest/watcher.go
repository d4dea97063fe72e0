package loadtest

import (
	"bytes"
	"compress/gzip"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"sync"
	"syscall"
	"time"
)

type requestKind int

const (
	kindMultivariant requestKind = iota
	kindPlaylist
	kindBlockingPlaylist
	kindInit
	kindPart
	numKinds
)

func (k requestKind) String() string {
	switch k {
	case kindMultivariant:
		return "multivariant"
	case kindPlaylist:
		return "playlist"
	case kindBlockingPlaylist:
		return "blocking-playlist"
	case kindInit:
		return "init"
	case kindPart:
		return "part"
	}
	return "unknown"
}

// maxTracks is how many media playlists a watcher follows: a variant's
// and its audio rendition's, as hls.js does.
const maxTracks = 2

// watcher is one simulated hls.js viewer, following one or two media
// playlists.
type watcher struct {
	run *run
	url string
	// followers[0] follows the run's variant and also accounts for the
	// multivariant playlist; followers[1], if any, the audio rendition.
	followers []*follower
}

func newWatcher(r *run, u string) *watcher {
	return &watcher{run: r, url: u, followers: []*follower{newFollower(r, 0)}}
}

// watch plays the stream as hls.js does in low-latency mode until the
// run's window ends and the parts published within it are fetched, or
// ctx ends.
func (w *watcher) watch(ctx context.Context) {
	defer func() {
		for _, f := range w.followers {
			f.conn.close()
		}
	}()
	first := w.followers[0]
	root, err := url.Parse(w.url)
	if err != nil {
		first.fail(ctx, kindMultivariant, err)
		return
	}
	var media []*url.URL
	for {
		media, err = first.resolve(ctx, root)
		if err == nil {
			break
		}
		if !first.fail(ctx, kindMultivariant, err) || first.stopping() {
			return
		}
	}
	var wg sync.WaitGroup
	for i, u := range media[1:] {
		f := newFollower(w.run, i+1)
		w.followers = append(w.followers, f)
		wg.Go(func() { f.follow(ctx, u) })
	}
	first.follow(ctx, media[0])
	wg.Wait()
}

// follower follows one media playlist of a watcher. Its fields are its
// own until Run reads them after it returns.
type follower struct {
	run      *run
	track    int // index in run.tracks
	conn     conn
	playlist bytes.Buffer
	gunzip   *gzip.Reader // reused for every playlist

	// started tells that the first media playlist arrived; parts after
	// the key after count as published to this follower.
	started bool
	after   partKey
	// last is the newest part fetched or given up on.
	last partKey
	// seen and delivered list the parts seen in playlists and fetched,
	// in order.
	seen, delivered []partKey

	latencies, edgeDistances []time.Duration
	errors                   map[string]int
	requests                 [numKinds]int
	bytesIn                  int64
}

func newFollower(r *run, track int) *follower {
	return &follower{run: r, track: track, conn: conn{dialer: r.dialer}, errors: make(map[string]int)}
}

// resolve fetches the playlist at root and returns the media playlists
// to follow: the run's variant's and its audio rendition's for a
// multivariant playlist, root itself for a media one.
func (f *follower) resolve(ctx context.Context, root *url.URL) ([]*url.URL, error) {
	body, err := f.get(ctx, root, kindMultivariant)
	if err != nil {
		return nil, err
	}
	if !isMultivariant(body) {
		return []*url.URL{root}, nil
	}
	mv, err := parseMultivariant(body)
	if err != nil {
		return nil, err
	}
	if f.run.variant >= len(mv.variantURIs) {
		return nil, fmt.Errorf("%w: no variant %d of %d", errNoVariant, f.run.variant, len(mv.variantURIs))
	}
	var media []*url.URL
	for _, ref := range []string{mv.variantURIs[f.run.variant], mv.audioURI} {
		if ref == "" {
			continue
		}
		u, err := root.Parse(ref)
		if err != nil {
			return nil, err
		}
		media = append(media, u)
	}
	return media, nil
}

// follow fetches the media playlist at base and its init segment, then
// reloads it as hls.js does, fetching every new part.
func (f *follower) follow(ctx context.Context, base *url.URL) {
	var pl mediaPlaylist
	for {
		var err error
		pl, err = f.getMediaPlaylist(ctx, base, kindPlaylist)
		if err == nil && !pl.canBlock {
			err = errors.New("the playlist does not offer blocking reloads")
		}
		if err == nil {
			break
		}
		if !f.fail(ctx, kindPlaylist, err) || f.stopping() {
			return
		}
	}
	if pl.mapURI != "" {
		initURL, err := base.Parse(pl.mapURI)
		if err == nil {
			err = f.fetch(ctx, initURL, kindInit, "")
		}
		if err != nil {
			f.fail(ctx, kindInit, err)
		}
	}

	f.started = true
	if pl.nextKey > 0 {
		f.after = pl.nextKey - 1
	}
	f.last = f.after
	for _, p := range pl.parts {
		f.run.sawPart(f.track, p)
	}
	// hls.js starts at the newest part (nearly: PART-HOLD-BACK), which is
	// older than the window and so not counted.
	if n := len(pl.parts); n > 0 {
		f.fetchPart(ctx, base, pl.parts[n-1])
	}
	for ctx.Err() == nil && !pl.endList && !f.done() {
		next, err := f.reload(ctx, base, pl)
		if err != nil {
			if !f.fail(ctx, kindBlockingPlaylist, err) {
				return
			}
			// The follower may have fallen out of the playlist's
			// window: start over from a plain reload, as hls.js does.
			if next, err = f.getMediaPlaylist(ctx, base, kindPlaylist); err != nil {
				if !f.fail(ctx, kindPlaylist, err) {
					return
				}
				continue
			}
		}
		pl = next
		f.fetchNewParts(ctx, base, pl)
	}
}

// reload asks for the playlist holding the part after the newest one
// listed in pl, which the server answers once that part exists.
func (f *follower) reload(ctx context.Context, base *url.URL, pl mediaPlaylist) (mediaPlaylist, error) {
	q := make([]byte, 0, 64)
	q = append(q, "_HLS_msn="...)
	q = strconv.AppendUint(q, pl.nextKey.msn(), 10)
	q = append(q, "&_HLS_part="...)
	q = strconv.AppendInt(q, int64(pl.nextKey.index()), 10)
	if pl.canSkip {
		q = append(q, "&_HLS_skip=YES"...)
	}
	u := *base
	u.RawQuery = string(q)
	return f.getMediaPlaylist(ctx, &u, kindBlockingPlaylist)
}

func (f *follower) getMediaPlaylist(ctx context.Context, u *url.URL, kind requestKind) (mediaPlaylist, error) {
	body, err := f.get(ctx, u, kind)
	if err != nil {
		return mediaPlaylist{}, err
	}
	return parseMediaPlaylist(body)
}

// fetchNewParts fetches, in order, the parts of pl newer than the last
// one fetched; after the window, only those published within it.
func (f *follower) fetchNewParts(ctx context.Context, base *url.URL, pl mediaPlaylist) {
	for _, p := range pl.parts {
		if p.key <= f.last {
			continue
		}
		f.run.sawPart(f.track, p)
		if f.stopping() && p.key > f.run.tracks[f.track].cutoff {
			// Parts of the window not listed any more are gone.
			f.last = max(f.last, f.run.tracks[f.track].cutoff)
			return
		}
		f.fetchPart(ctx, base, p)
		if ctx.Err() != nil {
			return
		}
	}
}

func (f *follower) fetchPart(ctx context.Context, base *url.URL, p playlistPart) {
	seenAt := time.Now()
	f.seen = append(f.seen, p.key)
	f.last = p.key
	u, err := base.Parse(p.uri)
	if err == nil {
		var byteRange string
		if p.rangeLength >= 0 {
			byteRange = fmt.Sprintf("bytes=%d-%d", p.rangeStart, p.rangeStart+p.rangeLength-1)
		}
		err = f.fetch(ctx, u, kindPart, byteRange)
	}
	if err != nil {
		f.fail(ctx, kindPart, err)
		return
	}
	now := time.Now()
	f.delivered = append(f.delivered, p.key)
	end := p.end
	if end.IsZero() {
		end = seenAt
	}
	f.latencies = append(f.latencies, now.Sub(end))
	if newest := f.run.tracks[f.track].newestEnd.Load(); !p.end.IsZero() && newest > 0 {
		f.edgeDistances = append(f.edgeDistances, time.Duration(newest-p.end.UnixNano()))
	}
}

// stopping tells whether the run's window is over.
func (f *follower) stopping() bool {
	select {
	case <-f.run.stopped:
		return true
	default:
		return false
	}
}

// done tells whether the window is over and every part published in it
// has been fetched or given up on.
func (f *follower) done() bool {
	return f.stopping() && f.last >= f.run.tracks[f.track].cutoff
}

// fail counts err and tells whether to go on, after a pause: not when ctx
// has ended, whose errors are the run's end rather than failures.
func (f *follower) fail(ctx context.Context, kind requestKind, err error) bool {
	if ctx.Err() != nil {
		return false
	}
	class := kind.String() + ": " + classify(err)
	f.errors[class]++
	f.run.logger.Debug("loadtest: request failed", "kind", kind.String(), "err", err)
	select {
	case <-ctx.Done():
		return false
	case <-time.After(retryDelay):
		return true
	}
}

type statusError struct{ code int }

func (e statusError) Error() string { return "HTTP " + strconv.Itoa(e.code) }

// classify names an error briefly enough to count errors by kind.
func classify(err error) string {
	var status statusError
	switch {
	case errors.As(err, &status):
		return status.Error()
	case errors.Is(err, context.DeadlineExceeded), errors.Is(err, os.ErrDeadlineExceeded):
		return "timeout"
	case errors.Is(err, syscall.ECONNREFUSED):
		return "connection refused"
	case errors.Is(err, syscall.ECONNRESET), errors.Is(err, syscall.EPIPE):
		return "connection reset"
	case errors.Is(err, io.ErrUnexpectedEOF), errors.Is(err, io.EOF):
		return "truncated"
	case errors.Is(err, errNotPlaylist), errors.Is(err, errNoVariant), errors.Is(err, errBadTag):
		return "bad playlist"
	}
	return "other"
}

// get fetches a playlist into w.playlist and returns its bytes, valid
// until the next get. It asks for it gzip-encoded, as browsers do.
func (f *follower) get(ctx context.Context, u *url.URL, kind requestKind) ([]byte, error) {
	body, err := f.do(ctx, u, kind, "")
	if err != nil {
		return nil, err
	}
	defer body.Close()
	var r io.Reader = &countingReader{r: body, n: &f.bytesIn}
	if body.gzip {
		if f.gunzip == nil {
			f.gunzip, err = gzip.NewReader(r)
		} else {
			err = f.gunzip.Reset(r)
		}
		if err != nil {
			return nil, err
		}
		r = f.gunzip
	}
	f.playlist.Reset()
	if _, err := f.playlist.ReadFrom(io.LimitReader(r, maxPlaylistSize)); err != nil {
		return nil, err
	}
	return f.playlist.Bytes(), nil
}

// countingReader adds what it reads to n.
type countingReader struct {
	r io.Reader
	n *int64
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	*c.n += int64(n)
	return n, err
}

// fetch downloads a media file, keeping none of it.
func (f *follower) fetch(ctx context.Context, u *url.URL, kind requestKind, byteRange string) error {
	body, err := f.do(ctx, u, kind, byteRange)
	if err != nil {
		return err
	}
	defer body.Close()
	buf := f.run.bufs.Get().(*[]byte)
	defer f.run.bufs.Put(buf)
	for {
		n, err := body.Read(*buf)
		f.bytesIn += int64(n)
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return err
		}
	}
}

func (f *follower) do(ctx context.Context, u *url.URL, kind requestKind, byteRange string) (*body, error) {
	f.requests[kind]++
	resp, err := f.conn.get(ctx, u, byteRange)
	if err != nil {
		return nil, err
	}
	if resp.status != http.StatusOK && resp.status != http.StatusPartialContent {
		resp.body.Close()
		return nil, statusError{resp.status}
	}
	return resp.body, nil
}
