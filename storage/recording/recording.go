// Package recording keeps every battle's program as fMP4 HLS: while the
// battle is live an EVENT playlist grows segment by segment, and once it
// ends the playlist becomes VOD. Files are written crash-safe (temporary
// name, fsync, rename, directory fsync), so a crash loses at most the
// segment being written, and Recover finishes what a crash left open.
package recording

import (
	"context"
	"errors"
	"net/http"
	"time"

	"github.com/singoff/singoff/media"
)

// Store keeps recordings. Local keeps them on a local disk; S3 in an
// S3-compatible bucket, staging them on a local disk.
type Store interface {
	// Create starts the recording of battle battleID.
	Create(battleID string, info media.ProgramInfo) (media.Recorder, error)
	// Exists tells whether battleID has a playable recording.
	Exists(battleID string) bool
	// Recover finishes the recordings a previous process left open and
	// returns their battle ids. Call it at start-up, before Create.
	Recover() ([]string, error)
	// Handler serves /vod/{id}/index.m3u8 and the files it names.
	Handler() http.Handler
	// Purge deletes the recordings finished longer ago than olderThan
	// and returns their battle ids.
	Purge(olderThan time.Duration) ([]string, error)
	// Finish finishes the recording of a battle whose server died with
	// it open (another origin's): its playlist becomes VOD at its last
	// stored segment. A remote store does it in the background.
	Finish(battleID string)
	// BytesWritten counts the segment bytes recorded since the store
	// opened.
	BytesWritten() uint64
	// Close waits until ctx is done for what the store still has in
	// flight (uploads), then stops it; what is left is sent on by the
	// next Recover.
	Close(ctx context.Context) error
}

// Errors of Create (and of a recorder's writes, ErrDiskFloor).
var (
	// ErrDiskFloor means the disk has less free space than the floor
	// set in LocalOptions: a recording does not start, or stops.
	ErrDiskFloor = errors.New("recording: free disk space under the floor")
	// ErrExists means the battle has been recorded already.
	ErrExists = errors.New("recording: battle already recorded")
	// ErrBadID means a battle id is not of the form [A-Za-z0-9_-]{1,32}.
	ErrBadID = errors.New("recording: invalid battle id")
)
