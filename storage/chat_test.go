package storage

import (
	"context"
	"errors"
	"slices"
	"sync"
	"testing"
	"time"
)

func TestChat(t *testing.T) { eachStore(t, testChat) }

// chatChange is a message id and whether it is deleted.
type chatChange struct {
	seq     int64
	deleted bool
}

func changesOf(ms []ChatMessage) []chatChange {
	var out []chatChange
	for _, m := range ms {
		out = append(out, chatChange{m.Seq, m.Deleted})
	}
	return out
}

func testChat(t *testing.T, open func() Store) {
	ctx := context.Background()
	s := open()
	t0 := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	for _, id := range []string{"c", "d"} {
		if err := s.CreateBattle(ctx, newBattle(id, t0)); err != nil {
			t.Fatal(err)
		}
	}
	post := func(battle, author, text string, slot int, at time.Time) ChatMessage {
		t.Helper()
		m := ChatMessage{BattleID: battle, Author: author, Name: "n " + author, Text: text, Slot: slot, At: at}
		if err := s.PostChat(ctx, &m); err != nil {
			t.Fatal(err)
		}
		return m
	}
	m1 := post("c", "w1", "hello <b>", 0, t0)
	m2 := post("c", AuthorSinger(2), "안녕하세요", 2, t0.Add(time.Second))
	other := post("d", "w1", "elsewhere", 0, t0)
	m3 := post("c", "w2", "שלום", 0, t0.Add(2*time.Second))
	if m1.Seq != 1 || m2.Seq != 2 || m3.Seq != 3 || other.Seq != 1 {
		t.Fatalf("ids %d %d %d, other battle %d: want 1 2 3 and 1", m1.Seq, m2.Seq, m3.Seq, other.Seq)
	}
	if err := s.PostChat(ctx, &ChatMessage{BattleID: "nope", Author: "w", Name: "n", Text: "t", At: t0}); !errors.Is(err, ErrNotFound) {
		t.Fatalf("post to an unknown battle: %v", err)
	}

	got, err := s.ChatMessages(ctx, "c", 0, 100)
	if err != nil {
		t.Fatal(err)
	}
	if want := []ChatMessage{m1, m2, m3}; !slices.EqualFunc(got, want, func(a, b ChatMessage) bool {
		return a.Seq == b.Seq && a.Author == b.Author && a.Name == b.Name && a.Text == b.Text && a.Slot == b.Slot && a.At.Equal(b.At)
	}) {
		t.Fatalf("history %+v, want %+v", got, want)
	}

	if ok, err := s.DeleteChat(ctx, "c", 2); !ok || err != nil {
		t.Fatalf("DeleteChat = %v, %v", ok, err)
	}
	for _, c := range []struct {
		name string
		seq  int64
		id   string
	}{{"twice", 2, "c"}, {"unknown message", 9, "c"}, {"unknown battle", 1, "nope"}} {
		t.Run("delete "+c.name, func(t *testing.T) {
			if ok, err := s.DeleteChat(ctx, c.id, c.seq); ok || err != nil {
				t.Fatalf("DeleteChat = %v, %v; want false", ok, err)
			}
		})
	}
	m4 := post("c", "w1", "after", 0, t0.Add(3*time.Second))
	if m4.Seq != 5 {
		t.Fatalf("the message after a deletion has id %d, want 5 (the deletion was change 4)", m4.Seq)
	}

	for _, c := range []struct {
		name  string
		read  func() ([]ChatMessage, error)
		want  []chatChange
		limit int
	}{
		{"history skips the deleted", func() ([]ChatMessage, error) { return s.ChatMessages(ctx, "c", 0, 100) },
			[]chatChange{{1, false}, {3, false}, {5, false}}, 0},
		{"history after", func() ([]ChatMessage, error) { return s.ChatMessages(ctx, "c", 3, 100) },
			[]chatChange{{5, false}}, 0},
		{"history limited", func() ([]ChatMessage, error) { return s.ChatMessages(ctx, "c", 0, 2) },
			[]chatChange{{1, false}, {3, false}}, 0},
		{"changes in their order", func() ([]ChatMessage, error) { return s.ChatChanges(ctx, "c", 1, 100) },
			[]chatChange{{3, false}, {2, true}, {5, false}}, 0},
	} {
		t.Run(c.name, func(t *testing.T) {
			got, err := c.read()
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(changesOf(got), c.want) {
				t.Fatalf("got %v, want %v", changesOf(got), c.want)
			}
		})
	}
	if m, err := s.GetChat(ctx, "c", 2); err != nil || !m.Deleted || m.Author != AuthorSinger(2) {
		t.Fatalf("GetChat of the deleted = %+v, %v", m, err)
	}
	if _, err := s.GetChat(ctx, "c", 42); !errors.Is(err, ErrNotFound) {
		t.Fatalf("GetChat of no message: %v", err)
	}

	// Mutes and the last post, per battle.
	if err := s.Mute(ctx, "c", "w1"); err != nil {
		t.Fatal(err)
	}
	if err := s.Mute(ctx, "c", "w1"); err != nil {
		t.Fatalf("muting twice: %v", err)
	}
	for _, c := range []struct {
		name, battle, author string
		want                 ChatAuthorState
	}{
		{"muted", "c", "w1", ChatAuthorState{Muted: true, LastAt: t0.Add(3 * time.Second)}},
		{"muted in one battle only", "d", "w1", ChatAuthorState{LastAt: t0}},
		{"never posted", "c", "w9", ChatAuthorState{}},
	} {
		t.Run(c.name, func(t *testing.T) {
			got, err := s.ChatAuthor(ctx, c.battle, c.author)
			if err != nil || got.Muted != c.want.Muted || !got.LastAt.Equal(c.want.LastAt) {
				t.Fatalf("ChatAuthor = %+v, %v; want %+v", got, err, c.want)
			}
		})
	}

	// The battle's chat settings, cheers, names and rematch survive a
	// restart.
	if ok, err := s.SetChatMode(ctx, "c", ChatSlow); !ok || err != nil {
		t.Fatalf("SetChatMode = %v, %v", ok, err)
	}
	for _, c := range []struct{ add, want [2]int }{{[2]int{3, 1}, [2]int{3, 1}}, {[2]int{2, 0}, [2]int{5, 1}}} {
		if got, err := s.AddCheers(ctx, "c", c.add); got != c.want || err != nil {
			t.Fatalf("AddCheers(%v) = %v, %v; want %v", c.add, got, err, c.want)
		}
	}
	if _, err := s.AddCheers(ctx, "nope", [2]int{1, 0}); !errors.Is(err, ErrNotFound) {
		t.Fatalf("cheers of an unknown battle: %v", err)
	}
	if ok, err := s.SetRematch(ctx, "c", "d"); !ok || err != nil {
		t.Fatalf("SetRematch = %v, %v", ok, err)
	}
	if ok, err := s.SetRematch(ctx, "c", "e"); ok || err != nil {
		t.Fatalf("a second SetRematch = %v, %v; want false", ok, err)
	}
	for _, n := range []string{"첫 이름", "Ana 🎤"} {
		if err := s.SetWatcherName(ctx, "w1", n); err != nil {
			t.Fatal(err)
		}
	}
	s.Close()
	s = open()
	b, err := s.GetBattle(ctx, "c")
	if err != nil {
		t.Fatal(err)
	}
	type audience struct {
		mode    string
		seq     int64
		cheers  [2]int
		rematch string
	}
	if got, want := (audience{b.ChatMode, b.ChatSeq, b.Cheers, b.RematchID}), (audience{ChatSlow, 5, [2]int{5, 1}, "d"}); got != want {
		t.Fatalf("battle %+v, want %+v", got, want)
	}
	for _, c := range []struct{ watcher, want string }{{"w1", "Ana 🎤"}, {"w2", ""}} {
		if got, err := s.WatcherName(ctx, c.watcher); got != c.want || err != nil {
			t.Fatalf("WatcherName(%s) = %q, %v; want %q", c.watcher, got, err, c.want)
		}
	}
}

// Concurrent posts to one chat each get their own id.
func TestConcurrentChatPosts(t *testing.T) { eachStore(t, testConcurrentChatPosts) }

func testConcurrentChatPosts(t *testing.T, open func() Store) {
	ctx := context.Background()
	s := open()
	if err := s.CreateBattle(ctx, newBattle("p", time.Now())); err != nil {
		t.Fatal(err)
	}
	const n = 40
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for i := range n {
		wg.Go(func() {
			errs <- s.PostChat(ctx, &ChatMessage{BattleID: "p", Author: "w", Name: "n", Text: string(rune('a' + i%26)), At: time.Now()})
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	ms, err := s.ChatMessages(ctx, "p", 0, 1000)
	if err != nil {
		t.Fatal(err)
	}
	for i, m := range ms {
		if m.Seq != int64(i+1) {
			t.Fatalf("message %d has id %d: ids must be 1..%d", i, m.Seq, n)
		}
	}
	if len(ms) != n {
		t.Fatalf("%d messages, want %d", len(ms), n)
	}
}
