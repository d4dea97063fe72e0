package e2e

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
)

// How the lossy-network figures judge what a watcher sees and hears.
const (
	// freezeAtLeast is the shortest stretch without a new picture that
	// counts as frozen: three frames at 30 fps.
	freezeAtLeast = 100 * time.Millisecond
	// gapAtLeast is the shortest drop of a singer's tone that counts as
	// an audio gap (silencedetect's d); clickAtMost the longest that is
	// a click.
	gapAtLeast  = 15 * time.Millisecond
	clickAtMost = 60 * time.Millisecond
	// silenceBelow is where a tone (at -10.5 dBFS) counts as gone.
	silenceBelow = "-30dB"
)

// singerTones are the synthetic singers' tones by slot.
var singerTones = [2]int{440, 660}

// lossFigures sum what one singer's watchers got over a window.
type lossFigures struct {
	Freezes []time.Duration // each stretch without a new picture, freezeAtLeast or more
	Gaps    []time.Duration // each drop of the tone, gapAtLeast or more
	Window  time.Duration   // the window the figures cover
}

func (f lossFigures) longestFreeze() time.Duration { return longest(f.Freezes) }
func (f lossFigures) frozen() time.Duration        { return sum(f.Freezes) }
func (f lossFigures) longestGap() time.Duration    { return longest(f.Gaps) }
func (f lossFigures) gapTotal() time.Duration      { return sum(f.Gaps) }

// clicks counts the short holes: gapAtLeast to clickAtMost.
func (f lossFigures) clicks() int {
	n := 0
	for _, g := range f.Gaps {
		if g <= clickAtMost {
			n++
		}
	}
	return n
}

func (f lossFigures) String() string {
	return fmt.Sprintf("longest freeze %v, %v frozen (%d stretches); audio gaps %v in all, longest %v, %d clicks, in %v",
		f.longestFreeze().Round(time.Millisecond), f.frozen().Round(time.Millisecond), len(f.Freezes),
		f.gapTotal().Round(time.Millisecond), f.longestGap().Round(time.Millisecond), f.clicks(), f.Window)
}

func longest(ds []time.Duration) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	return slices.Max(ds)
}

func sum(ds []time.Duration) time.Duration {
	var s time.Duration
	for _, d := range ds {
		s += d
	}
	return s
}

// toneFilter keeps singer slot's tone: a notch at the other singer's (a
// narrow notch leaves this tone's edges sharp, where a narrow band-pass
// would smear a 20 ms hole shut), then a broad band-pass around it.
func toneFilter(slot int) string {
	other := singerTones[2-slot]
	return fmt.Sprintf("bandreject=f=%d:width_type=h:w=30,bandreject=f=%d:width_type=h:w=30,bandpass=f=%d:width_type=h:w=300",
		other, other, singerTones[slot-1])
}

// measureProgram has the ffmpeg CLI judge length of a program file from
// skip on: freezedetect on each singer's picture in the program (the
// 640x480 picture in each half), a band-pass and silencedetect on each
// singer's tone in the mix.
func measureProgram(t testing.TB, path string, skip, length time.Duration) [2]lossFigures {
	t.Helper()
	dir := t.TempDir()
	file := func(name string) string { return filepath.Join(dir, name) }
	var graph []string
	graph = append(graph, "[0:v]format=gray,split=2[v1][v2]", "[0:a]pan=mono|c0=0.5*c0+0.5*c1,asplit=2[a1][a2]")
	for slot := 1; slot <= 2; slot++ {
		graph = append(graph,
			fmt.Sprintf("[v%d]crop=640:480:%d:120,freezedetect=n=-45dB:d=%g,metadata=mode=print:file=%s[vo%d]",
				slot, (slot-1)*640, freezeAtLeast.Seconds(), file(fmt.Sprintf("freeze%d.txt", slot)), slot),
			fmt.Sprintf("[a%d]%s,silencedetect=n=%s:d=%g,ametadata=mode=print:file=%s[ao%d]",
				slot, toneFilter(slot), silenceBelow, gapAtLeast.Seconds(), file(fmt.Sprintf("silence%d.txt", slot)), slot))
	}
	seconds := func(d time.Duration) string { return strconv.FormatFloat(d.Seconds(), 'f', -1, 64) }
	args := []string{"-hide_banner", "-nostats", "-v", "error", "-ss", seconds(skip), "-t", seconds(length), "-i", path,
		"-filter_complex", strings.Join(graph, ";")}
	for slot := 1; slot <= 2; slot++ {
		args = append(args, "-map", fmt.Sprintf("[vo%d]", slot), "-map", fmt.Sprintf("[ao%d]", slot))
	}
	ffmpeg(t, append(args, "-f", "null", "-")...)
	var out [2]lossFigures
	for slot := 1; slot <= 2; slot++ {
		out[slot-1] = lossFigures{
			Freezes: spans(t, file(fmt.Sprintf("freeze%d.txt", slot)), "lavfi.freezedetect.freeze_start", "lavfi.freezedetect.freeze_end", length),
			Gaps:    spans(t, file(fmt.Sprintf("silence%d.txt", slot)), "lavfi.silence_start", "lavfi.silence_end", length),
			Window:  length,
		}
	}
	return out
}

// measureTone has silencedetect judge mono float PCM at 48 kHz of singer
// slot's tone, as measureProgram does the program's.
func measureTone(t testing.TB, pcm []byte, slot int) []time.Duration {
	t.Helper()
	dir := t.TempDir()
	raw, marks := filepath.Join(dir, "audio.f32"), filepath.Join(dir, "silence.txt")
	if err := os.WriteFile(raw, pcm, 0o600); err != nil {
		t.Fatal(err)
	}
	ffmpeg(t, "-hide_banner", "-nostats", "-v", "error", "-f", "f32le", "-ar", "48000", "-ac", "1", "-i", raw,
		"-af", fmt.Sprintf("%s,silencedetect=n=%s:d=%g,ametadata=mode=print:file=%s", toneFilter(slot), silenceBelow, gapAtLeast.Seconds(), marks),
		"-f", "null", "-")
	return spans(t, marks, "lavfi.silence_start", "lavfi.silence_end", time.Duration(len(pcm)/4)*time.Second/48000)
}

func ffmpeg(t testing.TB, args ...string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	out, err := exec.CommandContext(ctx, "ffmpeg", args...).CombinedOutput()
	if err != nil || len(bytes.TrimSpace(out)) > 0 {
		t.Fatalf("ffmpeg %s: %v\n%s", strings.Join(args, " "), err, out)
	}
}

// spans reads the start and end marks a detect filter printed and
// returns each span's length; a span still open at the end runs to end.
// A span open from the very start is the file's start (the decoders'
// delay), not a gap, and is left out.
func spans(t testing.TB, path, startKey, endKey string, end time.Duration) []time.Duration {
	t.Helper()
	f, err := os.Open(path)
	if os.IsNotExist(err) {
		return nil // nothing printed: no span
	}
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var out []time.Duration
	open := time.Duration(-1)
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		k, v, ok := strings.Cut(sc.Text(), "=")
		if !ok {
			continue
		}
		secs, err := strconv.ParseFloat(v, 64)
		if err != nil {
			t.Fatalf("%s: %q", path, sc.Text())
		}
		at := time.Duration(secs * float64(time.Second))
		switch k {
		case startKey:
			open = at
		case endKey:
			if open > 0 {
				out = append(out, at-open)
			}
			open = -1
		}
	}
	if open > 0 {
		out = append(out, end-open)
	}
	return out
}

// frameStretches are the stretches without a new picture of a viewer
// that renders each decoded picture (captured at capture, arrived at
// arrival) no sooner than a fixed playout delay after it was captured:
// the smallest transit seen plus 100 ms, the program's own jitter
// buffer. It returns those of freezeAtLeast or more.
func frameStretches(capture, arrival []time.Time) []time.Duration {
	if len(capture) < 2 {
		return nil
	}
	transit := arrival[0].Sub(capture[0])
	for i := range capture {
		transit = min(transit, arrival[i].Sub(capture[i]))
	}
	delay := transit + 100*time.Millisecond
	var out []time.Duration
	var last time.Time
	for i := range capture {
		// Not before its playout time, nor before the picture before it.
		render := capture[i].Add(delay)
		if arrival[i].After(render) {
			render = arrival[i]
		}
		if render.Before(last) {
			render = last
		}
		if i > 0 {
			if d := render.Sub(last); d >= freezeAtLeast {
				out = append(out, d)
			}
		}
		last = render
	}
	return out
}

// The measure itself: on a made-up program with known freezes and holes,
// it finds them, in the right singer, and nothing else.
func TestLossMeasureFindsFreezesAndHoles(t *testing.T) {
	path := filepath.Join(t.TempDir(), "program.mkv")
	// Each half a 640x480 picture in which every pixel moves each frame,
	// as the synthetic singers' does, letterboxed as in the program: the
	// left frozen for frames 90-120 (1.07 s), the right for 149-156
	// (0.27 s). The tones: 440 Hz with holes of 20 ms at 3 s and 40 ms
	// at 5 s, 660 Hz with one of 300 ms at 6 s.
	half := func(freeze [2]int, pattern string) string {
		return fmt.Sprintf("nullsrc=s=640x480:r=30:d=8,format=yuv420p,geq=lum='mod(%s+4*if(between(N\\,%d\\,%d)\\,%d\\,N)\\,256)*219/255+16':cb=128:cr=128,pad=640:720:0:120",
			pattern, freeze[0], freeze[1], freeze[0]-1)
	}
	video := half([2]int{90, 120}, "X+Y") + "[l];" + half([2]int{150, 156}, "X+2*Y") + "[r];[l][r]hstack"
	audio := "aevalsrc='0.3*sin(2*PI*440*t)*not(between(t\\,3\\,3.02))*not(between(t\\,5\\,5.04))+0.3*sin(2*PI*660*t)*not(between(t\\,6\\,6.3))':s=48000:d=8"
	ffmpeg(t, "-hide_banner", "-v", "error", "-y", "-f", "lavfi", "-i", video, "-f", "lavfi", "-i", audio,
		"-c:v", "libx264", "-preset", "veryfast", "-g", "30", "-pix_fmt", "yuv420p", "-c:a", "aac", "-b:a", "128k", "-ac", "2", path)
	got := measureProgram(t, path, 0, 8*time.Second)
	near := func(d, want time.Duration) bool { return (d - want).Abs() <= 25*time.Millisecond }
	for _, c := range []struct {
		name  string
		got   []time.Duration
		wants []time.Duration
	}{
		{"left freezes", got[0].Freezes, []time.Duration{1067 * time.Millisecond}},
		{"right freezes", got[1].Freezes, []time.Duration{267 * time.Millisecond}},
		{"440 Hz gaps", got[0].Gaps, []time.Duration{20 * time.Millisecond, 40 * time.Millisecond}},
		{"660 Hz gaps", got[1].Gaps, []time.Duration{300 * time.Millisecond}},
	} {
		if len(c.got) != len(c.wants) {
			t.Errorf("%s: %v, want %v", c.name, c.got, c.wants)
			continue
		}
		for i := range c.got {
			if !near(c.got[i], c.wants[i]) {
				t.Errorf("%s: %v, want %v", c.name, c.got, c.wants)
			}
		}
	}
	if got[0].clicks() != 2 || got[1].clicks() != 0 {
		t.Errorf("clicks %d and %d, want 2 and 0", got[0].clicks(), got[1].clicks())
	}

	// A viewer's stretches: 30 fps with 0-40 ms of jitter is smooth; a
	// picture 300 ms late is a freeze of about its lateness.
	t0 := time.Unix(100, 0)
	var capture, arrival []time.Time
	for i := range 90 {
		c := t0.Add(time.Duration(i) * time.Second / 30)
		a := c.Add(20*time.Millisecond + time.Duration(i*7%41)*time.Millisecond)
		if i == 60 {
			a = c.Add(420 * time.Millisecond)
		}
		capture, arrival = append(capture, c), append(arrival, a)
	}
	if s := frameStretches(capture, arrival); len(s) != 1 || s[0] < 300*time.Millisecond || s[0] > 360*time.Millisecond {
		t.Errorf("viewer stretches %v, want one of about 330 ms", s)
	}
}
