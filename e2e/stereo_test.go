package e2e

import (
	"context"
	bin "encoding/binary"
	"fmt"
	"math"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/singoff/singoff/ingest/whipclient"
	"github.com/singoff/singoff/internal/mediacheck"
	"github.com/singoff/singoff/internal/testmedia"
)

// The program keeps a singer's stereo and highs: a singer sends stereo
// Opus at 128 kb/s, 1 kHz on the left and 15 kHz on the right; in the
// live program's AAC each tone is on its own side, the 15 kHz one as
// loud as the 1 kHz one.
func TestProgramKeepsStereoAndHighs(t *testing.T) {
	s := startServer(t, false)
	bt := s.createBattle(t, "stereo")
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	dir := t.TempDir()
	files, err := testmedia.Generate(ctx, dir)
	if err != nil {
		t.Fatal(err)
	}
	stereo := filepath.Join(dir, "stereo.ogg")
	ffmpeg(t, "-hide_banner", "-v", "error", "-f", "lavfi", "-i", "aevalsrc=0.3*sin(2*PI*1000*t)|0.3*sin(2*PI*15000*t):s=48000:d=4",
		"-c:a", "libopus", "-b:a", "128k", "-frame_duration", "20", "-page_duration", "20000", "-f", "ogg", stereo)
	pub, err := whipclient.Publish(ctx, fmt.Sprintf("%s/api/battles/%s/singers/1/whip", s.base, bt.ID), bt.SingerTokens[0],
		whipclient.Options{Loopback: true})
	if err != nil {
		t.Fatal(err)
	}
	defer pub.Close(context.Background())
	playing, stop := context.WithCancel(ctx)
	done := make(chan struct{}, 2)
	for _, play := range []func() error{
		func() error { return testmedia.PlayH264(playing, pub, files.H264) },
		func() error { return testmedia.PlayOpus(playing, pub, stereo) },
	} {
		go func() {
			if err := play(); err != nil {
				t.Error(err)
			}
			done <- struct{}{}
		}()
	}
	defer func() {
		stop()
		<-done
		<-done
	}()
	live := s.liveProgram(t, bt.ID)
	waitFor(t, "the singer connected", 20*time.Second, func() bool { return s.battle(t, bt.ID).Singers[0].Connected })
	time.Sleep(4 * time.Second) // the segments ffmpeg starts at have the singer

	out, err := exec.CommandContext(ctx, "ffmpeg", "-hide_banner", "-v", "error", "-i", live, "-t", "3", "-vn",
		"-f", "f32le", "-ac", "2", "-ar", "48000", "-").Output()
	if err != nil {
		t.Fatalf("ffmpeg reading %s: %v", live, err)
	}
	var left, right []float64
	for i := 0; i+8 <= len(out); i += 8 {
		left = append(left, float64(math.Float32frombits(bin.LittleEndian.Uint32(out[i:]))))
		right = append(right, float64(math.Float32frombits(bin.LittleEndian.Uint32(out[i+4:]))))
	}
	if len(left) < 48000 {
		t.Fatalf("%d samples of program audio", len(left))
	}
	low, high := 1000.0, 15000.0
	l1, l15 := mediacheck.TonePower(left, low), mediacheck.TonePower(left, high)
	r1, r15 := mediacheck.TonePower(right, low), mediacheck.TonePower(right, high)
	t.Logf("left: 1 kHz %.3g, 15 kHz %.3g; right: 1 kHz %.3g, 15 kHz %.3g", l1, l15, r1, r15)
	db := func(a, b float64) float64 { return 10 * math.Log10(a/b) }
	if l1 < 1e-3 || db(l1, l15) < 20 || r15 < 1e-3 || db(r15, r1) < 20 {
		t.Errorf("stereo lost: left 1 kHz %.3g / 15 kHz %.3g, right 15 kHz %.3g / 1 kHz %.3g; want each tone 20 dB above the other on its side",
			l1, l15, r15, r1)
	}
	if d := db(r15, l1); d < -6 {
		t.Errorf("15 kHz comes out %.1f dB below 1 kHz: the highs are cut", d)
	}
}
