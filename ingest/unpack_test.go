package ingest

import (
	"slices"
	"testing"
	"time"

	"github.com/pion/rtp"
	"github.com/pion/rtp/codecs"

	"github.com/singoff/singoff/internal/synth"
	"github.com/singoff/singoff/media"
)

// rtpStream is a real encoded stream as RTP: each unit's packets.
type rtpStream struct {
	frames [][]*rtp.Packet
}

// stream packetizes length of a synthetic singer's codec track (small
// packets, so that a frame spans several).
func stream(t *testing.T, codec media.Codec, length time.Duration) rtpStream {
	t.Helper()
	video := codec
	if !codec.IsVideo() {
		video = media.CodecH264
	}
	clip, err := synth.Encode(synth.Config{Slot: 1, Width: 320, Height: 240, VideoCodec: video}, length)
	if err != nil {
		t.Fatal(err)
	}
	var payloader rtp.Payloader = &codecs.H264Payloader{}
	clockRate := uint32(media.VideoClockRate)
	mtu := uint16(300)
	switch codec {
	case media.CodecVP8:
		payloader = &codecs.VP8Payloader{}
	case media.CodecOpus:
		payloader, clockRate, mtu = &codecs.OpusPayloader{}, media.AudioClockRate, 1200
	}
	p := rtp.NewPacketizer(mtu, 96, 1234, payloader, rtp.NewFixedSequencer(65500), clockRate)
	var s rtpStream
	var last uint32
	for i, u := range clip.Packets() {
		if u.Codec.IsVideo() != codec.IsVideo() {
			continue
		}
		if i > 0 {
			p.SkipSamples(u.RTPTime - last)
		}
		last = u.RTPTime
		s.frames = append(s.frames, p.Packetize(u.Data, 0))
	}
	return s
}

// flat lists the stream's packets in order.
func (s rtpStream) flat() []*rtp.Packet {
	var out []*rtp.Packet
	for _, f := range s.frames {
		out = append(out, f...)
	}
	return out
}

// unpacked is what an unpacker emitted, with how far (in RTP time of
// the newest packet pushed) behind the stream each unit came out.
type unpacked struct {
	units  []media.AccessUnit
	behind []time.Duration
}

func unpack(codec media.Codec, clockRate uint32, packets []*rtp.Packet) unpacked {
	u := newUnpacker(codec, clockRate)
	var out unpacked
	var newest uint32
	t0 := time.Unix(0, 0)
	for i, p := range packets {
		if int32(p.Timestamp-newest) > 0 || i == 0 {
			newest = p.Timestamp
		}
		u.push(p, t0.Add(time.Duration(i)*time.Millisecond), func(a media.AccessUnit) {
			out.units = append(out.units, a)
			out.behind = append(out.behind, time.Duration(int32(newest-a.RTPTime))*time.Second/time.Duration(clockRate))
		})
	}
	return out
}

// padding is a padding-only probe after frame, as libwebrtc sends it on
// the media SSRC: the frame's timestamp, no marker, no payload.
func padding(after *rtp.Packet) *rtp.Packet {
	return &rtp.Packet{Header: rtp.Header{Version: 2, PayloadType: after.PayloadType, SSRC: after.SSRC,
		Timestamp: after.Timestamp, Padding: true, PaddingSize: 224}}
}

// renumber gives packets consecutive sequence numbers from the first's.
func renumber(packets []*rtp.Packet) []*rtp.Packet {
	out := make([]*rtp.Packet, len(packets))
	for i, p := range packets {
		c := *p
		c.SequenceNumber = packets[0].SequenceNumber + uint16(i)
		out[i] = &c
	}
	return out
}

func TestUnpackVideoOnALossyPath(t *testing.T) {
	for _, codec := range []media.Codec{media.CodecH264, media.CodecVP8} {
		s := stream(t, codec, 2*time.Second)
		all := s.flat()
		// frame 20's second packet: mid-frame.
		lostAt := slices.Index(all, s.frames[20][1])
		if len(s.frames[20]) < 3 {
			t.Fatalf("%v frame 20 is %d packets, want several", codec, len(s.frames[20]))
		}
		for _, c := range []struct {
			name    string
			packets []*rtp.Packet
			// units emitted (at least want-spare), and which carry Loss
			want, spare int
			lossAt      []int
			maxBehind   time.Duration
		}{
			// The last frame waits for a packet after it.
			{"clean", all, len(s.frames) - 1, 0, nil, 2 * time.Second / 30},
			{"two packets swapped", swap(all, lostAt, lostAt+1), len(s.frames) - 1, 0, nil, 2 * time.Second / 30},
			{"a duplicate", slices.Insert(slices.Clone(all), lostAt, all[lostAt]), len(s.frames) - 1, 0, nil, 2 * time.Second / 30},
			// The frame is given up once newer packets are maxFrameDelay
			// ahead, or comes out without its first NAL units (H264
			// single NAL packets); pion's samplebuilder may give up the
			// next frame's first packet with it.
			{"one packet lost for good", slices.Delete(slices.Clone(all), lostAt, lostAt+1), len(s.frames) - 1, 2, []int{20},
				maxFrameDelay + 2*time.Second/30},
			{"one packet lost, retransmitted 100 ms later",
				slices.Insert(slices.Delete(slices.Clone(all), lostAt, lostAt+1), slices.Index(all, s.frames[23][0])-1, all[lostAt]),
				len(s.frames) - 1, 0, nil, 100*time.Millisecond + 2*time.Second/30},
			{"padding probes between frames", withPadding(s, 5), len(s.frames) - 1, 0, nil, 2 * time.Second / 30},
		} {
			t.Run(codec.String()+"/"+c.name, func(t *testing.T) {
				got := unpack(codec, media.VideoClockRate, c.packets)
				var loss []int
				for i, u := range got.units {
					if u.Loss {
						loss = append(loss, i)
					}
				}
				if n := len(got.units); n > c.want || n < c.want-c.spare || !slices.Equal(loss, c.lossAt) {
					t.Errorf("%d units (want %d, %d fewer at most), Loss on %v (want %v)", n, c.want, c.spare, loss, c.lossAt)
				}
				if worst := slices.Max(got.behind); worst > c.maxBehind {
					t.Errorf("a unit came out %v behind the stream, want at most %v", worst, c.maxBehind)
				}
				if !got.units[0].Keyframe {
					t.Error("the first unit is no keyframe")
				}
			})
		}
	}
}

func swap(packets []*rtp.Packet, i, j int) []*rtp.Packet {
	out := slices.Clone(packets)
	out[i], out[j] = out[j], out[i]
	return out
}

// withPadding puts n padding probes after every 10th frame, numbered in
// the media's sequence as libwebrtc numbers them.
func withPadding(s rtpStream, n int) []*rtp.Packet {
	var out []*rtp.Packet
	for i, f := range s.frames {
		out = append(out, f...)
		if i%10 == 5 {
			for range n {
				out = append(out, padding(f[len(f)-1]))
			}
		}
	}
	return renumber(out)
}

func TestUnpackOpus(t *testing.T) {
	s := stream(t, media.CodecOpus, time.Second)
	all := s.flat()
	for _, c := range []struct {
		name    string
		packets []*rtp.Packet
		// the RTP timestamps emitted, by index of the clean stream,
		// and which units carry Loss (none: a gap in audio may be a
		// packet overtaken)
		want   []int
		lossAt []int
	}{
		{"clean", all, seq(0, len(all)), nil},
		{"reordered", swap(all, 10, 11), append(append(seq(0, 10), 11, 10), seq(12, len(all))...), nil},
		{"a duplicate", slices.Insert(slices.Clone(all), 20, all[20]), seq(0, len(all)), nil},
		// The compositor finds the gap by timestamp.
		{"lost", slices.Delete(slices.Clone(all), 30, 31), append(seq(0, 30), seq(31, len(all))...), nil},
		{"padding", renumber(slices.Insert(slices.Clone(all), 40, padding(all[39]))), seq(0, len(all)), nil},
	} {
		t.Run(c.name, func(t *testing.T) {
			got := unpack(media.CodecOpus, media.AudioClockRate, c.packets)
			var ts []uint32
			var loss []int
			for i, u := range got.units {
				ts = append(ts, u.RTPTime)
				if u.Loss {
					loss = append(loss, i)
				}
			}
			var want []uint32
			for _, i := range c.want {
				want = append(want, all[i].Timestamp)
			}
			if !slices.Equal(ts, want) || !slices.Equal(loss, c.lossAt) {
				t.Errorf("emitted %d units, Loss on %v (want %d, Loss on %v)", len(ts), loss, len(want), c.lossAt)
			}
		})
	}
}

func seq(from, to int) []int {
	var out []int
	for i := from; i < to; i++ {
		out = append(out, i)
	}
	return out
}

// A unit dropped because the compositor is behind is a loss: the next
// unit of its kind that gets through says so, and only that one.
func TestFeedMarksWhatFollowsADrop(t *testing.T) {
	video := media.AccessUnit{Codec: media.CodecH264}
	audio := media.AccessUnit{Codec: media.CodecOpus}
	for _, c := range []struct {
		name string
		sent []media.AccessUnit // into a feed with room for 2
		want []bool             // Loss of what comes out, after draining and sending one of each kind
	}{
		{"no drop", []media.AccessUnit{video, audio}, []bool{false, false, false, false}},
		{"video dropped", []media.AccessUnit{video, audio, video}, []bool{false, false, true, false}},
		{"audio dropped", []media.AccessUnit{audio, video, audio}, []bool{false, false, false, true}},
	} {
		t.Run(c.name, func(t *testing.T) {
			f := &feed{counters: &counters{}, ch: make(chan media.AccessUnit, 2)}
			for _, u := range c.sent {
				f.send(u)
			}
			var got []bool
			for range 2 {
				got = append(got, (<-f.ch).Loss)
			}
			f.send(video)
			f.send(audio)
			for range 2 {
				got = append(got, (<-f.ch).Loss)
			}
			if !slices.Equal(got, c.want) {
				t.Errorf("Loss %v, want %v", got, c.want)
			}
			if dropped := f.counters.feedDropped.Load(); dropped != uint64(len(c.sent)-2) {
				t.Errorf("%d counted dropped", dropped)
			}
		})
	}
}
