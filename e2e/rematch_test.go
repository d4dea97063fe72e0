package e2e

import (
	"net/http"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

// The host offers a rematch once the battle is over: a new battle with
// the same singers and settings and new tokens, which the old battle
// links to (its object, its watch, sing and replay pages); one rematch
// per battle, the host's only.
func TestRematch(t *testing.T) {
	s := startServer(t, false, "--min-turn-seconds", "5")
	var old battle
	s.call(t, http.MethodPost, "/api/battles", "", map[string]any{
		"title": "다시 한 번", "singers": []string{"민지", "Ana"}, "rounds": 2, "turn_seconds": 5,
	}, http.StatusCreated, &old)
	rematch := "/api/battles/" + old.ID + "/rematch"
	s.call(t, http.MethodPost, rematch, old.HostToken, nil, http.StatusConflict, nil) // no result yet
	s.call(t, http.MethodPost, rematch, "", nil, http.StatusUnauthorized, nil)
	s.call(t, http.MethodPost, rematch, old.SingerTokens[0], nil, http.StatusUnauthorized, nil)
	s.call(t, http.MethodPost, "/api/battles/"+old.ID+"/end", old.HostToken, nil, http.StatusOK, nil)

	var got struct {
		battle
		Rounds      int `json:"rounds"`
		TurnSeconds int `json:"turn_seconds"`
		Singers     []struct {
			Name string `json:"name"`
		} `json:"singers"`
	}
	s.call(t, http.MethodPost, rematch, old.HostToken, nil, http.StatusCreated, &got)
	if got.ID == old.ID || got.State != "waiting" || got.Title != "다시 한 번" || got.Rounds != 2 || got.TurnSeconds != 5 ||
		len(got.Singers) != 2 || got.Singers[0].Name != "민지" || got.Singers[1].Name != "Ana" {
		t.Fatalf("rematch %+v: want a new waiting battle with the old one's title, singers and format", got)
	}
	if got.HostToken == "" || got.HostToken == old.HostToken || len(got.SingerTokens) != 2 ||
		got.SingerTokens[0] == old.SingerTokens[0] || got.SingerTokens[1] == old.SingerTokens[1] {
		t.Fatal("the rematch's tokens are not new ones")
	}
	if o := s.battle(t, old.ID); o.RematchID == nil || *o.RematchID != got.ID {
		t.Fatalf("the old battle's rematch_id is %v, want %s", o.RematchID, got.ID)
	}
	if n := s.battle(t, got.ID); n.RematchID != nil {
		t.Fatalf("the rematch has a rematch_id %v", *n.RematchID)
	}
	s.call(t, http.MethodPost, rematch, old.HostToken, nil, http.StatusConflict, nil) // one per battle
	// The new battle's tokens are its own.
	s.call(t, http.MethodGet, "/api/battles/"+got.ID+"/host", got.HostToken, nil, http.StatusNoContent, nil)
	s.call(t, http.MethodGet, "/api/battles/"+got.ID+"/host", old.HostToken, nil, http.StatusUnauthorized, nil)

	// Every page of the old battle links to the rematch, and so does
	// its entry among the home page's past battles.
	br := newBrowser(t, false)
	home := br.open("home", s.base+"/")
	home.waitJS("the rematch link among the past battles",
		`[...document.querySelectorAll("#past a")].some((a) => a.getAttribute("href") === `+jsString("/b/"+got.ID)+`)`, 15*time.Second)
	for _, page := range []struct{ name, path string }{
		{"watch", "/b/" + old.ID},
		{"replay", "/b/" + old.ID + "/replay"},
		{"sing", "/b/" + old.ID + "/sing/1#token=" + old.SingerTokens[0]},
	} {
		t.Run(page.name, func(t *testing.T) {
			tb := br.open(page.name, s.base+page.path)
			tb.waitJS("the rematch link", `(() => {
				const box = document.getElementById("rematch");
				return box && !box.hidden && document.getElementById("rematch-link").getAttribute("href") === `+jsString("/b/"+got.ID)+`;
			})()`, 15*time.Second)
		})
	}
}

// The host offers the rematch from the watch page once the result
// stands: the page goes home, where the new battle waits with its
// invite links.
func TestHostOffersARematch(t *testing.T) {
	s := startServer(t, false, "--min-turn-seconds", "1")
	var old battle
	s.call(t, http.MethodPost, "/api/battles", "", map[string]any{"title": "again", "rounds": 1, "turn_seconds": 1},
		http.StatusCreated, &old)
	br := newBrowser(t, false)
	host := br.open("host", s.base+"/b/"+old.ID+"#host="+old.HostToken)
	host.waitJS("the host's start button", `!document.getElementById("start").hidden`, 15*time.Second)
	if visible(host, "offer-rematch") {
		t.Fatal("the rematch is offered before the battle started")
	}
	host.run(chromedp.Click("#start", chromedp.ByID))
	// Two turns of 1 s and the vote's grace: the result stands.
	host.waitJS("the rematch offered once the result stands", `!document.getElementById("offer-rematch").hidden`, 40*time.Second)
	host.run(chromedp.Click("#offer-rematch", chromedp.ByID))
	host.waitPath("/", 15*time.Second)
	o := s.battle(t, old.ID)
	if o.RematchID == nil {
		t.Fatal("the old battle has no rematch_id after the host's rematch")
	}
	host.waitJS("the rematch among the host's battles with its invite links",
		`[...document.querySelectorAll("#mine input")].some((i) => i.value.includes(`+jsString("/b/"+*o.RematchID+"/sing/1#token=")+`))`,
		15*time.Second)
}

// visible tells whether the element with id is shown.
func visible(tb *tab, id string) bool {
	var shown bool
	tb.eval(`!document.getElementById(`+jsString(id)+`).hidden`, &shown)
	return shown
}
