package hls

import (
	"bytes"
	"context"
	"net/http"
	"strconv"
	"sync"
)

// maxCachedFiles bounds the init files and parts kept in memory: about
// 12 s of the program's parts, more than a live playlist lists.
const maxCachedFiles = 64

// answer is gohlslib's complete response to a request, kept to answer
// identical requests with the same bytes.
type answer struct {
	// status is 0 when gohlslib wrote nothing: it does not serve the name.
	status        int
	contentType   []string
	contentLength []string
	body          []byte
}

// flight is a request being answered by gohlslib, which identical
// requests wait on instead of asking gohlslib themselves.
type flight struct {
	done chan struct{} // closed once answer is set
	answer
}

// collapser answers identical requests with one call to gohlslib. Every
// LL-HLS watcher asks for the same next playlist and the same parts at
// nearly the same time; gohlslib makes each waiting request wait on one
// condition variable that every new part broadcasts to, so thousands of
// waiters wake on every part. Collapsed, only one request per distinct
// URL waits there. Init files and parts never change under a name, so
// their answers are also kept for later requests.
type collapser struct {
	mu       sync.Mutex
	inFlight map[string]*flight
	cached   map[string]answer
	order    []string // keys of cached, oldest first
}

func newCollapser() *collapser {
	return &collapser{
		inFlight: make(map[string]*flight),
		cached:   make(map[string]answer, maxCachedFiles),
	}
}

// cachedAnswer returns the cached answer to the request identified by key.
func (c *collapser) cachedAnswer(key string) (answer, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	a, ok := c.cached[key]
	return a, ok
}

// do returns the answer to the request identified by key: a cached one,
// that of an identical request in flight, or that of produce, which
// writes a response to the recorder it is given. An answer with status
// 200 is cached when cache is true. It returns false when ctx ends first.
func (c *collapser) do(ctx context.Context, key string, cache bool, produce func(http.ResponseWriter)) (answer, bool) {
	c.mu.Lock()
	if a, ok := c.cached[key]; ok {
		c.mu.Unlock()
		return a, true
	}
	if f, ok := c.inFlight[key]; ok {
		c.mu.Unlock()
		select {
		case <-f.done:
			return f.answer, true
		case <-ctx.Done():
			return answer{}, false
		}
	}
	f := &flight{done: make(chan struct{})}
	c.inFlight[key] = f
	c.mu.Unlock()

	// gohlslib does not watch the request's context: the leader waits
	// for the answer even if its own client has gone, so that the
	// requests waiting on it get theirs.
	rec := &recorder{header: make(http.Header)}
	produce(rec)
	f.answer = rec.answer()

	c.mu.Lock()
	delete(c.inFlight, key)
	if cache && f.status == http.StatusOK {
		c.storeLocked(key, f.answer)
	}
	c.mu.Unlock()
	close(f.done)
	return f.answer, true
}

func (c *collapser) storeLocked(key string, a answer) {
	if _, ok := c.cached[key]; ok {
		return
	}
	if len(c.order) == maxCachedFiles {
		delete(c.cached, c.order[0])
		c.order = append(c.order[:0], c.order[1:]...)
	}
	c.cached[key] = a
	c.order = append(c.order, key)
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

// copyTo writes what was recorded to w; nothing if nothing was.
func (r *recorder) copyTo(w http.ResponseWriter) {
	if r.status == 0 {
		return
	}
	if ct := r.header.Get("Content-Type"); ct != "" {
		w.Header().Set("Content-Type", ct)
	}
	w.WriteHeader(r.status)
	w.Write(r.body.Bytes())
}

func (r *recorder) answer() answer {
	a := answer{status: r.status, body: r.body.Bytes()}
	if ct := r.header.Get("Content-Type"); ct != "" {
		a.contentType = []string{ct}
	}
	a.contentLength = []string{strconv.Itoa(len(a.body))}
	return a
}
