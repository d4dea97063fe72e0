package storage

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"
)

// The chat's modes (Battle.ChatMode).
const (
	ChatOn   = ""
	ChatSlow = "slow"
	ChatOff  = "off"
)

// ChatMessage is one message of a battle's chat.
type ChatMessage struct {
	BattleID string
	// Seq is the message's id: the number of the chat change that
	// posted it.
	Seq int64
	// Author is who posted it: a watcher's identity, or AuthorHost or
	// a singer's AuthorSinger.
	Author string
	Name   string
	Text   string
	// Slot is the singer's slot when a singer posted, else 0.
	Slot    int
	At      time.Time
	Deleted bool
	// Changed is the number of the chat change that last touched the
	// message: its post, or its deletion.
	Changed int64
}

// The authors who are no watcher.
const AuthorHost = "host"

// AuthorSinger names the singer of slot as an author.
func AuthorSinger(slot int) string { return fmt.Sprintf("singer%d", slot) }

// ChatAuthorState is what a battle's chat holds against one author.
type ChatAuthorState struct {
	Muted bool
	// LastAt is when the author last posted; zero if never.
	LastAt time.Time
}

const chatColumns = `battle_id, seq, author, name, text, slot, at, deleted, changed`

// nextChatChange takes the next number of battle id's chat changes, in
// t: the battle's row stays locked until t ends, so changes of one chat
// are numbered one at a time.
func nextChatChange(ctx context.Context, t tx, id string) (int64, error) {
	var n int64
	err := t.QueryRowContext(ctx, `UPDATE battles SET chat_seq = chat_seq + 1 WHERE id = ? RETURNING chat_seq`, id).Scan(&n)
	if errors.Is(err, sql.ErrNoRows) {
		return 0, ErrNotFound
	}
	return n, err
}

// PostChat implements Store.
func (s *sqlStore) PostChat(ctx context.Context, m *ChatMessage) error {
	err := s.inTx(ctx, func(t tx) error {
		n, err := nextChatChange(ctx, t, m.BattleID)
		if err != nil {
			return err
		}
		_, err = t.ExecContext(ctx, `INSERT INTO chat_messages (`+chatColumns+`) VALUES (?,?,?,?,?,?,?,?,?)`,
			m.BattleID, n, m.Author, m.Name, m.Text, m.Slot, unixNano(m.At), false, n)
		if err != nil {
			return err
		}
		m.Seq, m.Changed = n, n
		return nil
	})
	if err != nil && !errors.Is(err, ErrNotFound) {
		return fmt.Errorf("post chat in battle %s: %w", m.BattleID, s.noSpace(err))
	}
	return err
}

// DeleteChat implements Store.
func (s *sqlStore) DeleteChat(ctx context.Context, id string, seq int64) (bool, error) {
	deleted := false
	err := s.inTx(ctx, func(t tx) error {
		n, err := nextChatChange(ctx, t, id)
		if err != nil {
			return err
		}
		res, err := t.ExecContext(ctx, `UPDATE chat_messages SET deleted = ?, changed = ? WHERE battle_id = ? AND seq = ? AND deleted = ?`,
			true, n, id, seq, false)
		if err != nil {
			return err
		}
		k, err := res.RowsAffected()
		if err != nil {
			return err
		}
		if k == 0 {
			return errNoChange // roll the change number back
		}
		deleted = true
		return nil
	})
	switch {
	case errors.Is(err, errNoChange), errors.Is(err, ErrNotFound):
		return false, nil
	case err != nil:
		return false, fmt.Errorf("delete chat message %d of battle %s: %w", seq, id, s.noSpace(err))
	}
	return deleted, nil
}

// errNoChange rolls back a transaction that found nothing to change.
var errNoChange = errors.New("nothing to change")

// inTx runs f in a transaction, committed when f returns nil.
func (s *sqlStore) inTx(ctx context.Context, f func(t tx) error) error {
	t, err := s.db.BeginTx(ctx)
	if err != nil {
		return err
	}
	defer t.Rollback()
	if err := f(t); err != nil {
		return err
	}
	return t.Commit()
}

// GetChat implements Store.
func (s *sqlStore) GetChat(ctx context.Context, id string, seq int64) (*ChatMessage, error) {
	ms, err := s.chatQuery(ctx, `SELECT `+chatColumns+` FROM chat_messages WHERE battle_id = ? AND seq = ?`, id, seq)
	if err != nil {
		return nil, fmt.Errorf("get chat message %d of battle %s: %w", seq, id, err)
	}
	if len(ms) == 0 {
		return nil, ErrNotFound
	}
	return &ms[0], nil
}

// ChatMessages implements Store.
func (s *sqlStore) ChatMessages(ctx context.Context, id string, after int64, limit int) ([]ChatMessage, error) {
	ms, err := s.chatQuery(ctx, `SELECT `+chatColumns+` FROM chat_messages
		WHERE battle_id = ? AND seq > ? AND deleted = ? ORDER BY seq LIMIT ?`, id, after, false, limit)
	if err != nil {
		return nil, fmt.Errorf("read the chat of battle %s: %w", id, err)
	}
	return ms, nil
}

// ChatChanges implements Store.
func (s *sqlStore) ChatChanges(ctx context.Context, id string, since int64, limit int) ([]ChatMessage, error) {
	ms, err := s.chatQuery(ctx, `SELECT `+chatColumns+` FROM chat_messages
		WHERE battle_id = ? AND changed > ? ORDER BY changed LIMIT ?`, id, since, limit)
	if err != nil {
		return nil, fmt.Errorf("read the chat changes of battle %s: %w", id, err)
	}
	return ms, nil
}

func (s *sqlStore) chatQuery(ctx context.Context, query string, args ...any) ([]ChatMessage, error) {
	rows, err := s.db.QueryContext(ctx, query, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []ChatMessage
	for rows.Next() {
		var m ChatMessage
		var at int64
		if err := rows.Scan(&m.BattleID, &m.Seq, &m.Author, &m.Name, &m.Text, &m.Slot, &at, &m.Deleted, &m.Changed); err != nil {
			return nil, err
		}
		m.At = fromUnixNano(at)
		out = append(out, m)
	}
	return out, rows.Err()
}

// ChatAuthor implements Store.
func (s *sqlStore) ChatAuthor(ctx context.Context, id, author string) (ChatAuthorState, error) {
	var muted int
	var last int64
	err := s.db.QueryRowContext(ctx, `SELECT
		(SELECT COUNT(*) FROM chat_mutes WHERE battle_id = ? AND author = ?),
		(SELECT COALESCE(MAX(at), 0) FROM chat_messages WHERE battle_id = ? AND author = ?)`,
		id, author, id, author).Scan(&muted, &last)
	if err != nil {
		return ChatAuthorState{}, fmt.Errorf("read a chat author of battle %s: %w", id, err)
	}
	return ChatAuthorState{Muted: muted > 0, LastAt: fromUnixNano(last)}, nil
}

// Mute implements Store.
func (s *sqlStore) Mute(ctx context.Context, id, author string) error {
	_, err := s.db.ExecContext(ctx, `INSERT INTO chat_mutes (battle_id, author) VALUES (?, ?)
		ON CONFLICT (battle_id, author) DO NOTHING`, id, author)
	if err != nil {
		return fmt.Errorf("mute in battle %s: %w", id, s.noSpace(err))
	}
	return nil
}

// SetChatMode implements Store.
func (s *sqlStore) SetChatMode(ctx context.Context, id, mode string) (bool, error) {
	return s.change(ctx, "set the chat mode of battle", id, `UPDATE battles SET chat_mode = ? WHERE id = ?`, mode, id)
}

// SetWatcherName implements Store.
func (s *sqlStore) SetWatcherName(ctx context.Context, watcher, name string) error {
	_, err := s.db.ExecContext(ctx, `INSERT INTO watcher_names (watcher, name) VALUES (?, ?)
		ON CONFLICT (watcher) DO UPDATE SET name = excluded.name`, watcher, name)
	if err != nil {
		return fmt.Errorf("store a watcher's name: %w", s.noSpace(err))
	}
	return nil
}

// WatcherName implements Store.
func (s *sqlStore) WatcherName(ctx context.Context, watcher string) (string, error) {
	var name string
	err := s.db.QueryRowContext(ctx, `SELECT name FROM watcher_names WHERE watcher = ?`, watcher).Scan(&name)
	if errors.Is(err, sql.ErrNoRows) {
		return "", nil
	}
	if err != nil {
		return "", fmt.Errorf("read a watcher's name: %w", err)
	}
	return name, nil
}

// AddCheers implements Store.
func (s *sqlStore) AddCheers(ctx context.Context, id string, cheers [2]int) ([2]int, error) {
	var total [2]int
	err := s.db.QueryRowContext(ctx, `UPDATE battles SET cheers1 = cheers1 + ?, cheers2 = cheers2 + ? WHERE id = ?
		RETURNING cheers1, cheers2`, cheers[0], cheers[1], id).Scan(&total[0], &total[1])
	switch {
	case errors.Is(err, sql.ErrNoRows):
		return total, ErrNotFound
	case err != nil:
		return total, fmt.Errorf("add cheers to battle %s: %w", id, s.noSpace(err))
	}
	return total, nil
}

// SetRematch implements Store.
func (s *sqlStore) SetRematch(ctx context.Context, id, rematchID string) (bool, error) {
	return s.change(ctx, "set the rematch of battle", id, `UPDATE battles SET rematch_id = ? WHERE id = ? AND rematch_id = ''`,
		rematchID, id)
}
