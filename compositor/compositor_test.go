package compositor

import (
	"context"
	"image/color"
	"math"
	"os/exec"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/bluenviron/mediacommon/v2/pkg/codecs/h264"

	"github.com/singoff/singoff/internal/mediacheck"
	"github.com/singoff/singoff/internal/synth"
	"github.com/singoff/singoff/media"
)

var (
	red  = color.RGBA{200, 40, 40, 255}
	blue = color.RGBA{40, 60, 200, 255}
	// slateColor is the slates' background.
	slateColor = color.RGBA{40, 40, 48, 255}
)

// samplePoints are points of a half inside a 4:3 singer's picture and on
// a slate's background, away from its text.
var samplePoints = [][2]int{{100, 300}, {540, 300}, {320, 160}}

// halfIs tells whether every sample point of half i of frame is near c.
func halfIs(frame []byte, i int, c color.RGBA) bool {
	for _, p := range samplePoints {
		if !near(pixel(frame, i*halfWidth+p[0], p[1]), c, 40) {
			return false
		}
	}
	return true
}

// singer is a small synthetic singer, cheap enough for tests.
func singer(slot int, c color.RGBA, codec media.Codec) synth.Config {
	return synth.Config{Slot: slot, Width: 320, Height: 240, Color: &c, VideoCodec: codec}
}

func TestProgramShowsBothSingersAndMixesBoth(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	left, right := newTestFeed(), newTestFeed()
	left.publish(ctx, t, singer(1, red, media.CodecH264), 1, nil)
	right.publish(ctx, t, singer(2, blue, media.CodecVP8), 1, nil)
	rec, c := runProgram(t, left, right, 3*time.Second, nil)

	info := c.Info()
	if len(info.Video) != 2 || info.FPS != 30 || info.Audio.SampleRate != 48000 || info.Audio.ChannelConfig != 2 {
		t.Fatalf("program info %+v", info)
	}
	// The ladder: each rung's SPS says its size.
	for i, want := range []media.VideoRung{{Width: 1280, Height: 720, Bitrate: 2_500_000}, {Width: 640, Height: 360, Bitrate: 600_000}} {
		r := info.Video[i]
		var sps h264.SPS
		if len(r.PPS) == 0 || r.PPS[0]&0x1f != 8 || sps.Unmarshal(r.SPS) != nil || sps.Width() != want.Width || sps.Height() != want.Height ||
			r.Width != want.Width || r.Height != want.Height || r.Bitrate != want.Bitrate {
			t.Errorf("rung %d: %dx%d at %d, SPS %dx%d; want %+v", i, r.Width, r.Height, r.Bitrate, sps.Width(), sps.Height(), want)
		}
	}
	st := c.Stats()
	if st.FramesOut != int64(len(rec.videoPTS)) || st.Slots[0].State != SlotLive || st.Slots[1].State != SlotLive {
		t.Fatalf("stats %+v, %d frames recorded", st, len(rec.videoPTS))
	}
	checkMonotonePTS(t, "video", rec.videoPTS, 3000, 1)
	checkMonotonePTS(t, "audio", rec.audioPTS, 1024, 1)
	if rec.audioPTS[0] != 0 {
		t.Errorf("audio starts at %d", rec.audioPTS[0])
	}
	// Each frame follows the audio of its time (less the two frames the
	// AAC encoder holds and the one being filled: 64 ms; the frame
	// before would be 97 ms behind), so an HLS part that a frame closes
	// carries its audio.
	for i, pts := range rec.videoPTS {
		if audio := rec.audioAtVideo[i] * media.VideoClockRate / media.AudioClockRate; audio < pts-3*media.AACFrameSamples*media.VideoClockRate/media.AudioClockRate {
			t.Fatalf("frame %d (pts %d) written with the audio up to %d only", i, pts, audio)
		}
	}
	if want := len(rec.videoPTS) / 30; rec.keyframes < want {
		t.Errorf("%d keyframes in %d frames", rec.keyframes, len(rec.videoPTS))
	}

	h264, aac := rec.files(t)
	for _, probe := range [][3]string{
		{h264, "stream=codec_name,width,height", "h264,1280,720"},
		{aac, "stream=codec_name,sample_rate,channels", "aac,48000,2"},
	} {
		out, err := exec.Command("ffprobe", "-v", "error", "-show_entries", probe[1], "-of", "csv=p=0", probe[0]).CombinedOutput()
		if err != nil {
			t.Fatalf("ffprobe: %v: %s", err, out)
		}
		if got := strings.TrimSpace(string(out)); got != probe[2] {
			t.Errorf("ffprobe %s: %q, want %q", probe[0], got, probe[2])
		}
	}
	frames := decodeFrames(t, h264)
	if len(frames) != len(rec.videoPTS) {
		t.Fatalf("decoded %d frames of %d", len(frames), len(rec.videoPTS))
	}
	for _, f := range frames[len(frames)-10:] {
		if !halfIs(f, 0, red) || !halfIs(f, 1, blue) {
			t.Fatalf("halves show %s and %s, want %s and %s", describe(pixel(f, 100, 300)), describe(pixel(f, 740, 300)),
				describe(red), describe(blue))
		}
	}
	// The lower rung: the same frames, the same picture, smaller.
	low := rec.lower[1]
	if !slices.Equal(low.pts, rec.videoPTS[:len(low.pts)]) || len(low.pts) < len(rec.videoPTS)-1 {
		t.Fatalf("640x360 rung: %d frames, top %d", len(low.pts), len(rec.videoPTS))
	}
	lowFile := rec.lowerFile(t, 1)
	if out, err := exec.Command("ffprobe", "-v", "error", "-show_entries", "stream=codec_name,width,height", "-of", "csv=p=0", lowFile).CombinedOutput(); err != nil || strings.TrimSpace(string(out)) != "h264,640,360" {
		t.Errorf("ffprobe of the 640x360 rung: %q, %v", out, err)
	}
	lowFrames := decodeFrames(t, lowFile)
	if len(lowFrames) != len(low.pts) {
		t.Fatalf("decoded %d frames of %d", len(lowFrames), len(low.pts))
	}
	for _, f := range lowFrames[len(lowFrames)-10:] {
		if !halfIs(f, 0, red) || !halfIs(f, 1, blue) {
			t.Fatalf("640x360 halves show %s and %s", describe(pixel(f, 100, 300)), describe(pixel(f, 740, 300)))
		}
	}
	pcm := decodePCM(t, aac)
	last := pcm[len(pcm)-48000:]
	control := max(mediacheck.TonePower(last, 550), mediacheck.TonePower(last, 1000))
	for _, hz := range []float64{440, 660} {
		if p := mediacheck.TonePower(last, hz); p < 100*control || p < 1e-4 {
			t.Errorf("tone %v Hz: power %.3g, control %.3g", hz, p, control)
		}
	}
	peak := 0.0
	for _, v := range pcm {
		peak = max(peak, math.Abs(v))
	}
	if peak > 1 {
		t.Errorf("mix peaks at %v", peak)
	}
}

func TestMissingSingerShowsSlateThenReturns(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	left, right := newTestFeed(), newTestFeed()
	right.publish(ctx, t, singer(2, blue, media.CodecH264), 7, nil)
	firstCtx, stopFirst := context.WithCancel(ctx)
	left.publish(firstCtx, t, singer(1, red, media.CodecH264), 1, nil)
	var returned time.Time
	seen := map[SlotState]bool{}
	rec, c := runProgram(t, left, right, 5500*time.Millisecond, func(ctx context.Context, c *Compositor) {
		tick := time.NewTicker(50 * time.Millisecond)
		defer tick.Stop()
		began := time.Now()
		for {
			select {
			case <-ctx.Done():
				return
			case now := <-tick.C:
				if !returned.IsZero() || now.Sub(began) < 1500*time.Millisecond {
					seen[c.Stats().Slots[0].State] = true
					continue
				}
				seen[c.Stats().Slots[0].State] = true
				if now.Sub(began) >= 1500*time.Millisecond && firstCtx.Err() == nil {
					stopFirst()
				}
				if now.Sub(began) >= 3*time.Second {
					// The singer reloads: a new session, now in VP8.
					returned = time.Now()
					left.publish(ctx, t, singer(1, red, media.CodecVP8), 2, nil)
				}
			}
		}
	})
	if !seen[SlotWaiting] || !seen[SlotLive] || !seen[SlotReconnecting] {
		t.Errorf("left states seen: %v", seen)
	}
	if st := c.Stats(); st.Slots[0].Session != 2 || st.Slots[0].DecodeErrors != 0 {
		t.Errorf("left stats %+v", st.Slots[0])
	}
	checkMonotonePTS(t, "video", rec.videoPTS, 3000, 1)
	checkMonotonePTS(t, "audio", rec.audioPTS, 1024, 1)
	h264, _ := rec.files(t)
	frames := decodeFrames(t, h264)
	if len(frames) != len(rec.videoPTS) {
		t.Fatalf("decoded %d frames of %d", len(frames), len(rec.videoPTS))
	}
	// Left: slate (waiting), singer, slate (reconnecting), singer.
	var runs []string
	var back time.Time
	for i, f := range frames {
		kind := "other"
		switch {
		case halfIs(f, 0, red):
			kind = "singer"
		case halfIs(f, 0, slateColor):
			kind = "slate"
		}
		if len(runs) == 0 || runs[len(runs)-1] != kind {
			runs = append(runs, kind)
			if kind == "singer" && len(runs) > 2 {
				back = rec.videoNTP[i]
			}
		}
		if i > 20 && !halfIs(f, 1, blue) {
			t.Fatalf("frame %d: right half shows %s", i, describe(pixel(f, 740, 300)))
		}
	}
	if got := strings.Join(runs, " "); got != "slate singer slate singer" {
		t.Fatalf("left half went %q", got)
	}
	if returned.IsZero() || back.Sub(returned) > time.Second {
		t.Errorf("singer back %v after reconnecting", back.Sub(returned))
	}
}

// TestLipSync flashes the picture and beeps at the same instants and
// finds them again in the program.
func TestLipSync(t *testing.T) {
	for _, tc := range []struct {
		name string
		edit func() func(*media.AccessUnit)
	}{
		{"sender clock", nil},
		{"RTP clock only, wrapping", func() func(*media.AccessUnit) {
			// RTP timestamps wrap one second in.
			offsets := map[media.Codec]uint32{}
			return func(p *media.AccessUnit) {
				p.SenderNTP = time.Time{}
				if _, ok := offsets[p.Codec]; !ok {
					offsets[p.Codec] = -p.RTPTime - p.ClockRate
				}
				p.RTPTime += offsets[p.Codec]
			}
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			left, right := newTestFeed(), newTestFeed()
			var edit func(*media.AccessUnit)
			if tc.edit != nil {
				edit = tc.edit()
			}
			left.publish(ctx, t, synth.Config{Slot: 1, Width: 320, Height: 240, Pulse: true}, 1, edit)
			rec, _ := runProgram(t, left, right, 4*time.Second, nil)
			h264, aac := rec.files(t)
			frames := decodeFrames(t, h264)
			pcm := decodePCM(t, aac)

			var flashes, beeps []time.Duration
			lit := false
			for i, f := range frames {
				now := pixel(f, samplePoints[0][0], samplePoints[0][1]).R > 128
				if now && !lit {
					flashes = append(flashes, time.Duration(rec.videoPTS[i])*time.Second/90000)
				}
				lit = now
			}
			const window = 240
			loud := false
			for i := 0; i+window <= len(pcm); i += window {
				e := 0.0
				for _, v := range pcm[i : i+window] {
					e += v * v
				}
				now := math.Sqrt(e/window) > 0.05
				if now && !loud {
					beeps = append(beeps, time.Duration(i)*time.Second/48000)
				}
				loud = now
			}
			if len(flashes) < 2 || len(beeps) < 2 {
				t.Fatalf("flashes at %v, beeps at %v", flashes, beeps)
			}
			// A flash whose beep the recording ends during cannot be
			// matched: the audio encoder holds back its last frames.
			audioEnd := time.Duration(len(pcm)) * time.Second / 48000
			for _, fl := range flashes {
				if fl > audioEnd-synth.PulseLength-100*time.Millisecond {
					continue
				}
				best := time.Hour
				for _, b := range beeps {
					if d := fl - b; d.Abs() < best.Abs() {
						best = d
					}
				}
				t.Logf("flash at %v: video-audio %v", fl, best)
				if best.Abs() > 80*time.Millisecond {
					t.Errorf("flash at %v is %v off its beep (beeps at %v)", fl, best, beeps)
				}
			}
		})
	}
}
