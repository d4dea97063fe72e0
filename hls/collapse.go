package hls

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"

	"golang.org/x/sync/singleflight"
)

// Bounds of the init files, parts and segments kept in memory: more than
// the playlists of every rung list (about 7 s of the program each, and
// the parts of its last two segments).
const (
	maxCachedFiles = 256
	maxCachedBytes = 24 << 20
)

// answer is a complete response to a request, kept to answer identical
// requests with the same bytes.
type answer struct {
	// status is 0 when gohlslib wrote nothing: it does not serve the name.
	status        int
	contentType   []string
	contentLength []string
	cacheControl  []string
	body          []byte
	// gzip, set for playlists, compresses body once for every client
	// that accepts it.
	gzip *gzipped
}

// collapser answers identical requests with one call to gohlslib. Every
// LL-HLS watcher asks for the same next playlist and the same parts at
// nearly the same time; gohlslib makes each waiting request wait on one
// condition variable that every new part broadcasts to, so thousands of
// waiters wake on every part. Collapsed, only one request per distinct
// URL waits there. Init files and parts never change under a name, so
// their answers are also kept for later requests.
type collapser struct {
	logger  *slog.Logger
	flights singleflight.Group

	mu     sync.Mutex
	cached map[string]answer
	order  []string // keys of cached, oldest first
	bytes  int      // of the bodies cached

	produced atomic.Uint64 // answers gohlslib made: one per flight
}

func newCollapser(logger *slog.Logger) *collapser {
	return &collapser{logger: logger, cached: make(map[string]answer, maxCachedFiles)}
}

// cachedAnswer returns the cached answer to the request identified by key.
func (c *collapser) cachedAnswer(key string) (answer, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	a, ok := c.cached[key]
	return a, ok
}

// do returns the answer to the request identified by key: a cached one,
// or that of produce, called once for all the identical requests in
// flight. An answer with status 200 is kept for later requests when
// cache is true: the file never changes under its name. It returns false
// when ctx ends first.
func (c *collapser) do(ctx context.Context, key string, cache bool, produce func() answer) (answer, bool) {
	if a, ok := c.cachedAnswer(key); ok {
		return a, true
	}
	// produce runs on a goroutine of its own: gohlslib does not watch
	// the request's context, and the requests waiting on this one must
	// get their answer even if the client that asked first has gone.
	flight := c.flights.DoChan(key, func() (any, error) {
		a := c.produce(key, produce)
		if cache && a.status == http.StatusOK {
			c.store(key, a)
		}
		return a, nil
	})
	select {
	case res := <-flight:
		return res.Val.(answer), true
	case <-ctx.Done():
		return answer{}, false
	}
}

// produce calls produce. A panic, which off the request's goroutine
// would end the process, answers 500 instead.
func (c *collapser) produce(key string, produce func() answer) (a answer) {
	c.produced.Add(1)
	defer func() {
		if v := recover(); v != nil {
			c.logger.Error("hls: answering a request", "file", key, "err", fmt.Errorf("panic: %v", v))
			a = answer{status: http.StatusInternalServerError, contentLength: []string{"0"}}
		}
	}()
	return produce()
}

func (c *collapser) store(key string, a answer) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if _, ok := c.cached[key]; ok || len(a.body) > maxCachedBytes/4 {
		return
	}
	for len(c.order) > 0 && (len(c.order) == maxCachedFiles || c.bytes+len(a.body) > maxCachedBytes) {
		c.bytes -= len(c.cached[c.order[0]].body)
		delete(c.cached, c.order[0])
		c.order = append(c.order[:0], c.order[1:]...)
	}
	c.cached[key] = a
	c.order = append(c.order, key)
	c.bytes += len(a.body)
}

// recorder is the http.ResponseWriter gohlslib answers into.
type recorder struct {
	header http.Header
	status int
	body   bytes.Buffer
}

func (r *recorder) Header() http.Header { return r.header }

func (r *recorder) WriteHeader(status int) {
	if r.status == 0 {
		r.status = status
	}
}

func (r *recorder) Write(p []byte) (int, error) {
	r.WriteHeader(http.StatusOK)
	return r.body.Write(p)
}

// answer is what was recorded.
func (r *recorder) answer() answer {
	a := answer{status: r.status, body: r.body.Bytes()}
	if ct := r.header.Get("Content-Type"); ct != "" {
		a.contentType = []string{ct}
	}
	if cc := r.header.Get("Cache-Control"); cc != "" {
		a.cacheControl = []string{cc}
	}
	a.contentLength = []string{strconv.Itoa(len(a.body))}
	return a
}
