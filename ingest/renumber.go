package ingest

// renumberWindow is how far back, in a source's sequence numbers, a late
// packet is still placed: seconds of video at any bitrate a singer sends,
// well past the time a retransmission takes.
const renumberWindow = 4096

// seqRenumber maps the sequence numbers of one source onto the output's,
// leaving out the padding-only packets it drops, so that what a
// subscriber receives has no holes the publisher did not make.
//
// Browsers that were not offered RTX probe bandwidth with padding-only
// packets on the media SSRC, numbered with the media. Forwarding them
// costs the subscriber's downlink the probe meant for the publisher's
// uplink, and dropping them without renumbering leaves gaps after which
// a Chrome subscriber holds H264 frames back until a keyframe. So a
// padding packet that comes in order is dropped and the later packets
// move down by one; one that comes late, after a packet numbered past
// it was forwarded, fills its place in the output as it is.
//
// Sequence numbers are unwrapped to 64 bits inside, so that a late
// packet is placed with the drops made after it left out.
type seqRenumber struct {
	started bool
	// newest is the unwrapped sequence number of the newest packet.
	newest uint64
	// delta maps a packet newer than every drop: out = in + delta.
	delta uint16
	// drops are the unwrapped numbers of the padding packets dropped
	// within the window, ascending.
	drops []uint64
}

// reset starts a new source whose first packet (numbered in) is to come
// out as in + delta.
func (r *seqRenumber) reset(delta uint16) {
	r.started = false
	r.delta = delta
	r.drops = r.drops[:0]
}

// next returns the output number of the packet numbered in, padding when
// it carries no payload; ok is false when the packet is to be dropped: a
// padding packet in order, one dropped before, or a packet too late to
// place.
func (r *seqRenumber) next(in uint16, padding bool) (out uint16, ok bool) {
	if !r.started {
		// Far from zero, so that packets before the first unwrap
		// without going below it.
		r.started, r.newest = true, 1<<32+uint64(in)-1
	}
	ext := uint64(int64(r.newest) + int64(int16(in-uint16(r.newest))))
	if ext > r.newest {
		r.newest = ext
		if padding {
			r.drops = append(r.drops, ext)
			r.delta--
			r.forgetOld()
			return 0, false
		}
		return in + r.delta, true
	}
	if r.newest-ext >= renumberWindow {
		return 0, false
	}
	// Drops after this packet did not move it down.
	later := 0
	for i := len(r.drops) - 1; i >= 0 && r.drops[i] >= ext; i-- {
		if r.drops[i] == ext {
			return 0, false // a dropped padding packet again
		}
		later++
	}
	return in + r.delta + uint16(later), true
}

// forgetOld drops the drops that fell out of the window.
func (r *seqRenumber) forgetOld() {
	i := 0
	for i < len(r.drops) && r.newest-r.drops[i] >= renumberWindow {
		i++
	}
	if i > 0 {
		r.drops = append(r.drops[:0], r.drops[i:]...)
	}
}
