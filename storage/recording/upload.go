package recording

import (
	"bytes"
	"context"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/singoff/singoff/internal/m3u8"
	"github.com/singoff/singoff/media"
)

// upload sends one recording to the bucket in the order its files were
// made: the init segment, then each segment, followed (when no other
// waits) by a playlist listing the segments in the bucket so far; at the
// end the last playlist. It is the stager of the recording's recorder.
type upload struct {
	s    *S3
	id   string
	dir  string
	wake chan struct{}

	mu      sync.Mutex
	files   []staged // made, not yet in the bucket, in order
	backlog int64    // bytes of segments in files
	warned  bool     // BacklogFull was told
	done    bool     // no more files will come
	ended   bool     // the playlist is to become VOD
	kept    bool     // something was recorded
	final   []byte   // a playlist to upload last as it is (resumed uploads)
	dropped bool     // the recording never started: nothing to do
	// battleCues are the recorder's cues, for the playlists the upload
	// writes; nil for a resumed upload.
	battleCues *m3u8.Cues

	// Of the uploading goroutine only.
	inBucket []segmentEntry
}

// staged is a file waiting for the upload.
type staged struct {
	name  string
	entry *segmentEntry // a segment the recorder made; nil for others
	size  int
	at    time.Time // when it was made
}

// follow has the upload's playlists carry the cues of rec, the recorder
// it stages.
func (up *upload) follow(rec *recorder) {
	up.mu.Lock()
	up.battleCues = &rec.cues
	up.mu.Unlock()
}

// cues are the battle's cues so far.
func (up *upload) cues() []media.Cue {
	up.mu.Lock()
	c := up.battleCues
	up.mu.Unlock()
	if c == nil {
		return nil
	}
	return c.List()
}

// newUpload starts the upload of battleID's recording; it counts as in
// progress (for Finish and Purge) once tracked.
func (s *S3) newUpload(battleID string) *upload {
	up := &upload{s: s, id: battleID, dir: filepath.Join(s.stage.dir, battleID), wake: make(chan struct{}, 1)}
	s.wg.Go(up.run)
	return up
}

func (s *S3) track(up *upload) {
	s.mu.Lock()
	s.uploads[up.id] = up
	s.mu.Unlock()
}

// drop ends an upload whose recording never started: it touches
// nothing, in the bucket or on the disk.
func (up *upload) drop() {
	up.mu.Lock()
	up.done, up.dropped = true, true
	up.mu.Unlock()
	up.poke()
}

func (up *upload) poke() {
	select {
	case up.wake <- struct{}{}:
	default:
	}
}

// admit implements stager: a segment waits on the disk only while the
// segments waiting stay under the backlog bound.
func (up *upload) admit(size int) bool {
	up.mu.Lock()
	defer up.mu.Unlock()
	if up.backlog+int64(size) <= up.s.loc.BacklogBytes {
		return true
	}
	if !up.warned {
		up.warned = true
		go up.s.opts.BacklogFull(up.id)
	}
	return false
}

// segment implements stager.
func (up *upload) segment(e segmentEntry, size int) {
	up.mu.Lock()
	up.files = append(up.files, staged{name: e.name, entry: &e, size: size, at: time.Now()})
	up.backlog += int64(size)
	up.mu.Unlock()
	up.poke()
}

// file implements stager: the file goes to the bucket after what was
// made before it.
func (up *upload) file(name string) { up.queueFile(name) }

// finished implements stager.
func (up *upload) finished(ended, recorded bool) {
	up.mu.Lock()
	up.done, up.ended, up.kept = true, ended, recorded
	up.mu.Unlock()
	up.poke()
}

// queueFile queues a file of the staging directory that is not a
// recorder's new segment (the init segment, a resumed segment).
func (up *upload) queueFile(name string) {
	up.mu.Lock()
	up.files = append(up.files, staged{name: name, at: time.Now()})
	up.mu.Unlock()
	up.poke()
}

// finishWith ends a resumed upload with playlist, uploaded as it is.
func (up *upload) finishWith(playlist []byte) {
	up.mu.Lock()
	up.done, up.ended, up.kept, up.final = true, true, true, playlist
	up.mu.Unlock()
	up.poke()
}

func (up *upload) run() {
	defer func() {
		up.s.mu.Lock()
		if up.s.uploads[up.id] == up {
			delete(up.s.uploads, up.id)
		}
		up.s.mu.Unlock()
	}()
	for {
		f, more := up.next()
		if up.s.ctx.Err() != nil {
			return
		}
		if !more {
			up.finish()
			return
		}
		if !up.send(f) {
			return
		}
	}
}

// next waits for the next file to send; more is false once no file is
// left and none will come.
func (up *upload) next() (f staged, more bool) {
	for {
		up.mu.Lock()
		if len(up.files) > 0 {
			f := up.files[0]
			up.mu.Unlock()
			return f, true
		}
		done := up.done
		up.mu.Unlock()
		if done {
			return staged{}, false
		}
		select {
		case <-up.wake:
		case <-up.s.ctx.Done():
			return staged{}, false
		}
	}
}

// send uploads f (retrying until the store takes it or closes); a
// segment's staged copy then goes, and the playlist follows when no
// other segment waits. It is false when the store closed first.
func (up *upload) send(f staged) bool {
	path := filepath.Join(up.dir, f.name)
	ok := up.s.retry(up.id, "uploading "+f.name, func(ctx context.Context) error {
		file, err := os.Open(path)
		if errors.Is(err, fs.ErrNotExist) {
			up.s.log.Error("recording: a staged file is gone; not uploaded", "battle", up.id, "file", f.name)
			return nil
		}
		if err != nil {
			return err
		}
		defer file.Close()
		st, err := file.Stat()
		if err != nil {
			return err
		}
		return up.s.put(ctx, up.id, f.name, file, st.Size())
	})
	if !ok {
		return false
	}
	// The init segment and the thumbnail (written again now and then)
	// stay staged until the recording is whole in the bucket.
	if f.name != initName && f.name != thumbName {
		if err := os.Remove(path); err != nil && !errors.Is(err, fs.ErrNotExist) {
			up.s.log.Error("recording: removing an uploaded segment's staged copy", "battle", up.id, "err", err)
		}
	}
	up.mu.Lock()
	up.files = up.files[1:]
	up.backlog -= int64(f.size)
	waiting := len(up.files) > 0
	up.mu.Unlock()
	if f.entry == nil {
		return true
	}
	up.s.opts.Uploaded(time.Since(f.at))
	up.inBucket = append(up.inBucket, *f.entry)
	if waiting {
		return true
	}
	return up.putPlaylist(renderPlaylist(up.inBucket, up.s.stage.opts.SegmentDuration, up.cues(), false))
}

func (up *upload) putPlaylist(text []byte) bool {
	return up.s.retry(up.id, "uploading the playlist", func(ctx context.Context) error {
		return up.s.put(ctx, up.id, playlistName, bytes.NewReader(text), int64(len(text)))
	})
}

// finish uploads the last playlist and lets the staging directory go
// once the recording is whole in the bucket. A recording cut short
// without its end (a shutdown) keeps its staged playlist, which the next
// Recover finishes and uploads; one that recorded nothing leaves nothing.
func (up *upload) finish() {
	up.mu.Lock()
	ended, kept, final, dropped := up.ended, up.kept, up.final, up.dropped
	up.mu.Unlock()
	switch {
	case dropped:
		return
	case !kept:
		up.s.retry(up.id, "removing an empty recording", func(ctx context.Context) error {
			return up.s.remove(ctx, up.id)
		})
		return
	case final != nil:
		if !up.putPlaylist(final) {
			return
		}
	case !up.putPlaylist(renderPlaylist(up.inBucket, up.s.stage.opts.SegmentDuration, up.cues(), ended)):
		return
	}
	if !ended {
		return
	}
	if err := os.RemoveAll(up.dir); err != nil {
		up.s.log.Error("recording: removing an uploaded recording's staging", "battle", up.id, "err", err)
	}
}
