package compositor

import (
	"testing"
	"time"

	"github.com/singoff/singoff/internal/synth"
	"github.com/singoff/singoff/media"
)

// fuzzClip is the start of a real stream: a keyframe, the units after it
// and an audio packet.
type fuzzClip struct {
	key, audio media.AccessUnit
	next       [silentUnits]media.AccessUnit
}

func fuzzClips(f *testing.F) map[media.Codec]fuzzClip {
	f.Helper()
	clips := map[media.Codec]fuzzClip{}
	for _, codec := range []media.Codec{media.CodecH264, media.CodecVP8} {
		clip, err := synth.Encode(synth.Config{Slot: 1, Width: 64, Height: 64, VideoCodec: codec}, time.Second)
		if err != nil {
			f.Fatal(err)
		}
		var video []media.AccessUnit
		var c fuzzClip
		for _, p := range clip.Packets() {
			switch {
			case p.Codec.IsVideo():
				video = append(video, p)
			case c.audio.Data == nil:
				c.audio = p
			}
		}
		if len(video) <= len(c.next) || !video[0].Keyframe || c.audio.Data == nil {
			f.Fatalf("%v clip: %d video units, starting with a keyframe: %v", codec, len(video), len(video) > 0 && video[0].Keyframe)
		}
		c.key = video[0]
		copy(c.next[:], video[1:])
		clips[codec] = c
	}
	return clips
}

// FuzzDecode feeds a slot that is showing a singer one arbitrary unit,
// then the singer's real stream again. Nothing may crash, and the slot
// must recover by the book:
//   - a unit after a loss, or a video unit that fails to decode, asks for
//     a keyframe at once;
//   - audio, however broken, never disturbs the picture;
//   - the stream after a junk unit makes a picture or, a few units on,
//     has a keyframe asked for;
//   - a real keyframe afterwards makes a picture again.
//
// The units arrive half a second apart, as a slow stream would.
func FuzzDecode(f *testing.F) {
	clips := fuzzClips(f)
	for _, codec := range []media.Codec{media.CodecH264, media.CodecVP8} {
		c := clips[codec]
		for _, loss := range []bool{false, true} {
			f.Add(c.key.Data, uint8(codec), true, loss)
			f.Add(c.next[0].Data, uint8(codec), false, loss)
			f.Add(c.next[0].Data[:len(c.next[0].Data)/2], uint8(codec), false, loss)
		}
		f.Add(c.audio.Data, uint8(media.CodecOpus), false, false)
	}
	f.Add([]byte{0, 0, 0, 1, 0x65, 0xff, 0xff, 0xff}, uint8(media.CodecH264), true, false)
	f.Add([]byte{0x10, 0x02, 0x00, 0x9d, 0x01, 0x2a}, uint8(media.CodecVP8), true, false)
	f.Add([]byte{0xff, 0xff, 0xff}, uint8(media.CodecOpus), false, false)
	f.Add([]byte{}, uint8(media.CodecH264), false, false)
	f.Add([]byte{}, uint8(media.CodecOpus), false, false)
	f.Fuzz(func(t *testing.T, data []byte, codec uint8, keyframe, loss bool) {
		junk := media.Codec(codec % 4)
		video := junk
		if !junk.IsVideo() {
			video = media.CodecH264
		}
		c := clips[video]
		feed := newTestFeed()
		s := newSlot(1, feed, quietLogger())
		defer s.free()
		t0 := time.Now()
		s.start = t0
		at := func(p media.AccessUnit, step int) media.AccessUnit {
			p.Session = 1
			p.Arrival = t0.Add(time.Duration(step) * 500 * time.Millisecond)
			return p
		}
		type counts struct{ pictures, errors, requests int64 }
		now := func() counts {
			return counts{s.stats.FramesDecoded, s.stats.DecodeErrors, feed.keyframes.Load()}
		}

		s.handle(at(c.audio, 0))
		s.handle(at(c.key, 0))
		warm := now()
		if warm.pictures != 1 {
			t.Fatalf("%v keyframe gave %d pictures", video, warm.pictures)
		}

		p := at(c.audio, 1)
		if junk.IsVideo() {
			p = at(c.next[0], 1)
		}
		p.Codec, p.Data, p.Keyframe, p.Loss = junk, data, keyframe, loss
		s.handle(p)
		afterJunk := now()
		asked := afterJunk.requests > warm.requests
		switch {
		case loss && junk.IsVideo() && !asked:
			t.Fatalf("%v unit after a loss asked for no keyframe", junk)
		case junk.IsVideo() && afterJunk.errors > warm.errors && !asked:
			t.Fatalf("%v unit failed to decode and asked for no keyframe", junk)
		case !junk.IsVideo() && asked:
			t.Fatalf("%v unit asked for a keyframe", junk)
		}

		for i, next := range c.next {
			s.handle(at(next, 2+i))
		}
		afterNext := now()
		if afterNext.pictures == afterJunk.pictures && afterNext.requests == warm.requests {
			t.Fatalf("after a %v unit the stream gave no picture and asked for no keyframe", junk)
		}
		if !junk.IsVideo() && afterNext.pictures-afterJunk.pictures != int64(len(c.next)) {
			t.Fatalf("after a %v unit the stream gave %d pictures of %d", junk, afterNext.pictures-afterJunk.pictures, len(c.next))
		}

		s.handle(at(c.key, 2+len(c.next)))
		if now().pictures == afterNext.pictures {
			t.Fatalf("after a %v unit a keyframe gave no picture", junk)
		}
	})
}
