package e2e

import (
	"encoding/json"
	"net/http"
	"os/exec"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/chromedp"
)

// pageHooks runs in every document of a test's sing page before its own
// scripts. It keeps the page's peer connections in window.testPCs and
// its fetches (method, path, If-Match, status or error) in
// window.testRequests, so the test reads getStats and what the page asked
// the server. With window.testRelayOnly set the peer connections use
// relayed (TURN) candidates only, as on a network that lets no direct
// path to the server through.
const pageHooks = `(() => {
	const Native = window.RTCPeerConnection;
	window.testPCs = [];
	window.RTCPeerConnection = class extends Native {
		constructor(config) {
			super(window.testRelayOnly ? { ...config, iceTransportPolicy: "relay" } : config);
			window.testPCs.push(this);
		}
	};
	// The audio track an open publishing connection sends.
	window.testSentAudio = () => window.testPCs
		.find((pc) => pc.connectionState !== "closed" && pc.getSenders().some((s) => s.track))
		?.getSenders().map((s) => s.track).find((t) => t?.kind === "audio");
	const nativeFetch = window.fetch;
	window.testRequests = [];
	window.fetch = async function (input, init = {}) {
		const entry = {
			method: (init.method || "GET").toUpperCase(),
			path: new URL(String(input), location.href).pathname,
			ifMatch: new Headers(init.headers).get("If-Match") || "",
		};
		window.testRequests.push(entry);
		try {
			const res = await nativeFetch.call(this, input, init);
			entry.status = res.status;
			return res;
		} catch (err) {
			entry.error = String(err);
			throw err;
		}
	};
})();`

const relayOnly = `window.testRelayOnly = true;`

// pageRequest is one fetch the page made.
type pageRequest struct {
	Method  string `json:"method"`
	Path    string `json:"path"`
	IfMatch string `json:"ifMatch"`
	Status  int    `json:"status"`
	Error   string `json:"error"`
}

// requests are the page's fetches of method on paths that contain part.
func (tb *tab) requests(method, part string) []pageRequest {
	tb.t.Helper()
	var all []pageRequest
	tb.eval(`window.testRequests`, &all)
	var got []pageRequest
	for _, r := range all {
		if r.Method == method && strings.Contains(r.Path, part) {
			got = append(got, r)
		}
	}
	return got
}

// connStats is what getStats says of one of the page's peer connections.
type connStats struct {
	State string `json:"state"`
	// Publisher: it sends tracks (WHIP), else it receives (WHEP).
	Publisher bool `json:"publisher"`
	// LocalType is the candidate type of the selected pair's local end.
	LocalType      string  `json:"localType"`
	AudioBytesSent float64 `json:"audioBytesSent"`
	AudioMime      string  `json:"audioMime"`
	AudioChannels  int     `json:"audioChannels"`
	AudioFmtp      string  `json:"audioFmtp"`
	BytesReceived  float64 `json:"bytesReceived"`
}

// connections reads getStats of every peer connection the page made
// that is not closed.
func (tb *tab) connections() []connStats {
	tb.t.Helper()
	var out []connStats
	tb.eval(`(async () => {
		const open = window.testPCs.filter((pc) => pc.connectionState !== "closed");
		return Promise.all(open.map(async (pc) => {
			const out = { state: pc.connectionState, publisher: pc.getSenders().some((s) => s.track), localType: "",
				audioBytesSent: 0, audioMime: "", audioChannels: 0, audioFmtp: "", bytesReceived: 0 };
			const stats = await pc.getStats();
			stats.forEach((s) => {
				if (s.type === "transport" && s.selectedCandidatePairId) {
					const pair = stats.get(s.selectedCandidatePairId);
					out.localType = stats.get(pair?.localCandidateId)?.candidateType ?? "";
				}
				if (s.type === "outbound-rtp" && s.kind === "audio") {
					out.audioBytesSent = s.bytesSent;
					const codec = stats.get(s.codecId);
					out.audioMime = codec?.mimeType ?? "";
					out.audioChannels = codec?.channels ?? 0;
					out.audioFmtp = codec?.sdpFmtpLine ?? "";
				}
				if (s.type === "inbound-rtp") out.bytesReceived += s.bytesReceived;
			});
			return out;
		}));
	})()`, &out)
	return out
}

// publisher is the page's open WHIP connection.
func (tb *tab) publisher() connStats {
	tb.t.Helper()
	for _, c := range tb.connections() {
		if c.Publisher {
			return c
		}
	}
	tb.t.Fatalf("%s page has no open publishing connection", tb.name)
	return connStats{}
}

// sentAudio is the audio track the page publishes, as the browser set it.
type sentAudio struct {
	ContentHint      string `json:"contentHint"`
	EchoCancellation bool   `json:"echoCancellation"`
	NoiseSuppression bool   `json:"noiseSuppression"`
	AutoGainControl  bool   `json:"autoGainControl"`
	ChannelCount     int    `json:"channelCount"`
	ReadyState       string `json:"readyState"`
}

func (tb *tab) sentAudio() sentAudio {
	tb.t.Helper()
	var a sentAudio
	tb.eval(`(() => {
		const t = window.testSentAudio();
		if (!t) return {};
		const s = t.getSettings();
		return { contentHint: t.contentHint, echoCancellation: s.echoCancellation, noiseSuppression: s.noiseSuppression,
			autoGainControl: s.autoGainControl, channelCount: s.channelCount ?? 0, readyState: t.readyState };
	})()`, &a)
	return a
}

// channelTones is how loud (dBFS, over a second) the two tones of
// stereoMusic are in each channel of the audio the page sends.
type channelTones struct {
	Left440  float64 `json:"l440"`
	Left660  float64 `json:"l660"`
	Right440 float64 `json:"r440"`
	Right660 float64 `json:"r660"`
}

// sentTones listens to the sent audio track with Web Audio, each channel
// apart.
func (tb *tab) sentTones() channelTones {
	tb.t.Helper()
	var c channelTones
	tb.eval(`(async () => {
		const track = window.testSentAudio();
		const ctx = new AudioContext();
		const split = ctx.createChannelSplitter(2);
		ctx.createMediaStreamSource(new MediaStream([track])).connect(split);
		const analysers = [0, 1].map((i) => {
			const a = ctx.createAnalyser();
			a.fftSize = 4096;
			split.connect(a, i);
			return a;
		});
		await new Promise((r) => setTimeout(r, 1500));
		const [left, right] = analysers.map((a) => {
			const d = new Float32Array(a.frequencyBinCount);
			a.getFloatFrequencyData(d);
			return d;
		});
		const at = (d, hz) => {
			const bin = Math.round(hz / (ctx.sampleRate / 4096));
			return Math.max(d[bin - 1], d[bin], d[bin + 1]);
		};
		await ctx.close();
		return { l440: at(left, 440), l660: at(left, 660), r440: at(right, 440), r660: at(right, 660) };
	})()`, &c)
	return c
}

// audioKbps is the publisher's outbound audio bitrate over a few seconds.
func (tb *tab) audioKbps(over time.Duration) float64 {
	tb.t.Helper()
	before := tb.publisher().AudioBytesSent
	start := time.Now()
	time.Sleep(over)
	after := tb.publisher().AudioBytesSent
	return (after - before) * 8 / time.Since(start).Seconds() / 1000
}

// stereoMusic writes 30 s of stereo sound that keeps an Opus encoder
// busy, as music does: a different tone over pink noise in each channel.
// Chromium's fake microphone plays it in place of its mono beep.
func stereoMusic(t testing.TB) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "music.wav")
	graph := "anoisesrc=c=pink:a=0.2:d=30:s=1[n1];anoisesrc=c=pink:a=0.2:d=30:s=2[n2];" +
		"sine=f=440:d=30[t1];sine=f=660:d=30[t2];[n1][t1]amix=inputs=2[l];[n2][t2]amix=inputs=2[r];" +
		"[l][r]join=inputs=2:channel_layout=stereo[out]"
	out, err := exec.Command("ffmpeg", "-nostdin", "-v", "error", "-filter_complex", graph, "-map", "[out]",
		"-ar", "48000", "-c:a", "pcm_s16le", path).CombinedOutput()
	if err != nil {
		t.Fatalf("ffmpeg making the fake microphone's sound: %v\n%s", err, out)
	}
	return path
}

// singPage is slot's sing page with its invite token.
func singPage(s *server, b battle, slot int) string {
	return s.base + "/b/" + b.ID + "/sing/" + strconv.Itoa(slot) + "#token=" + b.SingerTokens[slot-1]
}

// TestSingPageHeadphones: the sing page asks whether the singer wears
// headphones. Without, the browser's echo cancellation, noise suppression
// and gain control stay on and the page says why headphones sound better;
// with, they are off, the microphone is taken in stereo and Opus goes out
// in stereo at a music bitrate (the server's answer asks for
// stereo=1;sprop-stereo=1;maxaveragebitrate=128000). Chromium's fake
// microphone plays a stereo file here: its own beep is the same in both
// channels, and quiet, so the encoder spends less than its target on it.
func TestSingPageHeadphones(t *testing.T) {
	s := startServer(t, false)
	b := s.createBattle(t, "headphones e2e")
	br := newBrowser(t, true, chromedp.Flag("use-file-for-fake-audio-capture", stereoMusic(t)))
	sing := br.open("sing1", singPage(s, b, 1), pageHooks)
	sing.waitStatus("You are live", 30*time.Second)

	var shown struct {
		Yes bool `json:"yes"`
		No  bool `json:"no"`
		Why bool `json:"why"`
	}
	sing.eval(`({yes: document.getElementById("headphones-yes").checked, no: document.getElementById("headphones-no").checked,
		why: !document.getElementById("headphones-off").hidden})`, &shown)
	if shown.Yes || !shown.No || !shown.Why {
		t.Errorf("before any answer the page shows yes %v, no %v, the reason for headphones %v; want no, with the reason",
			shown.Yes, shown.No, shown.Why)
	}
	if a := sing.sentAudio(); !a.EchoCancellation || !a.NoiseSuppression || !a.AutoGainControl || a.ContentHint != "music" {
		t.Errorf("without headphones the page sends %+v, want echo cancellation, noise suppression and gain control on, content hint music", a)
	}

	sing.run(chromedp.Click("#headphones-yes", chromedp.ByID))
	sing.waitJS("the microphone is opened again without processing",
		`window.testSentAudio()?.readyState === "live" && window.testSentAudio().getSettings().echoCancellation === false`,
		10*time.Second)
	a := sing.sentAudio()
	if a.EchoCancellation || a.NoiseSuppression || a.AutoGainControl || a.ContentHint != "music" || a.ChannelCount != 2 {
		t.Errorf("with headphones the page sends %+v, want the processing off, content hint music, 2 channels", a)
	}
	// Stereo: each channel carries its own tone (Chromium keeps the two
	// channels apart with its processing on too; this checks that the
	// page's new microphone track is not taken in mono).
	if c := sing.sentTones(); c.Left440-c.Right440 < 20 || c.Right660-c.Left660 < 20 {
		t.Errorf("the sent audio's tones (dBFS) are %+v, want 440 Hz on the left and 660 Hz on the right, 20 dB apart", c)
	}
	// The encoder takes a moment to go from the old track to the new.
	time.Sleep(2 * time.Second)
	kbps := sing.audioKbps(4 * time.Second)
	pub := sing.publisher()
	t.Logf("Opus out: %.1f kb/s, %s, %d channels, fmtp %q", kbps, pub.AudioMime, pub.AudioChannels, pub.AudioFmtp)
	if pub.AudioMime != "audio/opus" || pub.AudioChannels != 2 || !strings.Contains(pub.AudioFmtp, "stereo=1") {
		t.Errorf("the page sends %s with %d channels, fmtp %q; want Opus in stereo", pub.AudioMime, pub.AudioChannels, pub.AudioFmtp)
	}
	if kbps < 96 {
		t.Errorf("the page sends Opus at %.1f kb/s, want at least 96", kbps)
	}
	sing.screenshot("headphones")

	// The answer holds across a reload.
	sing.run(chromedp.Reload())
	sing.waitStatus("You are live", 30*time.Second)
	if a := sing.sentAudio(); a.EchoCancellation || a.NoiseSuppression || a.AutoGainControl {
		t.Errorf("after a reload the page sends %+v, want the processing still off", a)
	}
}

// TestSingPageThroughTURN: a singer page on a network with no direct path
// to the server (its peer connections may use relayed candidates only)
// connects both ways through the TURN server that --ice-server names,
// with the credentials the server hands to the singer's token.
func TestSingPageThroughTURN(t *testing.T) {
	relay := startTURN(t)
	s := startServer(t, false, "--ice-server", "stun:"+strings.TrimPrefix(relay.conn.LocalAddr().String(), "udp:"),
		"--ice-server", relay.iceServer)
	b := s.createBattle(t, "turn e2e")
	s.startBot(t, b, 2)
	br := newBrowser(t, true)
	sing := br.open("sing1", singPage(s, b, 1), relayOnly, pageHooks)
	sing.waitStatus("You are live", 30*time.Second)
	sing.waitPlaying("#remote", 30*time.Second)

	conns := sing.connections()
	if len(conns) != 2 {
		t.Fatalf("the page has %d open peer connections, want 2 (WHIP and WHEP): %+v", len(conns), conns)
	}
	for _, c := range conns {
		if c.State != "connected" || c.LocalType != "relay" {
			t.Errorf("a peer connection (publisher %v) is %s over a %q candidate, want connected over the relay", c.Publisher, c.State, c.LocalType)
		}
	}
	if n := relay.allocations.Load(); n < 2 {
		t.Errorf("the TURN server made %d allocations for the page, want one per peer connection", n)
	}
	// The page's media goes through the relay: the fake camera and mic
	// out, the bot's picture and tone in, well over 200 kb/s.
	before := relay.carried()
	time.Sleep(2 * time.Second)
	if n := relay.carried() - before; n < 50_000 {
		t.Errorf("the TURN server carried %d bytes in 2 s, want the page's media", n)
	}
	if got := s.battle(t, b.ID); !got.Singers[0].Connected {
		t.Errorf("the server does not count singer 1 connected: %+v", got.Singers)
	}
}

// TestSingPageRecoversFromADrop cuts a live singer page's network: the
// path of its media (through a TURN relay, the page's only path) and its
// HTTP (DevTools' offline mode; that alone does not stop WebRTC in
// headless Chromium, checked when this was written). First for 5 s: the
// page comes back on its own by restarting ICE on the same WHIP session.
// Then the server loses the session during a cut (as when its ICE times
// out): the page's restart is refused and it makes a new session. No
// reload either time.
func TestSingPageRecoversFromADrop(t *testing.T) {
	relay := startTURN(t)
	s := startServer(t, false, "--ice-server", relay.iceServer)
	b := s.createBattle(t, "drop e2e")
	s.startBot(t, b, 2)
	br := newBrowser(t, true)
	sing := br.open("sing1", singPage(s, b, 1), relayOnly, pageHooks)
	sing.waitStatus("You are live", 30*time.Second)
	sing.waitPlaying("#remote", 30*time.Second)
	sing.eval(`window.testLoaded = performance.timeOrigin`, nil)

	// cut cuts the page off for d, or until it says so if that takes
	// longer.
	cut := func(d time.Duration) {
		t.Helper()
		start := time.Now()
		relay.cut(true)
		sing.run(network.Enable(), network.EmulateNetworkConditions(true, 0, -1, -1))
		sing.waitStatus("Connection lost", 15*time.Second)
		time.Sleep(time.Until(start.Add(d)))
	}
	restore := func() {
		t.Helper()
		relay.cut(false)
		sing.run(network.EmulateNetworkConditions(false, 0, -1, -1))
	}

	// A 5 s drop: ICE restarts on the same session.
	posts := len(sing.requests(http.MethodPost, "/whip"))
	pcs := len(sing.connections())
	cut(5 * time.Second)
	restore()
	restored := time.Now()
	sing.waitStatus("You are live", 30*time.Second)
	t.Logf("live again %.1f s after the network came back, by an ICE restart", time.Since(restored).Seconds())
	sing.waitPlaying("#remote", 30*time.Second)
	if n := len(sing.requests(http.MethodPost, "/whip")); n != posts {
		t.Errorf("the page POSTed %d new WHIP offers, want the session kept", n-posts)
	}
	restarted := false
	for _, r := range sing.requests(http.MethodPatch, "/whip/") {
		restarted = restarted || r.Status == http.StatusOK && r.IfMatch == "*"
	}
	if !restarted {
		t.Errorf("no ICE restart of the WHIP session was answered: %+v", sing.requests(http.MethodPatch, "/whip/"))
	}
	conns := sing.connections()
	if len(conns) != pcs {
		t.Errorf("the page has %d open peer connections after the drop, %d before", len(conns), pcs)
	}
	before := sing.publisher().AudioBytesSent
	time.Sleep(time.Second)
	if after := sing.publisher().AudioBytesSent; after <= before {
		t.Errorf("the page sends nothing after the drop (%v bytes, then %v)", before, after)
	}
	waitFor(t, "singer 1 connected again", 15*time.Second, func() bool { return s.battle(t, b.ID).Singers[0].Connected })
	sing.screenshot("back")

	// A drop during which the server loses the session: the page's
	// restart gets 404, and it makes a new session.
	whip := sing.requests(http.MethodPost, "/whip")
	location := ""
	for _, r := range sing.requests(http.MethodPatch, "/whip/") {
		location = r.Path
	}
	cut(2 * time.Second)
	s.call(t, http.MethodDelete, location, b.SingerTokens[0], nil, http.StatusOK, nil)
	time.Sleep(time.Second)
	restore()
	restored = time.Now()
	sing.waitStatus("You are live", 45*time.Second)
	t.Logf("live again %.1f s after the network came back, by a new session", time.Since(restored).Seconds())
	sing.waitPlaying("#remote", 30*time.Second)
	if n := len(sing.requests(http.MethodPost, "/whip")); n != len(whip)+1 {
		t.Errorf("the page POSTed %d WHIP offers after losing its session, want 1", n-len(whip))
	}
	refused := false
	for _, r := range sing.requests(http.MethodPatch, location) {
		refused = refused || r.Status == http.StatusNotFound
	}
	if !refused {
		t.Errorf("the page's restart of the lost session was not refused: %+v", sing.requests(http.MethodPatch, location))
	}
	waitFor(t, "singer 1 connected again", 15*time.Second, func() bool { return s.battle(t, b.ID).Singers[0].Connected })
	var loaded float64
	sing.eval(`window.testLoaded ?? 0`, &loaded)
	if loaded == 0 {
		t.Error("the page was reloaded")
	}
}

// TestSingPageLeavesTheSlotToAnotherTab: the same invite link opened in
// a second tab takes the slot; the first tab stops and says so instead
// of taking the slot back (they would knock each other off for ever),
// and gives it back only when its singer asks.
func TestSingPageLeavesTheSlotToAnotherTab(t *testing.T) {
	s := startServer(t, false)
	b := s.createBattle(t, "two tabs e2e")
	br := newBrowser(t, true)
	first := br.open("first", singPage(s, b, 1), pageHooks)
	first.waitStatus("You are live", 30*time.Second)
	second := br.open("second", singPage(s, b, 1), pageHooks)
	second.waitStatus("You are live", 30*time.Second)

	first.waitStatus("another tab", 30*time.Second)
	// Long enough for several rounds of a reconnect loop.
	time.Sleep(10 * time.Second)
	second.waitStatus("You are live", time.Second)
	for _, page := range []*tab{first, second} {
		if n := len(page.requests(http.MethodPost, "/whip")); n != 1 {
			t.Errorf("the %s tab POSTed %d WHIP offers, want 1", page.name, n)
		}
	}
	if got := s.battle(t, b.ID); !got.Singers[0].Connected {
		t.Errorf("the server does not count singer 1 connected: %+v", got.Singers)
	}
	first.screenshot("stopped")

	// The singer takes the slot back from the first tab.
	first.run(chromedp.Click("#take-back", chromedp.ByID))
	first.waitStatus("You are live", 30*time.Second)
	second.waitStatus("another tab", 30*time.Second)
}

// TestPageReadsICEServerLinks runs the pages' Link header reader in
// Chromium on what servers send: several links in one header (as fetch
// joins them), quoted values holding commas, semicolons and escaped
// quotes, links of other kinds, and broken ones.
func TestPageReadsICEServerLinks(t *testing.T) {
	s := startServer(t, false)
	br := newBrowser(t, false)
	home := br.open("home", s.base+"/")
	type iceServer struct {
		URLs       string  `json:"urls"`
		Username   *string `json:"username"`
		Credential *string `json:"credential"`
	}
	str := func(s string) *string { return &s }
	for _, tc := range []struct {
		name, header string
		want         []iceServer
	}{
		{"none", "", []iceServer{}},
		{"stun", `<stun:stun.example.net:3478>; rel="ice-server"`, []iceServer{{URLs: "stun:stun.example.net:3478"}}},
		{"stun and turn in one header",
			`<stun:a.example:3478>; rel="ice-server", <turn:b.example:3478?transport=udp>; rel="ice-server"; ` +
				`username="singer"; credential="p@ss:w;rd, \"quoted\" \\ too"; credential-type="password"`,
			[]iceServer{{URLs: "stun:a.example:3478"},
				{URLs: "turn:b.example:3478?transport=udp", Username: str("singer"), Credential: str(`p@ss:w;rd, "quoted" \ too`)}}},
		{"unquoted values, names in capitals", `<turn:b.example:3478>;REL=ice-server;Username=u;CREDENTIAL=p`,
			[]iceServer{{URLs: "turn:b.example:3478", Username: str("u"), Credential: str("p")}}},
		{"other links left out", `<https://example.net/>; rel="preconnect", <stun:a.example:3478>; rel="ice-server"`,
			[]iceServer{{URLs: "stun:a.example:3478"}}},
		{"a broken link skipped", `nonsense; rel="ice-server", <stun:a.example:3478>; rel="ice-server"`,
			[]iceServer{{URLs: "stun:a.example:3478"}}},
		{"an unterminated link", `<stun:a.example:3478; rel="ice-server"`, []iceServer{}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var got []iceServer
			home.eval(`(async (header) => (await import("/assets/js/iceservers.js")).parseIceServerLinks(header))(`+
				jsString(tc.header)+`)`, &got)
			if !reflect.DeepEqual(got, tc.want) {
				t.Errorf("parseIceServerLinks(%q) = %s, want %s", tc.header, asJSON(got), asJSON(tc.want))
			}
		})
	}
}

func asJSON(v any) string {
	b, _ := json.Marshal(v)
	return string(b)
}
