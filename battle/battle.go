// Package battle is the domain: a battle's life (waiting → live →
// ended), admission to the server's live places, the format and its
// timeline, votes, tokens, and a subscription for changes.
//
// It knows no HTTP and no concrete media type. Where singers arrive
// (Rooms: the ingest) and what makes the program (Programs: the
// compositor's pipeline) are small interfaces the binary wires; the
// ingest tells the manager what happens in a room through RoomHooks.
package battle

import (
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/singoff/singoff/media"
	"github.com/singoff/singoff/storage"
)

// Rooms is where a battle's singers arrive: the ingest.
type Rooms interface {
	// Open makes battle id's room; hooks tell the manager what happens
	// in it.
	Open(id string, hooks RoomHooks) (Room, error)
}

// Room is one battle's two singer slots.
type Room interface {
	// Feeds are the slots' media for the program, slot 1 then slot 2.
	Feeds() [2]media.Feed
	// Close ends every session of the room; the feeds close.
	Close()
}

// RoomHooks are how a room tells its battle what happens, so that
// nothing has to guess. They may be called from any goroutine.
type RoomHooks struct {
	// Admit is asked before a publish offer for slot is negotiated; an
	// error refuses the offer.
	Admit func(slot int) error
	// Negotiated follows every admitted offer: ok when it was answered.
	Negotiated func(slot int, ok bool)
	// Connected reports a slot's publisher connecting or going away.
	Connected func(slot int, connected bool)
}

// Programs makes battles' programs: the media path from the two feeds
// to the live output and the recording.
type Programs interface {
	Start(id string, feeds [2]media.Feed) (Program, error)
}

// Program is one battle's running media path.
type Program interface {
	// Show makes the program show s; cheap when s is what it shows.
	Show(s media.Scene)
	// Cue places a battle event on the program's clock (its Start is
	// the event's wall time): the live and recorded playlists carry it.
	Cue(c media.Cue)
	// RecordingError is nil while the battle is recorded, else a public
	// sentence saying why it is not.
	RecordingError() error
	// Done is closed when the program stops on its own.
	Done() <-chan struct{}
	// End stops the program and finishes its outputs.
	End()
}

// Config wires a Manager. Zero durations and counts take the defaults.
type Config struct {
	Store    storage.Store
	Rooms    Rooms
	Programs Programs
	// Viewers counts a live battle's recent watchers; nil counts none.
	Viewers func(id string) int
	// Grace is how long a live battle may have no singer before it
	// ends (default 10 min); ConnectGrace how long a battle that went
	// live may wait for its first singer's connection (default 60 s),
	// so an offer that never connects does not hold a live place.
	Grace        time.Duration
	ConnectGrace time.Duration
	// MaxDuration bounds a battle's live time (default 2 h).
	MaxDuration time.Duration
	// MaxLive bounds the battles live at once on this server (default
	// 8): a first publish past it is refused with ErrFull.
	MaxLive int
	// The per-network caps, counted by the network a battle was created
	// from (CreateRequest.Network; battles of no known network are not
	// counted): MaxLivePerNetwork live battles (default 4) and
	// MaxWaitingPerNetwork waiting ones (default 50), refused with
	// ErrNetworkLimit. Live battles are counted on this server, waiting
	// ones in the store.
	MaxLivePerNetwork    int
	MaxWaitingPerNetwork int
	// WaitingExpiry ends a battle still waiting this long after its
	// creation: nobody ever published to it (default 1 h).
	WaitingExpiry time.Duration
	// MaxVotersPerNetwork bounds the watchers of one network whose
	// votes count in a round (default 20).
	MaxVotersPerNetwork int
	// VoteGrace and ResultHold time the format (defaults 15 s, 30 s).
	VoteGrace  time.Duration
	ResultHold time.Duration
	// MinTurnSeconds is the shortest turn a battle may ask for
	// (default 30; tests lower it to play a whole battle quickly).
	MinTurnSeconds int

	// Origin is this server's --advertise-url when several origins
	// share the store ("" for a server on its own): new battles are
	// placed among the origins, and Join registers this one.
	Origin string
	// Changes carries battle changes between the origins; nil when the
	// store has no way to (one origin).
	Changes Changes
	// Heartbeat is how often an origin says it is alive (default 2 s);
	// one silent for OriginTimeout (default 10 s) is dead: the others
	// end its live battles and move its waiting ones.
	Heartbeat, OriginTimeout time.Duration
	// Orphaned is given the live battles this server ended for an origin
	// that died, whose recordings that origin could not finish.
	Orphaned func(ids []string)

	Logger *slog.Logger
}

func (c *Config) setDefaults() {
	def := func(d *time.Duration, v time.Duration) {
		if *d == 0 {
			*d = v
		}
	}
	def(&c.Grace, 10*time.Minute)
	def(&c.ConnectGrace, time.Minute)
	def(&c.MaxDuration, 2*time.Hour)
	def(&c.VoteGrace, DefaultVoteGrace)
	def(&c.ResultHold, DefaultResultHold)
	def(&c.WaitingExpiry, time.Hour)
	def(&c.Heartbeat, DefaultHeartbeat)
	def(&c.OriginTimeout, DefaultOriginTimeout)
	if c.Orphaned == nil {
		c.Orphaned = func([]string) {}
	}
	for _, d := range []struct {
		v   *int
		def int
	}{{&c.MaxLive, 8}, {&c.MaxLivePerNetwork, 4}, {&c.MaxWaitingPerNetwork, 50}, {&c.MaxVotersPerNetwork, 20}} {
		if *d.v == 0 {
			*d.v = d.def
		}
	}
	if c.MinTurnSeconds == 0 {
		c.MinTurnSeconds = 30
	}
	if c.Viewers == nil {
		c.Viewers = func(string) int { return 0 }
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
}

// Errors of the manager; the HTTP layer maps them to statuses.
var (
	ErrNotFound = errors.New("no such battle")
	// ErrInvalid wraps what is wrong with a new battle's settings.
	ErrInvalid = errors.New("invalid battle")
	ErrEnded   = errors.New("the battle has ended")
	// ErrFull says the server runs as many live battles as it may.
	ErrFull = errors.New("this server is running as many live battles as it can")
	// ErrDraining says the server is shutting down and takes nothing new.
	ErrDraining   = errors.New("this server is shutting down")
	ErrStarted    = errors.New("the battle has already started")
	ErrNotStarted = errors.New("voting opens when the host starts the battle")
	ErrVotingShut = errors.New("voting is closed")
	ErrBadSlot    = errors.New("slot must be 1 or 2")
	// ErrNetworkLimit is wrapped by the refusals of the per-network
	// caps, each saying which.
	ErrNetworkLimit = errors.New("per-network limit")
	// ErrLateWatcher refuses a vote from a watcher identity issued after
	// the round opened: it counts from the next round on.
	ErrLateWatcher = errors.New("you joined after this round's voting opened; you can vote from the next round")
)

// The per-network refusals.
var (
	errLiveCap    = fmt.Errorf("%w: your network runs as many live battles as it may", ErrNetworkLimit)
	errWaitingCap = fmt.Errorf("%w: your network has as many battles waiting for singers as it may", ErrNetworkLimit)
	errVoterCap   = fmt.Errorf("%w: as many watchers of your network have voted in this round as may", ErrNetworkLimit)
)
