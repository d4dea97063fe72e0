package e2e

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/asticode/go-astiav"
	"github.com/bluenviron/mediacommon/v2/pkg/codecs/h264"
	"github.com/bluenviron/mediacommon/v2/pkg/formats/fmp4"
	"github.com/bluenviron/mediacommon/v2/pkg/formats/mp4/codecs"

	"github.com/singoff/singoff/internal/avframe"
)

// BenchmarkIngestToPart measures how long after a bot captured a
// picture the LL-HLS part holding it reaches a low-latency watcher: the
// watcher follows the media playlist with blocking reloads, fetches each
// part as soon as it is listed, decodes the first picture of the part and
// reads the bot's time code (see synth drawTimeCode) from each half of
// the program. One op is one part (200 ms of program): run it with e.g.
// -benchtime 100x. Bar: p95 ≤ 400 ms.
func BenchmarkIngestToPart(b *testing.B) {
	s := startServer(b, false)
	bt := s.createBattle(b, "ingest to part")
	s.startBot(b, bt, 1)
	s.startBot(b, bt, 2)
	index := s.liveProgram(b, bt.ID)
	loadBefore := loadAverage(b)

	w := newPartWatcher(b, s.client, index)
	defer w.close()
	// Until both halves show a code, the program shows what it has
	// instead (a singer not yet decoded); after that every read counts.
	for {
		if time.Since(w.started) > 30*time.Second {
			b.Fatalf("no time code read from both halves in %v", time.Since(w.started).Round(time.Second))
		}
		part := w.nextFirstPicture(b)
		if part.luma != nil && part.codes[0].ok[0] && part.codes[0].ok[1] {
			break
		}
	}
	var (
		latencies [2][]float64
		toProgram [2][]float64 // capture → the program picture's time
		published []float64    // the program picture's time → part arrival
		// unreadable counts pictures without a code in a half: a slate
		// while a singer's picture is late or lost.
		unreadable [2]int
		savedOne   bool
		// repeats counts program pictures showing the same singer
		// picture as the one before: it came too late for its tick (or
		// the singer sent none).
		repeats  [2]int
		previous [2]uint32
		pictures int
	)
	for b.Loop() {
		part := w.nextFirstPicture(b)
		if part.luma == nil {
			b.Fatal("a part without a picture after the first keyframe")
		}
		codes, ok := part.codes[0].code, part.codes[0].ok
		for _, c := range part.codes {
			pictures++
			for i := range 2 {
				if c.ok[i] && c.code[i] == previous[i] {
					repeats[i]++
				}
				previous[i] = c.code[i]
			}
		}
		if !part.start.IsZero() {
			published = append(published, float64(part.arrival.Sub(part.start))/float64(time.Millisecond))
		}
		for i := range 2 {
			if !ok[i] {
				unreadable[i]++
				if !savedOne {
					savedOne = true
					savePicture(b, "unreadable.pgm", part.luma, part.stride)
				}
				continue
			}
			// The code is Unix milliseconds mod 2^32; int32 arithmetic
			// takes the difference across a wrap.
			ms := int32(uint32(part.arrival.UnixMilli()) - codes[i])
			if ms < -100 || ms > 5000 {
				// A clean code far from the clock: the reading is wrong.
				savePicture(b, "implausible.pgm", part.luma, part.stride)
				b.Fatalf("slot %d: time code %d is %d ms before the part arrived", i+1, codes[i], ms)
			}
			latencies[i] = append(latencies[i], float64(ms))
			if !part.start.IsZero() {
				toProgram[i] = append(toProgram[i], float64(int32(uint32(part.start.UnixMilli())-codes[i])))
			}
		}
	}
	for i := range 2 {
		if n := len(latencies[i]); n == 0 || unreadable[i] > n/2 {
			b.Fatalf("slot %d: %d time codes read, %d pictures without one", i+1, n, unreadable[i])
		}
	}
	for i, ms := range latencies {
		b.Logf("capture → part arrival, slot %d: %s (%d unreadable)", i+1, summary(ms), unreadable[i])
		b.ReportMetric(percentile(ms, 0.50), fmt.Sprintf("slot%d-p50-ms", i+1))
		b.ReportMetric(percentile(ms, 0.95), fmt.Sprintf("slot%d-p95-ms", i+1))
	}
	// The program's playlist dates its pictures with the compositor's
	// clock (EXT-X-PROGRAM-DATE-TIME): that splits the latency in two.
	for i, ms := range toProgram {
		b.Logf("  of which capture → program picture time, slot %d: %s", i+1, summary(ms))
	}
	b.Logf("  of which program picture time → part arrival: %s", summary(published))
	if len(published) > 0 {
		b.ReportMetric(percentile(published, 0.95), "published-p95-ms")
	}
	b.Logf("program pictures repeating the singer's previous picture: slot 1 %d, slot 2 %d of %d", repeats[0], repeats[1], pictures)
	b.Logf("load average before: %s; after: %s", loadBefore, loadAverage(b))
	b.ReportMetric(0, "ns/op") // the program's pace, not a figure
}

const (
	halfProgramWidth = 640
	// timeCodeRow is the middle row of a singer's time code in the
	// program: its 640x480 picture is letterboxed into a 640x720 half,
	// so its top is at row 120 and the 24-row code below it.
	timeCodeRow    = 120 + 12
	timeCodeBlocks = 32
)

// readTimeCode reads the 32 blocks of a half's time code at their
// centres; it fails when any block is neither clearly black nor clearly
// white, as a picture without a code would be.
func readTimeCode(luma []byte, stride, x0 int) (uint32, bool) {
	return readTimeCodeAt(luma, stride, x0, timeCodeRow, halfProgramWidth)
}

// readTimeCodeAt reads a time code width wide whose blocks' middle row
// is row, from x0 on.
func readTimeCodeAt(luma []byte, stride, x0, row, width int) (uint32, bool) {
	if (row+1)*stride > len(luma) {
		return 0, false
	}
	line := luma[row*stride:]
	blockWidth := width / timeCodeBlocks
	var code uint32
	for i := range timeCodeBlocks {
		v := line[x0+i*blockWidth+blockWidth/2]
		switch {
		case v > 200:
			code |= 1 << (31 - i)
		case v < 40: // below the slates' grey (51)
		default:
			return 0, false
		}
	}
	return code, true
}

// summary sorts ms and gives its p50, p95 and maximum.
func summary(ms []float64) string {
	if len(ms) == 0 {
		return "no samples"
	}
	sort.Float64s(ms)
	return fmt.Sprintf("p50 %.0f ms, p95 %.0f ms, max %.0f ms over %d parts",
		percentile(ms, 0.50), percentile(ms, 0.95), ms[len(ms)-1], len(ms))
}

// savePicture writes a program picture's luma as a PGM among the test's
// artifacts.
func savePicture(t testing.TB, name string, luma []byte, stride int) {
	t.Helper()
	height := len(luma) / stride
	img := fmt.Appendf(nil, "P5\n%d %d\n255\n", 2*halfProgramWidth, height)
	for r := range height {
		img = append(img, luma[r*stride:r*stride+2*halfProgramWidth]...)
	}
	path := artifactPath(t, name)
	if err := os.WriteFile(path, img, 0o644); err != nil {
		t.Fatal(err)
	}
	t.Logf("saved %s", path)
}

// loadAverage is the first three fields of /proc/loadavg.
func loadAverage(t testing.TB) string {
	t.Helper()
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "unknown"
	}
	f := strings.Fields(string(b))
	return strings.Join(f[:min(3, len(f))], " ")
}

// partWatcher follows a live LL-HLS media playlist part by part, as a
// low-latency player does, and decodes its video.
type partWatcher struct {
	client   *http.Client
	playlist *url.URL
	started  time.Time
	next     string // the query of the next blocking reload
	fetched  map[string]bool
	pending  []llPart // listed and not yet fetched
	track    int      // the video track's ID
	sps, pps []byte
	decoder  *astiav.CodecContext
	pkt      *astiav.Packet
	frame    *astiav.Frame
	first    *astiav.Frame // the first picture of the latest part
	keyed    bool          // a keyframe has been sent to the decoder
}

func newPartWatcher(t testing.TB, client *http.Client, index string) *partWatcher {
	t.Helper()
	w := &partWatcher{client: client, started: time.Now(), fetched: map[string]bool{}}
	base, err := url.Parse(index)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := w.fetch(t, index)
	variant := ""
	wantURI := false
	for line := range strings.Lines(string(body)) {
		line = strings.TrimSpace(line)
		switch {
		case strings.HasPrefix(line, "#EXT-X-STREAM-INF:"):
			wantURI = true
		case wantURI && line != "" && !strings.HasPrefix(line, "#"):
			variant = line
			wantURI = false
		}
		if variant != "" {
			break
		}
	}
	if variant == "" {
		t.Fatalf("no variant in %s:\n%s", index, body)
	}
	w.playlist = base.ResolveReference(&url.URL{Path: variant})

	// Start at the live edge: only the last part listed, then the ones
	// after it.
	body, _ = w.fetch(t, w.playlist.String())
	pl := parseLLPlaylist(t, body)
	if len(pl.parts) == 0 {
		t.Fatalf("no part in %s:\n%s", w.playlist, body)
	}
	for _, p := range pl.parts[:len(pl.parts)-1] {
		w.fetched[p.uri] = true
	}
	w.pending = pl.parts[len(pl.parts)-1:]
	w.next = pl.next

	initBody, _ := w.fetch(t, w.resolve(pl.mapURI))
	var init fmp4.Init
	if err := init.Unmarshal(bytes.NewReader(initBody)); err != nil {
		t.Fatalf("init file: %v", err)
	}
	for _, tr := range init.Tracks {
		if h, ok := tr.Codec.(*codecs.H264); ok {
			w.track, w.sps, w.pps = tr.ID, h.SPS, h.PPS
		}
	}
	if w.track == 0 {
		t.Fatal("no H264 track in the init file")
	}

	codec := astiav.FindDecoder(astiav.CodecIDH264)
	if codec == nil {
		t.Fatal("no H264 decoder")
	}
	w.decoder = astiav.AllocCodecContext(codec)
	// One thread: frame threads would hold frames back.
	w.decoder.SetThreadCount(1)
	if err := w.decoder.Open(codec, nil); err != nil {
		t.Fatal(err)
	}
	w.pkt = astiav.AllocPacket()
	w.frame = astiav.AllocFrame()
	w.first = astiav.AllocFrame()
	return w
}

func (w *partWatcher) close() {
	w.first.Free()
	w.frame.Free()
	w.pkt.Free()
	w.decoder.Free()
}

func (w *partWatcher) resolve(ref string) string {
	u, err := url.Parse(ref)
	if err != nil {
		return ref
	}
	return w.playlist.ResolveReference(u).String()
}

// fetch GETs u and returns its body and when the last byte arrived.
func (w *partWatcher) fetch(t testing.TB, u string) ([]byte, time.Time) {
	t.Helper()
	res, err := w.client.Get(u)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	body, err := io.ReadAll(res.Body)
	arrival := time.Now()
	if err != nil {
		t.Fatalf("%s: %v", u, err)
	}
	if res.StatusCode != http.StatusOK {
		t.Fatalf("%s: status %d: %s", u, res.StatusCode, body)
	}
	return body, arrival
}

// partRead is one part as the watcher got it.
type partRead struct {
	arrival time.Time // of its last byte
	start   time.Time // its first picture's program time; zero if undated
	// luma is the plane of its first picture, nil for a part from before
	// the first keyframe; valid until the next part is read.
	luma   []byte
	stride int
	// codes holds the time codes of every picture of the part, by half.
	codes []pictureCodes
}

type pictureCodes struct {
	code [2]uint32
	ok   [2]bool
}

// nextFirstPicture fetches the next part (waiting for it with a blocking
// reload) and decodes its video.
func (w *partWatcher) nextFirstPicture(t testing.TB) partRead {
	t.Helper()
	for len(w.pending) == 0 {
		body, _ := w.fetch(t, w.playlist.String()+"?"+w.next)
		pl := parseLLPlaylist(t, body)
		for _, p := range pl.parts {
			if !w.fetched[p.uri] {
				w.pending = append(w.pending, p)
			}
		}
		w.next = pl.next
	}
	next := w.pending[0]
	w.pending = w.pending[1:]
	w.fetched[next.uri] = true
	uri := next.uri
	body, arrival := w.fetch(t, w.resolve(uri))
	read := partRead{arrival: arrival, start: next.start}

	var parts fmp4.Parts
	if err := parts.Unmarshal(body); err != nil {
		t.Fatalf("part %s: %v", uri, err)
	}
	var samples []*fmp4.Sample
	for _, p := range parts {
		for _, tr := range p.Tracks {
			if tr.ID == w.track {
				samples = append(samples, tr.Samples...)
			}
		}
	}
	first := true
	for i, sample := range samples {
		if !w.keyed && sample.IsNonSyncSample {
			continue
		}
		w.keyed = true
		var nalus h264.AVCC
		if err := nalus.Unmarshal(sample.Payload); err != nil {
			t.Fatalf("part %s sample %d: %v", uri, i, err)
		}
		var annexB []byte
		if !sample.IsNonSyncSample {
			nalus = append([][]byte{w.sps, w.pps}, nalus...)
		}
		for _, n := range nalus {
			annexB = append(annexB, 0, 0, 0, 1)
			annexB = append(annexB, n...)
		}
		// The program has no B-frames: the decoder returns each picture
		// for the sample that carries it.
		got, err := w.decode(annexB)
		if err != nil {
			t.Fatalf("part %s sample %d: %v", uri, i, err)
		}
		if !got {
			continue
		}
		var c pictureCodes
		luma, stride := avframe.Plane(w.frame, 0, w.frame.Height())
		for half := range 2 {
			c.code[half], c.ok[half] = readTimeCode(luma, stride, half*halfProgramWidth)
		}
		read.codes = append(read.codes, c)
		if first {
			first = false
			if w.frame.Width() != 2*halfProgramWidth || w.frame.PixelFormat() != astiav.PixelFormatYuv420P {
				t.Fatalf("program picture is %dx%d %v, want 1280x720 yuv420p", w.frame.Width(), w.frame.Height(), w.frame.PixelFormat())
			}
			// Keep this picture; the rest only feed the decoder.
			w.first.Unref()
			if err := w.first.Ref(w.frame); err != nil {
				t.Fatal(err)
			}
			read.luma, read.stride = avframe.Plane(w.first, 0, w.first.Height())
		}
	}
	return read
}

// decode sends one access unit and tells whether a picture came out
// into w.frame.
func (w *partWatcher) decode(annexB []byte) (bool, error) {
	if err := avframe.FillPacket(w.pkt, annexB); err != nil {
		return false, err
	}
	err := w.decoder.SendPacket(w.pkt)
	w.pkt.Unref()
	if err != nil {
		return false, fmt.Errorf("decoding: %w", err)
	}
	w.frame.Unref()
	err = w.decoder.ReceiveFrame(w.frame)
	if errors.Is(err, astiav.ErrEagain) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("decoding: %w", err)
	}
	return true, nil
}

// llPlaylist is what the watcher needs of a media playlist.
type llPlaylist struct {
	mapURI string
	parts  []llPart // oldest first
	next   string   // the _HLS_msn/_HLS_part query for the part after the last
}

type llPart struct {
	uri   string
	start time.Time // from EXT-X-PROGRAM-DATE-TIME; zero without
}

func parseLLPlaylist(t testing.TB, b []byte) llPlaylist {
	t.Helper()
	var (
		pl    llPlaylist
		msn   int
		index int
		// start is where the next part begins.
		start time.Time
	)
	attr := func(line, name string) string {
		_, v, ok := strings.Cut(line, name+"=")
		if !ok {
			return ""
		}
		if strings.HasPrefix(v, `"`) {
			v, _, _ = strings.Cut(v[1:], `"`)
			return v
		}
		v, _, _ = strings.Cut(v, ",")
		return v
	}
	for line := range strings.Lines(string(b)) {
		line = strings.TrimSpace(line)
		switch {
		case strings.HasPrefix(line, "#EXT-X-MEDIA-SEQUENCE:"):
			fmt.Sscan(strings.TrimPrefix(line, "#EXT-X-MEDIA-SEQUENCE:"), &msn)
		case strings.HasPrefix(line, "#EXT-X-MAP:"):
			pl.mapURI = attr(line, "URI")
		case strings.HasPrefix(line, "#EXT-X-PROGRAM-DATE-TIME:"):
			start, _ = time.Parse(time.RFC3339Nano, strings.TrimPrefix(line, "#EXT-X-PROGRAM-DATE-TIME:"))
		case strings.HasPrefix(line, "#EXT-X-PART:"):
			pl.parts = append(pl.parts, llPart{uri: attr(line, "URI"), start: start})
			index++
			if !start.IsZero() {
				var seconds float64
				fmt.Sscan(attr(line, "DURATION"), &seconds)
				start = start.Add(time.Duration(seconds * float64(time.Second)))
			}
		case line != "" && !strings.HasPrefix(line, "#"):
			// A segment's URI closes it.
			msn++
			index = 0
		}
	}
	if pl.mapURI == "" {
		t.Fatalf("media playlist without EXT-X-MAP:\n%s", b)
	}
	pl.next = fmt.Sprintf("_HLS_msn=%d&_HLS_part=%d", msn, index)
	return pl
}
