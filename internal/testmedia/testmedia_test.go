package testmedia

import (
	"context"
	"errors"
	"io"
	"os"
	"testing"
	"time"

	"github.com/pion/webrtc/v4/pkg/media/h264reader"
	"github.com/pion/webrtc/v4/pkg/media/ivfreader"
	"github.com/pion/webrtc/v4/pkg/media/oggreader"
)

// The clips hold what the players assume: H264 access units with an IDR
// every second, VP8 frames, one Opus packet per Ogg page.
func TestGenerate(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	files, err := Generate(ctx, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}

	f, err := os.Open(files.H264)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	h, err := h264reader.NewReader(f)
	if err != nil {
		t.Fatal(err)
	}
	aus, idrs := 0, 0
	for {
		au, err := nextAccessUnit(h)
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		aus++
		if containsNAL(au, byte(h264reader.NalUnitTypeCodedSliceIdr)) {
			idrs++
			if !containsNAL(au, byte(h264reader.NalUnitTypeSPS)) {
				t.Errorf("access unit %d: IDR without SPS", aus)
			}
		}
	}
	if aus < 55 || idrs != 2 {
		t.Errorf("H264: %d access units, %d IDR; want 60 and 2", aus, idrs)
	}

	v, err := os.Open(files.VP8)
	if err != nil {
		t.Fatal(err)
	}
	defer v.Close()
	ivf, header, err := ivfreader.NewWith(v)
	if err != nil {
		t.Fatal(err)
	}
	if header.Width != 640 || header.Height != 480 {
		t.Errorf("VP8 %dx%d", header.Width, header.Height)
	}
	frames := 0
	for ; ; frames++ {
		if _, _, err := ivf.ParseNextFrame(); err != nil {
			break
		}
	}
	if frames < 55 {
		t.Errorf("VP8: %d frames", frames)
	}

	o, err := os.Open(files.Opus)
	if err != nil {
		t.Fatal(err)
	}
	defer o.Close()
	ogg, oggHeader, err := oggreader.NewWith(o)
	if err != nil {
		t.Fatal(err)
	}
	if oggHeader.SampleRate != 48000 {
		t.Errorf("Opus input sample rate %d", oggHeader.SampleRate)
	}
	var last uint64
	var steps []uint64
	for {
		_, ph, err := ogg.ParseNextPage()
		if err != nil {
			break
		}
		if last > 0 {
			steps = append(steps, ph.GranulePosition-last)
		}
		last = ph.GranulePosition
	}
	if len(steps) < 90 {
		t.Fatalf("Opus: %d audio pages", len(steps))
	}
	// The last page ends the clip early.
	for i, step := range steps[:len(steps)-1] {
		if step != 960 {
			t.Fatalf("page %d holds %d samples, want one 20 ms packet (960)", i, step)
		}
	}
}

// containsNAL tells whether an Annex-B access unit holds a NAL unit of
// type typ, looking after each 4-byte start code.
func containsNAL(au []byte, typ byte) bool {
	for i := 0; i+4 < len(au); i++ {
		if au[i] == 0 && au[i+1] == 0 && au[i+2] == 0 && au[i+3] == 1 && au[i+4]&0x1f == typ {
			return true
		}
	}
	return false
}
