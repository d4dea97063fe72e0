package e2e

import (
	"context"
	"io"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/bluenviron/gohlslib/v2"
	"github.com/bluenviron/gohlslib/v2/pkg/codecs"

	"github.com/singoff/singoff/internal/m3u8"
	"github.com/singoff/singoff/internal/mediacheck"
	"github.com/singoff/singoff/internal/testmedia"
)

// waitFor polls cond every 200 ms until it holds or within passes.
func waitFor(t testing.TB, what string, within time.Duration, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(within)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within %v", what, within)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// get fetches url and returns its status and body.
func (s *server) get(t testing.TB, url string) (int, string) {
	t.Helper()
	res, err := s.client.Get(url)
	if err != nil {
		return 0, err.Error()
	}
	defer res.Body.Close()
	body, _ := io.ReadAll(res.Body)
	return res.StatusCode, string(body)
}

// probe reads url with ffprobe.
func probe(t testing.TB, url string) mediacheck.Probe {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	p, err := mediacheck.ProbeURL(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// checkProgram fails unless url holds the program's two streams.
func checkProgram(t testing.TB, what, url string) mediacheck.Probe {
	t.Helper()
	p := probe(t, url)
	if err := p.IsProgram(); err != nil {
		t.Fatalf("%s: %v", what, err)
	}
	return p
}

// decodesCleanly has ffmpeg decode url (the first seconds if limit > 0).
func decodesCleanly(t testing.TB, url string, limit time.Duration) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	if err := mediacheck.Decode(ctx, url, limit); err != nil {
		t.Fatal(err)
	}
}

// liveProgram waits until battle id's live playlist answers and returns
// its URL.
func (s *server) liveProgram(t testing.TB, id string) string {
	t.Helper()
	live := s.base + "/hls/" + id + "/index.m3u8"
	waitFor(t, "the live program", 30*time.Second, func() bool {
		status, _ := s.get(t, live)
		return status == http.StatusOK
	})
	return live
}

// liveSequence reads the media sequence number of the newest segment of
// the program's top rung's playlist.
func (s *server) liveSequence(t testing.TB, id string) int {
	t.Helper()
	status, body := s.get(t, s.base+"/hls/"+id+"/720p.m3u8")
	pl, err := m3u8.Parse(body)
	if status != http.StatusOK || err != nil || len(pl.Segments) == 0 {
		t.Fatalf("live video playlist: %d %v %q", status, err, body)
	}
	return pl.Segments[len(pl.Segments)-1].MSN
}

// The live program, end to end with the real binary: two bots sing,
// ffprobe, ffmpeg and gohlslib's client read the LL-HLS, the program goes
// on through a singer's leave and return, /metrics shows it, and the
// ended battle's recording plays as VOD.
func TestLiveProgramAndRecording(t *testing.T) {
	s := startServer(t, false)
	b := s.createBattle(t, "program e2e")
	stop1 := s.startBot(t, b, 1)
	s.startBot(t, b, 2)
	waitFor(t, "both singers connected and live", 20*time.Second, func() bool {
		got := s.battle(t, b.ID)
		return got.State == "live" && got.Singers[0].Connected && got.Singers[1].Connected
	})
	live := s.liveProgram(t, b.ID)
	liveSince := time.Now()

	checkProgram(t, "live", live)
	decodesCleanly(t, live, 4*time.Second)
	readWithGohlslib(t, live)

	// Singer 1 leaves: the program goes on, then takes them back.
	before := s.liveSequence(t, b.ID)
	stop1()
	waitFor(t, "singer 1 shown disconnected", 10*time.Second, func() bool {
		got := s.battle(t, b.ID)
		return !got.Singers[0].Connected && got.State == "live"
	})
	time.Sleep(2 * time.Second)
	during := s.liveSequence(t, b.ID)
	if during <= before {
		t.Fatalf("media sequence stood still while a singer was away: %d then %d", before, during)
	}
	s.startBot(t, b, 1)
	waitFor(t, "singer 1 back", 20*time.Second, func() bool { return s.battle(t, b.ID).Singers[0].Connected })
	time.Sleep(2 * time.Second)
	if after := s.liveSequence(t, b.ID); after <= during {
		t.Fatalf("media sequence stood still after the singer came back: %d then %d", during, after)
	}
	decodesCleanly(t, live, 2*time.Second)

	if got := s.battle(t, b.ID); got.Viewers < 1 || got.VODURL == nil {
		t.Fatalf("live battle: viewers %d (ffmpeg and gohlslib watched), vod_url %v", got.Viewers, got.VODURL)
	}
	_, metrics := s.get(t, s.base+"/metrics")
	for _, want := range []string{"singoff_battles_live 1", "singoff_singers_connected 2", `singoff_hls_requests_total{kind="part"}`} {
		if !strings.Contains(metrics, want) {
			t.Errorf("/metrics lacks %q", want)
		}
	}
	for _, counter := range []string{"singoff_rtp_packets_in_total", "singoff_program_frames_total", "singoff_recording_bytes_total", "singoff_hls_bytes_out_total"} {
		if v := metricValue(metrics, counter); v <= 0 {
			t.Errorf("/metrics %s = %v, want > 0", counter, v)
		}
	}

	// The host ends it: the live URL says so, the recording is VOD.
	var ended battle
	s.call(t, http.MethodPost, "/api/battles/"+b.ID+"/end", b.HostToken, nil, http.StatusOK, &ended)
	liveFor := time.Since(liveSince)
	if ended.State != "ended" || ended.VODURL == nil {
		t.Fatalf("ended battle: %+v", ended)
	}
	// The live playlists close with #EXT-X-ENDLIST (and turn 410 a
	// minute later: the hls package's tests wait for that).
	if status, body := s.get(t, s.base+"/hls/"+b.ID+"/720p.m3u8"); status != http.StatusOK || !strings.Contains(body, "\n#EXT-X-ENDLIST\n") {
		t.Fatalf("live playlist after the end: %d, want 200 with #EXT-X-ENDLIST\n%s", status, body)
	}
	_, playlist := s.get(t, *ended.VODURL)
	if !strings.Contains(playlist, "#EXT-X-ENDLIST") || !strings.Contains(playlist, "#EXT-X-PLAYLIST-TYPE:VOD") {
		t.Fatalf("VOD playlist is not finished:\n%s", playlist)
	}
	duration, err := checkProgram(t, "VOD", *ended.VODURL).Duration()
	if err != nil {
		t.Fatal(err)
	}
	// The recording starts when the program does, a little before the
	// live playlist first answered.
	if duration < liveFor-2*time.Second || duration > liveFor+4*time.Second {
		t.Fatalf("VOD lasts %v, the battle was live about %v", duration, liveFor)
	}
	decodesCleanly(t, *ended.VODURL, 0)

	// Past battles list newest first with their duration and recording.
	var past struct {
		Battles []struct {
			ID       string   `json:"id"`
			Duration *float64 `json:"duration_seconds"`
			VODURL   *string  `json:"vod_url"`
		} `json:"battles"`
	}
	s.call(t, http.MethodGet, "/api/battles?state=ended", "", nil, http.StatusOK, &past)
	if len(past.Battles) != 1 || past.Battles[0].ID != b.ID || past.Battles[0].VODURL == nil ||
		past.Battles[0].Duration == nil || *past.Battles[0].Duration < liveFor.Seconds()-2 {
		t.Fatalf("ended battles: %+v", past.Battles)
	}
}

// metricValue reads an unlabelled sample from Prometheus text.
func metricValue(text, name string) float64 {
	for line := range strings.Lines(text) {
		if rest, ok := strings.CutPrefix(line, name+" "); ok {
			v, _ := strconv.ParseFloat(strings.TrimSpace(rest), 64)
			return v
		}
	}
	return -1
}

// readWithGohlslib plays url with gohlslib's client until both tracks
// gave samples.
func readWithGohlslib(t testing.TB, url string) {
	t.Helper()
	gotVideo, gotAudio := make(chan struct{}), make(chan struct{})
	var videoOnce, audioOnce bool
	quiet := func(string) {}
	c := &gohlslib.Client{URI: url, OnDownloadPrimaryPlaylist: quiet, OnDownloadStreamPlaylist: quiet,
		OnDownloadSegment: quiet, OnDownloadPart: quiet}
	c.OnTracks = func(tracks []*gohlslib.Track) error {
		for _, tr := range tracks {
			switch tr.Codec.(type) {
			case *codecs.H264:
				c.OnDataH26x(tr, func(_ int64, _ int64, au [][]byte) {
					if !videoOnce && len(au) > 0 {
						videoOnce = true
						close(gotVideo)
					}
				})
			case *codecs.MPEG4Audio:
				c.OnDataMPEG4Audio(tr, func(_ int64, aus [][]byte) {
					if !audioOnce && len(aus) > 0 {
						audioOnce = true
						close(gotAudio)
					}
				})
			}
		}
		return nil
	}
	if err := c.Start(); err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	stopped := make(chan error, 1)
	go func() { stopped <- c.Wait2() }()
	for _, ch := range []chan struct{}{gotVideo, gotAudio} {
		select {
		case <-ch:
		case err := <-stopped:
			t.Fatalf("gohlslib client stopped: %v", err)
		case <-time.After(20 * time.Second):
			t.Fatal("gohlslib client got no samples of a track within 20 s")
		}
	}
}

// A crash in the middle of a battle loses nothing older than the last
// segment: after kill -9 and a restart the battle is ended and its
// recording is a finished VOD that plays.
func TestCrashKeepsTheRecording(t *testing.T) {
	s := startServer(t, false)
	b := s.createBattle(t, "crash e2e")
	s.startBot(t, b, 1)
	s.startBot(t, b, 2)
	waitFor(t, "live", 20*time.Second, func() bool { return s.battle(t, b.ID).State == "live" })
	vod := s.base + "/vod/" + b.ID + "/index.m3u8"
	waitFor(t, "three recorded segments", 30*time.Second, func() bool {
		status, body := s.get(t, vod)
		return status == http.StatusOK && strings.Count(body, "#EXTINF") >= 3
	})
	_, before := s.get(t, vod)
	if strings.Contains(before, "#EXT-X-ENDLIST") || !strings.Contains(before, "#EXT-X-PLAYLIST-TYPE:EVENT") {
		t.Fatalf("live recording playlist:\n%s", before)
	}
	s.kill(t)
	s.start(t)

	got := s.battle(t, b.ID)
	if got.State != "ended" || got.VODURL == nil {
		t.Fatalf("after the crash: %+v", got)
	}
	_, after := s.get(t, vod)
	if !strings.Contains(after, "#EXT-X-ENDLIST") || strings.Count(after, "#EXTINF") < strings.Count(before, "#EXTINF") {
		t.Fatalf("recovered playlist lost segments or is open:\nbefore the crash:\n%s\nafter:\n%s", before, after)
	}
	checkProgram(t, "recovered VOD", vod)
	decodesCleanly(t, vod, 0)
	// The live URL of a battle ended before this process started.
	if status, _ := s.get(t, s.base+"/hls/"+b.ID+"/index.m3u8"); status != http.StatusGone {
		t.Fatalf("live playlist of the crashed battle: %d, want 410", status)
	}
}

// A server full of live battles refuses one more publish with 503 and
// Retry-After, and the live one goes on undisturbed.
func TestFullServerRefusesAnotherBattle(t *testing.T) {
	s := startServer(t, false, "--max-live-battles", "1")
	first := s.createBattle(t, "the one that fits")
	s.startBot(t, first, 1)
	waitFor(t, "first battle live", 20*time.Second, func() bool { return s.battle(t, first.ID).State == "live" })
	second := s.createBattle(t, "one too many")
	req, _ := http.NewRequest(http.MethodPost, s.base+"/api/battles/"+second.ID+"/singers/1/whip", strings.NewReader(testmedia.VP8Offer))
	req.Header.Set("Content-Type", "application/sdp")
	req.Header.Set("Authorization", "Bearer "+second.SingerTokens[0])
	res, err := s.client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(res.Body)
	res.Body.Close()
	if res.StatusCode != http.StatusServiceUnavailable || res.Header.Get("Retry-After") == "" || !strings.Contains(string(body), `"error"`) {
		t.Fatalf("publish past the limit: %d, Retry-After %q, %s", res.StatusCode, res.Header.Get("Retry-After"), body)
	}
	if got := s.battle(t, second.ID); got.State != "waiting" {
		t.Fatalf("refused battle changed: %+v", got)
	}
	if got := s.battle(t, first.ID); got.State != "live" || !got.Singers[0].Connected {
		t.Fatalf("live battle disturbed: %+v", got)
	}
}

// Below the disk floor a battle still goes live, unrecorded, and its
// battle object says why.
func TestNoRecordingBelowTheDiskFloor(t *testing.T) {
	s := startServer(t, false, "--disk-floor-mb", "1000000000")
	b := s.createBattle(t, "no room")
	s.startBot(t, b, 1)
	waitFor(t, "live", 20*time.Second, func() bool { return s.battle(t, b.ID).State == "live" })
	var got struct {
		VODURL         *string `json:"vod_url"`
		RecordingError string  `json:"recording_error"`
	}
	s.call(t, http.MethodGet, "/api/battles/"+b.ID, "", nil, http.StatusOK, &got)
	if got.VODURL != nil || !strings.Contains(got.RecordingError, "free") {
		t.Fatalf("battle below the disk floor: vod_url %v, recording_error %q", got.VODURL, got.RecordingError)
	}
	s.liveProgram(t, b.ID) // all the same
	if status, _ := s.get(t, s.base+"/vod/"+b.ID+"/index.m3u8"); status != http.StatusNotFound {
		t.Fatalf("VOD of an unrecorded battle: %d", status)
	}
}
