package e2e

import (
	"context"
	"net/http"
	"sort"
	"strings"
	"testing"
	"time"

	pionmedia "github.com/pion/webrtc/v4/pkg/media"

	"github.com/singoff/singoff/ingest/whipclient"
	"github.com/singoff/singoff/internal/synth"
	"github.com/singoff/singoff/media"
)

// BenchmarkFirstPart measures, over fresh battles, the time from a
// battle's first WHIP POST to the first part listed in its live video
// playlist (a player can start there). One op is one battle: run it with
// e.g. -benchtime 8x. Bar: ≤ 1.2 s; MediaMTX takes 2.0 s here.
func BenchmarkFirstPart(b *testing.B) {
	s := startServer(b, false)
	var times []float64 // ms
	for b.Loop() {
		b.StopTimer()
		bt := s.createBattle(b, "first part")
		src, err := synth.New(synth.Config{Slot: 1})
		if err != nil {
			b.Fatal(err)
		}
		ctx, cancel := context.WithCancel(context.Background())
		b.StartTimer()
		posted := time.Now()
		pub, err := whipclient.Publish(ctx, s.base+"/api/battles/"+bt.ID+"/singers/1/whip", bt.SingerTokens[0], whipclient.Options{Loopback: true})
		if err != nil {
			b.Fatal(err)
		}
		go src.Run(ctx, func(p media.AccessUnit) {
			if p.Codec.IsVideo() {
				pub.WriteVideo(pionmedia.Sample{Data: p.Data, Duration: time.Second / 30})
			} else {
				pub.WriteAudio(pionmedia.Sample{Data: p.Data, Duration: 20 * time.Millisecond})
			}
		})
		var first time.Duration
		for first == 0 && time.Since(posted) < 10*time.Second {
			status, body := s.get(b, s.base+"/hls/"+bt.ID+"/720p.m3u8")
			if status == http.StatusOK && strings.Contains(body, "#EXT-X-PART:") {
				first = time.Since(posted)
				break
			}
			time.Sleep(10 * time.Millisecond)
		}
		b.StopTimer()
		pub.Close(context.Background())
		cancel()
		s.call(b, http.MethodPost, "/api/battles/"+bt.ID+"/end", bt.HostToken, nil, http.StatusOK, nil)
		if first == 0 {
			b.Fatal("no part within 10 s")
		}
		times = append(times, float64(first)/float64(time.Millisecond))
		b.StartTimer()
	}
	sort.Float64s(times)
	b.ReportMetric(times[0], "min-ms")
	b.ReportMetric(percentile(times, 0.5), "p50-ms")
	b.ReportMetric(times[len(times)-1], "max-ms")
}
