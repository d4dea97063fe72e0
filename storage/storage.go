// Package storage keeps battle metadata. The Store interface is what the
// battle package uses; SQLite (pure Go, one file in the data dir) is the
// default implementation, and PostgreSQL the one several origins share.
// Both run the same queries and apply the same schema description
// (schema.go). Recordings live in the storage/recording package.
package storage

import (
	"context"
	"errors"
	"time"
)

// ErrNotFound is returned for an unknown battle.
var ErrNotFound = errors.New("not found")

// ErrNoOrigin is returned when no origin is alive to take a battle.
var ErrNoOrigin = errors.New("no origin is taking battles")

// ErrNoSpace wraps a write the store refused because its disk is full:
// the write changed nothing and may be tried again later.
var ErrNoSpace = errors.New("the database's disk is full")

// Battle states.
const (
	StateWaiting = "waiting"
	StateLive    = "live"
	StateEnded   = "ended"
)

// Battle is a battle's stored record. Tokens are kept only as SHA-256
// hashes.
type Battle struct {
	ID          string
	Title       string
	State       string
	CreatedAt   time.Time
	StartedAt   time.Time // zero until live
	EndedAt     time.Time // zero until ended
	SingerNames [2]string
	Rounds      int
	TurnSeconds int

	HostTokenHash    []byte
	SingerTokenHashs [2][]byte

	// Recorded tells that a recording of the battle exists.
	Recorded bool
	// RecordingError says why the battle is not being recorded, if so.
	RecordingError string
	// ClockStartedAt is when the host started the rounds' clock; zero
	// until then. The timeline follows from it.
	ClockStartedAt time.Time

	// Origin is the URL of the origin that runs the battle when several
	// share the store ("" for a server on its own).
	Origin string
	// Connected and Viewers are what the battle's origin last stored of
	// its singers and watchers while live, for the other origins.
	Connected [2]bool
	Viewers   int

	// CreatorNetwork is the network of the client that created the
	// battle (an IPv4 /24 or IPv6 /64 prefix such as "203.0.113.0/24"),
	// which the per-network caps count; "" when unknown.
	CreatorNetwork string

	// ChatMode is the host's setting of the chat: ChatOn (""), ChatSlow
	// or ChatOff. ChatSeq numbers the chat's last change (a message or
	// a deletion): every change takes the next number.
	ChatMode string
	ChatSeq  int64
	// Cheers are the cheers per side so far.
	Cheers [2]int
	// RematchID is the battle the host made as this one's rematch; ""
	// when none.
	RematchID string
}

// Ballot is one watcher's vote in one round of a battle.
type Ballot struct {
	BattleID string
	Round    int
	Watcher  string
	// Network is the voter's client network (as CreatorNetwork), which
	// the per-network cap of a round counts.
	Network string
	Slot    int
	At      time.Time
}

// Origin is one of several servers sharing the store.
type Origin struct {
	// URL is its --advertise-url; it names the origin.
	URL string
	// Capacity is how many live battles it may run; 0 while it takes no
	// new battle (draining).
	Capacity int
	// Live is how many battles it ran live at its last heartbeat.
	Live int
	// SeenAt is its last heartbeat.
	SeenAt time.Time
}

// Reaped is what ReapOrigin did with a dead origin's battles.
type Reaped struct {
	// Ended are its live battles, now ended.
	Ended []string
	// Moved are its waiting battles, now on origins that are alive.
	Moved []string
}

// Store keeps battles.
type Store interface {
	CreateBattle(ctx context.Context, b *Battle) error
	// GetBattle returns ErrNotFound for an unknown id.
	GetBattle(ctx context.Context, id string) (*Battle, error)
	// ListBattles returns battles newest first; state "" means all.
	ListBattles(ctx context.Context, state string, limit int) ([]*Battle, error)
	// Each state change below is one conditional write, so two racing
	// changes never undo each other; each reports whether it applied.
	//
	// SetLive marks a waiting battle live since at.
	SetLive(ctx context.Context, id string, at time.Time) (bool, error)
	// SetEnded marks a battle that has not ended as ended at at.
	SetEnded(ctx context.Context, id string, at time.Time) (bool, error)
	// StartClock starts the rounds' clock of a battle that has not
	// ended and whose clock has not started.
	StartClock(ctx context.Context, id string, at time.Time) (bool, error)
	// SetRecording says whether the battle has a recording and, when
	// not, why (a sentence fit for the public battle object).
	SetRecording(ctx context.Context, id string, recorded bool, why string) error
	// EndUnfinished marks the live battles of origin ("" for a server
	// on its own) as ended at `at` (a crash cut them short), and returns
	// their ids.
	EndUnfinished(ctx context.Context, origin string, at time.Time) ([]string, error)
	// Vote records a ballot, replacing the watcher's earlier vote in
	// the same round. A watcher who has not voted in the round yet is
	// refused (false, nil) when maxPerNetwork watchers of the ballot's
	// network have voted in it already; 0 means no cap. The check and
	// the write are one atomic step, on every origin.
	Vote(ctx context.Context, b Ballot, maxPerNetwork int) (bool, error)
	// Tally counts votes per round: [slot 1, slot 2] for rounds 1..rounds.
	Tally(ctx context.Context, battleID string, rounds int) ([][2]int, error)
	// Tallies counts the votes of several battles in one query, each
	// for its own rounds, by battle id.
	Tallies(ctx context.Context, battles []*Battle) (map[string][][2]int, error)
	// CountWaiting counts the waiting battles created from network.
	CountWaiting(ctx context.Context, network string) (int, error)
	// ExpireWaiting ends, as of at, every waiting battle created before
	// createdBefore (one conditional write each, so a battle going live
	// meanwhile is left alone) and returns their ids.
	ExpireWaiting(ctx context.Context, createdBefore, at time.Time) ([]string, error)

	// The origins registry, when several servers share the store.
	//
	// Heartbeat registers origin o, or refreshes its entry, as seen at
	// o.SeenAt.
	Heartbeat(ctx context.Context, o Origin) error
	// Origins lists the registered origins by URL.
	Origins(ctx context.Context) ([]Origin, error)
	// PlaceBattle stores the new battle b on the origin with the most
	// free capacity (its capacity minus its battles not ended) among
	// those seen since `alive` that take battles, and sets b.Origin; the
	// choice and the insert are one step, so concurrent placements
	// never count the same free place. ErrNoOrigin when none is alive.
	PlaceBattle(ctx context.Context, b *Battle, alive time.Time) error
	// ReapOrigin removes origin url from the registry if it was last
	// seen before `dead`, ends its live battles at `at` (their votes
	// kept) and moves its waiting battles to the origins seen since
	// `alive` that take battles (they stay where they are when there is
	// none). An origin seen since `dead`, or reaped by another server
	// first, is left alone: the zero Reaped. An origin that stops
	// cleanly reaps itself, with `dead` now.
	ReapOrigin(ctx context.Context, url string, dead, alive, at time.Time) (Reaped, error)
	// SetPresence stores what a live battle's origin sees of its
	// singers and watchers.
	SetPresence(ctx context.Context, id string, connected [2]bool, viewers int) error

	// The audience (chat.go).
	//
	// PostChat stores m as the next change of its battle's chat: it
	// sets m.Seq (the message's id) and m.Changed. ErrNotFound for an
	// unknown battle.
	PostChat(ctx context.Context, m *ChatMessage) error
	// DeleteChat marks message seq of battle id deleted, as the chat's
	// next change; false when there is no such message not deleted.
	DeleteChat(ctx context.Context, id string, seq int64) (bool, error)
	// GetChat returns one message, deleted or not; ErrNotFound when
	// there is none.
	GetChat(ctx context.Context, id string, seq int64) (*ChatMessage, error)
	// ChatMessages returns up to limit messages of battle id not
	// deleted, after message after, oldest first.
	ChatMessages(ctx context.Context, id string, after int64, limit int) ([]ChatMessage, error)
	// ChatChanges returns up to limit messages of battle id changed
	// (posted or deleted) after change since, in the order of their
	// changes.
	ChatChanges(ctx context.Context, id string, since int64, limit int) ([]ChatMessage, error)
	// ChatAuthor is what the chat of battle id holds against author.
	ChatAuthor(ctx context.Context, id, author string) (ChatAuthorState, error)
	// Mute mutes author in the chat of battle id.
	Mute(ctx context.Context, id, author string) error
	// SetChatMode sets the chat's mode; false for an unknown battle.
	SetChatMode(ctx context.Context, id, mode string) (bool, error)
	// SetWatcherName stores a watcher's display name; WatcherName reads
	// it ("" when the watcher has none).
	SetWatcherName(ctx context.Context, watcher, name string) error
	WatcherName(ctx context.Context, watcher string) (string, error)
	// AddCheers adds cheers per side to battle id and returns its
	// cheers now.
	AddCheers(ctx context.Context, id string, cheers [2]int) ([2]int, error)
	// SetRematch links battle id to its rematch, once: false when it
	// has one already (or is unknown).
	SetRematch(ctx context.Context, id, rematchID string) (bool, error)

	Close() error
}
