package ingest

import (
	"fmt"
	"os"
	"slices"
	"sync"
	"syscall"
	"testing"
	"time"
)

// TestForwardingDelay measures the delay the server adds forwarding a
// publisher's RTP to a subscriber: from the packet read off the
// publisher's track to its write to every subscriber, with 1 and with 20
// rooms live (one publisher playing H264 + Opus and one subscriber each).
// It also gives the process CPU (server, publishers and subscribers: one
// process) per forwarded Mbit/s. Run it with
//
//	INGEST_BENCH=1 go test ./ingest -run TestForwardingDelay -v
func TestForwardingDelay(t *testing.T) {
	if os.Getenv("INGEST_BENCH") == "" {
		t.Skip("set INGEST_BENCH=1 to measure forwarding delay")
	}
	for _, rooms := range []int{1, 20} {
		t.Run(fmt.Sprintf("rooms=%d", rooms), func(t *testing.T) { measureForwarding(t, rooms) })
	}
}

func measureForwarding(t *testing.T, rooms int) {
	const measure = 10 * time.Second
	ctx := testContext(t, measure+60*time.Second)
	var (
		mu        sync.Mutex
		recording bool
		delays    []time.Duration
	)
	h := newHarness(t)
	h.srv.observeForward = func(d time.Duration) {
		mu.Lock()
		if recording {
			delays = append(delays, d)
		}
		mu.Unlock()
	}
	for i := range rooms {
		id := fmt.Sprintf("bench%d", i)
		h.publish(ctx, id, 1, false)
		sub := h.subscribe(ctx, id, 1)
		go func() {
			for range sub.Packets() {
			}
		}()
	}
	bytesBefore := forwardedBytes(h)
	cpuBefore := processCPU()
	mu.Lock()
	recording = true
	mu.Unlock()
	time.Sleep(measure)
	mu.Lock()
	recording = false
	got := slices.Clone(delays)
	mu.Unlock()
	cpu := processCPU() - cpuBefore
	mbits := float64(forwardedBytes(h)-bytesBefore) * 8 / 1e6

	if len(got) == 0 {
		t.Fatal("nothing forwarded")
	}
	slices.Sort(got)
	pct := func(p float64) time.Duration { return got[int(p*float64(len(got)-1))] }
	mbps := mbits / measure.Seconds()
	t.Logf("rooms=%d packets=%d forwarded=%.2f Mbit/s delay p50=%v p99=%v max=%v; process CPU %.3f cores, %.4f core per forwarded Mbit/s",
		rooms, len(got), mbps, pct(0.50), pct(0.99), got[len(got)-1],
		cpu.Seconds()/measure.Seconds(), cpu.Seconds()/measure.Seconds()/mbps)
}

// forwardedBytes sums the payload bytes every room's forward tracks wrote.
func forwardedBytes(h *harness) uint64 {
	h.mu.Lock()
	defer h.mu.Unlock()
	var n uint64
	for _, r := range h.rooms {
		for _, sl := range r.slots {
			n += sl.video.forwardedBytes.Load() + sl.audio.forwardedBytes.Load()
		}
	}
	return n
}

func processCPU() time.Duration {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
