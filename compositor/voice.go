package compositor

import (
	"errors"
	"slices"

	"github.com/singoff/singoff/internal/opus"
	"github.com/singoff/singoff/media"
)

// voice puts one singer's Opus packets on the program's sample clock,
// the audio half of a slot. Packets are decoded in the order they were
// sent, each at its playout position: one that arrives before an earlier
// one (reordered) waits for it; a packet still missing when its audio is
// about to be heard is concealed, from the redundant copy the next
// packet carries (Opus in-band FEC) when that one is in, else by libopus'
// packet-loss concealment, which continues the sound instead of dropping
// to silence. When the playout offset rises (a slower path), the gap
// before the next packet is concealed too; when it falls, the audio
// skips ahead with a crossfade. Positions are program samples (48 kHz
// from the program's start); the stream's own clock is the packets'
// unwrapped RTP timestamps, also 48 kHz (RFC 7587).
type voice struct {
	sound *audioRing
	dec   *opus.Decoder

	started bool
	pending []heldPacket // by timestamp; at most maxHeld
	// lastExt is where the stream goes on: the end of what was decoded
	// or concealed; decodedTo is the end of the last packet decoded,
	// anything before it is stale.
	lastExt, decodedTo int64
	next               int64 // the position of the stream's next sample
	frame              int   // samples in the last packet: what one concealment step covers
	concealed          int   // samples concealed since the last packet decoded

	stats voiceStats
	pcm   [opus.MaxFrameSamples * opus.Channels]float32
	left  [opus.MaxFrameSamples]float32
	right [opus.MaxFrameSamples]float32
}

// heldPacket is a packet waiting for its turn.
type heldPacket struct {
	ext     int64 // unwrapped RTP timestamp
	at      int64 // playout position
	samples int
	data    []byte
}

// voiceStats count what a voice did with its packets.
type voiceStats struct {
	Decoded   int64 // packets decoded
	Concealed int64 // missing packets (or gaps) filled by concealment
	FEC       int64 // of which with the next packet at hand, whose redundancy (in-band FEC) restores it when it carries some
	Late      int64 // packets that came after their audio was played or concealed, or duplicates
	Skipped   int64 // times the stream skipped ahead (the playout offset fell)
}

const (
	// maxHeld bounds the packets a voice holds: 640 ms of 20 ms packets,
	// more than the playout delay.
	maxHeld = 32
	// maxConceal is the most a voice conceals in a row without a packet;
	// then it stays silent (the singer is gone, or the link down).
	maxConceal = 200 * media.AudioClockRate / 1000
	// audioSnap is a difference in samples (10 ms) between a packet's
	// playout position and where the stream is up to which it is played
	// on where the stream is: jitter of the mapping, not a change of the
	// offset.
	audioSnap = media.AudioClockRate / 100
	// maxFill is the longest gap before a packet filled by concealment
	// when the offset rose; a longer one stays silent.
	maxFill = 300 * media.AudioClockRate / 1000
	// skipFade is the crossfade (5 ms) where the stream skips ahead.
	skipFade = media.AudioClockRate / 200
	// resync is a jump of the timestamps (1 s) taken as a new stream
	// rather than as loss or reordering.
	resync = media.AudioClockRate
	// defaultFrame is a browser's packet: 20 ms.
	defaultFrame = media.AudioClockRate / 50
)

var errVoiceFull = errors.New("too many audio packets held")

// push takes a packet sent at timestamp ext (unwrapped, 48 kHz) to be
// played at program position at. drain then decodes what it can.
func (v *voice) push(data []byte, ext, at int64) error {
	samples, err := opus.PacketSamples(data)
	if err != nil {
		return err
	}
	if v.dec == nil {
		if v.dec, err = opus.NewDecoder(); err != nil {
			return err
		}
	}
	if !v.started || ext-v.lastExt > resync || v.lastExt-ext > resync {
		v.restart(ext, at)
	}
	switch {
	case ext < v.decodedTo:
		v.stats.Late++ // a duplicate, or later than packets decoded after it
		return nil
	case ext < v.lastExt:
		// Its audio was concealed, the stream not yet decoded past it:
		// it still continues the stream where it can be heard (the
		// offset rose for it), else it is late.
		if at+int64(samples) <= v.sound.readPosition() {
			v.stats.Late++
			return nil
		}
		v.lastExt = ext
	}
	i, found := slices.BinarySearchFunc(v.pending, ext, func(h heldPacket, ext int64) int { return int(h.ext - ext) })
	if found {
		v.stats.Late++ // a duplicate
		return nil
	}
	if len(v.pending) == maxHeld {
		if i == len(v.pending) {
			return errVoiceFull
		}
		v.pending = v.pending[:len(v.pending)-1]
	}
	v.pending = slices.Insert(v.pending, i, heldPacket{ext: ext, at: at, samples: samples, data: data})
	// This packet's position comes with the current playout offset: the
	// held ones take it too, so that a rise or fall applies to all alike.
	for j := range v.pending {
		v.pending[j].at = at + v.pending[j].ext - ext
	}
	return nil
}

func (v *voice) restart(ext, at int64) {
	v.started = true
	v.pending = v.pending[:0]
	v.lastExt, v.decodedTo = ext, ext
	v.next = at
	v.concealed = 0
	if v.frame == 0 {
		v.frame = defaultFrame
	}
}

// drain decodes the packets that are next in the stream and conceals a
// missing one whose audio is due: the mixer takes position now+guard
// soonest. It returns the position at which to call it again, ok false
// when only a new packet gives it something to do. err is a packet that
// did not decode (it is then concealed).
func (v *voice) drain(now, guard int64) (again int64, ok bool, err error) {
	if !v.started {
		return 0, false, nil
	}
	for {
		if read := v.sound.readPosition(); v.next < read {
			v.next = read // the mixer has gone past: what is missing there is lost
		}
		if len(v.pending) > 0 {
			h := v.pending[0]
			if h.ext < v.decodedTo {
				v.pending = slices.Delete(v.pending, 0, 1)
				v.stats.Late++
				continue
			}
			if h.ext <= v.lastExt {
				v.pending = slices.Delete(v.pending, 0, 1)
				if e := v.play(h); e != nil {
					err = e
				}
				continue
			}
		}
		// The audio at lastExt is missing.
		if v.concealed >= maxConceal {
			if len(v.pending) == 0 {
				return 0, false, err
			}
			v.lastExt = v.pending[0].ext // give up the missing audio
			continue
		}
		if due := v.next - guard; now < due {
			return due, true, err
		}
		v.conceal()
	}
}

// conceal fills one step of missing audio at the stream's position.
func (v *voice) conceal() {
	n := v.frame
	var next []byte
	if len(v.pending) > 0 {
		h := v.pending[0]
		gap := int(h.ext - v.lastExt)
		if gap < opus.ConcealStep {
			v.lastExt = h.ext // less than 2.5 ms: the packet just plays on
			return
		}
		if gap <= n {
			n, next = gap, h.data // the head carries this audio again, maybe
		}
	}
	n -= n % opus.ConcealStep
	got, err := v.dec.DecodeFEC(next, v.pcm[:n*opus.Channels])
	if err != nil || got == 0 {
		got = n
		clear(v.pcm[:n*opus.Channels])
	}
	v.write(v.next, got, 0)
	v.next += int64(got)
	v.lastExt += int64(got)
	v.concealed += got
	v.stats.Concealed++
	if next != nil {
		v.stats.FEC++
	}
}

// play decodes a packet that continues the stream and places it.
func (v *voice) play(h heldPacket) error {
	at := h.at
	switch d := at - v.next; {
	case d >= -audioSnap && d <= audioSnap:
		at = v.next
	case d > audioSnap && d <= maxFill && v.concealed < maxConceal:
		// The offset rose: conceal up to the packet, so the voice
		// stretches instead of stopping.
		for fill := int(d) - int(d)%opus.ConcealStep; fill > 0; {
			n := min(fill, opus.MaxFrameSamples)
			got, err := v.dec.Conceal(v.pcm[:n*opus.Channels])
			if err != nil || got == 0 {
				break
			}
			v.write(v.next, got, 0)
			v.next += int64(got)
			fill -= got
		}
		v.stats.Concealed++
		at = v.next
	}
	n, err := v.dec.Decode(h.data, v.pcm[:])
	if err != nil {
		return err // lastExt stays: its audio is missing, and concealed when due
	}
	fade := 0
	if at < v.next {
		fade = skipFade // the offset fell: skip ahead over a crossfade
		v.stats.Skipped++
	}
	v.write(at, n, fade)
	v.next = at + int64(n)
	v.lastExt = h.ext + int64(n)
	v.decodedTo = v.lastExt
	v.frame = n
	v.concealed = 0
	v.stats.Decoded++
	return nil
}

// write places the n interleaved samples of v.pcm at position at.
func (v *voice) write(at int64, n, fade int) {
	for i := range n {
		v.left[i] = v.pcm[i*opus.Channels]
		v.right[i] = v.pcm[i*opus.Channels+1]
	}
	v.sound.blend(at, v.left[:n], v.right[:n], fade)
}

// close frees the decoder and forgets the stream (a new session).
func (v *voice) close() {
	if v.dec != nil {
		v.dec.Close()
	}
	sound := v.sound
	*v = voice{sound: sound, pending: v.pending[:0]}
}
