package web

import "testing"

// A subscriber that does not read is dropped once its backlog is full,
// never skipped ahead (it would lose chat messages unknowingly): its
// channel closes after the events it holds, and the others go on.
func TestSlowSubscriberDropped(t *testing.T) {
	f := &feed{subs: map[chan []byte]struct{}{}}
	slow, fast := make(chan []byte, sseBacklog), make(chan []byte, sseBacklog)
	f.subs[slow], f.subs[fast] = struct{}{}, struct{}{}
	for i := range sseBacklog + 5 {
		f.send([]byte{byte(i)})
		if got := <-fast; got[0] != byte(i) {
			t.Fatalf("the reading subscriber got event %d, want %d", got[0], i)
		}
	}
	n := 0
	for ev := range slow { // ends: the channel is closed
		if ev[0] != byte(n) {
			t.Fatalf("the slow subscriber's event %d is %d", n, ev[0])
		}
		n++
	}
	if n != sseBacklog {
		t.Fatalf("the slow subscriber got %d events before it was dropped, want %d", n, sseBacklog)
	}
	if _, ok := f.subs[slow]; ok || len(f.subs) != 1 {
		t.Fatalf("subscribers after the drop: %d", len(f.subs))
	}
}
