package compositor

import (
	"bytes"
	"context"
	"image"
	"image/color"
	"image/jpeg"
	"testing"
	"time"

	"github.com/singoff/singoff/media"
)

// stillPixel is the colour of a still at the program point x, y.
func stillPixel(img image.Image, x, y int) color.RGBA {
	k := media.ProgramWidth / StillWidth
	return color.RGBAModel.Convert(img.At(x/k, y/k)).(color.RGBA)
}

// stillHalfIs tells whether every sample point of half i of the still
// is near c.
func stillHalfIs(img image.Image, i int, c color.RGBA) bool {
	for _, p := range samplePoints {
		if !near(stillPixel(img, i*halfWidth+p[0], p[1]), c, 12) {
			return false
		}
	}
	return true
}

// About once a second the outputs get a 320x180 JPEG of the program as
// it is then: the singers in full-range colour, and a slate once a singer
// has gone.
func TestStills(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	left, right := newTestFeed(), newTestFeed()
	leftCtx, leftGone := context.WithTimeout(ctx, 2*time.Second)
	defer leftGone()
	left.publish(leftCtx, t, singer(1, red, media.CodecH264), 1, nil)
	right.publish(ctx, t, singer(2, blue, media.CodecH264), 1, nil)
	rec, _ := runProgram(t, left, right, 4200*time.Millisecond, nil)

	rec.mu.Lock()
	stills, start := rec.stills, rec.videoNTP[0]
	rec.mu.Unlock()
	if len(stills) < 3 {
		t.Fatalf("%d stills in 4.2 s", len(stills))
	}
	// By program time: a still is made at the middle of every second
	// (unless the machine was too busy for it).
	images := map[time.Duration]image.Image{}
	for i, st := range stills {
		img, err := jpeg.Decode(bytes.NewReader(st.jpeg))
		if err != nil {
			t.Fatalf("still %d: %v", i, err)
		}
		if b := img.Bounds(); b.Dx() != StillWidth || b.Dy() != StillHeight {
			t.Fatalf("still %d is %v", i, b)
		}
		at := st.ntp.Sub(start)
		if at%time.Second != time.Second/2 {
			t.Errorf("still %d of the picture at %v", i, at)
		}
		images[at] = img
	}
	// 1.5 s: both singers; 3.5 s: the first has been gone over a second.
	both, gone := images[1500*time.Millisecond], images[3500*time.Millisecond]
	if both == nil || gone == nil {
		t.Fatalf("no still at 1.5 s or 3.5 s: %d stills", len(stills))
	}
	if !stillHalfIs(both, 0, red) || !stillHalfIs(both, 1, blue) {
		t.Errorf("still at 1.5 s shows %s and %s, want %s and %s", describe(stillPixel(both, 100, 300)),
			describe(stillPixel(both, 740, 300)), describe(red), describe(blue))
	}
	if !stillHalfIs(gone, 0, slateColor) || !stillHalfIs(gone, 1, blue) {
		t.Errorf("last still shows %s and %s, want %s and %s", describe(stillPixel(gone, 100, 300)),
			describe(stillPixel(gone, 740, 300)), describe(slateColor), describe(blue))
	}
}

// The program's limited-range samples become JPEG's full range.
func TestStillRange(t *testing.T) {
	for _, tc := range []struct {
		name   string
		table  *[256]byte
		in     byte
		want   byte
		within byte
	}{
		{"black", &lumaRange, 16, 0, 0},
		{"below black", &lumaRange, 5, 0, 0},
		{"white", &lumaRange, 235, 255, 0},
		{"above white", &lumaRange, 250, 255, 0},
		{"mid grey", &lumaRange, 126, 128, 1},
		{"no colour", &chromaRange, 128, 128, 0},
		{"lowest colour", &chromaRange, 16, 0, 1},
		{"highest colour", &chromaRange, 240, 255, 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := tc.table[tc.in]
			if d := int(got) - int(tc.want); d < -int(tc.within) || d > int(tc.within) {
				t.Errorf("%d → %d, want %d", tc.in, got, tc.want)
			}
		})
	}
}
