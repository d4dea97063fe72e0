package e2e

import (
	"net/http"
	"testing"
	"time"
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
