package web_test

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/cookiejar"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/singoff/singoff/internal/app"
	"github.com/singoff/singoff/internal/pgtest"
	"github.com/singoff/singoff/web"
)

// BenchmarkAPI measures API requests per second against the whole server
// on each metadata store: SQLite in the data dir (the default, one
// server) and PostgreSQL (a private server with its durability on and
// commits unsynced, as SQLite's WAL with synchronous=NORMAL; one origin
// advertising itself). The mix, over 20 started battles: 70% battle
// reads, 10% lists of 20, 15% votes (a watcher replacing its vote),
// 5% battle creations; clients in parallel, keep-alive.
//
//	go test -run '^$' -bench BenchmarkAPI -benchtime 20000x ./web
func BenchmarkAPI(b *testing.B) {
	limits := web.Limits{CreatesPerMinute: 1 << 30, VotesPerMinute: 1 << 30, ReadsPerMinute: 1 << 30, Burst: 1 << 20}
	b.Run("store=sqlite", func(b *testing.B) {
		benchAPI(b, newServer(b, app.Config{Limits: limits}).URL)
	})
	b.Run("store=postgres", func(b *testing.B) {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		defer cancel()
		pg, err := pgtest.Start(ctx, pgtest.Options{Durable: true})
		if err != nil {
			b.Fatal(err)
		}
		defer pg.Stop()
		db, err := pg.NewDatabase(ctx)
		if err != nil {
			b.Fatal(err)
		}
		benchAPI(b, newOrigin(b, db, app.Config{Limits: limits}).URL)
	})
}

func benchAPI(b *testing.B, base string) {
	const battles = 20
	ids := make([]string, battles)
	for i := range ids {
		c := create(b, base, `{"title":"bench","rounds":9,"turn_seconds":600}`)
		if status, _, _ := call(b, http.MethodPost, base+"/api/battles/"+c.ID+"/start", c.HostToken, "", ""); status != http.StatusOK {
			b.Fatalf("start: %d", status)
		}
		ids[i] = c.ID
	}
	transport := &http.Transport{MaxIdleConnsPerHost: 64}
	defer transport.CloseIdleConnections()
	var next, failed atomic.Int64
	b.SetParallelism(4) // clients per core
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		jar, _ := cookiejar.New(nil)
		client := &http.Client{Transport: transport, Jar: jar, Timeout: 30 * time.Second}
		for pb.Next() {
			i := next.Add(1)
			id := ids[i%battles]
			var req *http.Request
			switch i % 20 {
			case 0:
				req, _ = http.NewRequest(http.MethodPost, base+"/api/battles", strings.NewReader(`{"title":"more"}`))
				req.Header.Set("Content-Type", "application/json")
			case 1, 2, 3:
				req, _ = http.NewRequest(http.MethodPost, base+"/api/battles/"+id+"/votes", strings.NewReader(fmt.Sprintf(`{"slot":%d}`, 1+i%2)))
				req.Header.Set("Content-Type", "application/json")
			case 4, 5:
				req, _ = http.NewRequest(http.MethodGet, base+"/api/battles?limit=20", nil)
			default:
				req, _ = http.NewRequest(http.MethodGet, base+"/api/battles/"+id, nil)
			}
			resp, err := client.Do(req)
			if err != nil {
				failed.Add(1)
				continue
			}
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode >= 300 {
				failed.Add(1)
			}
		}
	})
	b.StopTimer()
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "requests/s")
	if n := failed.Load(); n > 0 {
		b.Errorf("%d of %d requests failed", n, b.N)
	}
}
