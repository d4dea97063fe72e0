package hls

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"testing"
)

// Ids that are not live are answered from memory: the latest ended ones
// 410, any other 404; the memory is bounded, oldest forgotten first.
func TestNotLiveAnsweredFromMemory(t *testing.T) {
	s := NewServer(testLogger(t), []string{"endedLatest", "endedBefore"})
	if _, err := s.Start("nowEnded", program.Info); err != nil {
		t.Fatal(err)
	}
	s.End("nowEnded")
	for _, tc := range []struct {
		id   string
		want int
	}{
		{"endedLatest", http.StatusGone},
		{"endedBefore", http.StatusGone},
		{"nowEnded", http.StatusGone},
		{"neverSeen", http.StatusNotFound},
		{"bad id!", http.StatusNotFound},
	} {
		t.Run(tc.id, func(t *testing.T) {
			w := httptest.NewRecorder()
			s.Serve(w, httptest.NewRequest("GET", "/hls/x/index.m3u8", nil), tc.id, "index.m3u8", "192.0.2.1")
			if w.Code != tc.want || w.Header().Get("Cache-Control") != cacheError {
				t.Fatalf("%d %q, want %d no-store", w.Code, w.Header().Get("Cache-Control"), tc.want)
			}
		})
	}

	e := newEndedSet(3)
	for i := range 5 {
		e.add(fmt.Sprint(i))
		e.add(fmt.Sprint(i)) // twice: still one place
	}
	for i, want := range []bool{false, false, true, true, true} {
		if e.has(fmt.Sprint(i)) != want {
			t.Errorf("after 5 ids in a set of 3, has(%d) = %v", i, !want)
		}
	}
	if len(e.ids) != 3 || len(e.order) != 3 {
		t.Errorf("the set holds %d ids in %d places, want 3", len(e.ids), len(e.order))
	}
}
