package hls

import (
	"bytes"
	"compress/gzip"
	"context"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// Identical requests in flight get one answer from one call; the
// requests after it make a call of their own unless the answer is cached.
func TestCollapserOneCallPerKey(t *testing.T) {
	for _, c := range []struct {
		name      string
		cache     bool
		wantCalls int32 // after the collapsed requests and one more
	}{
		{"playlist", false, 2},
		{"part", true, 1},
	} {
		t.Run(c.name, func(t *testing.T) {
			cl := newCollapser(testLogger(t))
			var calls atomic.Int32
			release := make(chan struct{})
			produce := func() answer {
				n := calls.Add(1)
				<-release
				return bodyAnswer(fmt.Sprintf("answer %d", n))
			}
			const requests = 20
			var asking sync.WaitGroup
			answers := make(chan answer, requests)
			for range requests {
				asking.Go(func() {
					a, ok := cl.do(t.Context(), "720p.m3u8?_HLS_msn=3&_HLS_part=1", c.cache, produce)
					if !ok {
						t.Error("do gave up with its context alive")
					}
					answers <- a
				})
			}
			// Let every request join the flight before it lands.
			for calls.Load() == 0 {
				time.Sleep(time.Millisecond)
			}
			time.Sleep(100 * time.Millisecond)
			close(release)
			asking.Wait()
			close(answers)
			for a := range answers {
				if a.status != http.StatusOK || string(a.body) != "answer 1" || a.contentLength[0] != "8" {
					t.Errorf("answer %d %q (Content-Length %v), want 200 \"answer 1\"", a.status, a.body, a.contentLength)
				}
			}
			if n := calls.Load(); n != 1 {
				t.Fatalf("%d calls for %d identical requests in flight, want 1", n, requests)
			}
			if _, ok := cl.do(t.Context(), "720p.m3u8?_HLS_msn=3&_HLS_part=1", c.cache, produce); !ok {
				t.Fatal("do gave up")
			}
			if n := calls.Load(); n != c.wantCalls {
				t.Errorf("%d calls after one more request, want %d", n, c.wantCalls)
			}
		})
	}
}

// A request whose client leaves stops waiting at once; the call it
// started still finishes and its answer is kept.
func TestCollapserClientsLeave(t *testing.T) {
	cl := newCollapser(testLogger(t))
	release := make(chan struct{})
	var calls atomic.Int32
	produce := func() answer {
		calls.Add(1)
		<-release
		return bodyAnswer("part")
	}
	const key = "x_video1_part7.mp4"
	for range 2 { // the request that started the call, then one waiting on it
		ctx, cancel := context.WithCancel(t.Context())
		left := make(chan bool)
		go func() {
			_, ok := cl.do(ctx, key, true, produce)
			left <- ok
		}()
		for calls.Load() == 0 {
			time.Sleep(time.Millisecond)
		}
		cancel()
		if ok := <-left; ok {
			t.Fatal("do answered with the part not produced yet")
		}
	}
	close(release)
	deadline := time.Now().Add(10 * time.Second)
	for {
		if a, ok := cl.cachedAnswer(key); ok {
			if string(a.body) != "part" {
				t.Errorf("cached %q", a.body)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the call whose clients left did not finish")
		}
		time.Sleep(time.Millisecond)
	}
	if n := calls.Load(); n != 1 {
		t.Errorf("%d calls, want 1", n)
	}
}

func TestCollapserPanic(t *testing.T) {
	cl := newCollapser(testLogger(t))
	a, ok := cl.do(t.Context(), "index.m3u8", false, func() answer { panic("gohlslib") })
	if !ok || a.status != http.StatusInternalServerError {
		t.Errorf("a panicking call answered %d, %v; want 500", a.status, ok)
	}
}

func TestCollapserCacheIsBounded(t *testing.T) {
	cl := newCollapser(testLogger(t))
	name := func(i int) string { return fmt.Sprintf("x_video1_part%d.mp4", i) }
	for i := range maxCachedFiles + 1 {
		cl.do(t.Context(), name(i), true, func() answer { return bodyAnswer(fmt.Sprint(i)) })
	}
	if len(cl.cached) != maxCachedFiles || len(cl.order) != maxCachedFiles {
		t.Errorf("%d answers cached (%d in order), want %d", len(cl.cached), len(cl.order), maxCachedFiles)
	}
	if _, ok := cl.cachedAnswer(name(0)); ok {
		t.Error("the oldest answer is still cached")
	}
	if a, ok := cl.cachedAnswer(name(maxCachedFiles)); !ok || string(a.body) != fmt.Sprint(maxCachedFiles) {
		t.Errorf("the newest answer: %q, %v", a.body, ok)
	}
	// A failed answer is not kept.
	cl.do(t.Context(), "x_video1_part999.mp4", true, func() answer { return answer{status: http.StatusNotFound} })
	if _, ok := cl.cachedAnswer("x_video1_part999.mp4"); ok {
		t.Error("a 404 was cached")
	}
}

// The cache also holds no more than maxCachedBytes: large answers push
// out the oldest ones, and an answer too large for it is not kept.
func TestCollapserCacheBytesAreBounded(t *testing.T) {
	cl := newCollapser(testLogger(t))
	size := maxCachedBytes / 5
	for i := range 8 {
		body := bytes.Repeat([]byte{byte(i)}, size)
		cl.do(t.Context(), fmt.Sprintf("x_video1_seg%d.mp4", i), true, func() answer { return bodyAnswer(string(body)) })
	}
	if cl.bytes > maxCachedBytes || len(cl.cached) != 5 {
		t.Errorf("%d bytes in %d answers cached, want at most %d in 5", cl.bytes, len(cl.cached), maxCachedBytes)
	}
	if _, ok := cl.cachedAnswer("x_video1_seg7.mp4"); !ok {
		t.Error("the newest answer is not cached")
	}
	huge := make([]byte, maxCachedBytes/4+1)
	cl.do(t.Context(), "x_video1_seg99.mp4", true, func() answer { return bodyAnswer(string(huge)) })
	if _, ok := cl.cachedAnswer("x_video1_seg99.mp4"); ok {
		t.Error("an answer of more than a quarter of the cache was kept")
	}
}

// bodyAnswer is a 200 answer of body.
func bodyAnswer(body string) answer {
	return answer{status: http.StatusOK, contentLength: []string{fmt.Sprint(len(body))}, body: []byte(body)}
}

// A playlist is compressed once for every client that asks, with a
// pooled compressor, and decompresses to itself.
func TestGzipOnce(t *testing.T) {
	var writers sync.Pool
	a := playlistAnswer([]byte(strings.Repeat("#EXT-X-PART:DURATION=0.20000\n", 50)), cacheMediaPlaylist)
	first, length := a.gzip.get(a.body, &writers)
	second, _ := a.gzip.get(a.body, &writers)
	if &first[0] != &second[0] || len(first) >= len(a.body) || length[0] != fmt.Sprint(len(first)) {
		t.Errorf("compressed twice, or not smaller: %d then %d bytes of %d (Content-Length %v)", len(first), len(second), len(a.body), length)
	}
	zr, err := gzip.NewReader(bytes.NewReader(first))
	if err != nil {
		t.Fatal(err)
	}
	plain, err := io.ReadAll(zr)
	if err != nil || !bytes.Equal(plain, a.body) {
		t.Errorf("gunzipped %q, %v; want the answer's body", plain, err)
	}
	// Another playlist with the pooled compressor.
	b := playlistAnswer([]byte("#EXTM3U\n"), cacheMediaPlaylist)
	zipped, _ := b.gzip.get(b.body, &writers)
	zr, err = gzip.NewReader(bytes.NewReader(zipped))
	if err != nil {
		t.Fatal(err)
	}
	if plain, err := io.ReadAll(zr); err != nil || string(plain) != "#EXTM3U\n" {
		t.Errorf("the second playlist gunzipped %q, %v", plain, err)
	}
}

// A rung's requests that get the same playlist share one answer, and so
// its compressed form; a new playlist makes a new answer.
func TestRungSharesPlaylistAnswers(t *testing.T) {
	r := &rung{}
	a := r.playlistAnswer([]byte("#EXTM3U\none"), false, cacheBlockingPlaylist)
	b := r.playlistAnswer([]byte("#EXTM3U\none"), false, cacheMediaPlaylist)
	c := r.playlistAnswer([]byte("#EXTM3U\none"), true, cacheMediaPlaylist)
	d := r.playlistAnswer([]byte("#EXTM3U\ntwo"), false, cacheMediaPlaylist)
	if a.gzip != b.gzip || a.cacheControl[0] != cacheBlockingPlaylist || b.cacheControl[0] != cacheMediaPlaylist {
		t.Errorf("the same playlist: gzip shared %v, Cache-Control %v then %v", a.gzip == b.gzip, a.cacheControl, b.cacheControl)
	}
	if c.gzip == a.gzip || d.gzip == a.gzip {
		t.Error("a delta update or another playlist shares the answer of the first")
	}
}
