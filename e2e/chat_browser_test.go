package e2e

import (
	"fmt"
	"net/http"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

// chatTexts is the script that lists a page's chat: each message's name
// and text as the page shows them.
const chatTexts = `[...document.querySelectorAll("#chat-list li")].filter((li) => !li.hidden).map((li) =>
	li.querySelector(".chat-name").textContent + ": " + li.querySelector(".chat-text").textContent)`

// Two people chat from their own browsers, a watcher and the host on the
// watch page: each sees the other's messages as they come; markup and
// script in a message or a name stay text; right-to-left text is laid
// out by its own direction; the host's deletion takes a message off the
// watcher's page; the watcher's cheers reach the host's page.
func TestChatBetweenTwoBrowsers(t *testing.T) {
	s := startServer(t, false)
	var b battle
	s.call(t, http.MethodPost, "/api/battles", "", map[string]any{"title": "채팅 <i>battle</i>", "singers": []string{"민지", "سارة"}},
		http.StatusCreated, &b)
	const xss = `<img src=x onerror="window.pwned=1"><script>window.pwned=2</script>`
	const xssName = `<b onclick=x()>Eve</b>`

	watcherBrowser, hostBrowser := newBrowser(t, false), newBrowser(t, false)
	watcher := watcherBrowser.open("watcher", s.base+"/b/"+b.ID)
	host := hostBrowser.open("host", s.base+"/b/"+b.ID+"#host="+b.HostToken)
	for _, tb := range []*tab{watcher, host} {
		tb.waitJS("the chat is ready", `!document.getElementById("chat-text").disabled`, 15*time.Second)
	}
	host.waitJS("the host's chat controls", `!document.getElementById("chat-mode").hidden`, 15*time.Second)

	send := func(tb *tab, name, text string) {
		t.Helper()
		if name != "" {
			tb.run(chromedp.SetValue("#chat-name", name, chromedp.ByID))
		}
		tb.run(chromedp.SetValue("#chat-text", text, chromedp.ByID), chromedp.Click(`#chat-form button[type=submit]`, chromedp.ByQuery))
	}
	waitChat := func(tb *tab, want ...string) {
		t.Helper()
		wantJS := "["
		for i, w := range want {
			if i > 0 {
				wantJS += ","
			}
			wantJS += jsString(w)
		}
		wantJS += "]"
		tb.waitJS(fmt.Sprintf("the chat shows %q", want), `JSON.stringify(`+chatTexts+`) === JSON.stringify(`+wantJS+`)`, 10*time.Second)
	}

	send(watcher, xssName, xss)
	waitChat(host, xssName+": "+xss)
	send(host, "", "안녕하세요, welcome!")
	send(watcher, "", "مرحبا 👋 שלום")
	want := []string{xssName + ": " + xss, "Host: 안녕하세요, welcome!", xssName + ": مرحبا 👋 שלום"}
	waitChat(watcher, want...)
	waitChat(host, want...)
	for _, tb := range []*tab{watcher, host} {
		var check struct {
			Pwned    any  `json:"pwned"`
			Elements int  `json:"elements"`
			Auto     bool `json:"auto"`
			RTL      bool `json:"rtl"`
		}
		tb.eval(`(() => {
			const items = [...document.querySelectorAll("#chat-list li")];
			const last = items[items.length - 1].querySelector(".chat-text");
			return {
				pwned: window.pwned ?? null,
				elements: document.querySelectorAll("#chat-list img, #chat-list script, #chat-list b").length,
				auto: items.every((li) => li.querySelector(".chat-name").dir === "auto" && li.querySelector(".chat-text").dir === "auto"),
				rtl: getComputedStyle(last).direction === "rtl",
			};
		})()`, &check)
		if check.Pwned != nil || check.Elements != 0 || !check.Auto || !check.RTL {
			t.Errorf("%s page: %+v; want no script run, no element from a message, dir=auto, the Arabic message right to left", tb.name, check)
		}
	}
	var title string
	watcher.eval(`document.getElementById("title").textContent`, &title)
	if title != "채팅 <i>battle</i>" {
		t.Errorf("the title shows as %q", title)
	}
	watcher.screenshot("chat")

	// The host deletes the markup message: it leaves the watcher's page.
	host.run(chromedp.Click(`#chat-list li:first-child button.chat-action`, chromedp.ByQuery))
	waitChat(watcher, want[1:]...)
	waitChat(host, want[1:]...)

	// The watcher cheers: taps float up on its page, and the host's page
	// counts them.
	for range 5 {
		watcher.run(chromedp.Click("#cheer-1", chromedp.ByID))
	}
	var pops int
	watcher.eval(`document.querySelectorAll("#cheer-stage .cheer-pop").length`, &pops)
	if pops == 0 {
		t.Error("the watcher's taps show nothing")
	}
	host.waitJS("the host's page counts the cheers", `document.getElementById("cheers-1").textContent === "5"`, 10*time.Second)
	if got := s.battle(t, b.ID).Cheers; got != [2]int{5, 0} {
		t.Errorf("the battle counts cheers %v, want [5 0]", got)
	}
	host.screenshot("cheers")
}

// The sing page carries the chat too: a singer reads the watchers'
// messages, answers under the battle's name for the slot, and mutes a
// watcher.
func TestSingPageChats(t *testing.T) {
	s := startServer(t, false)
	var b battle
	s.call(t, http.MethodPost, "/api/battles", "", map[string]any{"title": "sung chat", "singers": []string{"민지", "Ana"}},
		http.StatusCreated, &b)
	chat := "/api/battles/" + b.ID + "/chat"
	w := s.newWatcher(t, b.ID)
	if status, data := s.post(t, w, http.MethodPost, chat, "", "", `{"name":"fan","text":"go 민지!"}`); status != http.StatusCreated {
		t.Fatalf("the watcher's post: %d %s", status, data)
	}
	br := newBrowser(t, true)
	sing := br.open("singer", s.base+"/b/"+b.ID+"/sing/1#token="+b.SingerTokens[0])
	sing.waitJS("the chat's history", `JSON.stringify(`+chatTexts+`) === JSON.stringify(["fan: go 민지!"])`, 20*time.Second)
	var nameHidden bool
	sing.eval(`document.getElementById("chat-name").hidden`, &nameHidden)
	if !nameHidden {
		t.Error("the sing page asks a singer for a chat name")
	}
	sing.run(chromedp.SetValue("#chat-text", "thank you ♥", chromedp.ByID), chromedp.Click(`#chat-form button[type=submit]`, chromedp.ByQuery))
	sing.waitJS("the singer's message", `JSON.stringify(`+chatTexts+`) === JSON.stringify(["fan: go 민지!", "민지: thank you ♥"])`, 10*time.Second)
	if h := s.chatHistory(t, b.ID, ""); len(h) != 2 || h[1].Name != "민지" || h[1].Slot != 1 {
		t.Fatalf("history %+v: want the singer's message under slot 1's name", h)
	}
	// The singer mutes the watcher (the singer's own message has no
	// button).
	sing.run(chromedp.Click(`#chat-list li:first-child button.chat-action`, chromedp.ByQuery))
	sing.waitJS("the mute said", `document.getElementById("chat-note").textContent.includes("muted")`, 10*time.Second)
	if status, _ := s.post(t, w, http.MethodPost, chat, "", "", `{"text":"still here?"}`); status != http.StatusForbidden {
		t.Fatalf("the muted watcher's post: %d, want 403", status)
	}
	var buttons int
	sing.eval(`document.querySelectorAll("#chat-list li:last-child button").length`, &buttons)
	if buttons != 0 {
		t.Errorf("the singer's own message has %d moderation buttons", buttons)
	}
}
