package recording

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/minio/minio-go/v7"

	"github.com/singoff/singoff/internal/s3test"
	"github.com/singoff/singoff/media"
)

// The S3 store's tests run against a real S3 server (SeaweedFS, built by
// `make weed`), started once for the package and shared: each test has
// a prefix of its own in the one bucket.

var s3srv struct {
	once     sync.Once
	srv      *s3test.Server
	err      error
	prefixes atomic.Int32
}

const testBucket = "singoff"

// s3Server starts the shared server on first use; TestMain stops it.
func s3Server(t testing.TB) *s3test.Server {
	t.Helper()
	s3srv.once.Do(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		defer cancel()
		s3srv.srv, s3srv.err = s3test.Start(ctx)
		if s3srv.err == nil {
			s3srv.err = s3srv.srv.NewBucket(ctx, testBucket)
		}
	})
	if s3srv.err != nil {
		t.Fatal(s3srv.err)
	}
	return s3srv.srv
}

func stopS3Server() {
	if s3srv.srv != nil {
		s3srv.srv.Close()
	}
}

// s3Fixture is an S3 store on a prefix of its own.
type s3Fixture struct {
	srv     *s3test.Server
	prefix  string
	staging string
	url     string
}

func newS3Fixture(t testing.TB, query string) *s3Fixture {
	t.Helper()
	srv := s3Server(t)
	t.Setenv("AWS_ACCESS_KEY_ID", s3test.AccessKey)
	t.Setenv("AWS_SECRET_ACCESS_KEY", s3test.SecretKey)
	f := &s3Fixture{srv: srv, prefix: fmt.Sprintf("t%d/recordings/", s3srv.prefixes.Add(1)), staging: t.TempDir()}
	f.url = srv.URL(testBucket, f.prefix) + query
	return f
}

// open opens an S3 store on the fixture's bucket and staging; the test's
// end closes it.
func (f *s3Fixture) open(t testing.TB, opts S3Options) *S3 {
	t.Helper()
	opts.Staging = f.staging
	opts.Logger = testLogger(t)
	s, err := OpenS3(t.Context(), f.url, opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		s.Close(ctx)
	})
	return s
}

// object reads an object of the bucket; ok is false when there is none.
func (f *s3Fixture) object(t *testing.T, key string) (string, bool) {
	t.Helper()
	obj, err := f.srv.Client.GetObject(t.Context(), testBucket, f.prefix+key, minio.GetObjectOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer obj.Close()
	b, err := io.ReadAll(obj)
	if isNotFound(err) {
		return "", false
	}
	if err != nil {
		t.Fatal(err)
	}
	return string(b), true
}

// waitPlaylist polls the bucket's playlist of id until cond holds (30 s).
func (f *s3Fixture) waitPlaylist(t *testing.T, id, what string, cond func(string) bool) string {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		text, ok := f.object(t, id+"/"+playlistName)
		if ok && cond(text) {
			return text
		}
		if time.Now().After(deadline) {
			t.Fatalf("the bucket's playlist of %s: not %s within 30 s:\n%s", id, what, text)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// checkInBucket fails unless every file the playlist lists is in the
// bucket, and returns the segments it lists.
func (f *s3Fixture) checkInBucket(t *testing.T, id, playlist string) []string {
	t.Helper()
	_, listed := finishPlaylist(playlist)
	var segs []string
	for name := range listed {
		if _, ok := f.object(t, id+"/"+name); !ok {
			t.Errorf("%s lists %s, which is not in the bucket", id, name)
		}
		if name != initName {
			segs = append(segs, name)
		}
	}
	slices.SortFunc(segs, func(a, b string) int { return segmentSeq(a) - segmentSeq(b) })
	return segs
}

// staged lists what is left in the staging directory of id.
func (f *s3Fixture) staged(t *testing.T, id string) []string {
	t.Helper()
	entries, err := os.ReadDir(filepath.Join(f.staging, id))
	if err != nil {
		return nil
	}
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
	}
	return names
}

// A recording goes to the bucket as it is made: while live, an EVENT
// playlist there lists the segments already there; once ended, the VOD
// plays from any server that opens the bucket, and nothing is left on
// the local disk.
func TestS3RecordsIntoTheBucket(t *testing.T) {
	f := newS3Fixture(t, "")
	var lags []time.Duration
	var mu sync.Mutex
	s := f.open(t, S3Options{Uploaded: func(d time.Duration) {
		mu.Lock()
		lags = append(lags, d)
		mu.Unlock()
	}})
	const id = "s3_battle"
	rec, err := s.Create(id, program.Info)
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	if err := program.Feed(t.Context(), &shifted{rec, 0, start}, 7*time.Second, 0); err != nil {
		t.Fatal(err)
	}
	live := f.waitPlaylist(t, id, "listing two segments", func(p string) bool { return strings.Count(p, "#EXTINF") >= 2 })
	if !strings.Contains(live, tagEvent) || strings.Contains(live, tagEndlist) {
		t.Errorf("the live recording's playlist:\n%s", live)
	}
	f.checkInBucket(t, id, live)
	if !s.Exists(id) {
		t.Error("Exists is false for a recording with segments in the bucket")
	}
	if err := program.Feed(t.Context(), &shifted{rec, 7 * time.Second, start}, 8*time.Second, 0); err != nil {
		t.Fatal(err)
	}
	if err := rec.Close(true); err != nil {
		t.Fatal(err)
	}
	final := f.waitPlaylist(t, id, "finished", isFinished)
	if !strings.Contains(final, tagVOD) {
		t.Errorf("the ended recording's playlist:\n%s", final)
	}
	segs := f.checkInBucket(t, id, final)
	if len(segs) < 6 || strings.Contains(final, "#EXT-X-DISCONTINUITY") {
		t.Errorf("%d segments, want the 15 s program whole:\n%s", len(segs), final)
	}
	waitFor(t, func() bool { return f.staged(t, id) == nil })
	mu.Lock()
	if len(lags) != len(segs) {
		t.Errorf("%d upload lags reported for %d segments", len(lags), len(segs))
	}
	mu.Unlock()

	// Another server (another origin) replays it from the bucket.
	other := &s3Fixture{srv: f.srv, prefix: f.prefix, staging: t.TempDir(), url: f.url}
	base := serve(t, other.open(t, S3Options{}).Handler())
	resp, _ := get(t, base+"/vod/"+id+"/index.m3u8", nil)
	wantHeader(t, resp, "Cache-Control", cacheVODPlaylist)
	wantHeader(t, resp, "Content-Type", "application/vnd.apple.mpegurl")
	resp, _ = get(t, base+"/vod/"+id+"/"+segs[0], http.Header{"Range": {"bytes=0-99"}})
	if resp.StatusCode != http.StatusPartialContent || resp.ContentLength != 100 {
		t.Errorf("a range of a segment: %d, %d bytes", resp.StatusCode, resp.ContentLength)
	}
	wantHeader(t, resp, "Cache-Control", cacheMedia)
	for _, path := range []string{"/vod/nobattle/index.m3u8", "/vod/" + id + "/seg999.m4s", "/vod/" + id + "/../x"} {
		if resp, _ := get(t, base+path, nil); resp.StatusCode != http.StatusNotFound {
			t.Errorf("%s: %d, want 404", path, resp.StatusCode)
		}
	}
	checkPlayable(t, base+"/vod/"+id+"/index.m3u8", 15*time.Second)
}

// A store that stops answering holds nothing up: the program's segments
// wait on the local disk and go up when it is back, none lost. Past the
// backlog bound, segments are dropped (a discontinuity) and the store's
// owner is told, once.
func TestS3OutageLosesNoSegment(t *testing.T) {
	whole := newS3Fixture(t, "")
	bounded := newS3Fixture(t, "&backlog_mb=1")
	var told []string
	var mu sync.Mutex
	sWhole := whole.open(t, S3Options{})
	sBounded := bounded.open(t, S3Options{BacklogFull: func(id string) {
		mu.Lock()
		told = append(told, id)
		mu.Unlock()
	}})
	recs := map[*S3]media.Recorder{}
	for s, id := range map[*S3]string{sWhole: "whole", sBounded: "bounded"} {
		rec, err := s.Create(id, program.Info)
		if err != nil {
			t.Fatal(err)
		}
		recs[s] = rec
	}
	start := time.Now()
	feed := func(from, length time.Duration) {
		t.Helper()
		for _, rec := range recs {
			if err := program.Feed(t.Context(), &shifted{rec, from, start}, length, 0); err != nil {
				t.Fatal(err)
			}
		}
	}
	feed(0, 4*time.Second)
	whole.waitPlaylist(t, "whole", "listing a segment", func(p string) bool { return strings.Contains(p, "#EXTINF") })

	if err := whole.srv.Stop(); err != nil {
		t.Fatal(err)
	}
	// 20 s of program while the store is down (fed faster than real time:
	// the uploads only see a store that does not answer).
	feed(4*time.Second, 20*time.Second)
	waitFor(t, func() bool { return len(whole.staged(t, "whole")) >= 8 })
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	defer cancel()
	if err := whole.srv.Restart(ctx); err != nil {
		t.Fatal(err)
	}
	// Once the backlog is up, the bounded recording takes segments again.
	waitFor(t, func() bool { return len(bounded.staged(t, "bounded")) == 2 }) // init.mp4, index.m3u8
	feed(24*time.Second, 4*time.Second)
	for _, rec := range recs {
		if err := rec.Close(true); err != nil {
			t.Fatal(err)
		}
	}

	final := whole.waitPlaylist(t, "whole", "finished", isFinished)
	segs := whole.checkInBucket(t, "whole", final)
	for i, name := range segs {
		if name != segmentName(i) {
			t.Fatalf("segment %d is %s: a segment was lost\n%s", i, name, final)
		}
	}
	if len(segs) < 12 || strings.Contains(final, "#EXT-X-DISCONTINUITY") {
		t.Errorf("%d segments for 28 s of program:\n%s", len(segs), final)
	}
	checkPlayable(t, serve(t, sWhole.Handler())+"/vod/whole/index.m3u8", 28*time.Second)

	final = bounded.waitPlaylist(t, "bounded", "finished", isFinished)
	if got := bounded.checkInBucket(t, "bounded", final); len(got) >= len(segs) || !strings.Contains(final, "#EXT-X-DISCONTINUITY") {
		t.Errorf("a recording past its backlog bound: %d segments (the whole one %d), and a discontinuity where they were dropped:\n%s",
			len(got), len(segs), final)
	}
	mu.Lock()
	if !slices.Equal(told, []string{"bounded"}) {
		t.Errorf("told of full backlogs: %v, want [bounded] once", told)
	}
	mu.Unlock()
}

// What a stopped server left staged goes up at the next start, its
// playlist finished; a recording another server (a dead origin) left
// open in the bucket is finished by whoever is told to.
func TestS3ResumeAndFinish(t *testing.T) {
	f := newS3Fixture(t, "")
	first := f.open(t, S3Options{})
	rec, err := first.Create("cut", program.Info)
	if err != nil {
		t.Fatal(err)
	}
	if err := program.Feed(t.Context(), rec, 9*time.Second, 0); err != nil {
		t.Fatal(err)
	}
	open := f.waitPlaylist(t, "cut", "listing a segment", func(p string) bool { return strings.Contains(p, "#EXTINF") })
	// The server stops, its uploads cut off, the recording not ended.
	stopped, cancel := context.WithCancel(t.Context())
	cancel()
	first.Close(stopped)
	if err := rec.Close(false); err != nil {
		t.Fatal(err)
	}
	staged := f.staged(t, "cut")

	// A server (another origin) finishes what is in the bucket.
	other := &s3Fixture{srv: f.srv, prefix: f.prefix, staging: t.TempDir(), url: f.url}
	o := other.open(t, S3Options{})
	o.Finish("cut")
	finished := f.waitPlaylist(t, "cut", "finished by another server", isFinished)
	if got, want := strings.Count(finished, "#EXTINF"), strings.Count(open, "#EXTINF"); got < want {
		t.Errorf("finished with %d segments, the bucket had %d", got, want)
	}
	f.checkInBucket(t, "cut", finished)

	// The first server starts again: the rest goes up.
	second := f.open(t, S3Options{})
	closed, err := second.Recover()
	if err != nil || !slices.Equal(closed, []string{"cut"}) {
		t.Fatalf("Recover: %v, %v (staged: %v)", closed, err, staged)
	}
	final := f.waitPlaylist(t, "cut", "whole", func(p string) bool {
		return isFinished(p) && strings.Count(p, "#EXTINF") >= 4
	})
	segs := f.checkInBucket(t, "cut", final)
	waitFor(t, func() bool { return f.staged(t, "cut") == nil })
	checkPlayable(t, serve(t, o.Handler())+"/vod/cut/index.m3u8", time.Duration(len(segs))*2*time.Second)
}

// Retention deletes old recordings from the bucket, not the ones being
// recorded.
func TestS3Purge(t *testing.T) {
	f := newS3Fixture(t, "")
	s := f.open(t, S3Options{})
	for _, id := range []string{"old1", "old2"} {
		rec, err := s.Create(id, program.Info)
		if err != nil {
			t.Fatal(err)
		}
		if err := program.Feed(t.Context(), rec, 3*time.Second, 0); err != nil {
			t.Fatal(err)
		}
		if err := rec.Close(true); err != nil {
			t.Fatal(err)
		}
		f.waitPlaylist(t, id, "finished", isFinished)
	}
	live, err := s.Create("live", program.Info)
	if err != nil {
		t.Fatal(err)
	}
	defer live.Close(true)
	if err := program.Feed(t.Context(), live, 3*time.Second, 0); err != nil {
		t.Fatal(err)
	}
	if purged, err := s.Purge(time.Hour); err != nil || len(purged) != 0 {
		t.Fatalf("Purge(1h) = %v, %v; want nothing old enough", purged, err)
	}
	purged, err := s.Purge(0)
	if err != nil {
		t.Fatal(err)
	}
	slices.Sort(purged)
	if !slices.Equal(purged, []string{"old1", "old2"}) {
		t.Fatalf("purged %v, want [old1 old2]", purged)
	}
	for _, key := range []string{"old1/" + playlistName, "old1/" + initName, "old2/" + segmentName(0)} {
		if _, ok := f.object(t, key); ok {
			t.Errorf("%s is still in the bucket", key)
		}
	}
	if _, ok := f.object(t, "live/"+initName); !ok {
		t.Error("the recording in progress was purged")
	}
}

func TestParseS3URL(t *testing.T) {
	tests := []struct {
		name, url string
		want      S3Location
		err       string
	}{
		{"AWS", "s3://bucket", S3Location{Bucket: "bucket", Endpoint: "s3.amazonaws.com", Secure: true, BacklogBytes: 1 << 30}, ""},
		{"prefix and endpoint", "s3://b/rec/ordings/?endpoint=http://127.0.0.1:8333&region=eu-1&backlog_mb=5",
			S3Location{Bucket: "b", Prefix: "rec/ordings/", Endpoint: "127.0.0.1:8333", Region: "eu-1", BacklogBytes: 5 << 20}, ""},
		{"https endpoint", "s3://b/p?endpoint=https://s3.example.org",
			S3Location{Bucket: "b", Prefix: "p/", Endpoint: "s3.example.org", Secure: true, BacklogBytes: 1 << 30}, ""},
		{"not s3", "http://b/p", S3Location{}, "must be s3://"},
		{"no bucket", "s3:///p", S3Location{}, "not a bucket"},
		{"keys in the URL", "s3://key:secret@b/p", S3Location{}, "AWS_ACCESS_KEY_ID"},
		{"endpoint with a path", "s3://b?endpoint=http://h/x", S3Location{}, "endpoint"},
		{"endpoint without a scheme", "s3://b?endpoint=h:1", S3Location{}, "endpoint"},
		{"bad backlog", "s3://b?backlog_mb=0", S3Location{}, "backlog_mb"},
		{"unknown parameter", "s3://b?secure=no", S3Location{}, "unknown parameter"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := ParseS3URL(tc.url)
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("error %v, want one saying %q", err, tc.err)
				}
				return
			}
			if err != nil || got != tc.want {
				t.Fatalf("= %+v, %v; want %+v", got, err, tc.want)
			}
		})
	}
}
