package compositor

import (
	"math"
	"math/rand/v2"
	"slices"
	"testing"
	"time"

	"github.com/asticode/go-astiav"

	"github.com/singoff/singoff/internal/synth"
	"github.com/singoff/singoff/media"
)

// path is a network path's transit delay for a unit sent at t (from the
// start of a run).
type path func(t time.Duration) time.Duration

func steady(d time.Duration) path { return func(time.Duration) time.Duration { return d } }

// step is a path whose delay changes from before to after at each of at.
func step(before, after time.Duration, from, until time.Duration) path {
	return func(t time.Duration) time.Duration {
		if t >= from && t < until {
			return after
		}
		return before
	}
}

// The playout offset follows a path that gets slower at once, so that no
// audio unit comes too late to be heard, and comes back slowly when it
// gets faster again (the review's clocksim scenario, and more).
func TestPlayoutOffsetRisesAtOnceAndFallsSlowly(t *testing.T) {
	ms := time.Millisecond
	spikes := func(t time.Duration) time.Duration { // Wi-Fi: 150 ms extra for 60 ms every 500 ms
		if t%(500*ms) < 60*ms {
			return 180 * ms
		}
		return 30 * ms
	}
	jitter := rand.New(rand.NewPCG(3, 11))
	for _, c := range []struct {
		name string
		path path
		// offsets the tracker must give at points of the run (beyond
		// the smallest delay, 30 ms): at least, at most.
		checks []offsetCheck
	}{
		{"steady", steady(30 * ms), []offsetCheck{{at: 20 * time.Second, least: playoutDelay, most: playoutDelay}}},
		{"0-40 ms jitter does not raise it", func(time.Duration) time.Duration { return 30*ms + time.Duration(jitter.IntN(40))*ms },
			[]offsetCheck{{at: 20 * time.Second, least: playoutDelay, most: playoutDelay}}},
		{"200 ms slower from 10.5 s to 20 s", step(30*ms, 230*ms, 10500*ms, 20*time.Second), []offsetCheck{
			{at: 10600 * ms, least: 200 * ms, most: 200*ms + audioGuard + raiseHeadroom},
			{at: 19 * time.Second, least: 200 * ms, most: 200*ms + audioGuard + raiseHeadroom},
			// Back to fast: the window and the one before hold it,
			// then it falls at 20 ms a second.
			{at: 23 * time.Second, least: 200*ms + audioGuard + raiseHeadroom - 2*time.Second/fallSlowdown, most: 200*ms + audioGuard + raiseHeadroom},
			{at: 40 * time.Second, least: playoutDelay, most: playoutDelay},
		}},
		{"jitter spikes of 150 ms", spikes, []offsetCheck{{at: 10 * time.Second, least: 150 * ms, most: 150*ms + audioGuard + raiseHeadroom}}},
	} {
		t.Run(c.name, func(t *testing.T) {
			var clock playoutClock
			t0 := time.Unix(1000, 0)
			checks := c.checks
			late, prev, prevArrival := 0, time.Duration(0), time.Time{}
			end := checks[len(checks)-1].at
			for sent := time.Duration(0); sent <= end; sent += 20 * ms {
				p := media.AccessUnit{Codec: media.CodecOpus, RTPTime: uint32(sent * 48000 / time.Second), ClockRate: 48000,
					SenderNTP: t0.Add(sent), Arrival: t0.Add(sent + c.path(sent))}
				at, _ := clock.playAt(&p)
				if p.Arrival.After(at.Add(-audioGuard)) {
					late++
				}
				offset := at.Sub(t0.Add(sent)) - 30*ms
				if gap := p.Arrival.Sub(prevArrival); prev != 0 && offset < prev-max(gap, 0)/fallSlowdown {
					t.Fatalf("at %v the offset fell from %v to %v in %v", sent, prev, offset, gap)
				}
				prev, prevArrival = offset, p.Arrival
				if sent >= checks[0].at {
					if offset < checks[0].least || offset > checks[0].most {
						t.Errorf("at %v the offset is %v beyond the path's least delay, want %v to %v", sent, offset, checks[0].least, checks[0].most)
					}
					checks = checks[1:]
					if len(checks) == 0 {
						break
					}
				}
			}
			if late > 0 {
				t.Errorf("%d audio units came too late to be heard", late)
			}
		})
	}
}

type offsetCheck struct{ at, least, most time.Duration }

// A video frame that comes very late (a long retransmission) is a
// straggler, not the sender's clock jumping: it moves nothing; a jump
// shows in several audio units in a row and is followed.
func TestPlayoutClockStragglerIsNoJump(t *testing.T) {
	var clock playoutClock
	t0 := time.Unix(1000, 0)
	// unit returns the offset a unit sent at sent (on the sender's
	// clock, which is behind ours by behind) arriving delay later plays
	// with.
	unit := func(codec media.Codec, sent, behind, delay time.Duration) time.Duration {
		rate := uint32(48000)
		if codec.IsVideo() {
			rate = 90000
		}
		p := media.AccessUnit{Codec: codec, RTPTime: uint32(sent * time.Duration(rate) / time.Second), ClockRate: rate,
			SenderNTP: t0.Add(sent - behind), Arrival: t0.Add(sent + delay)}
		at, _ := clock.playAt(&p)
		return at.Sub(p.SenderNTP)
	}
	base := unit(media.CodecOpus, 0, 0, 30*time.Millisecond)
	unit(media.CodecH264, 20*time.Millisecond, 0, 1500*time.Millisecond)
	if got := unit(media.CodecOpus, 40*time.Millisecond, 0, 30*time.Millisecond); got != base {
		t.Fatalf("after a straggling picture the audio plays with %v, not %v", got, base)
	}
	// The sender's clock goes back 5 s: its units seem 5 s late.
	var got time.Duration
	for i := range jumpUnits {
		got = unit(media.CodecOpus, time.Duration(60+20*i)*time.Millisecond, 5*time.Second, 30*time.Millisecond)
	}
	if want := 5*time.Second + base; got != want {
		t.Fatalf("after the sender's clock jumped back 5 s the offset is %v, want %v", got, want)
	}
}

// A picture that comes after a newer one was shown is not shown: the
// program never steps back.
func TestPictureQueueNeverStepsBack(t *testing.T) {
	var q pictureQueue
	defer q.freeAll()
	t0 := time.Unix(0, 0)
	put := func(at time.Duration) {
		p := q.get()
		p.playAt = t0.Add(at)
		q.put(p)
	}
	put(100 * time.Millisecond)
	if p := q.due(t0.Add(150 * time.Millisecond)); p == nil || !p.playAt.Equal(t0.Add(100*time.Millisecond)) {
		t.Fatalf("due: %v", p)
	} else {
		q.release(p)
	}
	put(60 * time.Millisecond) // late, older than the one shown
	put(130 * time.Millisecond)
	p := q.due(t0.Add(200 * time.Millisecond))
	if p == nil || !p.playAt.Equal(t0.Add(130*time.Millisecond)) {
		t.Fatalf("due after a late picture: %v", p)
	}
	q.release(p)
	if p := q.due(t0.Add(300 * time.Millisecond)); p != nil {
		t.Fatalf("the late picture came out after a newer one: %v", p.playAt.Sub(t0))
	}
}

func TestAudioRingBlendsWhereItOverwrites(t *testing.T) {
	var r audioRing
	ones := []float32{1, 1, 1, 1, 1, 1, 1, 1}
	twos := []float32{2, 2, 2, 2, 2, 2}
	r.write(0, ones, ones)
	r.blend(4, twos, twos, 3)
	left, right := make([]float32, 10), make([]float32, 10)
	r.mixInto(left, right, 1, 1)
	want := []float32{1, 1, 1, 1, 1.25, 1.5, 1.75, 2, 2, 2}
	if !slices.Equal(left, want) || !slices.Equal(right, want) {
		t.Fatalf("blended %v, want %v", left, want)
	}
}

// netUnit is an audio unit as a network delivers it.
type netUnit struct {
	media.AccessUnit
	sent time.Duration
}

// audioRun plays a singer's Opus stream through a simulated network into
// the slot's audio path (playout clock, voice, ring) and the mixer, on a
// virtual clock: the program reads 1024 samples whenever they are due, as
// Compositor.audioFrames does. It returns the mixed audio and what the
// voice did.
type audioRun struct {
	units []netUnit // in sending order
	// deliver says when each unit arrives after its sending, and whether
	// it arrives at all.
	deliver func(i int, sent time.Duration) (time.Duration, bool)
}

func opusStream(t *testing.T, length time.Duration) []netUnit {
	t.Helper()
	clip, err := synth.Encode(synth.Config{Slot: 1, Width: 64, Height: 64}, length)
	if err != nil {
		t.Fatal(err)
	}
	var units []netUnit
	var first uint32
	for _, p := range clip.Packets() {
		if p.Codec != media.CodecOpus {
			continue
		}
		if units == nil {
			first = p.RTPTime
		}
		units = append(units, netUnit{AccessUnit: p, sent: time.Duration(p.RTPTime-first) * time.Second / 48000})
	}
	return units
}

func (r audioRun) play(t *testing.T) ([]float32, voiceStats) {
	t.Helper()
	t0 := time.Unix(5000, 0)
	var ring audioRing
	v := &voice{sound: &ring, pending: make([]heldPacket, 0, maxHeld)}
	defer v.close()
	var clock playoutClock
	type arrival struct {
		at time.Duration
		u  netUnit
	}
	var arrivals []arrival
	for i, u := range r.units {
		if d, ok := r.deliver(i, u.sent); ok {
			arrivals = append(arrivals, arrival{u.sent + d, u})
		}
	}
	slices.SortStableFunc(arrivals, func(a, b arrival) int { return int(a.at - b.at) })
	end := r.units[len(r.units)-1].sent
	// The program starts with the first unit, as a battle goes live when
	// its first singer arrives.
	start := t0
	pos := func(d time.Duration) int64 { return int64(d) * 48000 / int64(time.Second) }
	guard := pos(audioGuard)
	var out []float32
	var read int64 // samples the mixer took
	var wake int64 = -1
	// mixUpTo runs what happens until now in time order: the slot's
	// timer draining the voice, the mixer taking a block once it is due.
	mixUpTo := func(now time.Duration) {
		for {
			blockDue := time.Duration((read + media.AACFrameSamples) * int64(time.Second) / 48000)
			wakeAt := time.Duration(wake * int64(time.Second) / 48000)
			switch {
			case wake >= 0 && wakeAt <= now && wakeAt <= blockDue:
				again, ok, _ := v.drain(wake, guard)
				wake = -1
				if ok {
					wake = again
				}
			case blockDue <= now:
				left, right := make([]float32, media.AACFrameSamples), make([]float32, media.AACFrameSamples)
				ring.mixInto(left, right, 1, 1)
				read += media.AACFrameSamples
				out = append(out, left...)
			default:
				return
			}
		}
	}
	for _, a := range arrivals {
		mixUpTo(a.at)
		u := a.u.AccessUnit
		u.Session = 1
		u.SenderNTP = t0.Add(a.u.sent)
		u.Arrival = t0.Add(a.at)
		at, ext := clock.playAt(&u)
		if err := v.push(u.Data, ext, at.Sub(start).Nanoseconds()*48000/int64(time.Second)); err != nil {
			t.Fatal(err)
		}
		again, ok, err := v.drain(pos(a.at), guard)
		if err != nil {
			t.Fatal(err)
		}
		wake = -1
		if ok {
			wake = again
		}
	}
	// Up to the last unit's playout, before the stream's end is taken
	// for a loss.
	mixUpTo(end + playoutDelay)
	return out, v.stats
}

// holes finds where pcm (a tone at about 0.3) drops below -30 dB of it
// for at least 15 ms, in 2.5 ms steps: the silencedetect of the e2e
// measure. It skips the first second (the stream's start).
func holes(pcm []float32) []time.Duration {
	const win = 120 // 2.5 ms
	threshold := 0.3 * math.Pow(10, -30.0/20)
	var found []time.Duration
	run := 0
	for i := 48000; i+win <= len(pcm); i += win {
		peak := 0.0
		for _, x := range pcm[i : i+win] {
			peak = max(peak, math.Abs(float64(x)))
		}
		if peak < threshold {
			run++
			continue
		}
		if run*win >= 720 {
			found = append(found, time.Duration(run*win)*time.Second/48000)
		}
		run = 0
	}
	return found
}

// The slot's audio path on a bad network: reordered packets are placed,
// a lost one is concealed, and a path that gets slower stretches the
// voice instead of cutting it; nothing leaves a hole.
func TestVoiceOnABadNetwork(t *testing.T) {
	units := opusStream(t, 12*time.Second)
	clean, _ := audioRun{units: units, deliver: func(int, time.Duration) (time.Duration, bool) { return 30 * time.Millisecond, true }}.play(t)
	if h := holes(clean); len(h) > 0 {
		t.Fatalf("clean network: holes %v", h)
	}
	ms := time.Millisecond
	rng := rand.New(rand.NewPCG(7, 7))
	lossy := make([]bool, len(units))
	jitter := make([]time.Duration, len(units))
	for i := range units {
		lossy[i] = rng.Float64() < 0.03
		jitter[i] = time.Duration(rng.IntN(41)) * ms
	}
	for _, c := range []struct {
		name    string
		deliver func(i int, sent time.Duration) (time.Duration, bool)
		// sameAsClean: the output is the clean run's, sample for sample.
		sameAsClean        bool
		concealed, minFEC  int64
		maxHoles           int
		longestHole        time.Duration
		maxLate, maxSkips  int64
		concealedAtLeast   int64
		concealedAtMostPct float64
	}{
		{name: "every 10th packet overtaken by the next", deliver: func(i int, _ time.Duration) (time.Duration, bool) {
			if i%10 == 5 {
				return 75 * ms, true // 45 ms later than the rest: after the next one
			}
			return 30 * ms, true
		}, sameAsClean: true},
		{name: "one packet lost", deliver: func(i int, _ time.Duration) (time.Duration, bool) { return 30 * ms, i != 300 },
			concealedAtLeast: 1, concealedAtMostPct: 0.5},
		{name: "3% loss and 0-40 ms jitter", deliver: func(i int, _ time.Duration) (time.Duration, bool) {
			return 30*ms + jitter[i], !lossy[i]
		}, concealedAtLeast: 1, concealedAtMostPct: 6},
		{name: "200 ms slower from 5 s on", deliver: func(_ int, sent time.Duration) (time.Duration, bool) {
			return step(30*ms, 230*ms, 5*time.Second, time.Hour)(sent), true
		}, concealedAtLeast: 1, concealedAtMostPct: 3},
		{name: "300 ms blackout every 4 s", deliver: func(_ int, sent time.Duration) (time.Duration, bool) {
			return 30 * ms, sent%(4*time.Second) < 3700*ms
		}, concealedAtLeast: 1, concealedAtMostPct: 20, maxHoles: 3, longestHole: 150 * ms},
	} {
		t.Run(c.name, func(t *testing.T) {
			out, st := audioRun{units: units, deliver: c.deliver}.play(t)
			t.Logf("%+v", st)
			if c.sameAsClean {
				n := min(len(out), len(clean))
				for i := 48000; i < n; i++ {
					if out[i] != clean[i] {
						t.Fatalf("sample %d is %v, the clean network's %v", i, out[i], clean[i])
					}
				}
				return
			}
			h := holes(out)
			longest := time.Duration(0)
			for _, d := range h {
				longest = max(longest, d)
			}
			if len(h) > c.maxHoles || longest > c.longestHole {
				t.Errorf("holes %v", h)
			}
			if st.Concealed < c.concealedAtLeast || float64(st.Concealed) > c.concealedAtMostPct/100*float64(len(units)) {
				t.Errorf("%d concealments in %d packets", st.Concealed, len(units))
			}
		})
	}
}

// A lost packet's time is concealed with the next packet's redundancy
// when it carries one; the slot decodes with libopus, whose FEC the
// internal/opus tests check. Here: the voice uses it when the next packet
// is in, and a mono packet plays on both channels.
func TestVoiceUsesTheNextPacketForALostOne(t *testing.T) {
	units := opusStream(t, 2*time.Second)
	_, st := audioRun{units: units, deliver: func(i int, _ time.Duration) (time.Duration, bool) { return 30 * time.Millisecond, i != 50 }}.play(t)
	if st.FEC != 1 || st.Concealed != 1 {
		t.Fatalf("one packet lost: %+v", st)
	}
	var ring audioRing
	w := &voice{sound: &ring, pending: make([]heldPacket, 0, maxHeld)}
	defer w.close()
	if err := w.push(units[10].Data, 0, 0); err != nil {
		t.Fatal(err)
	}
	if _, _, err := w.drain(0, 0); err != nil {
		t.Fatal(err)
	}
	left, right := make([]float32, 960), make([]float32, 960)
	ring.mixInto(left, right, 1, 1)
	if !slices.Equal(left, right) || slices.Max(left) < 0.1 {
		t.Fatalf("a mono packet decoded to left %v…, right %v…", left[:4], right[:4])
	}
}

// junk and bad timestamps in the audio never panic, never hold packets
// without bound, and a real stream after them plays.
func TestVoiceTakesJunk(t *testing.T) {
	astiav.SetLogLevel(astiav.LogLevelFatal)
	units := opusStream(t, time.Second)
	var ring audioRing
	v := &voice{sound: &ring, pending: make([]heldPacket, 0, maxHeld)}
	defer v.close()
	for _, c := range []struct {
		name string
		data []byte
		ext  int64
	}{
		{"empty", nil, 0},
		{"junk", []byte{0xff, 0xff, 0xff}, 960},
		{"far future", units[0].Data, 1 << 40},
		{"far past", units[0].Data, -(1 << 40)},
	} {
		_ = v.push(c.data, c.ext, c.ext)
		if _, _, err := v.drain(c.ext, 0); err != nil {
			t.Logf("%s: %v", c.name, err)
		}
	}
	for i := range 100 { // more than maxHeld ahead of the stream
		_ = v.push(units[i%len(units)].Data, int64(10000+960*(i+2)), int64(10000+960*(i+2)))
	}
	if len(v.pending) > maxHeld {
		t.Fatalf("%d packets held", len(v.pending))
	}
	before := v.stats.Decoded
	for i, u := range units {
		_ = v.push(u.Data, int64(1<<20+960*i), int64(1<<20+960*i))
		_, _, _ = v.drain(int64(1<<20+960*i), 0)
	}
	if v.stats.Decoded-before < int64(len(units))/2 {
		t.Fatalf("after junk, %d of %d packets decoded", v.stats.Decoded-before, len(units))
	}
}
