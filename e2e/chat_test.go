package e2e

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"
)

// chatMessage is a message of the chat API.
type chatMessage struct {
	ID      string  `json:"id"`
	Name    string  `json:"name"`
	Text    string  `json:"text"`
	At      float64 `json:"at"`
	Slot    int     `json:"slot"`
	Deleted bool    `json:"deleted"`
}

// sseEvent is one event of an events stream.
type sseEvent struct {
	name string
	data string
	at   time.Time
}

// sseLog records every event of an events stream.
type sseLog struct {
	mu     sync.Mutex
	events []sseEvent
	open   chan struct{} // closed once the stream answered
}

// followEvents reads the events stream at url until ctx ends.
func followEvents(ctx context.Context, t testing.TB, client *http.Client, url string) *sseLog {
	l := &sseLog{open: make(chan struct{})}
	go func() {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		c := *client
		c.Timeout = 0
		res, err := c.Do(req)
		if err != nil {
			if ctx.Err() == nil {
				t.Error(err)
			}
			close(l.open)
			return
		}
		defer res.Body.Close()
		close(l.open)
		sc := bufio.NewScanner(res.Body)
		sc.Buffer(make([]byte, 1<<20), 1<<20)
		var ev sseEvent
		for sc.Scan() {
			line := sc.Text()
			switch {
			case strings.HasPrefix(line, "event: "):
				ev.name = strings.TrimPrefix(line, "event: ")
			case strings.HasPrefix(line, "data: "):
				ev.data = strings.TrimPrefix(line, "data: ")
			case line == "" && ev.name != "":
				ev.at = time.Now()
				l.mu.Lock()
				l.events = append(l.events, ev)
				l.mu.Unlock()
				ev = sseEvent{}
			}
		}
	}()
	<-l.open
	return l
}

// chat returns the chat events so far, decoded.
func (l *sseLog) chat(t testing.TB) []chatMessage {
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []chatMessage
	for _, ev := range l.events {
		if ev.name != "chat" {
			continue
		}
		var m chatMessage
		if err := json.Unmarshal([]byte(ev.data), &m); err != nil {
			t.Fatalf("chat event %q: %v", ev.data, err)
		}
		out = append(out, m)
	}
	return out
}

// waitChat waits until the stream has carried n chat events.
func (l *sseLog) waitChat(t testing.TB, n int) []chatMessage {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		got := l.chat(t)
		if len(got) >= n {
			return got
		}
		if time.Now().After(deadline) {
			t.Fatalf("the events stream carried %d chat events, want %d: %+v", len(got), n, got)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// post sends a JSON body as client (a watcher's, or the server's own
// with a token) from network xff, and returns the status and the body.
func (s *server) post(t testing.TB, client *http.Client, method, path, xff, token, body string, header ...string) (int, []byte) {
	t.Helper()
	req, err := http.NewRequest(method, s.base+path, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	if xff != "" {
		req.Header.Set("X-Forwarded-For", xff)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	res, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	var buf strings.Builder
	_, _ = bufio.NewReader(res.Body).WriteTo(&buf)
	if res.StatusCode >= 400 {
		var e struct {
			Error string `json:"error"`
		}
		if json.Unmarshal([]byte(buf.String()), &e) != nil || e.Error == "" {
			t.Errorf("%s %s: %d without a JSON error: %q", method, path, res.StatusCode, buf.String())
		}
		if res.StatusCode == http.StatusTooManyRequests && res.Header.Get("Retry-After") == "" {
			t.Errorf("%s %s: 429 without Retry-After", method, path)
		}
	}
	return res.StatusCode, []byte(buf.String())
}

// chatHistory reads battle id's chat after message after.
func (s *server) chatHistory(t testing.TB, id, after string) []chatMessage {
	t.Helper()
	var got struct {
		Messages []chatMessage `json:"messages"`
	}
	path := "/api/battles/" + id + "/chat"
	if after != "" {
		path += "?after=" + after
	}
	s.call(t, http.MethodGet, path, "", nil, http.StatusOK, &got)
	return got.Messages
}

func texts(ms []chatMessage) []string {
	var out []string
	for _, m := range ms {
		out = append(out, m.Text)
	}
	return out
}

// The chat end to end: posts from watchers, a singer and the host,
// history for a late joiner, the rate limits, mutes, a deletion seen by a
// subscriber already connected and gone from the history (what the
// replay shows), chat off and slow, and the attacks: cross-site posts,
// posts without an identity, markup kept as text.
func TestChatEndToEnd(t *testing.T) {
	s := startServer(t, false, "--trusted-proxy", "127.0.0.1")
	var b battle
	s.call(t, http.MethodPost, "/api/battles", "", map[string]any{"title": "chat", "singers": []string{"민지", "Ana"}},
		http.StatusCreated, &b)
	chat := "/api/battles/" + b.ID + "/chat"
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	sub := followEvents(ctx, t, s.client, s.base+"/api/battles/"+b.ID+"/events")

	w1, w2, w3 := s.newWatcher(t, b.ID), s.newWatcher(t, b.ID), s.newWatcher(t, b.ID)
	const xss = `<img src=x onerror="document.title='pwned'"><script>alert(1)</script>`
	var posted []chatMessage
	for _, c := range []struct {
		name   string
		client *http.Client
		token  string
		body   string
		want   chatMessage
	}{
		{"a watcher picks a name", w1, "", `{"name":" 하늘 ","text":"안녕하세요!"}`, chatMessage{Name: "하늘", Text: "안녕하세요!"}},
		{"the name is kept", w1, "", `{"text":"second"}`, chatMessage{Name: "하늘", Text: "second"}},
		{"markup is text", w2, "", `{"name":"<b>x</b>","text":` + jsonString(xss) + `}`, chatMessage{Name: "<b>x</b>", Text: xss}},
		{"right to left", w3, "", `{"name":"שרה","text":"مرحبا 👋"}`, chatMessage{Name: "שרה", Text: "مرحبا 👋"}},
		{"a singer, named by the battle", s.client, b.SingerTokens[0], `{"text":"thanks","name":"ignored"}`,
			chatMessage{Name: "민지", Text: "thanks", Slot: 1}},
		{"the host", s.client, b.HostToken, `{"text":"welcome"}`, chatMessage{Name: "Host", Text: "welcome"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			status, data := s.post(t, c.client, http.MethodPost, chat, "", c.token, c.body)
			var m chatMessage
			if status != http.StatusCreated || json.Unmarshal(data, &m) != nil {
				t.Fatalf("%d %s", status, data)
			}
			if m.ID == "" || m.Name != c.want.Name || m.Text != c.want.Text || m.Slot != c.want.Slot {
				t.Fatalf("got %+v, want %+v", m, c.want)
			}
			posted = append(posted, m)
		})
	}
	if len(posted) != 6 {
		t.FailNow()
	}
	for _, c := range []struct {
		name   string
		client *http.Client
		token  string
		body   string
		want   int
		header []string
	}{
		{"no identity", s.client, "", `{"name":"x","text":"hi"}`, http.StatusForbidden, nil},
		{"another battle's token", s.client, "not-a-token", `{"text":"hi"}`, http.StatusUnauthorized, nil},
		{"cross-site", w1, "", `{"text":"hi"}`, http.StatusForbidden,
			[]string{"Origin", "https://elsewhere.example", "Sec-Fetch-Site", "cross-site"}},
		{"not JSON", w1, "", `{"text":"hi"}`, http.StatusUnsupportedMediaType, []string{"Content-Type", "text/plain"}},
		{"no name yet", s.newWatcher(t, b.ID), "", `{"text":"hi"}`, http.StatusBadRequest, nil},
		{"empty text", w1, "", `{"text":"   "}`, http.StatusBadRequest, nil},
		{"text too long", w1, "", `{"text":"` + strings.Repeat("é", 301) + `"}`, http.StatusBadRequest, nil},
		{"name too long", w2, "", `{"name":"` + strings.Repeat("n", 25) + `","text":"hi"}`, http.StatusBadRequest, nil},
		{"unknown field", w1, "", `{"text":"hi","html":"<b>"}`, http.StatusBadRequest, nil},
	} {
		t.Run("refused: "+c.name, func(t *testing.T) {
			if status, data := s.post(t, c.client, http.MethodPost, chat, "", c.token, c.body, c.header...); status != c.want {
				t.Fatalf("%d %s, want %d", status, data, c.want)
			}
		})
	}

	// The subscriber got each message once, in order; a late joiner
	// gets them from the history, exactly as posted.
	events := sub.waitChat(t, len(posted))
	if got, want := texts(events), texts(posted); strings.Join(got, "\x00") != strings.Join(want, "\x00") {
		t.Fatalf("events %q, want %q", got, want)
	}
	history := s.chatHistory(t, b.ID, "")
	if got, want := texts(history), texts(posted); strings.Join(got, "\x00") != strings.Join(want, "\x00") {
		t.Fatalf("history %q, want %q", got, want)
	}
	if after := s.chatHistory(t, b.ID, posted[3].ID); len(after) != 2 || after[0].ID != posted[4].ID {
		t.Fatalf("history after %s: %+v", posted[3].ID, after)
	}

	// Mutes: the host mutes w2, a singer mutes w3; the host and the
	// singers cannot be muted.
	mutes := "/api/battles/" + b.ID + "/mutes"
	for _, c := range []struct {
		name, token, message string
		want                 int
	}{
		{"without a token", "", posted[2].ID, http.StatusUnauthorized},
		{"by the host", b.HostToken, posted[2].ID, http.StatusNoContent},
		{"by a singer", b.SingerTokens[1], posted[3].ID, http.StatusNoContent},
		{"a singer", b.HostToken, posted[4].ID, http.StatusBadRequest},
		{"no such message", b.HostToken, "999", http.StatusNotFound},
	} {
		t.Run("mute "+c.name, func(t *testing.T) {
			if status, data := s.post(t, s.client, http.MethodPost, mutes, "", c.token, `{"message":"`+c.message+`"}`); status != c.want {
				t.Fatalf("%d %s, want %d", status, data, c.want)
			}
		})
	}
	for i, w := range []*http.Client{w2, w3} {
		status, data := s.post(t, w, http.MethodPost, chat, "", "", `{"text":"am I muted?"}`)
		if status != http.StatusForbidden || !strings.Contains(string(data), "muted") {
			t.Fatalf("muted watcher %d: %d %s", i+2, status, data)
		}
	}

	// The host deletes the markup message: the subscriber hears of it,
	// and the history (the replay's chat) no longer has it.
	for _, c := range []struct {
		name, token, message string
		want                 int
	}{
		{"not the host", b.SingerTokens[0], posted[2].ID, http.StatusUnauthorized},
		{"the host", b.HostToken, posted[2].ID, http.StatusNoContent},
		{"twice", b.HostToken, posted[2].ID, http.StatusNotFound},
		{"no message id", b.HostToken, "abc", http.StatusNotFound},
	} {
		t.Run("delete by "+c.name, func(t *testing.T) {
			if status, data := s.post(t, s.client, http.MethodDelete, chat+"/"+c.message, "", c.token, ""); status != c.want {
				t.Fatalf("%d %s, want %d", status, data, c.want)
			}
		})
	}
	events = sub.waitChat(t, len(posted)+1)
	if del := events[len(posted)]; !del.Deleted || del.ID != posted[2].ID || del.Text != "" {
		t.Fatalf("deletion event %+v, want message %s deleted", del, posted[2].ID)
	}
	for _, m := range s.chatHistory(t, b.ID, "") {
		if m.ID == posted[2].ID {
			t.Fatalf("the deleted message is still in the history: %+v", m)
		}
	}

	// Chat modes: off refuses (409), slow lets a watcher post once.
	settings := chat + "/settings"
	setMode := func(mode string, want int) {
		t.Helper()
		if status, data := s.post(t, s.client, http.MethodPost, settings, "", b.HostToken, `{"mode":"`+mode+`"}`); status != want {
			t.Fatalf("mode %s: %d %s, want %d", mode, status, data, want)
		}
	}
	setMode("loud", http.StatusBadRequest)
	setMode("off", http.StatusNoContent)
	if got := s.battle(t, b.ID); got.ChatMode != "off" {
		t.Fatalf("chat_mode %q after off", got.ChatMode)
	}
	if status, _ := s.post(t, w1, http.MethodPost, chat, "", "", `{"text":"off?"}`); status != http.StatusConflict {
		t.Fatalf("a post to a chat turned off: %d", status)
	}
	setMode("slow", http.StatusNoContent)
	w4 := s.newWatcher(t, b.ID)
	for i, want := range []int{http.StatusCreated, http.StatusTooManyRequests} {
		if status, data := s.post(t, w4, http.MethodPost, chat, "", "", `{"name":"slow","text":"slow `+fmt.Sprint(i)+`"}`); status != want {
			t.Fatalf("slow mode post %d: %d %s, want %d", i, status, data, want)
		}
	}
	setMode("on", http.StatusNoContent)

	// The rate limits: per poster, then per client network.
	limited := false
	for i := range 10 {
		status, _ := s.post(t, w4, http.MethodPost, chat, "", "", `{"text":"fast `+fmt.Sprint(i)+`"}`)
		if status == http.StatusTooManyRequests {
			limited = true
			break
		}
		if status != http.StatusCreated {
			t.Fatalf("fast post %d: %d", i, status)
		}
	}
	if !limited {
		t.Fatal("10 posts at once from one watcher were all taken")
	}
	limited = false
	for i := range 10 {
		w := s.newWatcher(t, b.ID)
		for j := range 4 {
			status, _ := s.post(t, w, http.MethodPost, chat, "203.0.113.9", "", fmt.Sprintf(`{"name":"n%d","text":"net %d"}`, i, j))
			if status == http.StatusTooManyRequests {
				limited = true
				break
			}
			if status != http.StatusCreated {
				t.Fatalf("post %d of watcher %d of one network: %d", j, i, status)
			}
		}
		if limited {
			break
		}
	}
	if !limited {
		t.Fatal("40 posts at once from one network were all taken")
	}

	// The battle ends: no more posts, the history stays without the
	// deleted message.
	s.call(t, http.MethodPost, "/api/battles/"+b.ID+"/end", b.HostToken, nil, http.StatusOK, nil)
	if status, _ := s.post(t, s.client, http.MethodPost, chat, "192.0.2.1", b.HostToken, `{"text":"after"}`); status != http.StatusConflict {
		t.Fatalf("a post after the end: %d", status)
	}
	history = s.chatHistory(t, b.ID, "")
	if len(history) < 5 || history[0].Text != "안녕하세요!" || history[2].Text != "مرحبا 👋" {
		t.Fatalf("history after the end: %q", texts(history))
	}
}

func jsonString(s string) string {
	b, _ := json.Marshal(s)
	return string(b)
}
