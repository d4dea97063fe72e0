package ingest

import (
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/pion/webrtc/v4"
)

// A publisher that pads between frames (padding-only packets numbered
// with the media, as a browser probes when RTX is not negotiated) is
// forwarded without holes: the subscriber gets contiguous sequence
// numbers, every frame whole, and padding only where a late one fills
// its place. Before, padding was dropped with the numbering left as it
// was: a hole after every padded frame, which makes Chrome hold H264
// frames back until a keyframe.
func TestPaddingLeavesNoHoles(t *testing.T) {
	cases := []struct {
		name      string
		padding   int // padding packets after each frame
		lateEvery int // every n-th frame's first padding packet comes late
	}{
		{"no padding", 0, 0},
		{"padding after each frame", 3, 0},
		{"padding, some late", 3, 4},
	}
	h := newHarness(t)
	for i, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			ctx := testContext(t, 30*time.Second)
			room := fmt.Sprintf("pad%d", i)
			sub := newRawSubscriber(ctx, t, h, room, 1, nil)
			pub := newRawPublisher(ctx, t, h, room, 1, rawPublisherConfig{videoBitrate: 600_000, padding: c.padding, lateEvery: c.lateEvery})
			const frames = 40
			for ctx.Err() == nil {
				pkts, _ := sub.got(webrtc.RTPCodecTypeVideo)
				if len(pkts) > 0 && pkts[len(pkts)-1].frame >= frames {
					break
				}
				time.Sleep(50 * time.Millisecond)
			}
			pub.close()
			pkts, _ := sub.got(webrtc.RTPCodecTypeVideo)
			checkNoHoles(t, pkts)
			checkWholeFrames(t, pkts, 600_000)
			late := 0
			for _, p := range pkts {
				if p.padding {
					late++
				}
			}
			lastFrame := pkts[len(pkts)-1].frame
			wantLate := 0
			if c.lateEvery > 0 {
				// Frame 0's and every lateEvery-th after it, once the
				// next frame has come.
				wantLate = int(lastFrame-1)/c.lateEvery + 1
			}
			if late != wantLate {
				t.Errorf("%d padding packets forwarded, want %d (the late ones)", late, wantLate)
			}
		})
	}
}

// checkNoHoles checks that the sequence numbers received are each other's
// neighbours: no duplicate, no hole, whatever the order they came in.
func checkNoHoles(t *testing.T, pkts []rawPacket) {
	t.Helper()
	if len(pkts) == 0 {
		t.Fatal("no video received")
	}
	ext := make([]int64, len(pkts))
	newest := int64(pkts[0].seq)
	for i, p := range pkts {
		ext[i] = newest + int64(int16(p.seq-uint16(newest)))
		newest = max(newest, ext[i])
	}
	slices.Sort(ext)
	var holes []string
	for i := 1; i < len(ext); i++ {
		if d := ext[i] - ext[i-1]; d != 1 {
			holes = append(holes, fmt.Sprintf("%d then %d", uint16(ext[i-1]), uint16(ext[i])))
		}
	}
	if len(holes) > 0 {
		t.Errorf("%d holes or duplicates in %d packets' sequence numbers, the first: %s", len(holes), len(ext), holes[0])
	}
}

// checkWholeFrames checks that every frame but the last, which may still
// be on its way, arrived whole, of a raw publisher sending bitrate.
func checkWholeFrames(t *testing.T, pkts []rawPacket, bitrate int) {
	t.Helper()
	perFrame, _ := framePackets(bitrate)
	parts := map[uint32]int{}
	for _, p := range pkts {
		if !p.padding {
			parts[p.frame]++
		}
	}
	last := pkts[len(pkts)-1].frame
	for f := uint32(0); f < last; f++ {
		if parts[f] != perFrame {
			t.Errorf("frame %d: %d packets, want %d", f, parts[f], perFrame)
		}
	}
}
