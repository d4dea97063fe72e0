package ingest

import (
	"fmt"
	"testing"
	"time"

	"github.com/pion/rtcp"
	"github.com/pion/webrtc/v4"
)

// The sender reports a subscriber gets map RTP time to the publisher's
// wall clock exactly as the publisher's own do, for audio and video, so
// the opponent's browser lip-syncs them as the singer's browser captured
// them. The publisher here sends its video 80 ms after capture (encoding)
// and its audio 20 ms after (framing), as browsers do. Before, the
// server made the subscriber's reports from the times it forwarded the
// packets: measured with this test on that code, video was stated
// ≈81 ms late and audio ≈21 ms late, so the picture lagged the voice by
// ≈60 ms, beyond the ±40 ms a viewer tolerates.
func TestSenderReportsTranslated(t *testing.T) {
	ctx := testContext(t, 30*time.Second)
	h := newHarness(t)
	sub := newRawSubscriber(ctx, t, h, "sr", 1, nil)
	pub := newRawPublisher(ctx, t, h, "sr", 1, rawPublisherConfig{
		videoBitrate: 300_000, videoDelay: 80 * time.Millisecond, audioDelay: 20 * time.Millisecond,
	})
	kinds := []struct {
		kind  webrtc.RTPCodecType
		clock rawClock
	}{{webrtc.RTPCodecTypeVideo, pub.videoClock}, {webrtc.RTPCodecTypeAudio, pub.audioClock}}
	const reports = 4
	enough := func() bool {
		for _, k := range kinds {
			if _, srs := sub.got(k.kind); len(srs) < reports {
				return false
			}
		}
		return true
	}
	for !enough() && ctx.Err() == nil {
		time.Sleep(100 * time.Millisecond)
	}
	var offsets [2]time.Duration
	for i, k := range kinds {
		pkts, srs := sub.got(k.kind)
		if len(srs) < reports {
			t.Fatalf("%s: %d sender reports, want %d", k.kind, len(srs), reports)
		}
		delta, err := timestampDelta(pkts, k.clock)
		if err != nil {
			t.Fatalf("%s: %v", k.kind, err)
		}
		tick := time.Second / time.Duration(k.clock.clockRate)
		for _, sr := range srs {
			off := statedOffset(sr, delta, k.clock)
			if off.Abs() > tick+time.Microsecond {
				t.Errorf("%s: a sender report states RTP time %d at %v off the publisher's mapping, want within a tick (%v)",
					k.kind, sr.RTPTime, off, tick)
			}
			offsets[i] = off
		}
		t.Logf("%s: the subscriber's reports state its RTP times %v off the publisher's capture times", k.kind, offsets[i])
	}
	if skew := offsets[0] - offsets[1]; skew.Abs() > 40*time.Millisecond {
		t.Errorf("lip sync: the video is stated %v after the audio, want within ±40ms", skew)
	}
}

// timestampDelta is what the server added to the publisher's RTP
// timestamps of a track, from the packets received (each names its frame,
// whose timestamp the publisher's clock gives). Every packet must agree.
func timestampDelta(pkts []rawPacket, c rawClock) (uint32, error) {
	var delta uint32
	seen := false
	for _, p := range pkts {
		if p.padding {
			continue
		}
		d := p.ts - c.rtpTime(p.frame)
		if seen && d != delta {
			return 0, fmt.Errorf("frame %d came with timestamp offset %d, earlier ones with %d", p.frame, d, delta)
		}
		delta, seen = d, true
	}
	if !seen {
		return 0, fmt.Errorf("no packets")
	}
	return delta, nil
}

// statedOffset is how far the wall-clock time a subscriber's sender
// report states for its RTP time is from the publisher's capture time of
// that RTP time.
func statedOffset(sr rtcp.SenderReport, delta uint32, c rawClock) time.Duration {
	return ntpTime(sr.NTPTime).Sub(c.captureOf(sr.RTPTime - delta))
}
