// Package loadtest simulates LL-HLS watchers that behave like hls.js in
// low-latency mode, and measures what they get: every part, how soon
// after it ends, and what went wrong.
package loadtest

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"math/rand/v2"
	"net"
	"slices"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// Config says whom to watch, with how many watchers, for how long.
type Config struct {
	// URL is the multivariant or the media playlist of the stream
	// (/hls/{id}/index.m3u8).
	URL string
	// Variant is the index of the variant the watchers follow in a
	// multivariant playlist (0, the first, by default: a ladder's top
	// rung).
	Variant  int
	Watchers int
	// Duration is the measured window. Watchers join during its first
	// second, and after it they take at most drainTimeout more to fetch
	// the parts published within it.
	Duration time.Duration
	Logger   *slog.Logger
}

// Report is what the watchers measured.
type Report struct {
	Watchers int
	// PartsPublished counts the distinct parts (of the video variant
	// and of the audio rendition, which a watcher follows both of)
	// published in the window, after the first watcher's first
	// playlist; PartsDelivered and PartsMissed count (watcher, part)
	// pairs of parts published after that watcher's first playlist.
	PartsPublished, PartsDelivered, PartsMissed int
	// Errors counts failures by kind, e.g. "part: HTTP 404".
	Errors map[string]int
	// Part latency runs from the part's end (its segment's
	// EXT-X-PROGRAM-DATE-TIME plus the part durations up to its end, or
	// when the watcher first saw it if the playlist has no date) to the
	// last byte of it received.
	PartLatencyP50, PartLatencyP95, PartLatencyMax time.Duration
	// Live edge distance is, when a part is delivered, how much newer
	// the newest part any watcher has seen is.
	LiveEdgeDistanceP50, LiveEdgeDistanceP95 time.Duration
	// RequestsByKind counts requests: multivariant, playlist,
	// blocking-playlist, init, part.
	RequestsByKind map[string]int
	BytesIn        int64
}

// Timing of a run.
const (
	// joinSpread spreads the watchers' first requests, as real viewers
	// do not all press play in the same millisecond.
	joinSpread = time.Second
	// drainTimeout bounds the time after the window for watchers to
	// fetch the parts published within it.
	drainTimeout = 5 * time.Second
	// requestTimeout bounds one request; a blocking reload waits about
	// one part duration.
	requestTimeout = 5 * time.Second
	// retryDelay spaces a watcher's retries after a failed playlist.
	retryDelay = 200 * time.Millisecond
	// maxPlaylistSize bounds what is read of a playlist.
	maxPlaylistSize = 1 << 20
	copyBufferSize  = 64 << 10
	readBufferSize  = 16 << 10
)

// Run starts cfg.Watchers watchers, lets them watch for cfg.Duration and
// reports what they measured. It returns early, with an error, when ctx
// ends.
func Run(ctx context.Context, cfg Config) (Report, error) {
	if cfg.Watchers < 1 {
		return Report{}, errors.New("loadtest: need at least one watcher")
	}
	if cfg.Duration <= 0 {
		return Report{}, errors.New("loadtest: need a positive duration")
	}
	if cfg.Variant < 0 {
		return Report{}, errors.New("loadtest: a negative variant")
	}
	if !strings.HasPrefix(cfg.URL, "http://") && !strings.HasPrefix(cfg.URL, "https://") {
		return Report{}, fmt.Errorf("loadtest: %q is not an http(s) URL", cfg.URL)
	}
	logger := cfg.Logger
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	hardCtx, cancel := context.WithTimeout(ctx, joinSpread+cfg.Duration+drainTimeout)
	defer cancel()
	r := &run{
		dialer:  &net.Dialer{Timeout: requestTimeout, KeepAlive: 30 * time.Second},
		logger:  logger,
		variant: cfg.Variant,
		stopped: make(chan struct{}),
		bufs:    sync.Pool{New: func() any { b := make([]byte, copyBufferSize); return &b }},
	}
	watchers := make([]*watcher, cfg.Watchers)
	var wg sync.WaitGroup
	for i := range watchers {
		w := newWatcher(r, cfg.URL)
		watchers[i] = w
		delay := time.Duration(rand.Int64N(int64(joinSpread)))
		wg.Go(func() {
			select {
			case <-hardCtx.Done():
				return
			case <-time.After(delay):
			}
			w.watch(hardCtx)
		})
	}

	select {
	case <-ctx.Done():
	case <-time.After(joinSpread + cfg.Duration):
	}
	for i := range r.tracks {
		r.tracks[i].cutoff = partKey(r.tracks[i].newestKey.Load())
	}
	close(r.stopped)
	wg.Wait()
	if err := ctx.Err(); err != nil {
		return Report{}, err
	}
	return r.report(watchers), nil
}

// run is what a run's watchers share.
type run struct {
	dialer  *net.Dialer
	logger  *slog.Logger
	variant int       // to follow in a multivariant playlist
	bufs    sync.Pool // *[]byte of copyBufferSize

	tracks [maxTracks]track
	// stopped is closed when the window ends, after the tracks' cutoffs
	// are set.
	stopped chan struct{}
}

// track is what the watchers know of one media playlist (the variant's or
// the audio rendition's).
type track struct {
	// newestKey and newestEnd (Unix ns) describe the newest part any
	// watcher has seen.
	newestKey, newestEnd atomic.Int64
	// cutoff is the newest part seen when the window ended.
	cutoff partKey
}

func (r *run) sawPart(track int, p playlistPart) {
	t := &r.tracks[track]
	storeMax(&t.newestKey, int64(p.key))
	if !p.end.IsZero() {
		storeMax(&t.newestEnd, p.end.UnixNano())
	}
}

func storeMax(v *atomic.Int64, n int64) {
	for {
		old := v.Load()
		if n <= old || v.CompareAndSwap(old, n) {
			return
		}
	}
}

func (r *run) report(watchers []*watcher) Report {
	rep := Report{
		Watchers:       len(watchers),
		Errors:         make(map[string]int),
		RequestsByKind: make(map[string]int),
	}
	var followers []*follower
	for _, w := range watchers {
		followers = append(followers, w.followers...)
	}
	var published [maxTracks][]partKey
	var latencies, distances []time.Duration
	for _, f := range followers {
		published[f.track] = append(published[f.track], f.seen...)
		latencies = append(latencies, f.latencies...)
		distances = append(distances, f.edgeDistances...)
		for k, n := range f.errors {
			rep.Errors[k] += n
		}
		for k, n := range f.requests {
			if n > 0 {
				rep.RequestsByKind[requestKind(k).String()] += n
			}
		}
		rep.BytesIn += f.bytesIn
	}
	var windowStart [maxTracks]int
	for i := range published {
		p := published[i]
		slices.Sort(p)
		p = slices.Compact(p)
		cutoff := r.tracks[i].cutoff
		published[i] = p[:sort.Search(len(p), func(j int) bool { return p[j] > cutoff })]
		windowStart[i] = len(published[i])
	}

	for _, f := range followers {
		p, cutoff := published[f.track], r.tracks[f.track].cutoff
		// A follower that never got a playlist missed all of them.
		start := 0
		if f.started {
			start = sort.Search(len(p), func(j int) bool { return p[j] > f.after })
		}
		windowStart[f.track] = min(windowStart[f.track], start)
		delivered := 0
		for _, k := range f.delivered {
			if k > f.after && k <= cutoff {
				delivered++
			}
		}
		rep.PartsDelivered += delivered
		rep.PartsMissed += len(p) - start - delivered
	}
	for i := range published {
		rep.PartsPublished += len(published[i]) - windowStart[i]
	}

	slices.Sort(latencies)
	slices.Sort(distances)
	rep.PartLatencyP50 = percentile(latencies, 50)
	rep.PartLatencyP95 = percentile(latencies, 95)
	rep.PartLatencyMax = percentile(latencies, 100)
	rep.LiveEdgeDistanceP50 = percentile(distances, 50)
	rep.LiveEdgeDistanceP95 = percentile(distances, 95)
	return rep
}

// percentile reads the p-th percentile of sorted values (nearest rank).
func percentile(sorted []time.Duration, p int) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	i := (len(sorted)*p + 99) / 100
	return sorted[max(i-1, 0)]
}

// String summarizes the report for a person.
func (r Report) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "watchers: %d\n", r.Watchers)
	fmt.Fprintf(&b, "parts: %d published, %d delivered, %d missed\n", r.PartsPublished, r.PartsDelivered, r.PartsMissed)
	fmt.Fprintf(&b, "part end -> delivered: p50 %v, p95 %v, max %v\n",
		r.PartLatencyP50.Round(time.Millisecond), r.PartLatencyP95.Round(time.Millisecond), r.PartLatencyMax.Round(time.Millisecond))
	fmt.Fprintf(&b, "behind the live edge: p50 %v, p95 %v\n",
		r.LiveEdgeDistanceP50.Round(time.Millisecond), r.LiveEdgeDistanceP95.Round(time.Millisecond))
	fmt.Fprintf(&b, "requests:%s\n", formatCounts(r.RequestsByKind))
	fmt.Fprintf(&b, "received: %.1f MB\n", float64(r.BytesIn)/1e6)
	if len(r.Errors) == 0 {
		b.WriteString("errors: none\n")
	} else {
		fmt.Fprintf(&b, "errors:%s\n", formatCounts(r.Errors))
	}
	return b.String()
}

func formatCounts(m map[string]int) string {
	var b strings.Builder
	for _, k := range slices.Sorted(maps.Keys(m)) {
		fmt.Fprintf(&b, " %s %d,", k, m[k])
	}
	return strings.TrimSuffix(b.String(), ",")
}
