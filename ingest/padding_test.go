package ingest

import (
	"fmt"
	"math"
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
			checkFrames(t, pkts, 600_000, c.lateEvery)
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

// checkFrames checks the frames a subscriber of a raw publisher sending
// bitrate received: each whole, followed by the padding packet the
// publisher held back when it did (every lateEvery-th frame, 0 for
// none), and by no other padding. The first frame is left out (it may
// have begun before the subscriber's forwarding did: what was sent
// before is not its to have), and so is the last, which may still be on
// its way, and the late padding of the one before it, sent after the
// last frame's first packet.
func checkFrames(t *testing.T, pkts []rawPacket, bitrate, lateEvery int) {
	t.Helper()
	perFrame, _ := framePackets(bitrate)
	received := map[uint16]bool{}
	media := map[uint16]rawPacket{}
	first, last := uint32(math.MaxUint32), uint32(0)
	for _, p := range pkts {
		received[p.seq] = true
		if !p.padding {
			media[p.seq] = p
			first, last = min(first, p.frame), max(last, p.frame)
		}
	}
	if len(media) == 0 || last < first+3 {
		t.Fatalf("frames %d to %d received, too few to judge", first, last)
	}
	parts, late := map[uint32]int{}, map[uint32]int{}
	stray := 0
	for _, p := range pkts {
		if !p.padding {
			parts[p.frame]++
			continue
		}
		if !received[p.seq-1] {
			continue // the first packet forwarded
		}
		if before, ok := media[p.seq-1]; ok && int(before.part) == perFrame-1 {
			late[before.frame]++
		} else {
			stray++
		}
	}
	for f := first + 1; f < last; f++ {
		if parts[f] != perFrame {
			t.Errorf("frame %d: %d packets, want %d", f, parts[f], perFrame)
		}
		want := 0
		if lateEvery > 0 && f%uint32(lateEvery) == 0 {
			want = 1
		}
		if f < last-1 && late[f] != want {
			t.Errorf("frame %d: followed by %d padding packets, want %d (the late one)", f, late[f], want)
		}
	}
	if stray > 0 {
		t.Errorf("%d padding packets forwarded where no late one was", stray)
	}
}
