// Package opus decodes Opus with libopus itself, for what FFmpeg's
// decoders do not offer: packet-loss concealment and in-band forward
// error correction (the previous packet's redundant copy carried in the
// next one). The compositor decodes every singer's audio with it.
package opus

//#cgo pkg-config: opus
//#include <opus.h>
import "C"

import (
	"errors"
	"fmt"
	"unsafe"
)

// SampleRate is the rate every Decoder decodes at: WebRTC's Opus clock.
const SampleRate = 48000

// Channels is how many channels a Decoder outputs, interleaved; mono
// packets come out on both.
const Channels = 2

// MaxFrameSamples is the longest Opus packet, 120 ms, in samples per
// channel: a buffer of MaxFrameSamples*Channels takes any packet.
const MaxFrameSamples = SampleRate * 120 / 1000

// ConcealStep is the granularity of concealment: lengths given to
// Conceal and DecodeFEC are multiples of 2.5 ms.
const ConcealStep = SampleRate * 25 / 10000

// Decoder is one libopus decoder: 48 kHz, stereo. It is not safe for
// concurrent use.
type Decoder struct {
	st *C.OpusDecoder
}

// NewDecoder makes a decoder; Close frees it.
func NewDecoder() (*Decoder, error) {
	var e C.int
	st := C.opus_decoder_create(SampleRate, Channels, &e)
	if e != C.OPUS_OK || st == nil {
		return nil, fmt.Errorf("opus: creating a decoder: %w", codeError(e))
	}
	return &Decoder{st: st}, nil
}

// Close frees the decoder; it may be called once.
func (d *Decoder) Close() {
	if d.st != nil {
		C.opus_decoder_destroy(d.st)
		d.st = nil
	}
}

// Decode decodes one packet into pcm (interleaved stereo) and returns the
// samples per channel it wrote. pcm must hold the packet: a buffer of
// MaxFrameSamples*Channels holds any.
func (d *Decoder) Decode(packet []byte, pcm []float32) (int, error) {
	if len(packet) == 0 {
		return 0, errors.New("opus: empty packet")
	}
	return d.decode(packet, pcm, len(pcm)/Channels, false)
}

// DecodeFEC fills pcm (interleaved stereo, n samples per channel, n a
// multiple of ConcealStep) with the audio just before next, a packet that
// followed a lost one: from next's redundant copy of it when next carries
// one, else by concealment. next itself is to be decoded afterwards.
func (d *Decoder) DecodeFEC(next []byte, pcm []float32) (int, error) {
	if len(next) == 0 {
		return d.Conceal(pcm)
	}
	return d.decode(next, pcm, concealLength(pcm), true)
}

// Conceal fills pcm (interleaved stereo, n samples per channel, n a
// multiple of ConcealStep) with audio continuing what was decoded last,
// for a packet that is missing; long concealment fades to silence.
func (d *Decoder) Conceal(pcm []float32) (int, error) {
	return d.decode(nil, pcm, concealLength(pcm), false)
}

func concealLength(pcm []float32) int {
	n := len(pcm) / Channels
	return n - n%ConcealStep
}

func (d *Decoder) decode(packet []byte, pcm []float32, samples int, fec bool) (int, error) {
	if d.st == nil {
		return 0, errors.New("opus: decoder closed")
	}
	if samples <= 0 || len(pcm) < samples*Channels {
		return 0, fmt.Errorf("opus: no room for %d samples", samples)
	}
	var data *C.uchar
	if len(packet) > 0 {
		data = (*C.uchar)(unsafe.Pointer(&packet[0]))
	}
	flag := C.int(0)
	if fec {
		flag = 1
	}
	n := C.opus_decode_float(d.st, data, C.opus_int32(len(packet)), (*C.float)(unsafe.Pointer(&pcm[0])), C.int(samples), flag)
	if n < 0 {
		return 0, fmt.Errorf("opus: decoding: %w", codeError(n))
	}
	return int(n), nil
}

// PacketSamples is how many samples per channel packet holds at 48 kHz;
// a packet without any is an error.
func PacketSamples(packet []byte) (int, error) {
	if len(packet) == 0 {
		return 0, errors.New("opus: empty packet")
	}
	n := C.opus_packet_get_nb_samples((*C.uchar)(unsafe.Pointer(&packet[0])), C.opus_int32(len(packet)), SampleRate)
	if n < 0 {
		return 0, fmt.Errorf("opus: reading the packet: %w", codeError(n))
	}
	if n == 0 {
		return 0, errors.New("opus: a packet without audio")
	}
	return int(n), nil
}

// codeError is libopus's description of an error code.
func codeError(code C.int) error { return errors.New(C.GoString(C.opus_strerror(code))) }
