package ingest

import (
	"testing"
	"time"

	"github.com/singoff/singoff/ingest/whipclient"
	"github.com/singoff/singoff/internal/netsim"
)

// A singer behind the impairment relay, 5% loss and 0-40 ms jitter each
// way: the session comes up through it (ICE and DTLS pass), media flows,
// the relay impairs it, and retransmissions (NACK, both ways through the
// relay) recover almost every lost video packet in time: few video units
// reach the compositor marked as lost.
func TestPublishThroughALossyRelay(t *testing.T) {
	ctx := testContext(t, 30*time.Second)
	h := newHarness(t)
	relay, err := netsim.Start(netsim.Config{Up: netsim.Impairment{Loss: 0.05, Delay: 40 * time.Millisecond},
		Down: netsim.Impairment{Loss: 0.05, Delay: 40 * time.Millisecond}, Seed: 1})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { relay.Close() })
	h.publishWith(ctx, "lossy", 1, false, whipclient.Options{Loopback: true, RewriteOffer: relay.Offer, RewriteAnswer: relay.Answer})
	video, audio := feedUnits(ctx, h.room("lossy").Feed(1), 150)
	up := relay.Up()
	if up.Media == 0 || up.Dropped == 0 || up.Delayed == 0 || up.Other == 0 {
		t.Errorf("the relay did not impair the path: %+v", up)
	}
	loss := 0
	for _, u := range video {
		if u.Loss {
			loss++
		}
	}
	t.Logf("relay up %+v, down %+v; %d video units, %d after a loss; %d audio", up, relay.Down(), len(video), loss, len(audio))
	if len(video) < 150 || len(audio) < 150 || loss > len(video)/10 {
		t.Errorf("%d video units, %d of them after a loss; %d audio units", len(video), loss, len(audio))
	}
}
