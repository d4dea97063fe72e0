package recording

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"

	"github.com/singoff/singoff/internal/battleid"
	"github.com/singoff/singoff/internal/httpjson"
	"github.com/singoff/singoff/media"
)

// S3Options tune an S3 store.
type S3Options struct {
	// Staging is the local directory where recordings are written
	// before they are uploaded; LocalOptions apply to it (its disk
	// floor, the segment length, the logger).
	Staging string
	LocalOptions
	// BacklogFull is told, once per recording, that a segment was
	// dropped because the uploads are behind by more than the backlog
	// bound (the store is down or slow). It must not block.
	BacklogFull func(battleID string)
	// Uploaded is told of every segment in the bucket: how long after
	// it was written it got there (the upload lag).
	Uploaded func(lag time.Duration)
}

// S3 keeps recordings in an S3-compatible bucket, so that every origin
// replays every battle: each segment is written to a local staging
// directory (as Local writes it) and uploaded as soon as it is made,
// followed by a playlist that lists only the segments in the bucket. A
// store that is down or slow never holds up the program: segments wait
// on the local disk, up to the backlog bound, and go up when it is back.
// Keys come from the environment (AWS_ACCESS_KEY_ID,
// AWS_SECRET_ACCESS_KEY, AWS_SESSION_TOKEN), as for every S3 tool.
type S3 struct {
	loc    S3Location
	client *minio.Client
	stage  *Local
	opts   S3Options
	log    *slog.Logger

	// ctx ends the uploads at Close; wg counts them.
	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup

	mu      sync.Mutex
	uploads map[string]*upload // by battle id, until their last file is up
}

var _ Store = (*S3)(nil)

// Timing of the uploads.
const (
	s3AttemptTimeout = 30 * time.Second
	s3RetryMin       = 250 * time.Millisecond
	s3RetryMax       = 2 * time.Second
	// s3ProbeTimeout bounds the check of the bucket at start-up.
	s3ProbeTimeout = 10 * time.Second
)

// OpenS3 opens the store at rawURL (see ParseS3URL). It checks the bucket
// when the server answers; an unreachable server is only logged: the
// recordings wait on the local disk for it.
func OpenS3(ctx context.Context, rawURL string, opts S3Options) (*S3, error) {
	loc, err := ParseS3URL(rawURL)
	if err != nil {
		return nil, err
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	if opts.BacklogFull == nil {
		opts.BacklogFull = func(string) {}
	}
	if opts.Uploaded == nil {
		opts.Uploaded = func(time.Duration) {}
	}
	stage, err := NewLocal(opts.Staging, opts.LocalOptions)
	if err != nil {
		return nil, err
	}
	lookup := minio.BucketLookupAuto
	if loc.Endpoint != "s3.amazonaws.com" {
		lookup = minio.BucketLookupPath
	}
	client, err := minio.New(loc.Endpoint, &minio.Options{
		Creds:        credentials.NewEnvAWS(),
		Secure:       loc.Secure,
		Region:       loc.Region,
		BucketLookup: lookup,
		MaxRetries:   1, // the uploads retry on their own, for as long as it takes
	})
	if err != nil {
		return nil, fmt.Errorf("recording: S3 client: %w", err)
	}
	bg, cancel := context.WithCancel(context.Background())
	s := &S3{loc: loc, client: client, stage: stage, opts: opts, log: opts.Logger, ctx: bg, cancel: cancel,
		uploads: map[string]*upload{}}
	probe, cancelProbe := context.WithTimeout(ctx, s3ProbeTimeout)
	defer cancelProbe()
	exists, err := client.BucketExists(probe, loc.Bucket)
	switch {
	case err != nil && minio.ToErrorResponse(err).Code != "":
		cancel()
		return nil, fmt.Errorf("recording: bucket %s at %s: %w", loc.Bucket, loc.Endpoint, err)
	case err != nil:
		s.log.Warn("recording: the S3 store does not answer; recordings wait on the local disk", "endpoint", loc.Endpoint, "err", err)
	case !exists:
		cancel()
		return nil, fmt.Errorf("recording: there is no bucket %s at %s", loc.Bucket, loc.Endpoint)
	}
	return s, nil
}

// key is the object name of a recording's file.
func (s *S3) key(battleID, name string) string {
	return s.loc.Prefix + battleID + "/" + name
}

// Create implements Store: the recording is staged, and uploaded as it
// is made.
func (s *S3) Create(battleID string, info media.ProgramInfo) (media.Recorder, error) {
	up := s.newUpload(battleID)
	rec, err := s.stage.create(battleID, info, up)
	if err != nil {
		up.drop()
		return nil, err
	}
	up.follow(rec)
	s.track(up)
	up.queueFile(initName)
	return rec, nil
}

// Exists implements Store: a recording exists once its playlist is in the
// bucket.
func (s *S3) Exists(battleID string) bool {
	if !battleid.Valid(battleID) {
		return false
	}
	ctx, cancel := context.WithTimeout(context.Background(), s3AttemptTimeout)
	defer cancel()
	_, err := s.client.StatObject(ctx, s.loc.Bucket, s.key(battleID, playlistName), minio.StatObjectOptions{})
	return err == nil
}

// Recover implements Store. The recordings a previous process left
// staged are finished as Local finishes them, and whatever of them is
// not in the bucket yet is uploaded, in the background.
func (s *S3) Recover() ([]string, error) {
	closed, err := s.stage.Recover()
	ids, lerr := s.stage.recordings()
	for _, id := range ids {
		s.resume(id)
	}
	return closed, errors.Join(err, lerr)
}

// resume uploads what a staged recording left by a previous process
// still holds: its init, the segments its playlist lists, then the
// playlist, as it is.
func (s *S3) resume(battleID string) {
	dir := filepath.Join(s.stage.dir, battleID)
	text, err := os.ReadFile(filepath.Join(dir, playlistName))
	if err != nil {
		s.log.Error("recording: resuming an upload", "battle", battleID, "err", err)
		return
	}
	up := s.newUpload(battleID)
	s.track(up)
	up.queueFile(initName)
	_, listed := finishPlaylist(string(text))
	var names []string
	for name := range listed {
		if name != initName {
			names = append(names, name)
		}
	}
	sort.Slice(names, func(i, j int) bool { return segmentSeq(names[i]) < segmentSeq(names[j]) })
	for _, name := range append(names, thumbName) {
		if _, err := os.Stat(filepath.Join(dir, name)); err == nil {
			up.queueFile(name)
		}
	}
	up.finishWith(text)
	s.log.Info("recording: uploading what a previous run left staged", "battle", battleID)
}

// segmentSeq is the number in a segment's name.
func segmentSeq(name string) int {
	var n int
	fmt.Sscanf(name, "seg%d.m4s", &n)
	return n
}

// Finish implements Store: the playlist in the bucket becomes VOD at its
// last segment, in the background (retried until the store answers).
func (s *S3) Finish(battleID string) {
	if !battleid.Valid(battleID) {
		return
	}
	s.mu.Lock()
	_, active := s.uploads[battleID]
	s.mu.Unlock()
	if active {
		return
	}
	s.wg.Go(func() {
		s.retry(battleID, "finishing the playlist", func(ctx context.Context) error {
			text, err := s.get(ctx, battleID, playlistName)
			if isNotFound(err) {
				return nil // nothing was uploaded
			}
			if err != nil || isFinished(string(text)) {
				return err
			}
			finished, _ := finishPlaylist(string(text))
			return s.put(ctx, battleID, playlistName, strings.NewReader(finished), int64(len(finished)))
		})
	})
}

// Purge implements Store. A recording's age counts from the last change
// of its playlist (of any of its files when it has none); the ones
// being recorded or uploaded here are kept.
func (s *S3) Purge(olderThan time.Duration) ([]string, error) {
	ctx, cancel := context.WithTimeout(s.ctx, 10*time.Minute)
	defer cancel()
	cutoff := time.Now().Add(-olderThan)
	var ids []string
	for obj := range s.client.ListObjects(ctx, s.loc.Bucket, minio.ListObjectsOptions{Prefix: s.loc.Prefix}) {
		if obj.Err != nil {
			return nil, fmt.Errorf("recording: listing the bucket: %w", obj.Err)
		}
		if id := strings.TrimSuffix(strings.TrimPrefix(obj.Key, s.loc.Prefix), "/"); battleid.Valid(id) {
			ids = append(ids, id)
		}
	}
	var purged []string
	var errs []error
	for _, id := range ids {
		s.mu.Lock()
		_, active := s.uploads[id]
		s.mu.Unlock()
		if active {
			continue
		}
		last, err := s.lastChange(ctx, id)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		if !last.Before(cutoff) {
			continue
		}
		if err := s.remove(ctx, id); err != nil {
			errs = append(errs, err)
			continue
		}
		purged = append(purged, id)
	}
	return purged, errors.Join(errs...)
}

// lastChange is when battleID's recording last changed in the bucket.
func (s *S3) lastChange(ctx context.Context, battleID string) (time.Time, error) {
	st, err := s.client.StatObject(ctx, s.loc.Bucket, s.key(battleID, playlistName), minio.StatObjectOptions{})
	if err == nil {
		return st.LastModified, nil
	}
	if !isNotFound(err) {
		return time.Time{}, fmt.Errorf("recording: %s: %w", battleID, err)
	}
	var last time.Time
	for obj := range s.client.ListObjects(ctx, s.loc.Bucket, minio.ListObjectsOptions{Prefix: s.key(battleID, "")}) {
		if obj.Err != nil {
			return time.Time{}, fmt.Errorf("recording: %s: %w", battleID, obj.Err)
		}
		if obj.LastModified.After(last) {
			last = obj.LastModified
		}
	}
	return last, nil
}

// remove deletes every object of battleID's recording.
func (s *S3) remove(ctx context.Context, battleID string) error {
	objects := s.client.ListObjects(ctx, s.loc.Bucket, minio.ListObjectsOptions{Prefix: s.key(battleID, ""), Recursive: true})
	var errs []error
	for e := range s.client.RemoveObjects(ctx, s.loc.Bucket, objects, minio.RemoveObjectsOptions{}) {
		errs = append(errs, fmt.Errorf("recording: deleting %s: %w", e.ObjectName, e.Err))
	}
	return errors.Join(errs...)
}

// BytesWritten implements Store: the segment bytes recorded (staged).
func (s *S3) BytesWritten() uint64 { return s.stage.BytesWritten() }

// Close implements Store: it waits for the uploads until ctx is done,
// then stops them; what is still staged goes up at the next Recover.
func (s *S3) Close(ctx context.Context) error {
	done := make(chan struct{})
	go func() {
		s.wg.Wait()
		close(done)
	}()
	var err error
	select {
	case <-done:
	case <-ctx.Done():
		err = errors.New("recording: uploads still in flight were stopped; they resume at the next start")
	}
	s.cancel()
	<-done
	return err
}

// Handler implements Store: it serves /vod/{id}/{file} from the bucket,
// with the same names, types and caching as Local.
func (s *S3) Handler() http.Handler {
	return http.HandlerFunc(s.serveHTTP)
}

func (s *S3) serveHTTP(w http.ResponseWriter, r *http.Request) {
	id, file, ok := parseVODPath(r.URL.EscapedPath())
	if !ok {
		httpjson.Error(w, http.StatusNotFound, "no such recording file")
		return
	}
	obj, err := s.client.GetObject(r.Context(), s.loc.Bucket, s.key(id, file), minio.GetObjectOptions{})
	var st minio.ObjectInfo
	if err == nil {
		defer obj.Close()
		st, err = obj.Stat()
	}
	switch {
	case isNotFound(err):
		httpjson.Error(w, http.StatusNotFound, "no recording of battle %s", id)
		return
	case err != nil:
		s.log.Error("recording: serving from the bucket", "battle", id, "file", file, "err", err)
		w.Header().Set("Retry-After", "5")
		httpjson.Error(w, http.StatusServiceUnavailable, "the recordings store does not answer; try again")
		return
	}
	h := w.Header()
	if st.ETag != "" {
		h.Set("ETag", `"`+st.ETag+`"`)
	}
	var content io.ReadSeeker = obj
	var text []byte
	if file == playlistName {
		if text, err = io.ReadAll(io.LimitReader(obj, 16<<20)); err != nil {
			w.Header().Set("Retry-After", "5")
			httpjson.Error(w, http.StatusServiceUnavailable, "the recordings store does not answer; try again")
			return
		}
		content = bytes.NewReader(text)
	}
	fileHeaders(h, file, text)
	http.ServeContent(w, r, file, st.LastModified, content)
}

func isNotFound(err error) bool {
	if err == nil {
		return false
	}
	code := minio.ToErrorResponse(err).Code
	return code == "NoSuchKey" || code == "NoSuchObject" || code == "NotFound"
}

// put uploads one object.
func (s *S3) put(ctx context.Context, battleID, name string, r io.Reader, size int64) error {
	_, err := s.client.PutObject(ctx, s.loc.Bucket, s.key(battleID, name), r, size, minio.PutObjectOptions{
		ContentType:      contentType(name),
		DisableMultipart: true,
	})
	return err
}

// get downloads one small object.
func (s *S3) get(ctx context.Context, battleID, name string) ([]byte, error) {
	obj, err := s.client.GetObject(ctx, s.loc.Bucket, s.key(battleID, name), minio.GetObjectOptions{})
	if err != nil {
		return nil, err
	}
	defer obj.Close()
	return io.ReadAll(io.LimitReader(obj, 16<<20))
}

// retry runs attempt until it succeeds or the store closes, each try
// bounded, waiting longer after each failure (up to s3RetryMax). The
// first failure of a run is logged, then one every half minute.
func (s *S3) retry(battleID, what string, attempt func(ctx context.Context) error) bool {
	wait := s3RetryMin
	var failingSince, lastLog time.Time
	for {
		ctx, cancel := context.WithTimeout(s.ctx, s3AttemptTimeout)
		err := attempt(ctx)
		cancel()
		if err == nil {
			if !failingSince.IsZero() {
				s.log.Info("recording: the S3 store answers again", "battle", battleID, "after", time.Since(failingSince).Round(time.Millisecond))
			}
			return true
		}
		if s.ctx.Err() != nil {
			return false
		}
		now := time.Now()
		if failingSince.IsZero() {
			failingSince = now
		}
		if now.Sub(lastLog) >= 30*time.Second {
			s.log.Warn("recording: "+what+" failed; retrying", "battle", battleID, "err", err)
			lastLog = now
		}
		select {
		case <-s.ctx.Done():
			return false
		case <-time.After(wait):
		}
		wait = min(2*wait, s3RetryMax)
	}
}
