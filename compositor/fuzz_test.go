package compositor

import (
	"testing"
	"time"

	"github.com/singoff/singoff/internal/synth"
	"github.com/singoff/singoff/media"
)

// FuzzDecode feeds a slot arbitrary units: nothing may crash, and a video
// unit that gives no picture must lead to a keyframe request.
func FuzzDecode(f *testing.F) {
	for _, codec := range []media.Codec{media.CodecH264, media.CodecVP8} {
		clip, err := synth.Encode(synth.Config{Slot: 1, Width: 64, Height: 64, VideoCodec: codec}, time.Second)
		if err != nil {
			f.Fatal(err)
		}
		seeded := map[media.Codec]bool{}
		for _, p := range clip.Packets() {
			if !seeded[p.Codec] {
				seeded[p.Codec] = true
				f.Add(p.Data, uint8(p.Codec), p.Keyframe)
			}
		}
	}
	f.Add([]byte{0, 0, 0, 1, 0x65, 0xff, 0xff, 0xff}, uint8(media.CodecH264), true)
	f.Add([]byte{0x10, 0x02, 0x00, 0x9d, 0x01, 0x2a}, uint8(media.CodecVP8), true)
	f.Add([]byte{0xff, 0xff, 0xff}, uint8(media.CodecOpus), false)
	f.Add([]byte{}, uint8(media.CodecH264), false)
	f.Fuzz(func(t *testing.T, data []byte, codec uint8, keyframe bool) {
		feed := newTestFeed()
		s := newSlot(1, feed, quietLogger())
		s.start = time.Now()
		defer s.free()
		p := media.AccessUnit{
			Codec:     media.Codec(codec % 4),
			Data:      data,
			Keyframe:  keyframe,
			RTPTime:   4_294_967_000,
			ClockRate: 90000,
			Arrival:   time.Now(),
			Session:   1,
		}
		if p.Codec == media.CodecOpus {
			p.ClockRate = 48000
		}
		s.handle(p)
		// The same bytes again as the next unit, then cut short.
		p.RTPTime += 3000
		p.Keyframe = false
		s.handle(p)
		p.Data = data[:len(data)/2]
		s.handle(p)
		st := s.stats
		if p.Codec.IsVideo() && st.FramesDecoded == 0 && feed.keyframes.Load() == 0 {
			t.Fatalf("%v unit gave no picture and no keyframe request", p.Codec)
		}
	})
}
