package web_test

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/singoff/singoff/internal/app"
)

// Figures of the events benchmark.
const (
	benchSubscribers = 2000
	benchVoteRate    = 50 // votes a second
	benchVoting      = 10 * time.Second
)

// BenchmarkEventsFanOut is the bar of the events stream: 2,000
// subscribers on one battle while votes arrive at 50 a second. Each
// iteration casts 10 s of votes, every one from its own watcher (issued
// by the watch page before the round) and network, and reports the
// votes' latency (the bar: p99 ≤ 100 ms) and whether every subscriber
// got every event the battle's feed published, the last tally included.
// The whole server runs in this process (real SQLite, the real events
// hub), its clients over loopback HTTP.
func BenchmarkEventsFanOut(b *testing.B) {
	// The test's clients stand for many networks, as a real audience.
	srv := newServer(b, app.Config{MinTurnSeconds: 1, TrustedProxies: []string{"127.0.0.1"}})
	transport := &http.Transport{MaxIdleConnsPerHost: 256}
	client := &http.Client{Transport: transport, Timeout: 30 * time.Second}

	for b.Loop() {
		r := runEventsRound(b, srv.URL, client)
		b.ReportMetric(r.latencies.p(50), "vote-p50-ms")
		b.ReportMetric(r.latencies.p(99), "vote-p99-ms")
		b.ReportMetric(float64(r.events), "events")
		b.ReportMetric(float64(r.missed), "events-missed")
		b.ReportMetric(float64(r.lastTallyMissing), "subscribers-without-last-tally")
		b.Logf("%d subscribers, %d votes at %d/s: vote p50 %.1f ms, p99 %.1f ms, max %.1f ms; %d events published, %d missed by subscribers, %d subscribers without the last tally",
			benchSubscribers, len(r.latencies), benchVoteRate, r.latencies.p(50), r.latencies.p(99), r.latencies.p(100), r.events, r.missed, r.lastTallyMissing)
	}
}

type eventsRound struct {
	latencies        millis // sorted
	events           int    // the most events a subscriber got
	missed           int    // events subscribers got fewer than that, summed
	lastTallyMissing int
}

// benchNetwork is the i-th client network of the audience.
func benchNetwork(i int) string { return fmt.Sprintf("10.%d.%d.1", i/250, i%250) }

func runEventsRound(b *testing.B, base string, client *http.Client) eventsRound {
	votes := int(benchVoting.Seconds()) * benchVoteRate
	created := createBenchBattle(b, client, base, `{"title":"fan-out","rounds":1,"turn_seconds":600}`)

	// The voters open the watch page before the round.
	voters := watcherCookies(b, client, base, created.ID, votes)

	// The subscribers: each counts the battle events it gets and keeps
	// the last one.
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	type subscriber struct {
		mu          sync.Mutex
		events      int
		last        string
		battleEvent bool // the stream's reader's own
	}
	subs := make([]subscriber, benchSubscribers)
	wait := subscribeAll(ctx, base, created.ID, benchSubscribers, func(i int, line string) {
		s := &subs[i]
		switch {
		case line == "event: battle":
			s.battleEvent = true
		case s.battleEvent && strings.HasPrefix(line, "data: "):
			s.mu.Lock()
			s.events++
			s.last = line
			s.mu.Unlock()
			s.battleEvent = false
		}
	})
	req, _ := http.NewRequest("POST", base+"/api/battles/"+created.ID+"/start", nil)
	req.Header.Set("Authorization", "Bearer "+created.HostToken)
	if resp, err := client.Do(req); err != nil || resp.StatusCode != 200 {
		b.Fatalf("start: %v", err)
	} else {
		resp.Body.Close()
	}

	latencies := postAtRate(b, client, votes, benchVoteRate, voters, http.StatusNoContent, func(i int) *http.Request {
		req, _ := http.NewRequest("POST", base+"/api/battles/"+created.ID+"/votes", strings.NewReader(fmt.Sprintf(`{"slot":%d}`, 1+i%2)))
		return req
	}, nil)

	// Every subscriber must come to the last tally; then it has had all
	// it will get.
	want := fmt.Sprintf(`"votes":[[%d,%d]]`, (votes+1)/2, votes/2)
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		time.Sleep(200 * time.Millisecond)
		missing := 0
		for i := range subs {
			subs[i].mu.Lock()
			if !strings.Contains(subs[i].last, want) {
				missing++
			}
			subs[i].mu.Unlock()
		}
		if missing == 0 {
			break
		}
	}
	cancel()
	wait()
	r := eventsRound{latencies: latencies}
	for i := range subs {
		r.events = max(r.events, subs[i].events)
		if !strings.Contains(subs[i].last, want) {
			r.lastTallyMissing++
		}
	}
	for i := range subs {
		r.missed += r.events - subs[i].events
	}
	r.latencies.sort()
	return r
}
