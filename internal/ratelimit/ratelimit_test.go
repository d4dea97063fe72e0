package ratelimit

import (
	"testing"
	"time"
)

func TestBurstThenRefill(t *testing.T) {
	l := New(60, 3) // one a second, bursts of three
	now := time.Unix(1000, 0)
	for i := range 3 {
		if ok, _ := l.Allow("a", now); !ok {
			t.Fatalf("event %d of the burst refused", i+1)
		}
	}
	ok, wait := l.Allow("a", now)
	if ok {
		t.Fatal("fourth event in the same instant allowed")
	}
	if wait <= 0 || wait > time.Second {
		t.Fatalf("retry after %v, want (0, 1s]", wait)
	}
	if ok, _ := l.Allow("b", now); !ok {
		t.Fatal("another client was limited by the first one's use")
	}
	if ok, _ := l.Allow("a", now.Add(wait)); !ok {
		t.Fatal("refused after waiting the advised time")
	}
}

func TestSweepForgetsIdleClients(t *testing.T) {
	l := New(60, 2)
	now := time.Unix(1000, 0)
	l.Allow("a", now)
	l.Allow("b", now.Add(2*time.Minute))
	if _, ok := l.buckets["a"]; ok {
		t.Fatal("idle, refilled bucket kept")
	}
}
