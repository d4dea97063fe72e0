package compositor

import (
	"bytes"
	"image"
	"image/color"
	"image/draw"
	"math"
	"slices"
	"testing"
	"time"

	"github.com/singoff/singoff/internal/synth"
	"github.com/singoff/singoff/media"
)

func TestPlayoutClockFollowsRTPAcrossWrapAndReorder(t *testing.T) {
	var c playoutClock
	t0 := time.Unix(1000, 0)
	// 30 fps video whose RTP clock wraps after the third frame, the
	// fifth arriving before the fourth, each 10-30 ms in transit.
	ts := []uint32{math.MaxUint32 - 6000, math.MaxUint32 - 3000, math.MaxUint32, 2999, 5999, 8999}
	order := []int{0, 1, 2, 4, 3, 5}
	jitter := []time.Duration{10, 30, 10, 20, 25, 10}
	for k, i := range order {
		sent := t0.Add(time.Duration(i) * time.Second / 30)
		p := media.AccessUnit{Codec: media.CodecH264, RTPTime: ts[i], ClockRate: 90000, Arrival: sent.Add(jitter[k] * time.Millisecond)}
		got, _ := c.playAt(&p)
		// Transit is at least 10 ms, measured from the first frame.
		want := sent.Add(10*time.Millisecond + playoutDelay)
		if d := got.Sub(want); d.Abs() > time.Millisecond {
			t.Errorf("frame %d played %v off", i, d)
		}
	}
}

func TestPlayoutClockSharesSenderClockAcrossTracks(t *testing.T) {
	var c playoutClock
	sent := time.Unix(2000, 0)
	audio := media.AccessUnit{Codec: media.CodecOpus, RTPTime: 5, ClockRate: 48000, SenderNTP: sent, Arrival: sent.Add(40 * time.Millisecond)}
	// Video of the same instant arrives 60 ms later (bigger units): it
	// must still play with the audio.
	video := media.AccessUnit{Codec: media.CodecH264, RTPTime: 77, ClockRate: 90000, SenderNTP: sent, Arrival: sent.Add(100 * time.Millisecond)}
	a, _ := c.playAt(&audio)
	v, _ := c.playAt(&video)
	if !a.Equal(v) {
		t.Fatalf("audio at %v, video at %v", a, v)
	}
}

func TestFitKeepsAspect(t *testing.T) {
	for _, tc := range []struct{ w, h, dw, dh int }{
		{640, 480, 640, 480},
		{1280, 720, 640, 360},
		{480, 640, 540, 720},
		{320, 240, 640, 480},
		{720, 1280, 404, 720},
		{3, 1, 640, 212},
	} {
		if dw, dh := fit(tc.w, tc.h); dw != tc.dw || dh != tc.dh {
			t.Errorf("fit(%d, %d) = %d, %d; want %d, %d", tc.w, tc.h, dw, dh, tc.dw, tc.dh)
		}
	}
}

func TestSplitAnnexB(t *testing.T) {
	in := []byte{0, 0, 0, 1, 0x67, 1, 2, 0, 0, 1, 0x68, 3, 0, 0, 0, 1, 0x65, 4, 0}
	got := splitAnnexB(in)
	want := [][]byte{{0x67, 1, 2}, {0x68, 3}, {0x65, 4}}
	if len(got) != len(want) {
		t.Fatalf("got %x", got)
	}
	for i := range want {
		if !bytes.Equal(got[i], want[i]) {
			t.Fatalf("got %x", got)
		}
	}
}

func TestLimitNeverExceedsFullScale(t *testing.T) {
	pcm := []float32{0.5, -0.7, 0.9, -1.6, 2, -2}
	limit(pcm)
	if pcm[0] != 0.5 || pcm[1] != -0.7 {
		t.Fatalf("quiet samples changed: %v", pcm)
	}
	for i := 2; i < len(pcm); i++ {
		if math.Abs(float64(pcm[i])) >= 1 || math.Abs(float64(pcm[i])) < 0.8 {
			t.Fatalf("limited %v", pcm)
		}
	}
	if pcm[3] > pcm[2]*-1 || pcm[4] < pcm[2] {
		t.Fatalf("limiting is not monotone: %v", pcm)
	}
}

func TestAudioRingPlacesSilenceAndDropsLate(t *testing.T) {
	var r audioRing
	one := []float32{1, 1, 1, 1}
	r.write(2, one, one)                   // samples 2..5
	r.write(-2, one, one)                  // samples -2..1: only 0 and 1 are still to play
	r.write(audioRingSamples+10, one, one) // too far ahead
	left, right := make([]float32, 8), make([]float32, 8)
	r.mixInto(left, right, 1, 1)
	want := []float32{1, 1, 1, 1, 1, 1, 0, 0}
	for i := range want {
		if left[i] != want[i] || right[i] != want[i] {
			t.Fatalf("mixed %v", left)
		}
	}
	r.write(0, one, one) // already played
	clear(left)
	r.mixInto(left, right, 1, 1)
	for _, v := range left {
		if v != 0 {
			t.Fatalf("played samples came back: %v", left)
		}
	}
}

func TestAudioRingRampsGain(t *testing.T) {
	var r audioRing
	one := []float32{1, 1, 1, 1, 1, 1, 1, 1}
	r.write(0, one, one)
	r.write(8, one, one)
	left, right := make([]float32, 4), make([]float32, 4)
	r.mixInto(left, right, 1, 0.5)
	if want := []float32{0.875, 0.75, 0.625, 0.5}; !slices.Equal(left, want) || !slices.Equal(right, want) {
		t.Fatalf("ramp mixed %v, %v; want %v", left, right, want)
	}
	clear(left)
	clear(right)
	r.mixInto(left, right, 0.5, 0.5)
	if want := []float32{0.5, 0.5, 0.5, 0.5}; !slices.Equal(left, want) {
		t.Fatalf("steady gain mixed %v, want %v", left, want)
	}
}

// grey is a 4:2:0 program of one colour.
func grey() planes {
	return planes{
		y: bytes.Repeat([]byte{100}, media.ProgramWidth*media.ProgramHeight), ys: media.ProgramWidth,
		cb: bytes.Repeat([]byte{90}, media.ProgramWidth*media.ProgramHeight/4), cr: bytes.Repeat([]byte{160}, media.ProgramWidth*media.ProgramHeight/4), cs: media.ProgramWidth / 2,
	}
}

func TestOverlayBlendsOnlyWhereDrawn(t *testing.T) {
	white := image.NewRGBA(image.Rect(100, 50, 300, 150))
	draw.Draw(white, white.Rect, image.NewUniform(color.RGBA{255, 255, 255, 255}), image.Point{}, draw.Src)
	// Half-transparent black, premultiplied, at odd coordinates.
	black := image.NewRGBA(image.Rect(401, 51, 501, 151))
	draw.Draw(black, black.Rect, image.NewUniform(color.RGBA{0, 0, 0, 128}), image.Point{}, draw.Src)
	// Partly outside the program.
	corner := image.NewRGBA(image.Rect(1200, 700, 1300, 800))
	draw.Draw(corner, corner.Rect, image.NewUniform(color.RGBA{255, 255, 255, 255}), image.Point{}, draw.Src)
	outside := image.NewRGBA(image.Rect(-100, -100, -10, -10))
	p := grey()
	for _, img := range []*image.RGBA{white, black, corner, outside} {
		if l := toLayer(img); l != nil {
			l.img.blendOnto(p, l.x, l.y)
		} else if img != outside {
			t.Fatalf("layer at %v dropped", img.Rect)
		}
	}
	at := func(x, y int) [3]byte {
		return [3]byte{p.y[y*p.ys+x], p.cb[y/2*p.cs+x/2], p.cr[y/2*p.cs+x/2]}
	}
	for _, tc := range []struct {
		x, y int
		want [3]byte
	}{
		{150, 100, [3]byte{235, 128, 128}}, // white
		{100, 50, [3]byte{235, 128, 128}},
		{299, 149, [3]byte{235, 128, 128}},
		{450, 100, [3]byte{58, 109, 144}}, // half black: 100/2+16/2, 90/2+128/2, 160/2+128/2
		{401, 51, [3]byte{58, 94, 155}},   // a quarter of its chroma sample covered
		{500, 150, [3]byte{58, 94, 155}},
		{1279, 719, [3]byte{235, 128, 128}},
		{1199, 700, [3]byte{100, 90, 160}}, // untouched
		{600, 100, [3]byte{100, 90, 160}},
		{150, 400, [3]byte{100, 90, 160}},
		{300, 100, [3]byte{100, 90, 160}},
		{398, 100, [3]byte{100, 90, 160}},
		{450, 48, [3]byte{100, 90, 160}},
	} {
		got := at(tc.x, tc.y)
		for i := range got {
			if d := int(got[i]) - int(tc.want[i]); d < -2 || d > 2 {
				t.Errorf("at %d,%d: %v, want %v", tc.x, tc.y, got, tc.want)
				break
			}
		}
	}
}

func TestDecodingDoesNotAllocate(t *testing.T) {
	clip, err := synth.Encode(synth.Config{Slot: 1, Width: 320, Height: 240}, time.Second)
	if err != nil {
		t.Fatal(err)
	}
	packets := clip.Packets()
	s := newSlot(1, newTestFeed(), quietLogger())
	s.start = time.Now()
	defer s.free()
	next := 0
	feed := func() {
		p := packets[next%len(packets)]
		p.Arrival = time.Now()
		s.handle(p)
		next++
	}
	// Warm up: decoders open, the picture queue fills up.
	for range 40 {
		feed()
	}
	// go-astiav boxes the EAGAIN that ends each receive loop: one small
	// allocation per unit is its, not ours.
	if allocs := testing.AllocsPerRun(60, feed); allocs > 1 {
		t.Fatalf("%.1f allocations per unit decoded", allocs)
	}
}
