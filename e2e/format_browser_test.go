package e2e

import (
	"context"
	"net/http"
	"reflect"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

// formatBattle is the battle object's format fields.
type formatBattle struct {
	State      string   `json:"state"`
	Round      int      `json:"round"`
	Turn       *int     `json:"turn"`
	VotingOpen bool     `json:"voting_open"`
	Votes      [][2]int `json:"votes"`
	Winner     *int     `json:"winner"`
}

// seenTurn is one thing the watch page's turn line showed.
type seenTurn struct {
	Turn      string `json:"turn"`
	Countdown string `json:"countdown"`
}

// TestBattleFormatInBrowser plays a one-round battle of 3 s turns with
// two bots to a watch page in Chromium: the page waits for the host, then
// shows Ann's turn counting down, takes a vote for Bob and shows the
// split, moves to Bob's turn, closes voting with the reason, shows Bob
// as the winner, and after the host ends the battle moves to the replay,
// which gives the result and the round's votes.
func TestBattleFormatInBrowser(t *testing.T) {
	s := startServer(t, false, "--min-turn-seconds", "1")
	b := s.createRound(t, "format e2e", [2]string{"Ann", "Bob"}, 3)
	s.startBot(t, b, 1)
	s.startBot(t, b, 2)

	br := newBrowser(t, false)
	watch := br.open("watch", s.base+"/b/"+b.ID)
	watch.waitJS("the page waits for the host",
		`document.getElementById("turn").textContent === "Waiting for the host to start."`, 15*time.Second)
	var before struct {
		Labels   []string `json:"labels"`
		Disabled []bool   `json:"disabled"`
		Note     string   `json:"note"`
	}
	watch.eval(`({
		labels: [...document.querySelectorAll(".vote")].map((b) => b.textContent),
		disabled: [...document.querySelectorAll(".vote")].map((b) => b.disabled),
		note: document.getElementById("vote-note").textContent,
	})`, &before)
	if !reflect.DeepEqual(before.Labels, []string{"Vote for Ann", "Vote for Bob"}) ||
		!reflect.DeepEqual(before.Disabled, []bool{true, true}) ||
		!strings.Contains(before.Note, "Voting opens when the host starts the battle") {
		t.Errorf("before the start the vote buttons are %q disabled %v with note %q, "+
			"want both named and disabled with the reason", before.Labels, before.Disabled, before.Note)
	}
	watch.screenshot("waiting")

	// The turns last 3 s: the page keeps its own record of every turn
	// line it shows, so none is missed between two looks.
	watch.recordTurns(b.ID)

	s.call(t, http.MethodPost, "/api/battles/"+b.ID+"/start", b.HostToken, nil, http.StatusOK, nil)
	watch.waitJS("voting opens", `!document.getElementById("vote-2").disabled`, 10*time.Second)
	watch.run(chromedp.Click("#vote-2", chromedp.ByID))
	watch.waitJS("the split shows the vote",
		`document.getElementById("count-1").textContent === "0" && document.getElementById("count-2").textContent === "1"`,
		10*time.Second)
	var voted struct {
		Pressed []string `json:"pressed"`
		Note    string   `json:"note"`
	}
	watch.eval(`({
		pressed: [...document.querySelectorAll(".vote")].map((b) => b.getAttribute("aria-pressed")),
		note: document.getElementById("vote-note").textContent,
	})`, &voted)
	if !reflect.DeepEqual(voted.Pressed, []string{"false", "true"}) || !strings.Contains(voted.Note, "You voted for Bob in round 1") {
		t.Errorf("after voting for Bob the buttons are pressed %q with note %q", voted.Pressed, voted.Note)
	}
	watch.screenshot("voted")
	var api formatBattle
	s.call(t, http.MethodGet, "/api/battles/"+b.ID, "", nil, http.StatusOK, &api)
	if !reflect.DeepEqual(api.Votes, [][2]int{{0, 1}}) {
		t.Errorf("after the page's vote the API counts %v, want [[0 1]]", api.Votes)
	}

	watch.waitJS("Bob's turn comes", `window.seenTurns.some((s) => s.turn === "Bob is singing")`, 15*time.Second)
	var seen []seenTurn
	watch.eval(`window.seenTurns`, &seen)
	checkTurns(t, seen)

	// Voting for the last round closes 15 s after Bob's turn; then the
	// result stands.
	watch.waitJS("voting closes", `document.getElementById("vote-2").disabled`, 30*time.Second)
	var closed struct {
		Disabled []bool `json:"disabled"`
		Note     string `json:"note"`
		Result   string `json:"result"`
	}
	watch.waitJS("the result appears", `!document.getElementById("result").hidden`, 10*time.Second)
	watch.eval(`({
		disabled: [...document.querySelectorAll(".vote")].map((b) => b.disabled),
		note: document.getElementById("vote-note").textContent,
		result: document.getElementById("result").textContent,
	})`, &closed)
	if !reflect.DeepEqual(closed.Disabled, []bool{true, true}) || !strings.Contains(closed.Note, "Voting for round 1 has closed") {
		t.Errorf("after the round the buttons are disabled %v with note %q, want both disabled with the reason",
			closed.Disabled, closed.Note)
	}
	if want := "Bob wins, 1 round to 0."; closed.Result != want {
		t.Errorf("the result reads %q, want %q", closed.Result, want)
	}
	watch.eval(`window.scrollTo(0, 0)`, nil)
	watch.screenshot("result")
	watch.checkStreamed()
	s.call(t, http.MethodGet, "/api/battles/"+b.ID, "", nil, http.StatusOK, &api)
	if api.Winner == nil || *api.Winner != 2 {
		t.Errorf("the API's winner is %v, want 2", api.Winner)
	}

	// The result stands 30 s before the battle ends on its own; the host
	// ends it now to keep the test short.
	s.call(t, http.MethodPost, "/api/battles/"+b.ID+"/end", b.HostToken, nil, http.StatusOK, nil)
	watch.waitPath("/b/"+b.ID+"/replay", 15*time.Second)
	watch.waitJS("the replay gives the result", `!document.getElementById("result-section").hidden`, 10*time.Second)
	var replay struct {
		Result string     `json:"result"`
		Rows   [][]string `json:"rows"`
	}
	watch.eval(`({
		result: document.getElementById("result").textContent,
		rows: [...document.querySelectorAll("#rounds tr")].map((r) => [...r.cells].map((c) => c.textContent)),
	})`, &replay)
	if !strings.HasPrefix(replay.Result, "Bob wins, 1 round to 0.") || !strings.Contains(replay.Result, "Ann 0, Bob 1") {
		t.Errorf("the replay's result reads %q", replay.Result)
	}
	if want := [][]string{{"Round", "Ann", "Bob"}, {"Round 1", "0", "1"}}; !reflect.DeepEqual(replay.Rows, want) {
		t.Errorf("the replay's votes are %q, want %q", replay.Rows, want)
	}
	watch.screenshot("replay")
}

// TestSingPageTurns sings slot 1 of a one-round battle of 3 s turns from
// Chromium's fake camera against a bot: the page tells its singer to wait
// for the host, when it is their turn and for how long, when it is the
// opponent's, and the result once the watchers' voting has closed.
func TestSingPageTurns(t *testing.T) {
	s := startServer(t, false, "--min-turn-seconds", "1")
	b := s.createRound(t, "sing turns e2e", [2]string{"Ann", "Bob"}, 3)
	s.startBot(t, b, 2)
	br := newBrowser(t, true)
	sing := br.open("sing1", s.base+"/b/"+b.ID+"/sing/1#token="+b.SingerTokens[0])
	sing.waitStatus("You are live", 30*time.Second)
	sing.waitJS("the page waits for the host",
		`document.getElementById("turn").textContent === "Waiting for the host to start."`, 10*time.Second)
	var heading string
	sing.eval(`document.getElementById("heading").textContent`, &heading)
	if heading != "sing turns e2e: Ann" {
		t.Errorf("the sing page's heading is %q, want the title and the singer's name", heading)
	}
	sing.recordTurns(b.ID)

	s.call(t, http.MethodPost, "/api/battles/"+b.ID+"/start", b.HostToken, nil, http.StatusOK, nil)
	sing.waitJS("the round ends", `window.seenTurns.some((s) => s.turn.startsWith("Round 1 is over"))`, 20*time.Second)
	sing.waitJS("the result shows", `document.getElementById("turn").textContent.startsWith("A draw")`, 30*time.Second)
	var seen []seenTurn
	sing.eval(`window.seenTurns`, &seen)
	var order []string
	countdown := regexp.MustCompile(`^— 0:0[0-3] left$`)
	for _, st := range seen {
		if len(order) == 0 || order[len(order)-1] != st.Turn {
			order = append(order, st.Turn)
		}
		if (st.Turn == "Your turn" || st.Turn == "Opponent's turn") && !countdown.MatchString(st.Countdown) {
			t.Errorf("during %q the countdown reads %q", st.Turn, st.Countdown)
		}
	}
	want := []string{"Your turn", "Opponent's turn", "Round 1 is over: the watchers are voting.",
		"A draw: 0 rounds each, 0 votes each."}
	if !reflect.DeepEqual(order, want) {
		t.Errorf("the sing page showed %q, want %q", order, want)
	}
	sing.checkStreamed()
	sing.screenshot("result")
}

// recordTurns has the page keep a record of every turn line it shows in
// window.seenTurns, so none is missed between two looks, and count its
// plain GETs of battle id in window.battleGETs.
func (tb *tab) recordTurns(id string) {
	tb.t.Helper()
	tb.eval(`((id) => {
		window.seenTurns = [];
		const record = () => {
			const turn = document.getElementById("turn").textContent;
			const countdown = document.getElementById("countdown").textContent;
			const last = window.seenTurns.at(-1);
			if (!last || last.turn !== turn || last.countdown !== countdown) window.seenTurns.push({ turn, countdown });
		};
		new MutationObserver(record).observe(document.getElementById("turn").closest("section"),
			{ subtree: true, childList: true, characterData: true });
		window.battleGETs = 0;
		new PerformanceObserver((list) => {
			for (const e of list.getEntries()) {
				if (new URL(e.name).pathname === "/api/battles/" + id) window.battleGETs++;
			}
		}).observe({ type: "resource" });
		return true;
	})(`+jsString(id)+`)`, nil)
}

// checkStreamed fails the test if the page recorded by recordTurns had to
// fetch the battle: every change must have come over the event stream.
func (tb *tab) checkStreamed() {
	tb.t.Helper()
	var gets int
	tb.eval(`window.battleGETs`, &gets)
	if gets != 0 {
		tb.t.Errorf("%s page fetched the battle %d times: the event stream missed changes", tb.name, gets)
	}
}

// checkTurns checks the turn lines a watch page showed from the start:
// Ann's turn counting down on the page's own clock, then Bob's.
func checkTurns(t testing.TB, seen []seenTurn) {
	t.Helper()
	countdown := regexp.MustCompile(`^0:0[0-3] left$`)
	annCounts := map[string]bool{}
	bob := -1
	for i, s := range seen {
		switch s.Turn {
		case "Ann is singing":
			if bob >= 0 {
				t.Errorf("Ann's turn came back after Bob's: %+v", seen)
			}
			if !countdown.MatchString(s.Countdown) {
				t.Errorf("Ann's countdown reads %q", s.Countdown)
			}
			annCounts[s.Countdown] = true
		case "Bob is singing":
			if bob < 0 {
				bob = i
			}
		}
	}
	if len(annCounts) < 2 {
		t.Errorf("Ann's countdown showed %v, want it to tick down; the page showed %+v", annCounts, seen)
	}
	if bob < 0 {
		t.Errorf("Bob's turn never showed: %+v", seen)
	}
}

// waitJS waits until the JavaScript expression cond is true on the page.
func (tb *tab) waitJS(what, cond string, within time.Duration) {
	tb.t.Helper()
	ctx, cancel := context.WithTimeout(tb.ctx, within+5*time.Second)
	defer cancel()
	err := chromedp.Run(ctx, chromedp.Poll(cond, nil,
		chromedp.WithPollingTimeout(within), chromedp.WithPollingInterval(50*time.Millisecond)))
	if err != nil {
		tb.screenshot("timeout")
		var shows string
		tb.eval(`document.querySelector("main")?.innerText ?? ""`, &shows)
		tb.t.Fatalf("%s page: %s: not within %v (%v); the page shows:\n%s", tb.name, what, within, err, shows)
	}
}

// waitPath waits until the page has moved to path; looks made while it
// navigates may fail, so only the last one counts.
func (tb *tab) waitPath(path string, within time.Duration) {
	tb.t.Helper()
	deadline := time.Now().Add(within)
	for {
		var at string
		ctx, cancel := context.WithTimeout(tb.ctx, 5*time.Second)
		err := chromedp.Run(ctx, chromedp.Evaluate(`location.pathname + (document.readyState === "complete" ? "" : "#loading")`, &at))
		cancel()
		if err == nil && at == path {
			return
		}
		if time.Now().After(deadline) {
			tb.screenshot("timeout")
			tb.t.Fatalf("%s page: at %q (%v) after %v, want %s", tb.name, at, err, within, path)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// TestHostStartsFromPages creates a battle with the home page's format
// fields and starts it with the watch page's Start button, which only the
// host's browser shows.
func TestHostStartsFromPages(t *testing.T) {
	s := startServer(t, false)
	br := newBrowser(t, false)
	home := br.open("home", s.base+"/")
	home.waitStatus("live", 15*time.Second)
	home.run(
		chromedp.SendKeys("#title", "Start from the page", chromedp.ByID),
		chromedp.SendKeys("#singer1", "Ann", chromedp.ByID),
		chromedp.SendKeys("#singer2", "Bob", chromedp.ByID),
		chromedp.SetValue("#rounds", "2", chromedp.ByID),
		chromedp.SetValue("#turn-seconds", "45", chromedp.ByID),
		chromedp.Click(`#create button[type=submit]`, chromedp.ByQuery),
	)
	home.waitStatus("is ready", 15*time.Second)
	var invite string
	home.eval(`document.querySelector("#mine input")?.value ?? ""`, &invite)
	id := battleID(t, invite)
	var created struct {
		formatBattle
		Rounds      int `json:"rounds"`
		TurnSeconds int `json:"turn_seconds"`
		Singers     []struct {
			Name string `json:"name"`
		} `json:"singers"`
	}
	s.call(t, http.MethodGet, "/api/battles/"+id, "", nil, http.StatusOK, &created)
	if created.Rounds != 2 || created.TurnSeconds != 45 || len(created.Singers) != 2 ||
		created.Singers[0].Name != "Ann" || created.Singers[1].Name != "Bob" || created.Round != 0 {
		t.Errorf("the home page created %+v, want Ann and Bob, 2 rounds of 45 s turns, not started", created)
	}
	home.screenshot("created")

	stranger := newBrowser(t, false).open("watch-stranger", s.base+"/b/"+id)
	watch := br.open("watch-host", s.base+"/b/"+id)
	watch.waitJS("the host sees Start", `!document.getElementById("start").hidden`, 10*time.Second)
	stranger.waitJS("the page waits for the host",
		`document.getElementById("turn").textContent === "Waiting for the host to start."`, 10*time.Second)
	var strangerStart bool
	stranger.eval(`!document.getElementById("start").hidden`, &strangerStart)
	if strangerStart {
		t.Error("a watcher without the host's credentials sees the Start button")
	}
	watch.run(chromedp.Click("#start", chromedp.ByID))
	watch.waitJS("the battle starts",
		`document.getElementById("turn").textContent === "Ann is singing" && document.getElementById("start").hidden`,
		10*time.Second)
	stranger.waitJS("the other watcher sees the start",
		`document.getElementById("round").textContent === "Round 1 of 2" && /^0:4\d left$/.test(document.getElementById("countdown").textContent)`,
		10*time.Second)
	s.call(t, http.MethodGet, "/api/battles/"+id, "", nil, http.StatusOK, &created)
	if created.Round != 1 || created.Turn == nil || *created.Turn != 1 {
		t.Errorf("after the Start button the API is at round %d, turn %v; want round 1, slot 1 singing", created.Round, created.Turn)
	}
	watch.screenshot("started")
	// A phone's width, for people to look at.
	stranger.run(chromedp.EmulateViewport(390, 844))
	stranger.screenshot("phone")
}
