package ingest

import (
	"fmt"
	"slices"
	"syscall"
	"testing"
	"time"
)

// BenchmarkForwarding measures the delay the server adds forwarding a
// publisher's RTP to a subscriber: from the packet read off the
// publisher's track to its write to every subscriber, with 1 and with 20
// rooms live (one publisher playing H264 + Opus and one subscriber each,
// loopback). One op is one forwarded packet: the figures are the delay's
// p50, p99 and max, the forwarded rate, and the process CPU (server,
// publishers and subscribers: one process) per forwarded Mbit/s. Run it
// with
//
//	go test -run '^$' -bench Forwarding -benchtime 10s ./ingest
func BenchmarkForwarding(b *testing.B) {
	for _, rooms := range []int{1, 20} {
		b.Run(fmt.Sprintf("rooms=%d", rooms), func(b *testing.B) { benchmarkForwarding(b, rooms) })
	}
}

func benchmarkForwarding(b *testing.B, rooms int) {
	ctx := testContext(b, 10*time.Minute)
	h := newHarness(b)
	forwarded := make(chan time.Duration, 4096)
	h.srv.observeForward = func(d time.Duration) {
		select {
		case forwarded <- d:
		default: // not measuring
		}
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
	for len(forwarded) > 0 {
		<-forwarded // from the set-up
	}
	bytesBefore := h.srv.Stats().RTPBytesOut
	cpuBefore := processCPU()
	start := time.Now()
	var delays []time.Duration
	for b.Loop() {
		select {
		case d := <-forwarded:
			delays = append(delays, d)
		case <-ctx.Done():
			b.Fatal("nothing forwarded")
		}
	}
	elapsed := time.Since(start).Seconds()
	cpu := (processCPU() - cpuBefore).Seconds() / elapsed
	mbps := float64(h.srv.Stats().RTPBytesOut-bytesBefore) * 8 / 1e6 / elapsed

	slices.Sort(delays)
	pct := func(p float64) float64 {
		return float64(delays[int(p*float64(len(delays)-1))].Nanoseconds())
	}
	b.ReportMetric(pct(0.50), "p50-ns")
	b.ReportMetric(pct(0.99), "p99-ns")
	b.ReportMetric(pct(1), "max-ns")
	b.ReportMetric(mbps, "Mbit/s")
	b.ReportMetric(cpu/mbps, "cores/Mbit/s")
}

func processCPU() time.Duration {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// BenchmarkOpenRoom measures what a room costs before anyone publishes.
func BenchmarkOpenRoom(b *testing.B) {
	h := newHarness(b)
	b.ReportAllocs()
	for b.Loop() {
		r, err := h.srv.OpenRoom("bench", Hooks{})
		if err != nil {
			b.Fatal(err)
		}
		r.Close()
	}
}
