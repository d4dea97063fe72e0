package e2e

import (
	"encoding/json"
	"net/http"
	"testing"
	"time"
)

// The replay page shows the chat in step with the recording: a message
// shows once the video reaches its time in the battle, and a message the
// host deleted never shows.
func TestReplayChatInStep(t *testing.T) {
	s := startServer(t, false)
	b := s.createBattle(t, "replayed chat")
	chat := "/api/battles/" + b.ID + "/chat"
	s.startBot(t, b, 1)
	waitFor(t, "the battle live", 30*time.Second, func() bool { return s.battle(t, b.ID).State == "live" })

	post := func(text string) chatMessage {
		t.Helper()
		status, data := s.post(t, s.client, http.MethodPost, chat, "", b.HostToken, `{"text":`+jsonString(text)+`}`)
		var m chatMessage
		if status != http.StatusCreated || json.Unmarshal(data, &m) != nil {
			t.Fatalf("posting %q: %d %s", text, status, data)
		}
		return m
	}
	time.Sleep(time.Second)
	early := post("early")
	gone := post("deleted")
	time.Sleep(5 * time.Second)
	late := post("late")
	if d := late.At - early.At; d < 4.5 || d > 8 {
		t.Fatalf("the messages are %.3f s apart in the battle (at %v and %v), want about 5", d, early.At, late.At)
	}
	s.call(t, http.MethodDelete, chat+"/"+gone.ID, b.HostToken, nil, http.StatusNoContent, nil)
	time.Sleep(2 * time.Second)
	s.call(t, http.MethodPost, "/api/battles/"+b.ID+"/end", b.HostToken, nil, http.StatusOK, nil)
	waitFor(t, "the recording", 20*time.Second, func() bool { return s.battle(t, b.ID).VODURL != nil })

	br := newBrowser(t, false)
	replay := br.open("replay", s.base+"/b/"+b.ID+"/replay")
	replay.waitJS("the recording loaded", `document.getElementById("recording").duration > 7`, 30*time.Second)
	shown := func(at float64, want ...string) {
		t.Helper()
		replay.eval(`(async (t) => {
			const v = document.getElementById("recording");
			v.pause();
			v.currentTime = t;
			await new Promise((r) => v.addEventListener("seeked", r, { once: true }));
		})(`+jsFloat(at)+`)`, nil)
		var got []string
		replay.eval(`[...document.querySelectorAll("#chat-list li")].filter((li) => !li.hidden).map((li) => li.querySelector(".chat-text").textContent)`, &got)
		if len(got) != len(want) || (len(want) > 0 && got[len(got)-1] != want[len(want)-1]) {
			t.Errorf("at %.1f s the replay's chat shows %q, want %q", at, got, want)
		}
	}
	shown(early.At/2, []string{}...)
	shown((early.At+late.At)/2, "early")
	shown(late.At+0.5, "early", "late")
	shown(0.05)
}

func jsFloat(f float64) string {
	b, _ := json.Marshal(f)
	return string(b)
}
