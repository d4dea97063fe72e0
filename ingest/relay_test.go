package ingest

import (
	"testing"
	"time"

	"github.com/pion/webrtc/v4"
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

// A subscriber behind the impairment relay, 5% loss and 0-40 ms jitter
// each way, gets almost every frame whole: the server answers its NACKs
// with retransmissions even as its estimate of the subscriber's
// downlink falls on that path. With the retransmissions bounded to the
// estimate (pion's default, when the connection estimates), most were
// refused once the estimate had fallen: 60 of the last 200 frames came
// with a hole.
func TestSubscribeThroughALossyRelay(t *testing.T) {
	ctx := testContext(t, time.Minute)
	h := newHarness(t)
	relay := startRelay(t, netsim.Config{Up: netsim.Impairment{Loss: 0.05, Delay: 40 * time.Millisecond},
		Down: netsim.Impairment{Loss: 0.05, Delay: 40 * time.Millisecond}, Seed: 1})
	sub := newRawSubscriber(ctx, t, h, "lossy-sub", 1, relay)
	const bitrate = 1_000_000
	pub := newRawPublisher(ctx, t, h, "lossy-sub", 1, rawPublisherConfig{videoBitrate: bitrate})
	// The estimate starts high and falls with the loss: the last
	// half of 20 s is judged.
	const frames = 400
	for ctx.Err() == nil {
		pkts, _ := sub.got(webrtc.RTPCodecTypeVideo)
		if len(pkts) > 0 && pkts[len(pkts)-1].frame >= frames {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	// The last frames' retransmissions have time to come.
	time.Sleep(500 * time.Millisecond)
	pub.close()
	pkts, _ := sub.got(webrtc.RTPCodecTypeVideo)
	perFrame, _ := framePackets(bitrate)
	parts := map[uint32]map[byte]bool{}
	for _, p := range pkts {
		if parts[p.frame] == nil {
			parts[p.frame] = map[byte]bool{}
		}
		parts[p.frame][p.part] = true
	}
	whole, judged := 0, 0
	for f := uint32(frames / 2); f < frames; f++ {
		judged++
		if len(parts[f]) == perFrame {
			whole++
		}
	}
	t.Logf("relay up %+v, down %+v; %d of %d frames whole (%d packets each)", relay.Up(), relay.Down(), whole, judged, perFrame)
	if relay.Down().Dropped == 0 {
		t.Errorf("the relay lost nothing on the way to the subscriber: %+v", relay.Down())
	}
	if whole < judged*95/100 {
		t.Errorf("%d of %d frames came whole through 5%% loss: retransmissions did not repair them", whole, judged)
	}
}
