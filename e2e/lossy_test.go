package e2e

import (
	"context"
	bin "encoding/binary"
	"errors"
	"fmt"
	"math"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/asticode/go-astiav"
	"github.com/pion/rtp"
	"github.com/pion/rtp/codecs"
	"github.com/pion/webrtc/v4"
	"github.com/pion/webrtc/v4/pkg/media/samplebuilder"

	"github.com/singoff/singoff/ingest/whipclient"
	"github.com/singoff/singoff/internal/avframe"
	"github.com/singoff/singoff/internal/netsim"
	"github.com/singoff/singoff/internal/opus"
	"github.com/singoff/singoff/internal/synth"
)

// lossyNetworks are the networks both singers sing over in
// BenchmarkLossyNetwork. Each singer's publisher and each singer's view
// of the other (WHEP) goes through a relay of its own with these terms:
// Up is the singer's uplink, Down their downlink.
var lossyNetworks = []struct {
	name string
	net  netsim.Config
}{
	{"clean", netsim.Config{}},
	{"loss3-jitter40", netsim.Config{
		Up:   netsim.Impairment{Loss: 0.03, Delay: 40 * time.Millisecond},
		Down: netsim.Impairment{Loss: 0.03, Delay: 40 * time.Millisecond},
	}},
	{"blackout300ms-every4s", netsim.Config{
		Up: netsim.Impairment{Blackout: 300 * time.Millisecond, Period: 4 * time.Second},
	}},
}

// lossyWindow is how much of the program and of each view is judged,
// after lossyWarmUp.
const (
	lossyWindow = 20 * time.Second
	lossyWarmUp = 3 * time.Second
)

// BenchmarkLossyNetwork measures what watchers see and hear of two
// synthetic singers (640x480 H264 at 30 fps with a time code, a 440 and
// a 660 Hz tone in Opus) publishing over impaired networks: the live
// program, decoded by the ffmpeg CLI (freezedetect on each singer's
// picture, band-pass and silencedetect on each singer's tone), and each
// singer's view of the other over WHEP, decoded as a browser would (the
// frames it can decode, a keyframe asked for after a loss; Opus through
// a 100 ms jitter buffer with FEC and concealment). One op is one
// network's 20 s: run it with -benchtime 1x. Bars (DESIGN.md), per
// singer: clean, no freeze and no gap; 3% loss with 0-40 ms jitter both
// ways, longest freeze ≤ 0.5 s, ≤ 1 s frozen, ≤ 0.3 s of gaps and ≤ 5
// clicks (15-60 ms) in 20 s, in the program and the view; a 300 ms
// uplink blackout every 4 s, longest freeze ≤ 1 s and longest gap ≤
// 0.5 s.
func BenchmarkLossyNetwork(b *testing.B) {
	for _, n := range lossyNetworks {
		b.Run(n.name, func(b *testing.B) {
			for b.Loop() {
				runLossy(b, n.net)
			}
			b.ReportMetric(0, "ns/op") // the window, not a figure
		})
	}
}

func runLossy(b *testing.B, network netsim.Config) {
	astiav.SetLogLevel(astiav.LogLevelError) // the singers' encoders chat at info
	s := startServer(b, false)
	bt := s.createBattle(b, "lossy network")
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	relays := map[string]*netsim.Relay{}
	relay := func(name string, seed uint64) whipclient.Options {
		cfg := network
		cfg.Seed = seed
		r, err := netsim.Start(cfg)
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { r.Close() })
		relays[name] = r
		return whipclient.Options{Loopback: true, RewriteOffer: r.Offer, RewriteAnswer: r.Answer}
	}
	var singing sync.WaitGroup
	defer singing.Wait()
	defer cancel()
	var views [2]*viewRecorder
	for slot := 1; slot <= 2; slot++ {
		pub, err := whipclient.Publish(ctx, fmt.Sprintf("%s/api/battles/%s/singers/%d/whip", s.base, bt.ID, slot),
			bt.SingerTokens[slot-1], relay(fmt.Sprintf("singer %d", slot), uint64(100*slot+1)))
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { pub.Close(context.Background()) })
		src, err := synth.New(synth.Config{Slot: slot})
		if err != nil {
			b.Fatal(err)
		}
		singing.Go(func() { _ = src.Sing(ctx, pub) })
	}
	for slot := 1; slot <= 2; slot++ {
		// Slot's picture as the other singer sees it, through the other
		// singer's network.
		viewer := 3 - slot
		sub, err := whipclient.Subscribe(ctx, fmt.Sprintf("%s/api/battles/%s/singers/%d/whep", s.base, bt.ID, slot),
			bt.SingerTokens[viewer-1], relay(fmt.Sprintf("view of %d", slot), uint64(100*viewer+2)))
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { sub.Close(context.Background()) })
		views[slot-1] = newViewRecorder(b, sub)
		singing.Go(func() { views[slot-1].run(ctx) })
	}
	live := s.liveProgram(b, bt.ID)
	waitFor(b, "both singers connected", 20*time.Second, func() bool {
		st := s.battle(b, bt.ID)
		return len(st.Singers) == 2 && st.Singers[0].Connected && st.Singers[1].Connected
	})

	// ffmpeg reads the live program as a player would, from a few
	// segments behind its edge, in real time.
	program := filepath.Join(b.TempDir(), "program.mkv")
	length := lossyWarmUp + lossyWindow
	began := time.Now()
	capture := exec.CommandContext(ctx, "ffmpeg", "-hide_banner", "-v", "error", "-i", live,
		"-t", strconv.FormatFloat(length.Seconds(), 'f', -1, 64), "-c", "copy", "-f", "matroska", program)
	if out, err := capture.CombinedOutput(); err != nil {
		b.Fatalf("ffmpeg reading %s: %v\n%s", live, err, out)
	}
	ended := time.Now()
	cancel()
	singing.Wait()
	loadAfter := loadAverage(b)

	prog := measureProgram(b, program, lossyWarmUp, lossyWindow)
	from := ended.Add(-lossyWindow)
	if from.Before(began.Add(lossyWarmUp)) {
		from = began.Add(lossyWarmUp)
	}
	var view [2]lossFigures
	for i, v := range views {
		view[i] = v.figures(b, i+1, from, lossyWindow)
	}
	for name, r := range relays {
		b.Logf("relay %s: up %+v, down %+v", name, r.Up(), r.Down())
	}
	for i := range 2 {
		b.Logf("singer %d in the program: %v", i+1, prog[i])
		b.Logf("singer %d in the other's view: %v (%d pictures decoded, %d keyframe requests)", i+1, view[i],
			len(views[i].captures), views[i].keyframeRequests)
		for _, m := range []struct {
			where string
			f     lossFigures
		}{{"program", prog[i]}, {"view", view[i]}} {
			name := fmt.Sprintf("s%d-%s-", i+1, m.where)
			b.ReportMetric(ms(m.f.longestFreeze()), name+"freeze-max-ms")
			b.ReportMetric(ms(m.f.frozen()), name+"frozen-ms")
			b.ReportMetric(ms(m.f.gapTotal()), name+"gaps-ms")
			b.ReportMetric(ms(m.f.longestGap()), name+"gap-max-ms")
			b.ReportMetric(float64(m.f.clicks()), name+"clicks")
		}
	}
	b.Logf("load average after: %s", loadAfter)
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

// viewRecorder is a singer's view of the other singer over WHEP, as a
// browser would show it: video frames rebuilt from RTP (a frame missing
// a packet 200 ms after newer ones came is given up), decoded, and after
// a loss nothing shown until a keyframe, which is asked for; the audio
// kept for a jitter buffer to play afterwards.
type viewRecorder struct {
	sub     *whipclient.Subscriber
	builder *samplebuilder.SampleBuilder
	decoder *astiav.CodecContext
	pkt     *astiav.Packet
	frame   *astiav.Frame

	waitKeyframe     bool
	lastRequest      time.Time
	keyframeRequests int
	captures         []time.Time // of each picture shown, from its time code
	arrivals         []time.Time
	audio            []viewPacket
}

type viewPacket struct {
	ts   uint32
	at   time.Time
	data []byte
}

func newViewRecorder(t testing.TB, sub *whipclient.Subscriber) *viewRecorder {
	t.Helper()
	codec := astiav.FindDecoder(astiav.CodecIDH264)
	if codec == nil {
		t.Fatal("no H264 decoder")
	}
	v := &viewRecorder{
		sub:     sub,
		builder: samplebuilder.New(512, &codecs.H264Packet{}, 90000, samplebuilder.WithMaxTimeDelay(200*time.Millisecond)),
		decoder: astiav.AllocCodecContext(codec),
		pkt:     astiav.AllocPacket(),
		frame:   astiav.AllocFrame(),
	}
	v.decoder.SetThreadCount(1)
	if err := v.decoder.Open(codec, nil); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		v.frame.Free()
		v.pkt.Free()
		v.decoder.Free()
	})
	return v
}

// run records until ctx ends.
func (v *viewRecorder) run(ctx context.Context) {
	for {
		select {
		case <-ctx.Done():
			return
		case p := <-v.sub.Packets():
			if p.Kind == webrtc.RTPCodecTypeAudio {
				v.audio = append(v.audio, viewPacket{p.RTP.Timestamp, p.Received, p.RTP.Payload})
				continue
			}
			v.video(p.RTP, p.Received)
		}
	}
}

func (v *viewRecorder) video(p *rtp.Packet, at time.Time) {
	v.builder.Push(p)
	for s := v.builder.Pop(); s != nil; s = v.builder.Pop() {
		if s.PrevDroppedPackets > 0 {
			v.lost()
		}
		key := isH264Keyframe(s.Data)
		if v.waitKeyframe && !key {
			v.requestKeyframe()
			continue
		}
		if !v.decode(s.Data) {
			v.lost()
			continue
		}
		v.waitKeyframe = false
		luma, stride := avframe.Plane(v.frame, 0, v.frame.Height())
		if code, ok := readTimeCodeAt(luma, stride, 0, 12, v.frame.Width()); ok {
			capture := time.UnixMilli(int64(code) | at.UnixMilli()&^0xffffffff)
			v.captures, v.arrivals = append(v.captures, capture), append(v.arrivals, at)
		}
	}
}

func (v *viewRecorder) lost() {
	v.waitKeyframe = true
	v.requestKeyframe()
}

// requestKeyframe sends a PLI, at most every 200 ms, as browsers limit
// theirs.
func (v *viewRecorder) requestKeyframe() {
	if time.Since(v.lastRequest) < 200*time.Millisecond {
		return
	}
	v.lastRequest = time.Now()
	v.keyframeRequests++
	_ = v.sub.RequestKeyframe()
}

// decode decodes one access unit and tells whether it made a picture.
func (v *viewRecorder) decode(au []byte) bool {
	if err := avframe.FillPacket(v.pkt, au); err != nil {
		return false
	}
	err := v.decoder.SendPacket(v.pkt)
	v.pkt.Unref()
	if err != nil {
		return false
	}
	v.frame.Unref()
	return v.decoder.ReceiveFrame(v.frame) == nil
}

func isH264Keyframe(annexB []byte) bool {
	for i := 0; i+3 < len(annexB); i++ {
		if annexB[i] == 0 && annexB[i+1] == 0 && annexB[i+2] == 1 && annexB[i+3]&0x1f == 5 {
			return true
		}
	}
	return false
}

// figures judges the window from from on: the pictures' stretches, and
// the audio played through a jitter buffer like the program's (100 ms
// beyond the smallest transit): a packet that is in by its time plays, a
// missing one is concealed from the next packet (FEC) if that one is in,
// else by libopus' concealment; a packet later than its time is lost.
func (v *viewRecorder) figures(t testing.TB, slot int, from time.Time, length time.Duration) lossFigures {
	t.Helper()
	var capture, arrival []time.Time
	for i, a := range v.arrivals {
		if !a.Before(from) && a.Before(from.Add(length)) {
			capture, arrival = append(capture, v.captures[i]), append(arrival, a)
		}
	}
	if len(capture) < int(length.Seconds())*10 {
		t.Fatalf("view of singer %d: %d pictures in %v", slot, len(capture), length)
	}
	pcm, err := v.play(from, length)
	if err != nil {
		t.Fatal(err)
	}
	return lossFigures{Freezes: frameStretches(capture, arrival), Gaps: measureTone(t, pcm, slot), Window: length}
}

// play runs the recorded audio through the jitter buffer and returns the
// window's mono float PCM.
func (v *viewRecorder) play(from time.Time, length time.Duration) ([]byte, error) {
	if len(v.audio) == 0 {
		return nil, errors.New("no audio")
	}
	// Unwrap the timestamps; the stream's clock runs from the first.
	type packet struct {
		ext  int64
		at   time.Time
		data []byte
	}
	var packets []packet
	ext := int64(0)
	for i, p := range v.audio {
		if i > 0 {
			ext += int64(int32(p.ts - v.audio[i-1].ts))
		}
		packets = append(packets, packet{ext, p.at, p.data})
	}
	slices.SortStableFunc(packets, func(a, b packet) int { return int(a.ext - b.ext) })
	anchor := packets[0].at
	for _, p := range packets {
		if sent := anchor.Add(time.Duration(p.ext) * time.Second / 48000); p.at.Before(sent) {
			anchor = anchor.Add(p.at.Sub(sent)) // the smallest transit
		}
	}
	playAt := func(ext int64) time.Time {
		return anchor.Add(time.Duration(ext)*time.Second/48000 + 100*time.Millisecond)
	}
	byExt := map[int64]packet{}
	for _, p := range packets {
		if !p.at.After(playAt(p.ext)) {
			byExt[p.ext] = p
		}
	}
	dec, err := opus.NewDecoder()
	if err != nil {
		return nil, err
	}
	defer dec.Close()
	frame := int64(960)
	buf := make([]float32, opus.MaxFrameSamples*opus.Channels)
	var out []byte
	last := packets[len(packets)-1].ext
	for e := packets[0].ext; e <= last; e += frame {
		var n int
		if p, ok := byExt[e]; ok {
			n, err = dec.Decode(p.data, buf)
		} else if next, ok := byExt[e+frame]; ok {
			n, err = dec.DecodeFEC(next.data, buf[:frame*opus.Channels])
		} else {
			n, err = dec.Conceal(buf[:frame*opus.Channels])
		}
		if err != nil {
			n = int(frame)
			clear(buf[:n*opus.Channels])
		}
		if at := playAt(e); at.Before(from) || !at.Before(from.Add(length)) {
			continue
		}
		for i := range n {
			out = bin.LittleEndian.AppendUint32(out, math.Float32bits(buf[i*opus.Channels]))
		}
	}
	return out, nil
}
