package e2e

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/page"
	"github.com/chromedp/chromedp"

	"github.com/singoff/singoff/internal/tmpfs"
)

// The abuse suite: each attack of the security review performed against
// the real binary, failing, while honest users go on. The smuggling
// through the edge is TestEdgeStopsRequestSmuggling (nginx_test.go).

// request makes one request as the test's client, from the forwarded
// address xff when it is not "" (the servers here trust the test's
// loopback address as a proxy, so a test can be several networks), and
// returns the status, headers and body.
func (s *server) request(t testing.TB, method, path, xff, token, contentType, body string) (int, http.Header, []byte) {
	t.Helper()
	req, err := http.NewRequest(method, s.base+path, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if xff != "" {
		req.Header.Set("X-Forwarded-For", xff)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	res, err := s.client.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	defer res.Body.Close()
	data, _ := io.ReadAll(res.Body)
	if res.StatusCode >= 400 {
		var e struct {
			Error string `json:"error"`
		}
		if json.Unmarshal(data, &e) != nil || e.Error == "" {
			t.Errorf("%s %s: %d without a JSON error: %q", method, path, res.StatusCode, data)
		}
		if res.StatusCode == http.StatusTooManyRequests || res.StatusCode == http.StatusServiceUnavailable {
			if secs, err := strconv.Atoi(res.Header.Get("Retry-After")); err != nil || secs < 1 {
				t.Errorf("%s %s: %d without a Retry-After", method, path, res.StatusCode)
			}
		}
	}
	return res.StatusCode, res.Header, data
}

// createFrom creates a battle as a client of network xff.
func (s *server) createFrom(t testing.TB, xff, title string) battle {
	t.Helper()
	status, _, data := s.request(t, http.MethodPost, "/api/battles", xff, "", "application/json", `{"title":"`+title+`"}`)
	var b battle
	if status != http.StatusCreated || json.Unmarshal(data, &b) != nil {
		t.Fatalf("creating %q from %s: %d %s", title, xff, status, data)
	}
	return b
}

// publishOffer POSTs a WHIP offer that will never connect ICE (its peer
// connection is gone) to slot 1 of b, and returns the status.
func (s *server) publishOffer(t testing.TB, b battle, offer string) int {
	t.Helper()
	status, _, _ := s.request(t, http.MethodPost, "/api/battles/"+b.ID+"/singers/1/whip", "", b.SingerTokens[0], "application/sdp", offer)
	return status
}

// metricSample reads one sample of /metrics, labels included in name.
func (s *server) metricSample(t testing.TB, name string) float64 {
	t.Helper()
	status, text := s.get(t, s.base+"/metrics")
	if status != http.StatusOK {
		t.Fatalf("/metrics: %d", status)
	}
	v := metricValue(text, name)
	if v < 0 {
		t.Fatalf("/metrics has no %s", name)
	}
	return v
}

// Taking every live slot: from one network an attacker creates 8
// battles and sends each an offer that never connects. Only the
// network's 4 live places are taken, the others are refused 429; a host
// of another network goes live meanwhile; and the squatted battles end
// after the connect grace, their places free again.
func TestSquattingLivePlacesFails(t *testing.T) {
	const grace = 4 * time.Second
	s := startServer(t, false, "--trusted-proxy", "127.0.0.1", "--connect-grace", grace.String())
	const attacker, honest = "198.51.100.66", "203.0.113.5"
	offer := sdpOffer(t)
	squatted := make([]battle, 8)
	for i := range squatted {
		squatted[i] = s.createFrom(t, attacker, fmt.Sprintf("squat %d", i))
	}
	var statuses []int
	for _, b := range squatted {
		statuses = append(statuses, s.publishOffer(t, b, offer))
	}
	want := []int{201, 201, 201, 201, 429, 429, 429, 429}
	if fmt.Sprint(statuses) != fmt.Sprint(want) {
		t.Fatalf("the attacker's offers were answered %v, want %v", statuses, want)
	}
	squatStart := time.Now()

	b := s.createFrom(t, honest, "the real battle")
	s.startBot(t, b, 1)
	waitFor(t, "the honest battle live and its singer connected", 20*time.Second, func() bool {
		got := s.battle(t, b.ID)
		return got.State == "live" && got.Singers[0].Connected
	})
	if live := s.metricSample(t, "singoff_battles_live"); live != 5 {
		t.Errorf("%v battles live, want the attacker's 4 and the honest 1", live)
	}

	waitFor(t, "the squatted battles end", grace+10*time.Second, func() bool {
		for _, sq := range squatted[:4] {
			if s.battle(t, sq.ID).State != "ended" {
				return false
			}
		}
		return true
	})
	if held := time.Since(squatStart); held < grace {
		t.Errorf("the squatted battles ended after %v, before the %v grace", held, grace)
	}
	if live := s.metricSample(t, "singoff_battles_live"); live != 1 {
		t.Errorf("%v battles live after the grace, want the honest 1", live)
	}
	if got := s.battle(t, b.ID); got.State != "live" {
		t.Errorf("the honest battle is %s", got.State)
	}
}

// Over-admission: 20 first offers at once on a server set for 3 live
// battles: exactly 3 are admitted, the others refused 503.
func TestConcurrentFirstOffersCannotOverAdmit(t *testing.T) {
	const maxLive = 3
	s := startServer(t, false, "--max-live-battles", strconv.Itoa(maxLive), "--max-live-per-network", "20", "--connect-grace", "3s")
	offer := sdpOffer(t)
	battles := make([]battle, 20)
	for i := range battles {
		battles[i] = s.createBattle(t, fmt.Sprintf("rush %d", i))
	}
	counts := map[int]int{}
	var mu sync.Mutex
	var wg sync.WaitGroup
	for _, b := range battles {
		wg.Go(func() {
			status := s.publishOffer(t, b, offer)
			mu.Lock()
			counts[status]++
			mu.Unlock()
		})
	}
	wg.Wait()
	if counts[201] != maxLive || counts[503] != len(battles)-maxLive {
		t.Fatalf("20 offers at once answered %v, want %d 201 and the rest 503", counts, maxLive)
	}
	if live := s.metricSample(t, "singoff_battles_live"); live > maxLive {
		t.Fatalf("%v battles live, the server is set for %d", live, maxLive)
	}
}

// Battle spam: one network's waiting battles stop at the cap (429);
// another network's creations go on.
func TestBattleSpamCappedPerNetwork(t *testing.T) {
	s := startServer(t, false, "--trusted-proxy", "127.0.0.1", "--max-waiting-per-network", "5")
	for i := range 5 {
		s.createFrom(t, "198.51.100.1", fmt.Sprintf("spam %d", i))
	}
	for _, xff := range []string{"198.51.100.2", "198.51.100.200"} {
		if status, _, _ := s.request(t, http.MethodPost, "/api/battles", xff, "", "application/json", `{"title":"more spam"}`); status != http.StatusTooManyRequests {
			t.Fatalf("a sixth waiting battle of the network (from %s): %d", xff, status)
		}
	}
	s.createFrom(t, "2001:db8:aaaa:1::7", "an IPv6 host")
	s.createFrom(t, "203.0.113.9", "another host")
	var list struct {
		Battles []battle `json:"battles"`
	}
	s.call(t, http.MethodGet, "/api/battles?state=waiting", "", nil, http.StatusOK, &list)
	if len(list.Battles) != 7 {
		t.Fatalf("%d waiting battles, want the network's 5 and the other 2", len(list.Battles))
	}
}

// Ballot stuffing against the real binary: a loop of votes without an
// identity, and a hostile page's no-cors votes, count nothing; a
// network's voters stop at the cap; the honest watchers' votes count,
// and /metrics counts the refusals.
func TestBallotStuffingFailsEndToEnd(t *testing.T) {
	s := startServer(t, false, "--min-turn-seconds", "1", "--trusted-proxy", "127.0.0.1", "--max-voters-per-network", "2")
	var b battle
	s.call(t, http.MethodPost, "/api/battles", "", map[string]any{"title": "stuffing", "rounds": 1, "turn_seconds": 60},
		http.StatusCreated, &b)
	watchers := []*http.Client{s.newWatcher(t, b.ID), s.newWatcher(t, b.ID), s.newWatcher(t, b.ID)}
	s.call(t, http.MethodPost, "/api/battles/"+b.ID+"/start", b.HostToken, nil, http.StatusOK, nil)
	votes := "/api/battles/" + b.ID + "/votes"
	for i := range 30 {
		// From as many networks: no rate limit stops them, only the rule.
		xff := fmt.Sprintf("198.51.%d.1", i)
		if status, _, _ := s.request(t, http.MethodPost, votes, xff, "", "application/json", `{"slot":2}`); status != http.StatusForbidden {
			t.Fatalf("a vote without an identity: %d", status)
		}
	}
	for range 10 {
		// What fetch(url, {method: "POST", mode: "no-cors", body: blob})
		// from another site sends.
		req, _ := http.NewRequest(http.MethodPost, s.base+votes, strings.NewReader(`{"slot":2}`))
		req.Header.Set("Origin", "https://elsewhere.example")
		req.Header.Set("Sec-Fetch-Site", "cross-site")
		res, err := watchers[0].Do(req)
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		if res.StatusCode != http.StatusForbidden {
			t.Fatalf("a cross-site vote: %d", res.StatusCode)
		}
	}
	for i, want := range []int{204, 204, 429} {
		if status := s.vote(t, watchers[i], b.ID, 1); status != want {
			t.Fatalf("watcher %d of one network: %d, want %d", i+1, status, want)
		}
	}
	if got := s.metricSample(t, `singoff_votes_refused_total{reason="no_watcher"}`); got != 30 {
		t.Errorf("%v votes refused for no identity, want 30", got)
	}
	if got := s.metricSample(t, `singoff_votes_refused_total{reason="cross_site"}`); got != 10 {
		t.Errorf("%v cross-site votes refused, want 10", got)
	}
	if got := s.metricSample(t, `singoff_votes_refused_total{reason="network_cap"}`); got != 1 {
		t.Errorf("%v votes refused past the network's cap, want 1", got)
	}
	var got struct {
		Votes [][2]int `json:"votes"`
	}
	s.call(t, http.MethodGet, "/api/battles/"+b.ID, "", nil, http.StatusOK, &got)
	if len(got.Votes) != 1 || got.Votes[0] != [2]int{2, 0} {
		t.Fatalf("votes %v, want the honest [[2 0]]", got.Votes)
	}
}

// LL-HLS junk parameters: 40 blocking playlist requests for one part,
// each with its own junk query parameter, are one request to the muxer.
func TestJunkQueryParametersCollapse(t *testing.T) {
	s := startServer(t, false)
	b := s.createBattle(t, "junk")
	s.startBot(t, b, 1)
	s.liveProgram(t, b.ID)
	playlist := s.base + "/hls/" + b.ID + "/720p.m3u8"
	status, body := s.get(t, playlist)
	if status != http.StatusOK {
		t.Fatalf("the media playlist: %d", status)
	}
	// Wait for a segment to begin; then the next one's first part is a
	// second away, and every request below waits for it.
	open := s.liveSequence(t, b.ID) + strings.Count(body, "#EXTINF:")
	if status, _ := s.get(t, fmt.Sprintf("%s?_HLS_msn=%d&_HLS_part=0", playlist, open+1)); status != http.StatusOK {
		t.Fatalf("waiting for the next segment: %d", status)
	}
	next := open + 2
	const requests = 40
	answersBefore := s.metricSample(t, "singoff_hls_muxer_answers_total")
	playlistsBefore := s.metricSample(t, `singoff_hls_requests_total{kind="playlist"}`)
	bodies := make([][]byte, requests)
	statuses := make([]int, requests)
	var wg sync.WaitGroup
	for i := range requests {
		wg.Go(func() {
			res, err := s.client.Get(fmt.Sprintf("%s?_HLS_msn=%d&_HLS_part=0&cachebust=%d&x%d=y", playlist, next, i, i))
			if err != nil {
				t.Error(err)
				return
			}
			defer res.Body.Close()
			statuses[i] = res.StatusCode
			bodies[i], _ = io.ReadAll(res.Body)
		})
	}
	wg.Wait()
	answers := s.metricSample(t, "singoff_hls_muxer_answers_total") - answersBefore
	playlists := s.metricSample(t, `singoff_hls_requests_total{kind="playlist"}`) - playlistsBefore
	for i := range requests {
		if statuses[i] != http.StatusOK || !bytes.Equal(bodies[i], bodies[0]) {
			t.Fatalf("request %d: %d, the same playlist as the first: %v", i, statuses[i], bytes.Equal(bodies[i], bodies[0]))
		}
		if bytes.Contains(bodies[i], []byte("cachebust")) {
			t.Fatal("a junk parameter is repeated in the playlist's URIs")
		}
	}
	t.Logf("%v playlist requests, %v answers of the muxer", playlists, answers)
	if playlists < requests {
		t.Fatalf("%v playlist requests counted, want %d", playlists, requests)
	}
	// One flight for the directive; a request that came after it landed
	// starts another (its answer is ready at once).
	if answers > 3 {
		t.Fatalf("%d requests differing only in junk parameters made %v answers of the muxer, want 1 (at most 3)", requests, answers)
	}
}

// A client's own X-Forwarded-For (the server trusts no proxy) is not a
// new viewer: the viewer count is by the one client rule.
func TestForgedForwardedForIsNoViewer(t *testing.T) {
	s := startServer(t, false)
	b := s.createBattle(t, "viewers")
	s.startBot(t, b, 1)
	live := s.liveProgram(t, b.ID)
	for i := range 20 {
		req, _ := http.NewRequest(http.MethodGet, live, nil)
		req.Header.Set("X-Forwarded-For", fmt.Sprintf("198.51.100.%d", i+1))
		req.Header.Set("X-Real-IP", fmt.Sprintf("203.0.113.%d", i+1))
		res, err := s.client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
	}
	if got := s.battle(t, b.ID).Viewers; got != 1 {
		t.Fatalf("%d viewers after 20 forged addresses from one client, want 1", got)
	}
}

// Start racing the first publish (the attack-level check of the stored
// state changes): whichever lands first, the battle is live, started
// and recorded, and its clock runs.
func TestStartRacingTheFirstPublish(t *testing.T) {
	s := startServer(t, false, "--connect-grace", "3s")
	offer := sdpOffer(t)
	for i := range 4 {
		b := s.createBattle(t, fmt.Sprintf("race %d", i))
		var wg sync.WaitGroup
		wg.Go(func() {
			if status := s.publishOffer(t, b, offer); status != http.StatusCreated {
				t.Errorf("the offer: %d", status)
			}
		})
		wg.Go(func() {
			if status, _, _ := s.request(t, http.MethodPost, "/api/battles/"+b.ID+"/start", "", b.HostToken, "", ""); status != http.StatusOK {
				t.Errorf("the start: %d", status)
			}
		})
		wg.Wait()
		var got struct {
			State     string     `json:"state"`
			StartedAt *time.Time `json:"started_at"`
			VODURL    *string    `json:"vod_url"`
			Round     int        `json:"round"`
		}
		s.call(t, http.MethodGet, "/api/battles/"+b.ID, "", nil, http.StatusOK, &got)
		if got.State != "live" || got.StartedAt == nil || got.Round != 1 || got.VODURL == nil {
			t.Fatalf("after the race %d: %+v", i, got)
		}
		s.call(t, http.MethodPost, "/api/battles/"+b.ID+"/end", b.HostToken, nil, http.StatusOK, nil)
	}
}

// Waiting battles expire, and the home page keeps them apart from the
// live ones: upcoming while they wait, past once expired.
func TestWaitingBattlesExpireOffTheHomePage(t *testing.T) {
	// The waiting battle is made last, once everything slow (a live
	// program, a browser) is up, so that its expiry cannot pass before
	// the page has shown it, however loaded the machine.
	const expiry = 15 * time.Second
	s := startServer(t, false, "--waiting-expiry", expiry.String())
	live := s.createBattle(t, "sung")
	s.startBot(t, live, 1)
	s.liveProgram(t, live.ID)
	br := newBrowser(t, false)
	waiting := s.createBattle(t, "nobody sings")
	home := br.open("home", s.base+"/")
	titles := func(section string) string {
		return `[...document.querySelectorAll("#` + section + ` .title")].map((e) => e.textContent).join("|")`
	}
	home.waitJS("both battles listed", titles("live")+` === "sung" && `+titles("upcoming")+` === "nobody sings"`, 10*time.Second)
	home.screenshot("before the expiry")
	waitFor(t, "the waiting battle expires", expiry+10*time.Second, func() bool {
		return s.battle(t, waiting.ID).State == "ended"
	})
	if got := s.battle(t, live.ID); got.State != "live" {
		t.Errorf("the live battle is %s after the expiry", got.State)
	}
	home.waitJS("the expired battle among the past ones", titles("upcoming")+` === "" && `+titles("past")+` === "nobody sings" && `+
		titles("live")+` === "sung"`, 15*time.Second)
	home.screenshot("after the expiry")
}

// Disk: the disk under the floor stops the recording cleanly (the
// battle says so; what was recorded plays to its end) while the live
// program goes on; a full disk makes writes answer 503, reads go on,
// and the battle's end is stored once there is room again.
func TestLowDiskStopsTheRecordingCleanly(t *testing.T) {
	dir := tmpfs.Mount(t, 160)
	s := startServer(t, false, "--data-dir", dir, "--disk-floor-mb", "64")
	b := s.createBattle(t, "low disk")
	s.startBot(t, b, 1)
	s.liveProgram(t, b.ID)
	var got struct {
		battle
		RecordingError *string `json:"recording_error"`
	}
	waitFor(t, "a recording", 20*time.Second, func() bool {
		status, body := s.get(t, s.base+"/vod/"+b.ID+"/index.m3u8")
		return status == http.StatusOK && strings.Contains(body, "#EXTINF")
	})
	filler := tmpfs.Fill(t, dir, 40<<20)
	waitFor(t, "the battle says its recording stopped", 20*time.Second, func() bool {
		s.call(t, http.MethodGet, "/api/battles/"+b.ID, "", nil, http.StatusOK, &got)
		return got.RecordingError != nil
	})
	if !strings.Contains(*got.RecordingError, "disk space") || regexp.MustCompile(`/|MiB|\d{3,}`).MatchString(*got.RecordingError) {
		t.Errorf("recording_error %q: want the fixed public sentence about disk space", *got.RecordingError)
	}
	if got.VODURL == nil {
		t.Error("the recording made before the stop is no longer offered")
	}
	status, vod := s.get(t, s.base+"/vod/"+b.ID+"/index.m3u8")
	if status != http.StatusOK || !strings.Contains(vod, "#EXT-X-ENDLIST") {
		t.Fatalf("the stopped recording's playlist: %d\n%s", status, vod)
	}
	before := s.liveSequence(t, b.ID)
	waitFor(t, "the live program going on", 10*time.Second, func() bool { return s.liveSequence(t, b.ID) > before+1 })

	// The disk full: writes refused cleanly, reads answered.
	full := tmpfs.Fill(t, dir, 0)
	status, _, _ = s.request(t, http.MethodPost, "/api/battles", "", "", "application/json", `{"title":"no room"}`)
	if status != http.StatusServiceUnavailable && status != http.StatusCreated {
		t.Errorf("creating a battle on a full disk: %d, want 503 (or 201 if the database had room)", status)
	}
	s.call(t, http.MethodGet, "/api/battles", "", nil, http.StatusOK, nil)
	endStatus, _, _ := s.request(t, http.MethodPost, "/api/battles/"+b.ID+"/end", "", b.HostToken, "", "")
	if endStatus != http.StatusOK && endStatus != http.StatusServiceUnavailable {
		t.Fatalf("ending on a full disk: %d, want 200, or 503 and the end stored later", endStatus)
	}
	t.Logf("on the full disk: the creation answered %d, the end %d", status, endStatus)
	for _, f := range []string{full, filler} {
		if err := os.Remove(f); err != nil {
			t.Fatal(err)
		}
	}
	waitFor(t, "the end stored", 10*time.Second, func() bool { return s.battle(t, b.ID).State == "ended" })
	if status, vod := s.get(t, s.base+"/vod/"+b.ID+"/index.m3u8"); status != http.StatusOK || !strings.Contains(vod, "#EXT-X-ENDLIST") {
		t.Errorf("the replay after the end: %d", status)
	}
}

// A crafted #host= link does not silently take the host's key: a key
// the server does not know as the battle's host key is not kept, and a
// valid one replaces a key the browser keeps only when the user says so.
func TestHostLinkCannotReplaceTheHostKey(t *testing.T) {
	s := startServer(t, false)
	b := s.createBattle(t, "host link")
	other := s.createBattle(t, "another battle")
	br := newBrowser(t, false)
	tab := br.open("watch", s.base+"/")
	key := jsString("singoff:host:" + b.ID)
	stored := func() string {
		var v string
		tab.eval(`JSON.parse(localStorage.getItem(`+key+`) || "{}").host_token ?? ""`, &v)
		return v
	}
	store := func(token string) {
		tab.eval(`localStorage.setItem(`+key+`, JSON.stringify({host_token: `+jsString(token)+`})), true`, nil)
	}
	var mu sync.Mutex
	accept, asked := false, 0
	chromedp.ListenTarget(tab.ctx, func(ev any) {
		if _, ok := ev.(*page.EventJavascriptDialogOpening); ok {
			mu.Lock()
			asked++
			yes := accept
			mu.Unlock()
			go func() { _ = chromedp.Run(tab.ctx, page.HandleJavaScriptDialog(yes)) }()
		}
	})
	questions := func() int {
		mu.Lock()
		defer mu.Unlock()
		return asked
	}
	// A new document each time: a link differing in its fragment only
	// would not load the page again.
	follow := func(token string) {
		tab.run(chromedp.Navigate(s.base + "/"))
		tab.run(chromedp.Navigate(s.base + "/b/" + b.ID + "#host=" + token))
	}

	store(b.HostToken)
	follow(other.HostToken)     // another battle's host key
	time.Sleep(2 * time.Second) // the page checks it with the server
	if got := stored(); got != b.HostToken || questions() != 0 {
		t.Fatalf("after a link with another battle's key the browser keeps %q (asked %d times)", got, questions())
	}

	store("a-stale-key")
	follow(b.HostToken)
	waitFor(t, "the page asks before replacing the kept key", 10*time.Second, func() bool { return questions() == 1 })
	time.Sleep(500 * time.Millisecond)
	if got := stored(); got != "a-stale-key" {
		t.Fatalf("the user said no, yet the kept key became %q", got)
	}
	mu.Lock()
	accept = true
	mu.Unlock()
	follow(b.HostToken)
	waitFor(t, "the key replaced once the user says so", 10*time.Second, func() bool { return stored() == b.HostToken })
	tab.waitJS("the host's end control", `!document.getElementById("end").hidden`, 10*time.Second)

	tab.eval(`localStorage.removeItem(`+key+`), true`, nil)
	follow(b.HostToken)
	waitFor(t, "a valid link kept where no key was", 10*time.Second, func() bool { return stored() == b.HostToken })
	if questions() != 2 {
		t.Errorf("asked %d times in all, want 2 (only when replacing a kept key)", questions())
	}
}
