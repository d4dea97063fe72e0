package ingest

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/pion/webrtc/v4"
	"github.com/singoff/singoff/ingest/whipclient"
	"github.com/singoff/singoff/media"
)

// received sums what a subscriber got for one kind.
type received struct {
	packets  int
	mimeType string
	seqs     []uint16
	stamps   []uint32
}

// receive reads sub's packets until until says enough for both kinds, or
// ctx ends.
func receive(ctx context.Context, sub *whipclient.Subscriber, until func(video, audio *received) bool) (video, audio *received) {
	video, audio = &received{}, &received{}
	for !until(video, audio) {
		select {
		case p := <-sub.Packets():
			r := audio
			if p.Kind == webrtc.RTPCodecTypeVideo {
				r = video
			}
			r.packets++
			r.mimeType = p.MimeType
			r.seqs = append(r.seqs, p.RTP.SequenceNumber)
			r.stamps = append(r.stamps, p.RTP.Timestamp)
		case <-ctx.Done():
			return video, audio
		}
	}
	return video, audio
}

func atLeast(n int) func(video, audio *received) bool {
	return func(video, audio *received) bool { return video.packets >= n && audio.packets >= n }
}

// feedUnits reads a slot's feed until it holds a video keyframe and n
// audio and n video units, or ctx ends.
func feedUnits(ctx context.Context, f media.Feed, n int) (video, audio []media.AccessUnit) {
	keyframe := false
	for !keyframe || len(video) < n || len(audio) < n {
		select {
		case p := <-f.Units():
			if p.Codec.IsVideo() {
				video = append(video, p)
				keyframe = keyframe || p.Keyframe
			} else {
				audio = append(audio, p)
			}
		case <-ctx.Done():
			return video, audio
		}
	}
	return video, audio
}

func TestPublishSubscribeH264(t *testing.T) {
	ctx := testContext(t, 30*time.Second)
	h := newHarness(t)
	pub := h.publish(ctx, "a", 1, false)
	sub := h.subscribe(ctx, "a", 1)

	video, audio := receive(ctx, sub, atLeast(50))
	if video.packets < 50 || audio.packets < 50 {
		t.Fatalf("subscriber got %d video and %d audio packets, want 50 each", video.packets, audio.packets)
	}
	if !strings.EqualFold(video.mimeType, webrtc.MimeTypeH264) || !strings.EqualFold(audio.mimeType, webrtc.MimeTypeOpus) {
		t.Errorf("subscriber codecs %s, %s; want H264, opus", video.mimeType, audio.mimeType)
	}
	select {
	case <-pub.KeyframeRequests():
	case <-ctx.Done():
		t.Error("new subscriber did not make the publisher get a keyframe request")
	}

	// Admitted, answered, then connected.
	h.waitEvents("a", []hookEvent{{"a", hookAdmit, 1, true}, {"a", hookNegotiated, 1, true}, {"a", hookConnected, 1, true}})
	feed := h.room("a").Feed(1)
	vunits, aunits := feedUnits(ctx, feed, 30)
	checkUnits(t, vunits, media.CodecH264, 90000)
	checkUnits(t, aunits, media.CodecOpus, 48000)
	for _, u := range vunits {
		if u.Keyframe && !strings.HasPrefix(string(u.Data), "\x00\x00\x00\x01") && !strings.HasPrefix(string(u.Data), "\x00\x00\x01") {
			t.Errorf("keyframe AU does not start with a start code: % x", u.Data[:min(8, len(u.Data))])
		}
	}
	// RTCP sender reports come about every second: some unit must
	// carry the sender's clock within a few seconds.
	hasNTP := func(units []media.AccessUnit) bool {
		return slices.ContainsFunc(units, func(p media.AccessUnit) bool { return !p.SenderNTP.IsZero() })
	}
	for !hasNTP(aunits) && ctx.Err() == nil {
		_, aunits = feedUnits(ctx, feed, 50)
	}
	if !hasNTP(aunits) {
		t.Error("no audio unit has SenderNTP")
	} else if i := slices.IndexFunc(aunits, func(p media.AccessUnit) bool { return !p.SenderNTP.IsZero() }); time.Since(aunits[i].SenderNTP).Abs() > 10*time.Second {
		t.Errorf("SenderNTP %v is far from now", aunits[i].SenderNTP)
	}
}

// checkUnits checks units of one track: codec, clock rate, one session,
// timestamps that advance by plausible steps.
func checkUnits(t *testing.T, units []media.AccessUnit, codec media.Codec, clockRate uint32) {
	t.Helper()
	if len(units) < 2 {
		t.Fatalf("%d %v units", len(units), codec)
	}
	for i, u := range units {
		if u.Codec != codec || u.ClockRate != clockRate || len(u.Data) == 0 || u.Session != units[0].Session || u.Arrival.IsZero() {
			t.Fatalf("unit %d: codec %v clock %d len %d session %d; want %v, %d, data, session %d",
				i, u.Codec, u.ClockRate, len(u.Data), u.Session, codec, clockRate, units[0].Session)
		}
		if i > 0 {
			step := int32(u.RTPTime - units[i-1].RTPTime)
			if step <= 0 || step > int32(clockRate/2) {
				t.Errorf("unit %d: timestamp step %d", i, step)
			}
		}
	}
	if codec.IsVideo() && !slices.ContainsFunc(units, func(p media.AccessUnit) bool { return p.Keyframe }) {
		t.Errorf("no %v keyframe", codec)
	}
}

func TestVP8Publish(t *testing.T) {
	ctx := testContext(t, 30*time.Second)
	h := newHarness(t)
	h.publish(ctx, "v", 2, true)
	sub := h.subscribe(ctx, "v", 2)
	video, audio := receive(ctx, sub, atLeast(30))
	if video.packets < 30 || audio.packets < 30 {
		t.Fatalf("subscriber got %d video and %d audio packets", video.packets, audio.packets)
	}
	if !strings.EqualFold(video.mimeType, webrtc.MimeTypeVP8) {
		t.Errorf("subscriber video codec %s, want VP8", video.mimeType)
	}
	vunits, _ := feedUnits(ctx, h.room("v").Feed(2), 30)
	checkUnits(t, vunits, media.CodecVP8, 90000)
}

// A subscriber that comes before the publisher gets media once it
// publishes, and keeps getting one continuous stream when the publisher
// reloads (a second POST on the slot), without renegotiating.
func TestSubscribeBeforePublishAndReload(t *testing.T) {
	ctx := testContext(t, 40*time.Second)
	h := newHarness(t)
	sub := h.subscribe(ctx, "b", 1)
	h.publish(ctx, "b", 1, false)
	before, beforeAudio := receive(ctx, sub, atLeast(30))
	if before.packets < 30 || beforeAudio.packets < 30 {
		t.Fatalf("subscriber got %d video and %d audio packets from the first publisher", before.packets, beforeAudio.packets)
	}

	second := h.publish(ctx, "b", 1, false)
	// Drain until the reload is surely in effect, then take a sample that
	// spans it.
	after, afterAudio := receive(ctx, sub, atLeast(150))
	if after.packets < 150 || afterAudio.packets < 150 {
		t.Fatalf("subscriber got %d video and %d audio packets after the reload", after.packets, afterAudio.packets)
	}
	all := &received{seqs: append(before.seqs, after.seqs...), stamps: append(before.stamps, after.stamps...)}
	checkContinuous(t, "video", all, 90000)
	allAudio := &received{seqs: append(beforeAudio.seqs, afterAudio.seqs...), stamps: append(beforeAudio.stamps, afterAudio.stamps...)}
	checkContinuous(t, "audio", allAudio, 48000)

	// The reload is admitted and answered, and the slot stays connected.
	h.waitEvents("b", []hookEvent{
		{"b", hookAdmit, 1, true}, {"b", hookNegotiated, 1, true}, {"b", hookConnected, 1, true},
		{"b", hookAdmit, 1, true}, {"b", hookNegotiated, 1, true},
	})
	if err := second.Close(ctx); err != nil {
		t.Fatal(err)
	}
	h.waitEvents("b", []hookEvent{{"b", hookConnected, 1, true}, {"b", hookConnected, 1, false}}, hookConnected)
}

// checkContinuous checks that sequence numbers never jump back or skip
// far, and timestamps never go back by more than reordering allows.
func checkContinuous(t *testing.T, kind string, r *received, clockRate uint32) {
	t.Helper()
	for i := 1; i < len(r.seqs); i++ {
		d := int16(r.seqs[i] - r.seqs[i-1])
		if d < -5 || d > 20 {
			t.Errorf("%s: sequence number jumps from %d to %d", kind, r.seqs[i-1], r.seqs[i])
		}
		if step := int32(r.stamps[i] - r.stamps[i-1]); step < -int32(clockRate/10) || step > int32(clockRate) {
			t.Errorf("%s: timestamp jumps by %d", kind, step)
		}
	}
}

func TestSubscriberKeyframeRequestReachesPublisher(t *testing.T) {
	ctx := testContext(t, 30*time.Second)
	h := newHarness(t)
	pub := h.publish(ctx, "k", 1, false)
	sub := h.subscribe(ctx, "k", 1)
	receive(ctx, sub, atLeast(10))
	// Past the rate limit of the request the new subscriber caused.
	time.Sleep(keyframeInterval)
	before := pub.KeyframeRequestCount()
	deadline := time.Now().Add(5 * time.Second)
	for pub.KeyframeRequestCount() == before && time.Now().Before(deadline) {
		if err := sub.RequestKeyframe(); err != nil {
			t.Fatal(err)
		}
		time.Sleep(50 * time.Millisecond)
	}
	if pub.KeyframeRequestCount() == before {
		t.Fatal("the subscriber's PLI did not reach the publisher")
	}
	st := h.srv.Stats()
	if st.RTPPacketsIn == 0 || st.RTPBytesIn < st.RTPPacketsIn || st.RTPPacketsOut == 0 || st.PLIsIn == 0 || st.PLIsOut == 0 {
		t.Fatalf("stats do not show the traffic: %+v", st)
	}
}

func TestTwentyRooms(t *testing.T) {
	if testing.Short() {
		t.Skip("20 rooms of real media")
	}
	ctx := testContext(t, 90*time.Second)
	h := newHarness(t)
	rooms := 20
	if raceDetector {
		// 20 real-time rooms under the race detector starve a 2-core
		// machine until handshakes time out.
		rooms = 5
	}
	subs := make([]*whipclient.Subscriber, rooms)
	for i := range rooms {
		id := fmt.Sprintf("room%d", i)
		h.publish(ctx, id, 1, false)
		subs[i] = h.subscribe(ctx, id, 1)
	}
	for i, sub := range subs {
		video, audio := receive(ctx, sub, atLeast(20))
		if video.packets < 20 || audio.packets < 20 {
			t.Errorf("room %d: subscriber got %d video and %d audio packets", i, video.packets, audio.packets)
		}
	}
}

// Closing a room ends its feeds and reports its connected publisher
// gone; the id can be opened again.
func TestRoomCloseEndsFeed(t *testing.T) {
	ctx := testContext(t, 30*time.Second)
	h := newHarness(t)
	h.publish(ctx, "c", 1, false)
	room := h.room("c")
	feed := room.Feed(1)
	feedUnits(ctx, feed, 5)
	h.waitEvents("c", []hookEvent{{"c", hookConnected, 1, true}}, hookConnected)
	room.Close()
	h.waitEvents("c", []hookEvent{{"c", hookConnected, 1, true}, {"c", hookConnected, 1, false}}, hookConnected)
	for open := true; open; {
		select {
		case _, open = <-feed.Units():
		case <-ctx.Done():
			t.Fatal("feed not closed after Room.Close")
		}
	}
	if h.srv.Room("c") != nil {
		t.Fatal("closed room still open")
	}
	again := h.room("c")
	if again == room {
		t.Fatal("the closed room came back")
	}
	h.publish(ctx, "c", 1, false)
	if video, audio := feedUnits(ctx, again.Feed(1), 5); len(video) < 5 || len(audio) < 5 {
		t.Fatalf("the reopened room's feed gave %d video and %d audio units", len(video), len(audio))
	}
}

// A singer whose network drops UDP publishes over ICE-TCP on the same
// port, and the other singer receives them as usual.
func TestPublishOverTCP(t *testing.T) {
	ctx := testContext(t, 30*time.Second)
	h := newHarness(t)
	pub := h.publishWith(ctx, "tcp", 1, false, whipclient.Options{Loopback: true, TCP: true})
	sub := h.subscribe(ctx, "tcp", 1)
	video, audio := receive(ctx, sub, atLeast(30))
	if video.packets < 30 || audio.packets < 30 {
		t.Fatalf("subscriber got %d video and %d audio packets over a TCP publisher, want 30 each", video.packets, audio.packets)
	}
	pair, err := pub.PeerConnection().SCTP().Transport().ICETransport().GetSelectedCandidatePair()
	if err != nil || pair == nil {
		t.Fatalf("publisher's selected candidate pair: %v, %v", pair, err)
	}
	if pair.Local.Protocol != webrtc.ICEProtocolTCP {
		t.Fatalf("publisher's ICE runs over %s, want tcp", pair.Local.Protocol)
	}
}

// A burst of keyframe requests inside the rate limit reaches the
// publisher as two: one at once and one when the interval is over, so
// none is lost and the publisher is not flooded.
func TestKeyframeRequestsInABurstAreDeferredNotLost(t *testing.T) {
	ctx := testContext(t, 30*time.Second)
	h := newHarness(t)
	pub := h.publish(ctx, "burst", 1, false)
	sub := h.subscribe(ctx, "burst", 1)
	receive(ctx, sub, atLeast(10))
	time.Sleep(2 * keyframeInterval) // past the request the subscriber's join made
	before := pub.KeyframeRequestCount()
	for range 5 {
		if err := sub.RequestKeyframe(); err != nil {
			t.Fatal(err)
		}
		time.Sleep(20 * time.Millisecond)
	}
	time.Sleep(keyframeInterval + 400*time.Millisecond)
	if got := pub.KeyframeRequestCount() - before; got != 2 {
		t.Fatalf("a burst of 5 requests reached the publisher as %d, want 2 (one now, one deferred)", got)
	}
}
