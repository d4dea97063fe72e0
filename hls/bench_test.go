package hls

import (
	"context"
	"fmt"
	"net/http"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/singoff/singoff/media"
)

// writeClock remembers when each video frame was handed to the muxer,
// by the frame's ntp.
type writeClock struct {
	media.Sink
	mu      sync.Mutex
	written map[int64]time.Time // ntp in ms → when WriteVideo returned
}

func (c *writeClock) WriteVideo(rung int, ntp time.Time, pts int64, au [][]byte) error {
	err := c.Sink.WriteVideo(rung, ntp, pts, au)
	now := time.Now()
	c.mu.Lock()
	c.written[ntp.UnixMilli()] = now
	c.mu.Unlock()
	return err
}

// writtenAt finds when the frame nearest ntp was written.
func (c *writeClock) writtenAt(ntp time.Time) (time.Time, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	ms := ntp.UnixMilli()
	for d := int64(0); d <= 17; d++ { // half a frame at 30 fps
		if at, ok := c.written[ms-d]; ok {
			return at, true
		}
		if at, ok := c.written[ms+d]; ok {
			return at, true
		}
	}
	return time.Time{}, false
}

// BenchmarkPartPublish measures how long after its last frame is written
// a part is served to a client waiting on it (blocking playlist reload,
// loopback HTTP). One op is one part; the program is fed at real time,
// so run it with e.g. -benchtime=100x.
func BenchmarkPartPublish(b *testing.B) {
	s := NewServer(testLogger(b), nil)
	srv := newLoopbackServer(b, router(s))
	m, err := s.Start("bench", program.Info)
	if err != nil {
		b.Fatal(err)
	}
	defer s.End("bench")
	clock := &writeClock{Sink: m, written: make(map[int64]time.Time)}
	ctx, cancel := context.WithCancel(b.Context())
	defer cancel()
	go program.Feed(ctx, clock, time.Duration(b.N)*partDuration+30*time.Second, 1)

	playlistURL := srv.URL + "/hls/bench/" + topPlaylist
	resp, body := get(b, playlistURL, nil)
	if resp.StatusCode != http.StatusOK {
		b.Fatalf("status %d", resp.StatusCode)
	}
	pl := parseMedia(b, body)
	frame := time.Second / time.Duration(program.Info.FPS)
	var latencies []time.Duration
	b.ResetTimer()
	for range b.N {
		msn, part := nextPart(pl)
		_, body := get(b, fmt.Sprintf("%s?_HLS_msn=%d&_HLS_part=%d", playlistURL, msn, part), nil)
		served := time.Now()
		pl = parseMedia(b, body)

		// The newest part ends where the playlist's time ends: the last
		// segment's date plus its duration, plus the parts after it.
		last := pl.Segments[len(pl.Segments)-1]
		if last.PDT.IsZero() {
			b.Fatal("last segment without a date")
		}
		end := last.PDT.Add(last.Duration)
		for _, p := range pl.Parts {
			end = end.Add(p.Duration)
		}
		at, ok := clock.writtenAt(end.Add(-frame))
		if !ok {
			b.Fatalf("no frame written at %v", end.Add(-frame))
		}
		latencies = append(latencies, served.Sub(at))
	}
	b.StopTimer()
	slices.Sort(latencies)
	quantile := func(q float64) float64 {
		return float64(latencies[int(q*float64(len(latencies)-1))]) / float64(time.Millisecond)
	}
	b.ReportMetric(quantile(0.5), "p50-ms")
	b.ReportMetric(quantile(0.95), "p95-ms")
	b.ReportMetric(quantile(1), "max-ms")
}
