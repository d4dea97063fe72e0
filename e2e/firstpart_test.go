package e2e

import (
	"context"
	"net/http"
	"os"
	"sort"
	"strings"
	"testing"
	"time"

	pionmedia "github.com/pion/webrtc/v4/pkg/media"

	"github.com/singoff/singoff/ingest/whipclient"
	"github.com/singoff/singoff/internal/synth"
	"github.com/singoff/singoff/media"
)

// TestBenchFirstPart measures, over fresh battles, the time from a
// battle's first WHIP POST to the first part listed in its live video
// playlist (a player can start there). Bar: ≤ 1.2 s; MediaMTX takes
// 2.0 s here.
func TestBenchFirstPart(t *testing.T) {
	if os.Getenv("SINGOFF_BENCH") == "" {
		t.Skip("benchmark: set SINGOFF_BENCH=1")
	}
	s := startServer(t, false)
	var times []time.Duration
	for range 8 {
		b := s.createBattle(t, "first part")
		src, err := synth.New(synth.Config{Slot: 1})
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithCancel(context.Background())
		posted := time.Now()
		pub, err := whipclient.Publish(ctx, s.base+"/api/battles/"+b.ID+"/singers/1/whip", b.SingerTokens[0], whipclient.Options{Loopback: true})
		if err != nil {
			t.Fatal(err)
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
			status, body := s.get(t, s.base+"/hls/"+b.ID+"/video1_stream.m3u8")
			if status == http.StatusOK && strings.Contains(body, "#EXT-X-PART:") {
				first = time.Since(posted)
				break
			}
			time.Sleep(10 * time.Millisecond)
		}
		pub.Close(context.Background())
		cancel()
		s.call(t, http.MethodPost, "/api/battles/"+b.ID+"/end", b.HostToken, nil, http.StatusOK, nil)
		if first == 0 {
			t.Fatal("no part within 10 s")
		}
		times = append(times, first)
	}
	sort.Slice(times, func(i, j int) bool { return times[i] < times[j] })
	t.Logf("first WHIP POST → first part, %d battles: min %v, median %v, max %v", len(times),
		times[0].Round(time.Millisecond), times[len(times)/2].Round(time.Millisecond), times[len(times)-1].Round(time.Millisecond))
}
