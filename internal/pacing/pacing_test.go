package pacing

import (
	"context"
	"testing"
	"time"
)

func TestUntil(t *testing.T) {
	timer := NewTimer()
	ctx, cancel := context.WithCancel(context.Background())
	start := time.Now()
	if !Until(ctx, timer, start.Add(30*time.Millisecond)) || time.Since(start) < 30*time.Millisecond {
		t.Fatal("did not wait for the moment")
	}
	if !Until(ctx, timer, start) {
		t.Fatal("a moment past did not return at once")
	}
	go func() { time.Sleep(10 * time.Millisecond); cancel() }()
	if Until(ctx, timer, time.Now().Add(time.Hour)) {
		t.Fatal("a cancelled wait reported the moment")
	}
	if Until(ctx, timer, start) {
		t.Fatal("a past moment after the end reported true")
	}
}
