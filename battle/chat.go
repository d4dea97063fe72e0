package battle

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/singoff/singoff/storage"
)

// Bounds of the chat.
const (
	MaxChatText = 300
	MaxChatName = 24
	// SlowModeEvery is how often a watcher may post in slow mode.
	SlowModeEvery = 10 * time.Second
	// MaxChatPage bounds the messages of one history read.
	MaxChatPage = 500
	// hostName is the host's name in the chat when it gives none.
	hostName = "Host"
)

// The chat's modes, as the host sets them.
const (
	ChatOn   = "on"
	ChatSlow = "slow"
	ChatOff  = "off"
)

// Refusals of the chat.
var (
	ErrMuted    = errors.New("you are muted in this battle's chat")
	ErrChatOff  = errors.New("the host has turned this battle's chat off")
	ErrNoChatAs = errors.New("only a watcher of the battle's watch page, a singer or the host may chat")
	// ErrSlowMode wraps the wait of a watcher in slow mode.
	ErrSlowMode  = errors.New("the chat is in slow mode")
	ErrNoMessage = errors.New("no such chat message")
	// ErrBadChat wraps what is wrong with a message or a chat setting.
	ErrBadChat = errors.New("invalid chat request")
	// ErrNotMutable refuses muting the host or a singer.
	ErrNotMutable = errors.New("the host and the singers cannot be muted")
)

// SlowModeError is a slow-mode refusal and how long until the watcher
// may post again.
type SlowModeError struct{ Wait time.Duration }

func (e *SlowModeError) Error() string {
	return fmt.Sprintf("%v: one message every %d s", ErrSlowMode, int(SlowModeEvery/time.Second))
}

func (e *SlowModeError) Unwrap() error { return ErrSlowMode }

// Poster is who posts to a chat: a watcher, or the bearer of a token.
type Poster struct {
	// Watcher is the watcher's identity; "" for a token's bearer.
	Watcher string
	Host    bool
	Slot    int // the singer's slot, 0 for none
}

func (p Poster) author() string {
	switch {
	case p.Host:
		return storage.AuthorHost
	case p.Slot != 0:
		return storage.AuthorSinger(p.Slot)
	}
	return p.Watcher
}

// ChatPost is one message as posted.
type ChatPost struct {
	Poster
	// Name is the poster's display name: for a watcher it is stored
	// with the identity, and may be left out once stored. A singer is
	// named as the battle names them.
	Name string
	Text string
}

// ChatEntry is one message as the chat shows it.
type ChatEntry struct {
	ID   int64
	Name string
	Text string
	// At is the message's time in the battle: since the battle went
	// live (0 before), which is its time in the replay.
	At   time.Duration
	Slot int // the singer's slot when a singer posted, else 0
	// Deleted tells a deletion (in ChatChanges): the message is gone.
	Deleted bool
}

// ChatChanges are a chat's changes after a change number, and the
// number of the last.
type ChatChanges struct {
	Entries []ChatEntry
	Last    int64
}

func entryOf(m storage.ChatMessage, b *storage.Battle) ChatEntry {
	e := ChatEntry{ID: m.Seq, Name: m.Name, Text: m.Text, Slot: m.Slot, Deleted: m.Deleted}
	if !b.StartedAt.IsZero() {
		e.At = max(m.At.Sub(b.StartedAt), 0)
	}
	return e
}

// chatText checks a message's text: 1 to MaxChatText characters once
// trimmed, no control characters but newlines and tabs.
func chatText(s string, what string, maxLen int) (string, error) {
	s = strings.TrimSpace(s)
	if !validText(s, maxLen) {
		return "", fmt.Errorf("%w: %q must be 1 to %d characters", ErrBadChat, what, maxLen)
	}
	for _, r := range s {
		if r < 0x20 && r != '\n' && r != '\t' || r == 0x7f {
			return "", fmt.Errorf("%w: %q holds a control character", ErrBadChat, what)
		}
	}
	return s, nil
}

// PostChat posts a message to battle id's chat. It refuses a muted
// poster (ErrMuted), a chat the host turned off (ErrChatOff), a battle
// that has ended (ErrEnded), a watcher posting again too soon in slow
// mode (*SlowModeError) and a watcher without a display name
// (ErrBadChat).
func (m *Manager) PostChat(ctx context.Context, id string, p ChatPost) (ChatEntry, error) {
	text, err := chatText(p.Text, "text", MaxChatText)
	if err != nil {
		return ChatEntry{}, err
	}
	b, err := m.Get(ctx, id)
	if err != nil {
		return ChatEntry{}, err
	}
	name, err := m.posterName(ctx, b, p)
	if err != nil {
		return ChatEntry{}, err
	}
	switch {
	case b.State == storage.StateEnded:
		return ChatEntry{}, ErrEnded
	case b.ChatMode == storage.ChatOff:
		return ChatEntry{}, ErrChatOff
	}
	author := p.author()
	if p.Watcher != "" {
		as, err := m.cfg.Store.ChatAuthor(ctx, id, author)
		if err != nil {
			return ChatEntry{}, err
		}
		if as.Muted {
			return ChatEntry{}, ErrMuted
		}
		if since := time.Since(as.LastAt); b.ChatMode == storage.ChatSlow && since < SlowModeEvery {
			return ChatEntry{}, &SlowModeError{Wait: SlowModeEvery - since}
		}
		if p.Name != "" {
			if err := m.cfg.Store.SetWatcherName(ctx, p.Watcher, name); err != nil {
				return ChatEntry{}, err
			}
		}
	}
	msg := storage.ChatMessage{BattleID: id, Author: author, Name: name, Text: text, Slot: p.Slot, At: time.Now().UTC()}
	if err := m.cfg.Store.PostChat(ctx, &msg); err != nil {
		if errors.Is(err, storage.ErrNotFound) {
			return ChatEntry{}, ErrNotFound
		}
		return ChatEntry{}, err
	}
	m.notifyChat(id)
	return entryOf(msg, b), nil
}

// posterName is the name p posts under in battle b.
func (m *Manager) posterName(ctx context.Context, b *storage.Battle, p ChatPost) (string, error) {
	switch {
	case p.Slot != 0:
		return b.SingerNames[p.Slot-1], nil
	case p.Name != "":
		return chatText(p.Name, "name", MaxChatName)
	case p.Host:
		return hostName, nil
	case p.Watcher == "":
		return "", ErrNoChatAs
	}
	name, err := m.cfg.Store.WatcherName(ctx, p.Watcher)
	if err != nil {
		return "", err
	}
	if name == "" {
		return "", fmt.Errorf("%w: pick a \"name\" (1 to %d characters) for your first message", ErrBadChat, MaxChatName)
	}
	return name, nil
}

// Chat returns up to MaxChatPage messages of battle id's chat after
// message after, oldest first: what is not deleted.
func (m *Manager) Chat(ctx context.Context, id string, after int64) ([]ChatEntry, error) {
	b, err := m.Get(ctx, id)
	if err != nil {
		return nil, err
	}
	ms, err := m.cfg.Store.ChatMessages(ctx, id, after, MaxChatPage)
	if err != nil {
		return nil, err
	}
	out := make([]ChatEntry, len(ms))
	for i, msg := range ms {
		out[i] = entryOf(msg, b)
	}
	return out, nil
}

// ChatSince returns the changes of battle id's chat after change since:
// messages posted and deleted, in their order.
func (m *Manager) ChatSince(ctx context.Context, id string, since int64) (ChatChanges, error) {
	b, err := m.Get(ctx, id)
	if err != nil {
		return ChatChanges{}, err
	}
	ms, err := m.cfg.Store.ChatChanges(ctx, id, since, MaxChatPage)
	if err != nil {
		return ChatChanges{}, err
	}
	ch := ChatChanges{Last: since}
	for _, msg := range ms {
		ch.Entries = append(ch.Entries, entryOf(msg, b))
		ch.Last = msg.Changed
	}
	return ch, nil
}

// ChatCursor is the number of battle id's last chat change: ChatSince
// from it tells what comes next.
func (m *Manager) ChatCursor(ctx context.Context, id string) (int64, error) {
	b, err := m.Get(ctx, id)
	if err != nil {
		return 0, err
	}
	return b.ChatSeq, nil
}

// DeleteChat deletes message msg of battle id's chat for everyone, the
// replay included: ErrNoMessage when there is no such message.
func (m *Manager) DeleteChat(ctx context.Context, id string, msg int64) error {
	ok, err := m.cfg.Store.DeleteChat(ctx, id, msg)
	if err != nil {
		return err
	}
	if !ok {
		return ErrNoMessage
	}
	m.notifyChat(id)
	return nil
}

// Mute mutes the author of message msg in battle id's chat.
func (m *Manager) Mute(ctx context.Context, id string, msg int64) error {
	cm, err := m.cfg.Store.GetChat(ctx, id, msg)
	if errors.Is(err, storage.ErrNotFound) {
		return ErrNoMessage
	}
	if err != nil {
		return err
	}
	if cm.Author == storage.AuthorHost || cm.Slot != 0 {
		return ErrNotMutable
	}
	if err := m.cfg.Store.Mute(ctx, id, cm.Author); err != nil {
		return err
	}
	m.cfg.Logger.Info("chat author muted", "battle", id)
	return nil
}

// SetChatMode sets battle id's chat on, slow or off.
func (m *Manager) SetChatMode(ctx context.Context, id, mode string) error {
	stored, ok := map[string]string{ChatOn: storage.ChatOn, ChatSlow: storage.ChatSlow, ChatOff: storage.ChatOff}[mode]
	if !ok {
		return fmt.Errorf("%w: the chat mode must be %q, %q or %q", ErrBadChat, ChatOn, ChatSlow, ChatOff)
	}
	ok, err := m.cfg.Store.SetChatMode(ctx, id, stored)
	if err != nil {
		return err
	}
	if !ok {
		return ErrNotFound
	}
	m.notify(id)
	return nil
}

// ChatModeOf is battle b's chat mode as the host sets it.
func ChatModeOf(b *storage.Battle) string {
	if b.ChatMode == storage.ChatOn {
		return ChatOn
	}
	return b.ChatMode
}

// SubscribeChat listens for changes to battle id's chat: the channel
// gets a value (coalesced) on every change; ChatSince tells what
// changed. Call the returned func to stop.
func (m *Manager) SubscribeChat(id string) (<-chan struct{}, func()) {
	return m.chat.add(id)
}

// notifyChat tells battle id's chat listeners here, and the other
// origins, that the chat changed.
func (m *Manager) notifyChat(id string) {
	m.chat.wake(id)
	m.announce(id)
}

// TokenPoster is who token makes its bearer in battle b's chat: the
// host or a singer; false when it is none of b's tokens.
func TokenPoster(b *storage.Battle, token string) (Poster, bool) {
	if IsHost(b, token) {
		return Poster{Host: true}, true
	}
	for slot := 1; slot <= 2; slot++ {
		if MayPublish(b, slot, token) {
			return Poster{Slot: slot}, true
		}
	}
	return Poster{}, false
}
