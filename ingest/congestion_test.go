package ingest

import (
	"fmt"
	"testing"
	"time"

	"github.com/singoff/singoff/internal/netsim"
)

// Congestion control on both legs, with pion standing in for the
// browsers. A publisher would send 1.5 Mb/s of video and lowers it, as a
// browser's encoder does, to what the REMB it gets and its own estimate
// allow; between it or its subscriber and the server, a relay (netsim)
// is a link of a set rate with a 200 ms drop-tail queue.
//
//   - Downlink: the subscriber's link is the bottleneck. The server
//     estimates it from the subscriber's TWCC feedback and tells the
//     publisher with REMB: the REMB settles near the link's rate (never
//     below the floor). Before, no REMB was ever sent: the publisher
//     kept sending 1.5 Mb/s into a 600 kb/s link.
//   - Uplink: the publisher's link is the bottleneck. The server's TWCC
//     feedback lets the publisher's own estimator (pion's GCC here, the
//     browser's own in real life) settle near its uplink's rate.
//
// Each with a free link for comparison, where the figure stays high.
func TestCongestionFeedback(t *testing.T) {
	if testing.Short() {
		// Estimates are timings: a loaded machine (or -race) makes a
		// free link look congested. Run it under the media lock.
		t.Skip("20 s of bandwidth estimation in real time")
	}
	const (
		sent  = 1_500_000
		limit = 600_000
		// A free link may still see a false alarm or two on a loaded
		// machine (each 15% down); twice the limit is far from it.
		free = 2 * limit
	)
	cases := []struct {
		name string
		up   bool // the publisher's link, else the subscriber's
		rate int  // the link's rate, 0 for free
	}{
		{"downlink capped", false, limit},
		{"downlink free", false, 0},
		{"uplink capped", true, limit},
		{"uplink free", true, 0},
	}
	h := newHarness(t)
	for i, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel() // a few Mbit/s each: they run in real time side by side
			ctx := testContext(t, 60*time.Second)
			room := fmt.Sprintf("cc%d", i)
			l := netsim.Impairment{Rate: c.rate, Queue: 200 * time.Millisecond}
			cfg := rawPublisherConfig{videoBitrate: sent, adapt: true}
			var via *netsim.Relay
			if c.up {
				cfg.estimate, cfg.relay = true, startRelay(t, netsim.Config{Up: l})
			} else {
				via = startRelay(t, netsim.Config{Down: l})
			}
			newRawSubscriber(ctx, t, h, room, 1, via)
			pub := newRawPublisher(ctx, t, h, room, 1, cfg)
			const run, settle = 20 * time.Second, 10 * time.Second
			start := time.Now()
			select {
			case <-time.After(run):
			case <-ctx.Done():
			}
			rembs, estimates := pub.received()
			figures, what := rembs, "REMB to the publisher"
			if c.up {
				figures, what = estimates, "the publisher's estimate"
			}
			if len(figures) == 0 {
				t.Fatalf("no %s in %v", what, run)
			}
			low, sum, n := figures[0].bps, 0.0, 0
			for _, f := range figures {
				low = min(low, f.bps)
				if f.at.Sub(start) >= settle {
					sum, n = sum+f.bps, n+1
				}
			}
			if n == 0 {
				t.Fatalf("no %s in the last %v", what, run-settle)
			}
			mean := sum / float64(n)
			t.Logf("%s: %d values, lowest %.0f bit/s, %.0f on average over the last %v", what, len(figures), low, mean, run-settle)
			switch {
			case c.rate == 0 && low < free:
				t.Errorf("free link: %s fell to %.0f bit/s, want it to stay above %d", what, low, free)
			case c.rate > 0 && (mean > 1.3*float64(c.rate) || mean < 0.5*float64(c.rate)):
				t.Errorf("link of %d bit/s: %s is %.0f bit/s on average over the last %v, want it near the link's rate (0.5–1.3×)",
					c.rate, what, mean, run-settle)
			}
			if !c.up {
				for _, r := range rembs {
					if r.bps < rembFloor {
						t.Errorf("REMB of %.0f bit/s, below the floor %d", r.bps, rembFloor)
						break
					}
				}
			}
		})
	}
}
