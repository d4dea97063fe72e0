package battle

import (
	"context"
	"errors"
	"testing"
	"unicode/utf8"

	"github.com/singoff/singoff/storage"
)

// A chat message's text is untrusted: what is accepted is 1 to 300
// characters of valid UTF-8, trimmed, with no control character but
// newlines and tabs.
func FuzzChatText(f *testing.F) {
	for _, seed := range []string{"hi", " 안녕 ", "", "   ", "a\x00b", "line\nline", "\xff", "مرحبا 👋", "\u202etxt"} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, s string) {
		got, err := chatText(s, "text", MaxChatText)
		if err != nil {
			if !errors.Is(err, ErrBadChat) {
				t.Fatalf("refused with %v, not ErrBadChat", err)
			}
			return
		}
		if n := utf8.RuneCountInString(got); !utf8.ValidString(got) || n < 1 || n > MaxChatText {
			t.Fatalf("accepted %q (%d characters)", got, n)
		}
		for _, r := range got {
			if r < 0x20 && r != '\n' && r != '\t' || r == 0x7f {
				t.Fatalf("accepted control character %U in %q", r, got)
			}
		}
	})
}

// The chat's rules in the domain: who may post under which name, mutes,
// modes, and the order of changes a feed reads.
func TestChatRules(t *testing.T) {
	h := newHarness(t, Config{})
	ctx := context.Background()
	b, _, err := h.m.Create(ctx, CreateRequest{Title: ptr("chat"), Singers: []string{"Ann", "Bo"}})
	if err != nil {
		t.Fatal(err)
	}
	watcher := Poster{Watcher: "w1"}
	steps := []struct {
		name    string
		post    ChatPost
		want    ChatEntry
		wantErr error
	}{
		{"a watcher without a name", ChatPost{Poster: watcher, Text: "hi"}, ChatEntry{}, ErrBadChat},
		{"a watcher names themself", ChatPost{Poster: watcher, Name: "Zoë", Text: " hi "}, ChatEntry{Name: "Zoë", Text: "hi"}, nil},
		{"the name is kept", ChatPost{Poster: watcher, Text: "again"}, ChatEntry{Name: "Zoë", Text: "again"}, nil},
		{"a singer is named by the battle", ChatPost{Poster: Poster{Slot: 2}, Name: "x", Text: "yo"}, ChatEntry{Name: "Bo", Text: "yo", Slot: 2}, nil},
		{"the host", ChatPost{Poster: Poster{Host: true}, Text: "welcome"}, ChatEntry{Name: "Host", Text: "welcome"}, nil},
		{"nobody", ChatPost{Text: "who?"}, ChatEntry{}, ErrNoChatAs},
		{"a control character", ChatPost{Poster: watcher, Text: "a\x07b"}, ChatEntry{}, ErrBadChat},
	}
	var ids []int64
	for _, st := range steps {
		t.Run(st.name, func(t *testing.T) {
			got, err := h.m.PostChat(ctx, b.ID, st.post)
			if !errors.Is(err, st.wantErr) {
				t.Fatalf("PostChat = %v, want %v", err, st.wantErr)
			}
			if err != nil {
				return
			}
			ids = append(ids, got.ID)
			got.ID = 0
			if got != st.want {
				t.Fatalf("posted %+v, want %+v", got, st.want)
			}
		})
	}
	if len(ids) != 4 {
		t.FailNow()
	}
	if err := h.m.Mute(ctx, b.ID, ids[2]); !errors.Is(err, ErrNotMutable) {
		t.Fatalf("muting a singer: %v", err)
	}
	if err := h.m.Mute(ctx, b.ID, ids[0]); err != nil {
		t.Fatal(err)
	}
	if _, err := h.m.PostChat(ctx, b.ID, ChatPost{Poster: watcher, Text: "muted?"}); !errors.Is(err, ErrMuted) {
		t.Fatalf("a muted watcher's post: %v", err)
	}
	if err := h.m.DeleteChat(ctx, b.ID, ids[1]); err != nil {
		t.Fatal(err)
	}
	ch, err := h.m.ChatSince(ctx, b.ID, ids[1])
	if err != nil {
		t.Fatal(err)
	}
	if len(ch.Entries) != 3 || ch.Entries[2].ID != ids[1] || !ch.Entries[2].Deleted {
		t.Fatalf("changes after %d: %+v; want two posts, then the deletion of %d", ids[1], ch.Entries, ids[1])
	}
	if cursor, err := h.m.ChatCursor(ctx, b.ID); err != nil || cursor != ch.Last {
		t.Fatalf("ChatCursor = %d, %v; want %d", cursor, err, ch.Last)
	}
	for _, c := range []struct {
		mode    string
		wantErr error
	}{{ChatOff, ErrChatOff}, {ChatSlow, nil}, {"loud", ErrBadChat}} {
		if err := h.m.SetChatMode(ctx, b.ID, c.mode); err != nil {
			if !errors.Is(err, c.wantErr) {
				t.Fatalf("mode %s: %v", c.mode, err)
			}
			continue
		}
		_, err := h.m.PostChat(ctx, b.ID, ChatPost{Poster: Poster{Watcher: "w2"}, Name: "n", Text: "x"})
		if !errors.Is(err, c.wantErr) {
			t.Fatalf("a post in mode %s: %v, want %v", c.mode, err, c.wantErr)
		}
	}
	var slow *SlowModeError
	if _, err := h.m.PostChat(ctx, b.ID, ChatPost{Poster: Poster{Watcher: "w2"}, Text: "again"}); !errors.As(err, &slow) || slow.Wait <= 0 {
		t.Fatalf("a second post in slow mode: %v", err)
	}
	if _, err := h.m.PostChat(ctx, b.ID, ChatPost{Poster: Poster{Host: true}, Text: "the host is not slowed"}); err != nil {
		t.Fatal(err)
	}
	if _, err := h.m.End(ctx, b.ID, "test"); err != nil {
		t.Fatal(err)
	}
	if _, err := h.m.PostChat(ctx, b.ID, ChatPost{Poster: Poster{Host: true}, Text: "after"}); !errors.Is(err, ErrEnded) {
		t.Fatalf("a post after the end: %v", err)
	}
	if b, _ := h.m.Get(ctx, b.ID); ChatModeOf(b) != ChatSlow || b.ChatMode != storage.ChatSlow {
		t.Fatalf("mode %q", b.ChatMode)
	}
}
