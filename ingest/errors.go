package ingest

import (
	"errors"
	"fmt"
)

// The kinds of error a Room's methods return; the HTTP layer maps them to
// statuses. They come wrapped with a detail for the client
// (errors.Is finds the kind): their text never holds a library's error,
// a path or internal state. Any other error is internal.
var (
	// ErrMalformed: an offer or trickle-ICE fragment that does not parse.
	ErrMalformed = errors.New("malformed")
	// ErrUnusable: an offer that parses but offers nothing the server
	// can use (no supported codec...), an ICE restart or candidate that
	// is refused.
	ErrUnusable = errors.New("unusable")
	// ErrNoSession: no such session in that slot.
	ErrNoSession = errors.New("no such session")
	// ErrPrecondition: If-Match does not match the session's ETag.
	ErrPrecondition = errors.New("precondition failed")
	// ErrClosed: the room is closed (its battle ended), or the server.
	ErrClosed = errors.New("closed")
	// ErrConflict: the session has no remote description yet.
	ErrConflict = errors.New("conflict")
	// ErrTooMany: the slot has as many subscribers as it may.
	ErrTooMany = errors.New("too many")
)

var (
	errRoomClosed   = fmt.Errorf("room %w", ErrClosed)
	errServerClosed = fmt.Errorf("server %w", ErrClosed)
	// errTooManySubscribers refuses a WHEP session past maxSubscribers.
	errTooManySubscribers = fmt.Errorf("%w: this slot has as many WHEP sessions as it may; close one first", ErrTooMany)
	// errNoSlot is a slot number other than 1 or 2: the caller's mistake.
	errNoSlot = errors.New("no such slot")
)
