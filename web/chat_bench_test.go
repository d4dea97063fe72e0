package web_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/singoff/singoff/internal/app"
)

// Figures of the chat benchmark.
const (
	chatBenchSubscribers = 2000
	chatBenchRate        = 20 // messages a second
	chatBenchFor         = 10 * time.Second
)

// BenchmarkChatFanOut is the bar of the chat: 2,000 subscribers of one
// battle's events stream while 20 messages a second are posted, each by
// a watcher of its own network (issued by the watch page). Each
// iteration posts 10 s of messages and reports their delivery: from the
// moment a post is sent to the moment a subscriber has read its `event:
// chat`, over every message and subscriber (the bar: p99 ≤ 200 ms), and
// the deliveries missed. The whole server runs in this process (real
// SQLite, the real events hub), its clients over loopback HTTP.
func BenchmarkChatFanOut(b *testing.B) {
	srv := newServer(b, app.Config{TrustedProxies: []string{"127.0.0.1"}})
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 256}, Timeout: 30 * time.Second}
	for b.Loop() {
		r := runChatRound(b, srv.URL, client)
		b.ReportMetric(r.latencies.p(50), "delivery-p50-ms")
		b.ReportMetric(r.latencies.p(99), "delivery-p99-ms")
		b.ReportMetric(r.latencies.p(100), "delivery-max-ms")
		b.ReportMetric(r.postP99, "post-p99-ms")
		b.ReportMetric(float64(r.missed), "deliveries-missed")
		b.Logf("%d subscribers, %d messages at %d/s: delivery p50 %.1f ms, p99 %.1f ms, max %.1f ms over %d deliveries, %d missed; post p99 %.1f ms",
			chatBenchSubscribers, r.messages, chatBenchRate, r.latencies.p(50), r.latencies.p(99), r.latencies.p(100), len(r.latencies), r.missed, r.postP99)
	}
}

type chatRound struct {
	messages  int
	latencies millis // sorted
	missed    int
	postP99   float64
}

func runChatRound(b *testing.B, base string, client *http.Client) chatRound {
	n := int(chatBenchFor.Seconds()) * chatBenchRate
	created := createBenchBattle(b, client, base, `{"title":"chat fan-out"}`)

	posters := watcherCookies(b, client, base, created.ID, n)

	// sent[i] is when message i's post was sent.
	sent := make([]time.Time, n)
	var sentMu sync.RWMutex
	sentAt := func(i int) time.Time {
		sentMu.RLock()
		defer sentMu.RUnlock()
		return sent[i]
	}

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	type subscriber struct {
		mu        sync.Mutex
		got       int
		latencies []float64
		chatEvent bool // the stream's reader's own
	}
	subs := make([]subscriber, chatBenchSubscribers)
	wait := subscribeAll(ctx, base, created.ID, len(subs), func(i int, line string) {
		s := &subs[i]
		switch {
		case line == "event: chat":
			s.chatEvent = true
		case s.chatEvent && strings.HasPrefix(line, "data: "):
			at := time.Now()
			s.chatEvent = false
			var m struct {
				Text string `json:"text"`
			}
			var k int
			if json.Unmarshal([]byte(line[len("data: "):]), &m) != nil {
				return
			}
			if _, err := fmt.Sscanf(m.Text, "message %d", &k); err != nil || k < 0 || k >= n {
				return
			}
			s.mu.Lock()
			s.got++
			s.latencies = append(s.latencies, float64(at.Sub(sentAt(k)).Microseconds())/1000)
			s.mu.Unlock()
		}
	})
	time.Sleep(time.Second) // every stream has its first event

	posts := postAtRate(b, client, n, chatBenchRate, posters, http.StatusCreated, func(i int) *http.Request {
		req, _ := http.NewRequest("POST", base+"/api/battles/"+created.ID+"/chat",
			strings.NewReader(fmt.Sprintf(`{"name":"w%d","text":"message %d"}`, i, i)))
		return req
	}, func(i int, at time.Time) {
		sentMu.Lock()
		sent[i] = at
		sentMu.Unlock()
	})

	// Every subscriber gets every message, or the wait runs out.
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		all := true
		for i := range subs {
			subs[i].mu.Lock()
			all = all && subs[i].got >= n
			subs[i].mu.Unlock()
		}
		if all {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	cancel()
	wait()
	r := chatRound{messages: n}
	for i := range subs {
		r.latencies = append(r.latencies, subs[i].latencies...)
		r.missed += n - subs[i].got
	}
	r.latencies.sort()
	posts.sort()
	r.postP99 = posts.p(99)
	return r
}
