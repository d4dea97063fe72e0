package web

import (
	"context"
	"encoding/json"
	"net/http/httptest"
	"reflect"
	"testing"
	"time"

	"github.com/chromedp/cdproto/runtime"
	"github.com/chromedp/chromedp"
	"github.com/singoff/singoff/internal/chromiumtest"
)

// pictureState is what a page shows of the battle at a picture.
type pictureState struct {
	Round    int     `json:"round"`
	Turn     *int    `json:"turn"`
	Left     *int    `json:"left"` // whole seconds left in the turn
	Winner   *int    `json:"winner"`
	Votes    [][]int `json:"votes"`
	Unmapped bool    `json:"unmapped"` // the battle came back as it was
}

func ptr(n int) *int { return &n }

// TestCuesInChromium runs cues.js in Chromium: where a one-round battle
// of 10 s turns is at each moment of its picture, given the date ranges
// a player found in the stream; what a stream without cues shows; the
// chapters; the last round's start.
func TestCuesInChromium(t *testing.T) {
	srv := httptest.NewServer(pagesOnly())
	defer srv.Close()
	tabCtx, cancelTab := chromedp.NewContext(chromiumtest.Start(t, chromiumtest.Options{}))
	defer cancelTab()
	ctx, cancel := context.WithTimeout(tabCtx, 20*time.Second)
	defer cancel()
	if err := chromedp.Run(ctx, chromedp.Navigate(srv.URL+"/b/abc/replay")); err != nil {
		t.Fatal(err)
	}
	eval := func(js string, out any) {
		t.Helper()
		err := chromedp.Run(ctx, chromedp.Evaluate(js, out, func(p *runtime.EvaluateParams) *runtime.EvaluateParams {
			return p.WithAwaitPromise(true)
		}))
		if err != nil {
			t.Fatal(err)
		}
	}
	// The battle as the events stream has it at the end: the result is
	// known, the votes are in; the stream's cues for a battle that began
	// at media time 100 with two 10 s turns, voting closing at 135.
	const setup = `
		const c = await import("/assets/js/cues.js");
		const battle = { state: "live", singers: [{ slot: 1, name: "Ann" }, { slot: 2, name: "Bob" }],
			rounds: 2, turn_seconds: 10, round: 1, turn: null, turn_ends_at: null, voting_open: false,
			votes: [[3, 5]], winner: 2 };
		const cue = (id, cls, start, duration, data) => ({ id, class: cls, start,
			end: duration == null ? Infinity : start + duration, data });
		const cues = [
			cue("result", c.RESULT, 135, null, { WINNER: "2", "SCORE-1": "0", "SCORE-2": "1" }),
			cue("turn-1-2", c.TURN, 110, 10, { ROUND: "1", SLOT: "2" }),
			cue("round-1", c.ROUND, 135, null, { ROUND: "1", "VOTES-1": "3", "VOTES-2": "5", WINNER: "2" }),
			cue("turn-1-1", c.TURN, 100, 10, { ROUND: "1", SLOT: "1" }),
			cue("ad", "com.example.other", 105, 1, {}),
		];
		const now = 1e12;
		const state = (v) => ({ round: v.round, turn: v.turn,
			left: v.turn_ends_at ? Math.ceil((Date.parse(v.turn_ends_at) - now) / 1000) : null,
			winner: v.winner, votes: v.votes, unmapped: v === battle });
	`
	cases := []struct {
		name string
		cues string // the cues the player has found
		t    float64
		want pictureState
	}{
		{"before the first turn", "cues", 99, pictureState{Round: 0, Votes: [][]int{{3, 5}}}},
		{"the first turn starts", "cues", 100, pictureState{Round: 1, Turn: ptr(1), Left: ptr(10), Votes: [][]int{{3, 5}}}},
		{"within a millisecond of the start", "cues", 99.9995, pictureState{Round: 1, Turn: ptr(1), Left: ptr(10), Votes: [][]int{{3, 5}}}},
		{"the first turn counts down", "cues", 104.5, pictureState{Round: 1, Turn: ptr(1), Left: ptr(6), Votes: [][]int{{3, 5}}}},
		{"the other singer's turn", "cues", 110, pictureState{Round: 1, Turn: ptr(2), Left: ptr(10), Votes: [][]int{{3, 5}}}},
		{"voting after the turns", "cues", 121, pictureState{Round: 1, Votes: [][]int{{3, 5}}}},
		{"the result", "cues", 135, pictureState{Round: 1, Winner: ptr(2), Votes: [][]int{{3, 5}}}},
		{"only the second turn known, before it", "cues.filter((x) => x.id === 'turn-1-2')", 108,
			pictureState{Round: 1, Turn: ptr(1), Left: ptr(2), Votes: [][]int{{3, 5}}}},
		{"only the round's result known, before it", "cues.filter((x) => x.id === 'round-1')", 130,
			pictureState{Round: 1, Votes: [][]int{{3, 5}}}},
		{"no cues: the battle as it is", "[]", 120, pictureState{Round: 1, Winner: ptr(2), Votes: [][]int{{3, 5}}, Unmapped: true}},
		{"only other classes: the battle as it is", "cues.filter((x) => x.id === 'ad')", 120,
			pictureState{Round: 1, Winner: ptr(2), Votes: [][]int{{3, 5}}, Unmapped: true}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var got pictureState
			eval(`(async () => {`+setup+`
				return state(c.atPicture(battle, `+tc.cues+`, `+jsonString(t, tc.t)+`, now));
			})()`, &got)
			if !reflect.DeepEqual(got, tc.want) {
				t.Errorf("at %v: %s, want %s", tc.t, jsonString(t, got), jsonString(t, tc.want))
			}
		})
	}

	t.Run("before the start by the picture's clock", func(t *testing.T) {
		// The events stream says the first turn began at 12:00:10; a
		// picture of 12:00:09.5 has not reached it, one of 12:00:10 has.
		var got []pictureState
		eval(`(async () => {`+setup+`
			const started = { ...battle, round: 1, turn: 1, winner: null, turn_ends_at: "2030-01-01T12:00:20Z" };
			const at = (s) => new Date("2030-01-01T12:00:" + s + "Z");
			return [c.beforeStart(started, at("09.500")), c.beforeStart(started, at("10.000")),
				c.beforeStart(started, null)].map((v) => ({ round: v.round, turn: v.turn, winner: v.winner, votes: v.votes }));
		})()`, &got)
		want := []pictureState{{Round: 0, Votes: [][]int{{3, 5}}}, {Round: 1, Turn: ptr(1), Votes: [][]int{{3, 5}}},
			{Round: 1, Turn: ptr(1), Votes: [][]int{{3, 5}}}}
		if !reflect.DeepEqual(got, want) {
			t.Errorf("got %s, want %s", jsonString(t, got), jsonString(t, want))
		}
	})

	t.Run("chapters and the last round", func(t *testing.T) {
		var got struct {
			Chapters []map[string]any `json:"chapters"`
			Last     []any            `json:"last"`
		}
		eval(`(async () => {`+setup+`
			return { chapters: c.chapters(cues),
				last: [99, 100, 125, 200].map((t) => c.lastRoundStart(cues, t)?.id ?? null) };
		})()`, &got)
		want := []map[string]any{
			{"kind": "round", "round": 1.0, "start": 100.0, "slots": []any{1.0, 2.0}},
			{"kind": "result", "start": 135.0, "winner": 2.0},
		}
		if !reflect.DeepEqual(got.Chapters, want) {
			t.Errorf("chapters %s, want %s", jsonString(t, got.Chapters), jsonString(t, want))
		}
		if wantLast := []any{nil, "turn-1-1", "turn-1-1", "turn-1-1"}; !reflect.DeepEqual(got.Last, wantLast) {
			t.Errorf("last round's start at 99, 100, 125, 200: %v, want %v", got.Last, wantLast)
		}
	})

	t.Run("thumbnails", func(t *testing.T) {
		var got []string
		eval(`(async () => {
			const th = await import("/assets/js/thumbs.js");
			const b = (state, hls, vod) => ({ id: "x", title: "T", state, hls_url: hls, vod_url: vod });
			return [
				th.thumbURL(b("live", "/hls/x/index.m3u8", null), 5000),
				th.thumbURL(b("live", "https://o2.example/hls/x/index.m3u8", null), 5999),
				th.thumbURL(b("ended", "/hls/x/index.m3u8", "/vod/x/index.m3u8")),
				th.thumbURL(b("ended", "/hls/x/index.m3u8", null)),
				th.thumbURL(b("waiting", "/hls/x/index.m3u8", null)),
			];
		})()`, &got)
		want := []string{"/hls/x/thumb.jpg?t=2", "https://o2.example/hls/x/thumb.jpg?t=2", "/vod/x/thumb.jpg", "", ""}
		if !reflect.DeepEqual(got, want) {
			t.Errorf("got %q, want %q", got, want)
		}
	})
}

func jsonString(t *testing.T, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}
