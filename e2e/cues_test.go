package e2e

import (
	"net/http"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"
)

// dateRange is one EXT-X-DATERANGE of a playlist.
type dateRange struct {
	id, class string
	start     time.Time
	duration  time.Duration
	data      map[string]string // the X- attributes, without the prefix
}

var dateRangeAttr = regexp.MustCompile(`([A-Z0-9-]+)=("[^"]*"|[^,]*)`)

// dateRanges parses the EXT-X-DATERANGE tags of a playlist by ID.
func dateRanges(t testing.TB, playlist string) map[string]dateRange {
	t.Helper()
	out := map[string]dateRange{}
	for line := range strings.Lines(playlist) {
		rest, ok := strings.CutPrefix(strings.TrimSpace(line), "#EXT-X-DATERANGE:")
		if !ok {
			continue
		}
		r := dateRange{data: map[string]string{}}
		for _, m := range dateRangeAttr.FindAllStringSubmatch(rest, -1) {
			key, value := m[1], strings.Trim(m[2], `"`)
			switch key {
			case "ID":
				r.id = value
			case "CLASS":
				r.class = value
			case "START-DATE":
				start, err := time.Parse(time.RFC3339Nano, value)
				if err != nil {
					t.Fatalf("DATERANGE START-DATE %q: %v", value, err)
				}
				r.start = start
			case "DURATION":
				seconds, err := strconv.ParseFloat(value, 64)
				if err != nil {
					t.Fatalf("DATERANGE DURATION %q: %v", value, err)
				}
				r.duration = time.Duration(seconds * float64(time.Second))
			default:
				if name, ok := strings.CutPrefix(key, "X-"); ok {
					r.data[name] = value
				}
			}
		}
		out[r.id] = r
	}
	return out
}

// captureToProgram measures how long after a bot captured a picture the
// program shows it (the compositor's playout delay): a low-latency
// client reads parts of the live program and compares each part's first
// picture's time code with its program time (EXT-X-PROGRAM-DATE-TIME).
// It is steady while the bots sing; the median of a few seconds.
func captureToProgram(t testing.TB, s *server, id string) time.Duration {
	t.Helper()
	w := newPartWatcher(t, s.client, s.base+"/hls/"+id+"/index.m3u8")
	defer w.close()
	var ms []float64
	for len(ms) < 15 {
		if time.Since(w.started) > 30*time.Second {
			t.Fatalf("read %d time codes from the program in %v", len(ms), time.Since(w.started).Round(time.Second))
		}
		part := w.nextFirstPicture(t)
		if part.luma == nil || part.start.IsZero() || len(part.codes) == 0 || !part.codes[0].ok[0] {
			continue
		}
		ms = append(ms, float64(int32(uint32(part.start.UnixMilli())-part.codes[0].code[0])))
	}
	sort.Float64s(ms)
	t.Logf("capture → program picture: %s", summary(ms))
	return time.Duration(percentile(ms, 0.5) * float64(time.Millisecond))
}

// watchFrames opens battle id's watch page in a new browser, waits until
// it plays live and records what it shows of every picture from then on
// (recordFramesJS).
func (s *server) watchFrames(t testing.TB, id string) *tab {
	t.Helper()
	watch := newBrowser(t, false).open("watch", s.base+"/b/"+id)
	watch.waitPlaying("#program", 30*time.Second)
	watch.waitStatus("Live", 15*time.Second)
	watch.eval(recordFramesJS, nil)
	return watch
}

// recordFramesJS keeps, for every picture the watch page presents, its
// media time, slot 1's time code (the capture time the bot drew, see
// synth) and what the page shows of the battle, in window.frames. The
// page's own frame callbacks were registered first, so what it shows is
// read after it has handled the same picture.
const recordFramesJS = `(() => {
	const v = document.getElementById("program");
	const c = document.createElement("canvas");
	const g = c.getContext("2d", { willReadFrequently: true });
	window.frames = [];
	let img = null, row = null;
	// read decodes the 32 blocks of slot 1's half at row y, or null.
	const read = (y) => {
		let code = 0;
		for (let i = 0; i < 32; i++) {
			const x = Math.floor((i + 0.5) * c.width / 32);
			const p = (y * c.width + x) * 4;
			const lum = 0.299 * img.data[p] + 0.587 * img.data[p + 1] + 0.114 * img.data[p + 2];
			if (lum > 80 && lum < 175) return null;
			code = code * 2 + (lum >= 175 ? 1 : 0);
		}
		return code;
	};
	const plausible = (code) => code !== null &&
		((Date.now() % 4294967296 - code) % 4294967296 + 4294967296) % 4294967296 < 60000;
	// findRow is the middle of the longest run of rows that read the same
	// plausible code.
	const findRow = () => {
		let best = null, bestLen = 0, runStart = 0, runCode = null;
		for (let y = 0; y < c.height; y++) {
			const code = read(y);
			if (plausible(code) && code === runCode) {
				if (y - runStart + 1 > bestLen) { bestLen = y - runStart + 1; best = Math.floor((runStart + y) / 2); }
			} else {
				runStart = y;
				runCode = plausible(code) ? code : null;
			}
		}
		return bestLen >= 4 ? best : null;
	};
	const text = (id) => document.getElementById(id).textContent;
	const onFrame = (_now, meta) => {
		// The top left quarter: slot 1's half, down to below its code.
		if (c.width !== v.videoWidth / 2 || c.height !== v.videoHeight / 2) {
			c.width = v.videoWidth / 2;
			c.height = v.videoHeight / 2;
			row = null;
		}
		g.drawImage(v, 0, 0);
		img = g.getImageData(0, 0, c.width, c.height);
		if (row === null) row = findRow();
		let code = row === null ? null : read(row);
		if (!plausible(code)) {
			code = null;
			row = null;
		}
		window.frames.push({
			t: meta.mediaTime, code, now: Date.now(), turn: text("turn"), countdown: text("countdown"),
			result: document.getElementById("result").hidden ? "" : text("result"),
		});
		v.requestVideoFrameCallback(onFrame);
	};
	v.requestVideoFrameCallback(onFrame);
	return true;
})()`

// shownFrame is one presented picture as recordFramesJS saw it.
type shownFrame struct {
	T         float64 `json:"t"`
	Code      *uint32 `json:"code"`
	Now       int64   `json:"now"` // the page's clock when it was shown, Unix ms
	Turn      string  `json:"turn"`
	Countdown string  `json:"countdown"`
	Result    string  `json:"result"`
}

// TestCuesInStepWithThePicture plays a one-round battle of 3 s turns to
// a watch page in Chromium and reads, picture by picture, what the page
// shows against the program time of the picture (the bots' time codes
// plus the compositor's playout delay): Ann's turn, Bob's turn, the end
// of the turns and the result each appear within 400 ms of the
// picture that reaches their EXT-X-DATERANGE, and the countdown starts
// at the turn's length. Then the battle ends, and the replay lists the
// round and the result as chapters that jump there.
func TestCuesInStepWithThePicture(t *testing.T) {
	s := startServer(t, false, "--min-turn-seconds", "1")
	b := s.createRound(t, "cues e2e", [2]string{"Ann", "Bob"}, 3)
	s.startBot(t, b, 1)
	s.startBot(t, b, 2)
	s.waitLive(t, b.ID)
	playout := captureToProgram(t, s, b.ID)

	watch := s.watchFrames(t, b.ID)
	s.call(t, http.MethodPost, "/api/battles/"+b.ID+"/start", b.HostToken, nil, http.StatusOK, nil)
	// Voting closes 15 s after the last turn; the result follows.
	watch.waitJS("the result shows", `!document.getElementById("result").hidden`, 40*time.Second)
	// A few more pictures after the result.
	time.Sleep(500 * time.Millisecond)
	var frames []shownFrame
	watch.eval(`window.frames`, &frames)
	watch.screenshot("result")

	s.call(t, http.MethodPost, "/api/battles/"+b.ID+"/end", b.HostToken, nil, http.StatusOK, nil)
	_, recorded := s.get(t, s.base+"/vod/"+b.ID+"/index.m3u8")
	ranges := dateRanges(t, recorded)
	checkCuesInStep(t, frames, ranges, playout)

	// The replay: the round and the result as chapters.
	watch.waitPath("/b/"+b.ID+"/replay", 20*time.Second)
	watch.waitJS("the chapters are listed", `document.querySelectorAll("#chapters button").length === 2`, 20*time.Second)
	var titles []string
	watch.eval(`[...document.querySelectorAll("#chapters button")].map((b) => b.textContent)`, &titles)
	if want := []string{"Round 1: Ann, then Bob", "The result"}; strings.Join(titles, "|") != strings.Join(want, "|") {
		t.Errorf("the replay's chapters are %q, want %q", titles, want)
	}
	for _, c := range []struct{ chapter, shows string }{
		{"The result", "A draw: 0 rounds each, 0 votes each."},
		{"Round 1: Ann, then Bob", "Round 1: Ann is singing"},
	} {
		// Clicked from the page itself: the list may be drawn again
		// (the recording's playlist reloads) between a lookup and a
		// click from outside, which then finds no node.
		watch.waitJS("the chapter "+c.chapter+" clicked", `(() => {
				const button = [...document.querySelectorAll("#chapters button")].find((b) => b.textContent === `+jsString(c.chapter)+`);
				if (!button) return false;
				button.click();
				return true;
			})()`, 5*time.Second)
		watch.waitJS("the chapter "+c.chapter+" plays",
			`(() => {
				const button = [...document.querySelectorAll("#chapters button")].find((b) => b.textContent === `+jsString(c.chapter)+`);
				const v = document.getElementById("recording");
				return Math.abs(v.currentTime - Number(button.dataset.start)) < 1 && !v.paused &&
					document.getElementById("turn").textContent === `+jsString(c.shows)+`;
			})()`, 15*time.Second)
	}
	watch.screenshot("chapters")
}

// checkCuesInStep finds where the page's turn line and result changed
// among the frames and checks each change against the program time of
// the picture that showed it first.
func checkCuesInStep(t *testing.T, frames []shownFrame, ranges map[string]dateRange, playout time.Duration) {
	t.Helper()
	for _, id := range []string{"turn-1-1", "turn-1-2", "round-1", "result"} {
		if _, ok := ranges[id]; !ok {
			t.Fatalf("the recording has no EXT-X-DATERANGE %q; it has %v", id, ranges)
		}
	}
	// The program time of a picture is its media time plus one offset:
	// the median over every picture with a time code of (capture time +
	// playout delay − media time). Each picture's code may repeat the
	// previous when a bot's frame came late; the media time does not.
	var offsets []float64
	for _, f := range frames {
		if f.Code != nil {
			offsets = append(offsets, float64(*f.Code)+float64(playout.Milliseconds())-f.T*1000)
		}
	}
	if len(offsets) < len(frames)/2 || len(frames) < 300 {
		t.Fatalf("read time codes in %d of %d pictures", len(offsets), len(frames))
	}
	sort.Float64s(offsets)
	offset := percentile(offsets, 0.5)
	t.Logf("program time − media time over %d pictures: p5 %+.0f ms, p95 %+.0f ms from the median",
		len(offsets), percentile(offsets, 0.05)-offset, percentile(offsets, 0.95)-offset)
	programMs := func(f shownFrame) float64 { return f.T*1000 + offset }
	wrap := func(at time.Time) float64 { return float64(uint32(at.UnixMilli())) }

	const frame = 1000.0 / 30
	const inStep = 12 * frame // 400 ms
	changes := []struct {
		what string
		at   time.Time
		is   func(f shownFrame) bool
	}{
		{"Ann's turn", ranges["turn-1-1"].start, func(f shownFrame) bool { return f.Turn == "Ann is singing" }},
		{"Bob's turn", ranges["turn-1-2"].start, func(f shownFrame) bool { return f.Turn == "Bob is singing" }},
		{"the turns' end", ranges["turn-1-2"].start.Add(ranges["turn-1-2"].duration),
			func(f shownFrame) bool { return strings.HasPrefix(f.Turn, "Round 1 is over") }},
		{"the result", ranges["result"].start, func(f shownFrame) bool { return f.Result != "" }},
	}
	for _, c := range changes {
		i := 0
		for i < len(frames) && !c.is(frames[i]) {
			i++
		}
		if i == 0 || i == len(frames) {
			t.Errorf("%s: shown from picture %d of %d", c.what, i, len(frames))
			continue
		}
		late := programMs(frames[i]) - wrap(c.at)
		early := programMs(frames[i-1]) - wrap(c.at)
		t.Logf("%s: the page changed with the picture %+.0f ms from the event (the one before: %+.0f ms)", c.what, late, early)
		// In step: the change comes with a picture within inStep of the
		// event, where the events stream showed it about a second early.
		// Runs measure the page from −11 to −264 ms off, the same for
		// every change of a run: one run's offset (the playout delay read
		// once, the audio that starts ~80 ms before each segment's first
		// picture) rather than the cues themselves. Within two frames is
		// the aim; inStep is what this measure can hold reliably.
		if late < -inStep || late > inStep+frame || early > inStep {
			t.Errorf("%s: the page changed with the picture %+.0f ms from the event, the one before it at %+.0f ms; "+
				"want it within %.0f ms of the event", c.what, late, early, inStep)
		}
		if c.what == "Ann's turn" && frames[i].Countdown != "0:03 left" {
			t.Errorf("as Ann's turn starts the countdown reads %q, want 0:03 left", frames[i].Countdown)
		}
	}
}
