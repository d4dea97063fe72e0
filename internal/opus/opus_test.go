package opus

import (
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/pion/webrtc/v4/pkg/media/oggreader"

	"github.com/singoff/singoff/internal/mediacheck"
)

// frameSamples is the 20 ms packet browsers send.
const frameSamples = 960

// encoding says how the test encodes: with the ffmpeg CLI's libopus,
// 20 ms packets, as a browser sends them.
type encoding struct {
	// source is an aevalsrc expression, one per channel separated by |.
	source      string
	bitrate     string
	application string // "voip" (SILK, with in-band FEC) or "audio"
	fec         bool
}

// encode codes seconds of e.source and returns its packets.
func encode(t testing.TB, e encoding, seconds float64) [][]byte {
	t.Helper()
	path := filepath.Join(t.TempDir(), "audio.ogg")
	args := []string{"-hide_banner", "-loglevel", "error", "-y",
		"-f", "lavfi", "-i", fmt.Sprintf("aevalsrc=%s:s=%d:d=%g", e.source, SampleRate, seconds),
		"-c:a", "libopus", "-b:a", e.bitrate, "-application", e.application, "-frame_duration", "20",
		"-page_duration", "20000"}
	if e.fec {
		args = append(args, "-fec", "1", "-packet_loss", "20")
	}
	if out, err := exec.Command("ffmpeg", append(args, "-f", "ogg", path)...).CombinedOutput(); err != nil {
		t.Fatalf("ffmpeg: %v: %s", err, out)
	}
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	ogg, _, err := oggreader.NewWith(f)
	if err != nil {
		t.Fatal(err)
	}
	var packets [][]byte
	for {
		page, header, err := ogg.ParseNextPage()
		if errors.Is(err, io.EOF) {
			return packets
		}
		if err != nil {
			t.Fatal(err)
		}
		if header.GranulePosition > 0 && len(page) > 0 { // not OpusHead or OpusTags
			packets = append(packets, page)
		}
	}
}

// toneA is a 440 Hz tone.
const toneA = "0.3*sin(2*PI*440*t)"

// voice is a sung vowel whose pitch jumps every 20 ms packet, in
// syllables (loudest at 0.1 s, 0.3 s, 0.5 s, …): speech enough for the encoder
// to send redundancy (it sends none for a steady tone), and
// unpredictable, so that concealment, which can only continue the last
// packet, cannot guess the next.
var voice = strings.NewReplacer("F", "(150+60*mod(floor(t*50)*7\\,5))").
	Replace("(0.2*sin(2*PI*F*t)+0.1*sin(4*PI*F*t)+0.05*sin(6*PI*F*t))*abs(sin(2*PI*2.5*t))")

// channel returns channel ch of interleaved stereo pcm.
func channel(pcm []float32, ch int) []float64 {
	out := make([]float64, len(pcm)/Channels)
	for i := range out {
		out[i] = float64(pcm[i*Channels+ch])
	}
	return out
}

func rms(x []float64) float64 {
	var s float64
	for _, v := range x {
		s += v * v
	}
	return math.Sqrt(s / float64(len(x)))
}

// decodeAll decodes packets in order: missing ones (nil) by fill, and
// returns the output, channel 0.
func decodeAll(t *testing.T, packets [][]byte, fill func(d *Decoder, next []byte, pcm []float32) (int, error)) []float64 {
	t.Helper()
	d, err := NewDecoder()
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	pcm := make([]float32, MaxFrameSamples*Channels)
	var out []float64
	for i, p := range packets {
		var n int
		if p == nil {
			var next []byte
			if i+1 < len(packets) {
				next = packets[i+1]
			}
			n, err = fill(d, next, pcm[:frameSamples*Channels])
		} else {
			n, err = d.Decode(p, pcm)
		}
		if err != nil {
			t.Fatalf("packet %d: %v", i, err)
		}
		if n != frameSamples {
			t.Fatalf("packet %d: %d samples, want %d", i, n, frameSamples)
		}
		out = append(out, channel(pcm[:n*Channels], 0)...)
	}
	return out
}

func TestDecodeKeepsStereo(t *testing.T) {
	packets := encode(t, encoding{source: toneA + "|0.3*sin(2*PI*15000*t)", bitrate: "128k", application: "audio"}, 1)
	d, err := NewDecoder()
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	pcm := make([]float32, MaxFrameSamples*Channels)
	var all []float32
	for _, p := range packets {
		if got, err := PacketSamples(p); err != nil || got != frameSamples {
			t.Fatalf("PacketSamples: %d, %v", got, err)
		}
		n, err := d.Decode(p, pcm)
		if err != nil {
			t.Fatal(err)
		}
		all = append(all, pcm[:n*Channels]...)
	}
	left, right := channel(all, 0), channel(all, 1)
	left, right = left[SampleRate/2:], right[SampleRate/2:] // past the codec's start-up
	for _, c := range []struct {
		name        string
		x           []float64
		want, other float64
	}{
		{"left", left, 440, 15000},
		{"right", right, 15000, 440},
	} {
		if p, o := mediacheck.TonePower(c.x, c.want), mediacheck.TonePower(c.x, c.other); p < 1e-3 || p < 100*o {
			t.Errorf("%s: %v Hz power %.3g, %v Hz %.3g", c.name, c.want, p, c.other, o)
		}
	}
}

// A packet after a lost one carries the lost one again at a lower rate
// (browsers send it when the answer says useinbandfec=1 and loss is
// reported): decoding it restores the lost audio far better than
// concealment can guess it.
func TestFECRestoresALostPacket(t *testing.T) {
	packets := encode(t, encoding{source: voice, bitrate: "32k", application: "voip", fec: true}, 0.8)
	reference := decodeAll(t, packets, nil)
	const lost = 25 // 0.50–0.52 s, a syllable's loudest
	span := func(x []float64) []float64 { return x[lost*frameSamples : (lost+1)*frameSamples] }
	withLoss := append([][]byte(nil), packets...)
	withLoss[lost] = nil
	for _, c := range []struct {
		name string
		fill func(d *Decoder, next []byte, pcm []float32) (int, error)
	}{
		{"fec", func(d *Decoder, next []byte, pcm []float32) (int, error) { return d.DecodeFEC(next, pcm) }},
		{"conceal", func(d *Decoder, _ []byte, pcm []float32) (int, error) { return d.Conceal(pcm) }},
	} {
		t.Run(c.name, func(t *testing.T) {
			got := span(decodeAll(t, withLoss, c.fill))
			want := span(reference)
			diff := make([]float64, len(got))
			for i := range got {
				diff[i] = got[i] - want[i]
			}
			ratio := rms(diff) / rms(want)
			t.Logf("%s: error %.2f of the lost packet's level; level %.3f of %.3f", c.name, ratio, rms(got), rms(want))
			if rms(got) < rms(want)/4 {
				t.Errorf("%s: the lost packet's 20 ms is a hole: level %.3f, want about %.3f", c.name, rms(got), rms(want))
			}
			if c.name == "fec" && ratio > 0.5 {
				t.Errorf("FEC restored the lost packet with an error of %.2f of its level", ratio)
			}
			if c.name == "conceal" && ratio < 0.5 {
				t.Errorf("concealment matched a packet it could not know (error %.2f): the test signal is too easy", ratio)
			}
		})
	}
}

// Concealment of a music stream (CELT, no redundancy) continues the tone
// instead of dropping to silence, and fades out when the loss goes on.
func TestConcealContinuesThenFades(t *testing.T) {
	packets := encode(t, encoding{source: toneA + "|" + toneA, bitrate: "96k", application: "audio"}, 1.2)
	for i := 30; i < 60; i++ {
		packets[i] = nil
	}
	out := decodeAll(t, packets, func(d *Decoder, next []byte, pcm []float32) (int, error) { return d.DecodeFEC(next, pcm) })
	level := rms(out[20*frameSamples : 30*frameSamples])
	first := rms(out[30*frameSamples : 31*frameSamples])
	last := rms(out[59*frameSamples:])
	if first < level/2 {
		t.Errorf("first concealed packet at level %.3f, the tone was %.3f", first, level)
	}
	if p, o := mediacheck.TonePower(out[30*frameSamples:31*frameSamples], 440), mediacheck.TonePower(out[30*frameSamples:31*frameSamples], 700); p < 100*o {
		t.Errorf("concealment is not the tone: 440 Hz %.3g, 700 Hz %.3g", p, o)
	}
	if last > first/2 {
		t.Errorf("after 600 ms of loss the concealment is still at %.3f (first concealed packet %.3f)", last, first)
	}
}

func TestBadInput(t *testing.T) {
	d, err := NewDecoder()
	if err != nil {
		t.Fatal(err)
	}
	pcm := make([]float32, MaxFrameSamples*Channels)
	for _, c := range []struct {
		name string
		call func() (int, error)
	}{
		{"empty packet", func() (int, error) { return d.Decode(nil, pcm) }},
		{"junk packet", func() (int, error) { return d.Decode([]byte{0xff, 0xff, 0xff}, pcm) }},
		{"no room", func() (int, error) { return d.Decode([]byte{0xfc, 0xff, 0xfe}, pcm[:10]) }},
		{"conceal less than 2.5 ms", func() (int, error) { return d.Conceal(pcm[:ConcealStep]) }},
		{"packet length of junk", func() (int, error) { return PacketSamples([]byte{0xff, 0xff}) }},
		{"packet length of nothing", func() (int, error) { return PacketSamples(nil) }},
	} {
		t.Run(c.name, func(t *testing.T) {
			if n, err := c.call(); err == nil {
				t.Errorf("%d samples and no error", n)
			}
		})
	}
	d.Close()
	d.Close()
	if _, err := d.Conceal(pcm); err == nil {
		t.Error("a closed decoder decoded")
	}
}

// FuzzDecode hands the decoder arbitrary bytes as a packet, as the
// packet after a loss, and as the length of a concealment: nothing may
// crash, and what it returns fits the buffer it was given.
func FuzzDecode(f *testing.F) {
	for _, p := range encode(f, encoding{source: voice, bitrate: "32k", application: "voip", fec: true}, 0.06) {
		f.Add(p, uint16(frameSamples))
	}
	for _, p := range encode(f, encoding{source: toneA + "|" + toneA, bitrate: "128k", application: "audio"}, 0.04) {
		f.Add(p, uint16(ConcealStep))
	}
	f.Add([]byte{}, uint16(0))
	f.Add([]byte{0xff}, uint16(MaxFrameSamples))
	f.Fuzz(func(t *testing.T, data []byte, conceal uint16) {
		d, err := NewDecoder()
		if err != nil {
			t.Fatal(err)
		}
		defer d.Close()
		pcm := make([]float32, MaxFrameSamples*Channels)
		check := func(what string, n int, err error) {
			if err == nil && (n < 0 || n > MaxFrameSamples) {
				t.Fatalf("%s: %d samples", what, n)
			}
		}
		n, err := d.Decode(data, pcm)
		check("decode", n, err)
		size := min(int(conceal), MaxFrameSamples) * Channels
		n, err = d.DecodeFEC(data, pcm[:size])
		check("FEC", n, err)
		n, err = d.Conceal(pcm[:size])
		check("conceal", n, err)
		if samples, err := PacketSamples(data); err == nil && (samples <= 0 || samples > MaxFrameSamples) {
			t.Fatalf("packet of %d samples", samples)
		}
	})
}
