package e2e

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/minio/minio-go/v7"

	"github.com/singoff/singoff/internal/pgtest"
	"github.com/singoff/singoff/internal/s3test"
)

// Several origins on one machine, all real: a private PostgreSQL, a
// SeaweedFS S3 server, singoff origins sharing them, nginx in front.

// edgeAddr is the address the edge connects to the origins from: the
// origins trust it as a proxy, and only it (the tests' own requests come
// from 127.0.0.1, as a client straight to an origin would).
const edgeAddr = "127.0.0.2"

// recordingsBucket is the bucket of the tests' recordings.
const recordingsBucket = "singoff"

// shared is what several origins share.
type shared struct {
	database   string
	recordings string
	s3         *s3test.Server
	// watcherKey is the file of the key that signs the watchers'
	// identities, the same on every origin.
	watcherKey string
}

// startShared starts PostgreSQL and the S3 server for a test.
func startShared(t *testing.T) *shared {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	defer cancel()
	pg, err := pgtest.Start(ctx, pgtest.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { pg.Stop() })
	db, err := pg.NewDatabase(ctx)
	if err != nil {
		t.Fatal(err)
	}
	sh := startS3(t)
	sh.database = db
	sh.watcherKey = filepath.Join(t.TempDir(), "watcher.key")
	return sh
}

// startS3 starts the S3 server for a test, with the recordings bucket;
// the servers the test starts find its keys in their environment.
func startS3(t *testing.T) *shared {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	defer cancel()
	s3, err := s3test.Start(ctx)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s3.Close() })
	if err := s3.NewBucket(ctx, recordingsBucket); err != nil {
		t.Fatal(err)
	}
	for _, kv := range s3.Env() {
		k, v, _ := strings.Cut(kv, "=")
		t.Setenv(k, v)
	}
	return &shared{recordings: s3.URL(recordingsBucket, "recordings"), s3: s3}
}

// startOrigin starts an origin on the shared database and bucket.
func (sh *shared) startOrigin(t *testing.T, extra ...string) *server {
	t.Helper()
	listen := freeAddr(t)
	args := append([]string{
		"--database", sh.database,
		"--recordings", sh.recordings,
		"--advertise-url", "http://" + listen,
		"--trusted-proxy", edgeAddr,
		"--watcher-key-file", sh.watcherKey,
	}, extra...)
	return startServerOn(t, false, listen, args...)
}

// startEdge runs deploy/nginx-origins.conf in front of origins.
func startEdge(t *testing.T, origins ...*server) string {
	t.Helper()
	var servers strings.Builder
	for _, o := range origins {
		fmt.Fprintf(&servers, "server %s; ", strings.TrimPrefix(o.base, "http://"))
	}
	return startNginx(t, "nginx-origins.conf", map[string]string{"SINGOFF_ORIGIN_SERVERS": servers.String()},
		"proxy_bind "+edgeAddr+";")
}

// owner is the origin of origins whose base hls_url names.
func owner(t testing.TB, hlsURL string, origins ...*server) *server {
	t.Helper()
	for _, o := range origins {
		if strings.HasPrefix(hlsURL, o.base+"/") {
			return o
		}
	}
	t.Fatalf("hls_url %s names none of the origins", hlsURL)
	return nil
}

// TestSeveralOrigins: battles created through either origin are spread
// over both; singers publishing to the wrong origin are redirected to the
// right one; the program plays through the edge, which routes by battle
// id; votes cast on either origin are all counted; and when an origin is
// killed the other ends its battles within 30 s, their recordings
// playing from the bucket.
func TestSeveralOrigins(t *testing.T) {
	sh := startShared(t)
	a := sh.startOrigin(t, "--min-turn-seconds", "5")
	b := sh.startOrigin(t, "--min-turn-seconds", "5")
	edge := startEdge(t, a, b)

	// Spread: created through either origin, placed on both.
	per := map[*server][]battle{}
	for i := range 4 {
		via := []*server{a, b}[i%2]
		var bt battle
		via.call(t, http.MethodPost, "/api/battles", "", map[string]any{"title": fmt.Sprint("battle ", i), "rounds": 1, "turn_seconds": 30},
			http.StatusCreated, &bt)
		o := owner(t, bt.HLSURL, a, b)
		per[o] = append(per[o], bt)
	}
	if len(per[a]) != 2 || len(per[b]) != 2 {
		t.Fatalf("battles per origin: %d and %d, want 2 each", len(per[a]), len(per[b]))
	}
	onA, onB := per[a][0], per[b][0]

	// A WHIP POST to the origin that does not run the battle: 307 to the
	// one that does, the path kept.
	noRedirect := &http.Client{Timeout: 10 * time.Second, CheckRedirect: func(*http.Request, []*http.Request) error {
		return http.ErrUseLastResponse
	}}
	req, _ := http.NewRequest(http.MethodPost, b.base+"/api/battles/"+onA.ID+"/singers/1/whip", strings.NewReader(sdpOffer(t)))
	req.Header.Set("Content-Type", "application/sdp")
	req.Header.Set("Authorization", "Bearer "+onA.SingerTokens[0])
	res, err := noRedirect.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if want := a.base + "/api/battles/" + onA.ID + "/singers/1/whip"; res.StatusCode != http.StatusTemporaryRedirect || res.Header.Get("Location") != want {
		t.Fatalf("WHIP on the other origin: %d, Location %q; want 307 to %s", res.StatusCode, res.Header.Get("Location"), want)
	}

	// Bots publish through the other origin, following the redirect.
	for _, p := range []struct {
		via *server
		bt  battle
	}{{b, onA}, {a, onB}} {
		p.via.startBot(t, p.bt, 1)
		p.via.startBot(t, p.bt, 2)
	}
	for _, bt := range []battle{onA, onB} {
		waitFor(t, "both singers connected, seen from either origin", 30*time.Second, func() bool {
			for _, o := range []*server{a, b} {
				got := o.battle(t, bt.ID)
				if got.State != "live" || !got.Singers[0].Connected || !got.Singers[1].Connected {
					return false
				}
			}
			return true
		})
	}

	// Through the edge: the battle object names the edge, and the
	// program plays from it (routed to the battle's origin).
	var viaEdge battle
	edgeClient := &server{base: edge, client: &http.Client{Timeout: 10 * time.Second}}
	edgeClient.call(t, http.MethodGet, "/api/battles/"+onA.ID, "", nil, http.StatusOK, &viaEdge)
	if want := edge + "/hls/" + onA.ID + "/index.m3u8"; viaEdge.HLSURL != want {
		t.Fatalf("hls_url through the edge: %s, want %s", viaEdge.HLSURL, want)
	}
	live := edgeClient.liveProgram(t, onA.ID)
	checkProgram(t, "the program through the edge", live)
	decodesCleanly(t, live, 3*time.Second)
	if status, _ := edgeClient.get(t, edge+"/hls/nosuchbattle/index.m3u8"); status != http.StatusNotFound {
		t.Errorf("an unknown battle through the edge: %d, want 404", status)
	}

	// Votes cast on either origin all count, on both: the watchers'
	// identities, issued by the battle's watch page before the start,
	// are signed with the key the origins share.
	slots := []int{1, 2, 2, 1, 2}
	watchers := make([]*http.Client, len(slots))
	for i := range watchers {
		watchers[i] = []*server{a, b}[i%2].newWatcher(t, onA.ID)
	}
	a.call(t, http.MethodPost, "/api/battles/"+onA.ID+"/start", onA.HostToken, nil, http.StatusOK, nil)
	want := [2]int{}
	for i, slot := range slots {
		via := []*server{a, b}[i%2]
		if status := via.vote(t, watchers[i], onA.ID, slot); status != http.StatusNoContent {
			t.Fatalf("vote %d through %s: %d", i, via.base, status)
		}
		want[slot-1]++
	}
	for _, o := range []*server{a, b} {
		var got formatBattle
		o.call(t, http.MethodGet, "/api/battles/"+onA.ID, "", nil, http.StatusOK, &got)
		if len(got.Votes) != 1 || got.Votes[0] != want {
			t.Errorf("votes on %s: %v, want [%v]", o.base, got.Votes, want)
		}
	}

	// Kill -9 of the origin running onA: the other ends its battles.
	vod := b.base + "/vod/" + onA.ID + "/index.m3u8"
	waitFor(t, "recorded segments in the bucket", 30*time.Second, func() bool {
		status, body := b.get(t, vod)
		return status == http.StatusOK && strings.Count(body, "#EXTINF") >= 2
	})
	a.kill(t)
	killed := time.Now()
	waitFor(t, "the dead origin's battle ended", 30*time.Second, func() bool {
		return b.battle(t, onA.ID).State == "ended"
	})
	t.Logf("the dead origin's battle ended %v after the kill", time.Since(killed).Round(100*time.Millisecond))
	waitFor(t, "its other battle moved to the live origin", 10*time.Second, func() bool {
		return owner(t, b.battle(t, per[a][1].ID).HLSURL, a, b) == b
	})
	if got := b.battle(t, onB.ID); got.State != "live" {
		t.Errorf("the live origin's own battle: %s", got.State)
	}
	got := b.battle(t, onA.ID)
	if got.VODURL == nil || *got.VODURL != vod {
		t.Fatalf("vod_url of the dead origin's battle: %v, want %s", got.VODURL, vod)
	}
	waitFor(t, "its recording finished in the bucket", 30*time.Second, func() bool {
		_, body := b.get(t, vod)
		return strings.Contains(body, "#EXT-X-ENDLIST")
	})
	checkProgram(t, "the dead origin's recording", vod)
	decodesCleanly(t, vod, 0)
}

var segmentLine = regexp.MustCompile(`(?m)^seg(\d+)\.m4s$`)

// TestS3OutageLosesNoSegment: the S3 server stops for 20 s in the middle
// of a battle; the program goes on, and once the battle has ended its
// recording in the bucket holds every segment.
func TestS3OutageLosesNoSegment(t *testing.T) {
	sh := startS3(t)
	o := startServer(t, false, "--recordings", sh.recordings)
	bt := o.createBattle(t, "outage")
	o.startBot(t, bt, 1)
	o.startBot(t, bt, 2)
	waitFor(t, "live", 30*time.Second, func() bool { return o.battle(t, bt.ID).State == "live" })
	vod := o.base + "/vod/" + bt.ID + "/index.m3u8"
	waitFor(t, "segments in the bucket", 30*time.Second, func() bool {
		status, body := o.get(t, vod)
		return status == http.StatusOK && strings.Count(body, "#EXTINF") >= 2
	})
	liveSince := time.Now()
	seqBefore := o.liveSequence(t, bt.ID)
	if err := sh.s3.Stop(); err != nil {
		t.Fatal(err)
	}
	time.Sleep(20 * time.Second)
	// The live program went on meanwhile.
	if seq := o.liveSequence(t, bt.ID); seq <= seqBefore+10 {
		t.Errorf("the live program's media sequence went from %d to %d in 20 s", seqBefore, seq)
	}
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	defer cancel()
	if err := sh.s3.Restart(ctx); err != nil {
		t.Fatal(err)
	}
	time.Sleep(4 * time.Second)
	var ended battle
	o.call(t, http.MethodPost, "/api/battles/"+bt.ID+"/end", bt.HostToken, nil, http.StatusOK, &ended)
	duration := time.Since(liveSince)

	var playlist string
	waitFor(t, "the recording finished in the bucket", 60*time.Second, func() bool {
		playlist = bucketObject(t, sh.s3, "recordings/"+bt.ID+"/index.m3u8")
		return strings.Contains(playlist, "#EXT-X-ENDLIST")
	})
	segs := segmentLine.FindAllStringSubmatch(playlist, -1)
	for i, m := range segs {
		if m[1] != fmt.Sprint(i) {
			t.Fatalf("segment %d of the recording is seg%s.m4s: one was lost\n%s", i, m[1], playlist)
		}
		if bucketObject(t, sh.s3, "recordings/"+bt.ID+"/seg"+m[1]+".m4s") == "" {
			t.Fatalf("seg%s.m4s is listed but not in the bucket", m[1])
		}
	}
	if strings.Contains(playlist, "#EXT-X-DISCONTINUITY") || time.Duration(len(segs)+1)*2*time.Second < duration {
		t.Errorf("%d segments for a battle live %v before its end, or a discontinuity:\n%s", len(segs), duration.Round(time.Second), playlist)
	}
	checkProgram(t, "the recording after an outage", vod)
	decodesCleanly(t, vod, 0)
}

// bucketObject reads an object of the recordings bucket ("" when it is
// not there).
func bucketObject(t testing.TB, s3 *s3test.Server, key string) string {
	t.Helper()
	obj, err := s3.Client.GetObject(t.Context(), recordingsBucket, key, minio.GetObjectOptions{})
	if err != nil {
		return ""
	}
	defer obj.Close()
	b, err := io.ReadAll(obj)
	if err != nil {
		return ""
	}
	return string(b)
}
