package recording

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/singoff/singoff/internal/battleid"
	"github.com/singoff/singoff/media"
)

// LocalOptions tune a Local store. The zero value is usable.
type LocalOptions struct {
	// MinFreeBytes is the disk floor: Create refuses to start a
	// recording when the disk has less free space, and a recording that
	// finds it has less before a segment stops there, finished (its
	// writes then fail with ErrDiskFloor). 0 means no floor.
	MinFreeBytes uint64
	// SegmentDuration is the nominal segment length; segments are cut
	// at the first keyframe past it. It defaults to 2 s.
	SegmentDuration time.Duration
	// Logger defaults to slog.Default().
	Logger *slog.Logger
}

// Local keeps recordings on a local disk, one directory per battle:
// {dir}/{battle id}/index.m3u8, init.mp4, seg0.m4s, seg1.m4s, …
type Local struct {
	dir  string
	opts LocalOptions

	mu     sync.Mutex
	active map[string]*recorder

	written atomic.Uint64
}

// BytesWritten counts the segment bytes every recording of this store
// has written since it opened.
func (l *Local) BytesWritten() uint64 { return l.written.Load() }

var _ Store = (*Local)(nil)

// NewLocal opens (creating it if need be) a store in dir.
func NewLocal(dir string, opts LocalOptions) (*Local, error) {
	if opts.SegmentDuration <= 0 {
		opts.SegmentDuration = 2 * time.Second
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("recording: %w", err)
	}
	return &Local{dir: dir, opts: opts, active: make(map[string]*recorder)}, nil
}

// Create implements Store. It fails with ErrDiskFloor when free space is
// under LocalOptions.MinFreeBytes, and with ErrExists when battleID has a
// recording already (its files are served as immutable).
func (l *Local) Create(battleID string, info media.ProgramInfo) (media.Recorder, error) {
	rec, err := l.create(battleID, info, nil)
	if err != nil {
		return nil, err
	}
	return rec, nil
}

// create starts a recording whose files stage follows (nil: none).
func (l *Local) create(battleID string, info media.ProgramInfo, stage stager) (*recorder, error) {
	if !battleid.Valid(battleID) {
		return nil, fmt.Errorf("%w: %q", ErrBadID, battleID)
	}
	if err := l.checkFreeSpace(); err != nil {
		return nil, err
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if _, ok := l.active[battleID]; ok {
		return nil, fmt.Errorf("%w: %s is being recorded", ErrExists, battleID)
	}
	dir := filepath.Join(l.dir, battleID)
	if err := os.Mkdir(dir, 0o755); err != nil {
		if errors.Is(err, fs.ErrExist) {
			return nil, fmt.Errorf("%w: %s", ErrExists, battleID)
		}
		return nil, fmt.Errorf("recording: %w", err)
	}
	if err := syncDir(l.dir); err != nil {
		os.RemoveAll(dir)
		return nil, fmt.Errorf("recording: %w", err)
	}
	logger := l.opts.Logger.With("battle", battleID)
	rec, err := newRecorder(dir, info, l.opts.SegmentDuration, logger, &l.written, stage, l.checkFreeSpace, func() {
		l.mu.Lock()
		delete(l.active, battleID)
		l.mu.Unlock()
	})
	if err != nil {
		os.RemoveAll(dir)
		return nil, err
	}
	l.active[battleID] = rec
	return rec, nil
}

func (l *Local) checkFreeSpace() error {
	if l.opts.MinFreeBytes == 0 {
		return nil
	}
	var st syscall.Statfs_t
	if err := syscall.Statfs(l.dir, &st); err != nil {
		return fmt.Errorf("recording: free space of %s: %w", l.dir, err)
	}
	free := st.Bavail * uint64(st.Bsize)
	if free < l.opts.MinFreeBytes {
		return fmt.Errorf("%w: %d MiB free on %s, the floor is %d MiB",
			ErrDiskFloor, free>>20, l.dir, l.opts.MinFreeBytes>>20)
	}
	return nil
}

// Exists implements Store: a recording is playable once its playlist
// lists a segment.
func (l *Local) Exists(battleID string) bool {
	if !battleid.Valid(battleID) {
		return false
	}
	_, err := os.Stat(filepath.Join(l.dir, battleID, playlistName))
	return err == nil
}

// recordings lists the battle ids with a directory in the store that are
// not being recorded now.
func (l *Local) recordings() ([]string, error) {
	entries, err := os.ReadDir(l.dir)
	if err != nil {
		return nil, fmt.Errorf("recording: %w", err)
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	var ids []string
	for _, e := range entries {
		if _, live := l.active[e.Name()]; e.IsDir() && battleid.Valid(e.Name()) && !live {
			ids = append(ids, e.Name())
		}
	}
	return ids, nil
}

// Recover implements Store. A recording left open has its playlist
// finished at its last complete segment; files the playlist does not
// list (a segment written but not yet listed, temporary files), the
// thumbnail aside, are removed, and so is a recording that never got a
// segment. It returns
// the ids of the recordings it closed.
func (l *Local) Recover() ([]string, error) {
	ids, err := l.recordings()
	if err != nil {
		return nil, err
	}
	var closed []string
	var errs []error
	for _, id := range ids {
		wasOpen, err := l.recover(id)
		if err != nil {
			errs = append(errs, err)
		}
		if wasOpen {
			closed = append(closed, id)
		}
	}
	return closed, errors.Join(errs...)
}

func (l *Local) recover(id string) (wasOpen bool, err error) {
	dir := filepath.Join(l.dir, id)
	text, err := os.ReadFile(filepath.Join(dir, playlistName))
	if errors.Is(err, fs.ErrNotExist) {
		l.opts.Logger.Warn("recording: removing a recording that never got a segment", "battle", id)
		return true, os.RemoveAll(dir)
	}
	if err != nil {
		return false, fmt.Errorf("recording: %w", err)
	}
	if isFinished(string(text)) {
		return false, nil
	}
	finished, listed := finishPlaylist(string(text))
	entries, err := os.ReadDir(dir)
	if err != nil {
		return true, fmt.Errorf("recording: %w", err)
	}
	for _, e := range entries {
		if name := e.Name(); name != playlistName && name != thumbName && !listed[name] {
			if err := os.Remove(filepath.Join(dir, name)); err != nil {
				return true, fmt.Errorf("recording: %w", err)
			}
		}
	}
	if err := writeFileAtomic(dir, playlistName, []byte(finished)); err != nil {
		return true, fmt.Errorf("recording: %w", err)
	}
	l.opts.Logger.Info("recording: finished a recording left open", "battle", id)
	return true, nil
}

// Purge implements Store. A recording's age counts from its last write,
// which is when it ended; recordings in progress are kept.
func (l *Local) Purge(olderThan time.Duration) ([]string, error) {
	ids, err := l.recordings()
	if err != nil {
		return nil, err
	}
	cutoff := time.Now().Add(-olderThan)
	var purged []string
	var errs []error
	for _, id := range ids {
		dir := filepath.Join(l.dir, id)
		st, err := os.Stat(filepath.Join(dir, playlistName))
		if err != nil {
			st, err = os.Stat(dir)
		}
		if err != nil || !st.ModTime().Before(cutoff) {
			continue
		}
		if err := os.RemoveAll(dir); err != nil {
			errs = append(errs, fmt.Errorf("recording: purging %s: %w", id, err))
			continue
		}
		purged = append(purged, id)
	}
	return purged, errors.Join(errs...)
}

// Finish implements Store: a recording a dead server left open here is
// finished as Recover would.
func (l *Local) Finish(battleID string) {
	if !battleid.Valid(battleID) {
		return
	}
	l.mu.Lock()
	_, active := l.active[battleID]
	l.mu.Unlock()
	if _, err := os.Stat(filepath.Join(l.dir, battleID)); active || err != nil {
		return // recording now, or not here
	}
	if _, err := l.recover(battleID); err != nil {
		l.opts.Logger.Error("recording: finishing a recording left open", "battle", battleID, "err", err)
	}
}

// Close implements Store: a local store has nothing in flight.
func (l *Local) Close(context.Context) error { return nil }

// RunRetention deletes the finished recordings of s older than age (see
// Store.Purge) at once and then every every until ctx is done, and hands
// the ids of the battles whose recordings it deleted to purged. Errors
// are logged and the loop goes on. With age <= 0 recordings are kept
// forever and it returns at once.
func RunRetention(ctx context.Context, s Store, logger *slog.Logger, age, every time.Duration, purged func(ids []string)) {
	if age <= 0 {
		return
	}
	ticker := time.NewTicker(every)
	defer ticker.Stop()
	for {
		ids, err := s.Purge(age)
		if err != nil {
			logger.Error("recording: purging old recordings", "err", err)
		}
		if len(ids) > 0 {
			logger.Info("recording: purged old recordings", "battles", strings.Join(ids, ","), "age", age)
			purged(ids)
		}
		select {
		case <-ctx.Done():
			return
		case <-ticker.C:
		}
	}
}
