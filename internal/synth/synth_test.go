package synth

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/singoff/singoff/media"
)

func TestClipIsDecodableH264(t *testing.T) {
	clip, err := Encode(Config{Slot: 1, Width: 320, Height: 240}, 2*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	var video, audio, keyframes int
	var h264 []byte
	for i, p := range clip.Packets() {
		switch p.Codec {
		case media.CodecH264:
			if video == 0 && !p.Keyframe {
				t.Fatalf("packet %d: first video unit is not a keyframe", i)
			}
			if p.Keyframe {
				keyframes++
			}
			video++
			h264 = append(h264, p.Data...)
		case media.CodecOpus:
			audio++
		default:
			t.Fatalf("packet %d: codec %v", i, p.Codec)
		}
	}
	if video != 60 || audio < 98 || audio > 100 || keyframes != 2 {
		t.Fatalf("got %d video units (%d keyframes), %d audio; want 60 (2), ~100", video, keyframes, audio)
	}
	path := filepath.Join(t.TempDir(), "clip.h264")
	if err := os.WriteFile(path, h264, 0o600); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command("ffprobe", "-v", "error", "-count_frames", "-select_streams", "v:0",
		"-show_entries", "stream=codec_name,profile,width,height,nb_read_frames", "-of", "csv=p=0", path).CombinedOutput()
	if err != nil {
		t.Fatalf("ffprobe: %v: %s", err, out)
	}
	if got, want := strings.TrimSpace(string(out)), "h264,Constrained Baseline,320,240,60"; got != want {
		t.Fatalf("ffprobe says %q, want %q", got, want)
	}
}

func TestRunEmitsInRealTime(t *testing.T) {
	for _, codec := range []media.Codec{media.CodecH264, media.CodecVP8} {
		t.Run(codec.String(), func(t *testing.T) {
			src, err := New(Config{Slot: 2, Width: 160, Height: 120, VideoCodec: codec})
			if err != nil {
				t.Fatal(err)
			}
			ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
			defer cancel()
			var mu sync.Mutex
			last := map[media.Codec]media.AccessUnit{}
			count := map[media.Codec]int{}
			start := time.Now()
			err = src.Run(ctx, func(p media.AccessUnit) {
				mu.Lock()
				defer mu.Unlock()
				if prev, ok := last[p.Codec]; ok {
					if int32(p.RTPTime-prev.RTPTime) <= 0 {
						t.Errorf("%v RTP time went from %d to %d", p.Codec, prev.RTPTime, p.RTPTime)
					}
					if p.SenderNTP.Before(prev.SenderNTP) {
						t.Errorf("%v sender time went back", p.Codec)
					}
				}
				last[p.Codec] = p
				count[p.Codec]++
			})
			if err != nil {
				t.Fatal(err)
			}
			if elapsed := time.Since(start); elapsed < 450*time.Millisecond {
				t.Fatalf("Run returned after %v, before its context ended", elapsed)
			}
			// Half a second is ~15 frames and ~25 Opus packets; the
			// bounds only catch a source running far ahead of time.
			if count[codec] < 5 || count[codec] > 17 || count[media.CodecOpus] < 10 || count[media.CodecOpus] > 27 {
				t.Fatalf("counts %v", count)
			}
			if last[codec].ClockRate != 90000 || last[media.CodecOpus].ClockRate != 48000 {
				t.Fatalf("clock rates %d %d", last[codec].ClockRate, last[media.CodecOpus].ClockRate)
			}
		})
	}
}

func TestNewRefusesPicturesWithNoRoomForText(t *testing.T) {
	if _, err := New(Config{Slot: 1, Width: 640, Height: 64}); err == nil {
		t.Fatal("640x64 accepted")
	}
	if _, err := New(Config{Slot: 1, Width: 63, Height: 64}); err == nil {
		t.Fatal("odd width accepted")
	}
}

func TestTimeCodeReadsBack(t *testing.T) {
	const w, h = 320, 30
	y := make([]byte, w*h)
	now := time.UnixMilli(1_764_000_123_456)
	drawTimeCode(y, w, w, now)
	var got uint32
	for bit := range 32 {
		x := bit*w/32 + w/64 // the middle of the block
		if y[(TimeCodeHeight/2)*w+x] > 128 {
			got |= 1 << (31 - bit)
		}
	}
	if got != uint32(now.UnixMilli()) {
		t.Fatalf("time code reads %d, drew %d", got, uint32(now.UnixMilli()))
	}
	if y[TimeCodeHeight*w] != 0 {
		t.Fatal("time code drawn below its strip")
	}
}
