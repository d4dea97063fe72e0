package hls

import (
	"context"
	"fmt"
	"net/http"
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
			produce := func(w http.ResponseWriter) {
				n := calls.Add(1)
				<-release
				fmt.Fprintf(w, "answer %d", n)
			}
			const requests = 20
			var asking sync.WaitGroup
			answers := make(chan answer, requests)
			for range requests {
				asking.Go(func() {
					a, ok := cl.do(t.Context(), "video1_stream.m3u8?_HLS_msn=3&_HLS_part=1", c.cache, produce)
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
			if _, ok := cl.do(t.Context(), "video1_stream.m3u8?_HLS_msn=3&_HLS_part=1", c.cache, produce); !ok {
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
	produce := func(w http.ResponseWriter) {
		calls.Add(1)
		<-release
		w.Write([]byte("part"))
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
	a, ok := cl.do(t.Context(), "index.m3u8", false, func(http.ResponseWriter) { panic("gohlslib") })
	if !ok || a.status != http.StatusInternalServerError {
		t.Errorf("a panicking call answered %d, %v; want 500", a.status, ok)
	}
}

func TestCollapserCacheIsBounded(t *testing.T) {
	cl := newCollapser(testLogger(t))
	name := func(i int) string { return fmt.Sprintf("x_video1_part%d.mp4", i) }
	for i := range maxCachedFiles + 1 {
		cl.do(t.Context(), name(i), true, func(w http.ResponseWriter) { fmt.Fprint(w, i) })
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
	cl.do(t.Context(), "x_video1_part999.mp4", true, func(w http.ResponseWriter) { w.WriteHeader(http.StatusNotFound) })
	if _, ok := cl.cachedAnswer("x_video1_part999.mp4"); ok {
		t.Error("a 404 was cached")
	}
}
