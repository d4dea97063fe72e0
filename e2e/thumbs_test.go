package e2e

import (
	"net/http"
	"strings"
	"testing"
	"time"
)

// shownThumb is a battle's picture on the home page.
type shownThumb struct {
	Src    string `json:"src"`
	Alt    string `json:"alt"`
	Width  int    `json:"width"`
	Height int    `json:"height"`
}

// thumbs reads the pictures the home page shows in a list, once each has
// loaded.
func (tb *tab) thumbs(list string) []shownThumb {
	tb.t.Helper()
	tb.waitJS("the pictures of "+list+" load",
		`[...document.querySelectorAll("#`+list+` img.thumb")].every((i) => i.complete && i.naturalWidth > 0) &&
			document.querySelectorAll("#`+list+` img.thumb").length > 0`, 20*time.Second)
	var out []shownThumb
	tb.eval(`[...document.querySelectorAll("#`+list+` img.thumb")].map((i) => ({
		src: i.currentSrc, alt: i.alt, width: i.naturalWidth, height: i.naturalHeight }))`, &out)
	return out
}

// TestHomeShowsThumbnails shows a live battle's latest picture and a past
// battle's picture from its recording on the home page, decoded at
// 320x180 and described for people who cannot see them; the live one is
// asked for again as the list refreshes.
func TestHomeShowsThumbnails(t *testing.T) {
	s := startServer(t, false)
	past := s.createBattle(t, "Past duel")
	stopPast1 := s.startBot(t, past, 1)
	stopPast2 := s.startBot(t, past, 2)
	s.waitLive(t, past.ID)
	time.Sleep(4 * time.Second)
	s.call(t, http.MethodPost, "/api/battles/"+past.ID+"/end", past.HostToken, nil, http.StatusOK, nil)
	stopPast1()
	stopPast2()

	live := s.createBattle(t, "Live duel")
	s.startBot(t, live, 1)
	s.startBot(t, live, 2)
	s.waitLive(t, live.ID)
	// The first still comes about a second into the program.
	time.Sleep(2 * time.Second)

	home := newBrowser(t, false).open("home", s.base+"/", watchCSP)
	home.waitStatus("live", 15*time.Second)
	for _, c := range []struct {
		list, src, alt string
	}{
		{"live", "/hls/" + live.ID + "/thumb.jpg?t=", "Live duel: the picture now"},
		{"past", "/vod/" + past.ID + "/thumb.jpg", "Past duel: a picture from the battle"},
	} {
		got := home.thumbs(c.list)
		if len(got) != 1 || !strings.HasPrefix(got[0].Src, s.base+c.src) || got[0].Alt != c.alt ||
			got[0].Width != 320 || got[0].Height != 180 {
			t.Errorf("%s battles show pictures %+v, want one %s… described %q at 320x180", c.list, got, c.src, c.alt)
		}
	}
	first := home.thumbs("live")[0].Src
	home.waitJS("the live picture is asked for again",
		`document.querySelector("#live img.thumb").currentSrc !== `+jsString(first), 15*time.Second)
	again := home.thumbs("live")
	if len(again) != 1 || again[0].Width != 320 {
		t.Errorf("after a refresh the live battle shows %+v", again)
	}
	home.screenshot("thumbnails")
	home.checkCSP()
}
