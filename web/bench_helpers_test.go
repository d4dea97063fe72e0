package web_test

import (
	"bufio"
	"context"
	"encoding/json"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
)

// millis are durations in milliseconds, sorted by sort.
type millis []float64

func (m millis) sort() { slices.Sort(m) }

// p is the q-th percentile (0–100) of sorted m; 0 when m is empty.
func (m millis) p(q float64) float64 {
	if len(m) == 0 {
		return 0
	}
	return m[min(len(m)-1, int(q/100*float64(len(m))))]
}

// watcherCookies opens battle id's watch page n times: the identities
// of n watchers.
func watcherCookies(b *testing.B, client *http.Client, base, id string, n int) []*http.Cookie {
	b.Helper()
	cookies := make([]*http.Cookie, n)
	for i := range cookies {
		resp, err := client.Get(base + "/b/" + id)
		if err != nil {
			b.Fatal(err)
		}
		resp.Body.Close()
		cookies[i] = resp.Cookies()[0]
	}
	return cookies
}

// subscribeAll opens n events streams on battle id, each on a connection
// of its own from network benchNetwork(i), and calls onLine(i, line)
// with every line stream i reads until ctx ends. It returns once every
// stream has been asked for; wait waits for them to end.
func subscribeAll(ctx context.Context, base, id string, n int, onLine func(i int, line string)) (wait func()) {
	var opened, done sync.WaitGroup
	opened.Add(n)
	for i := range n {
		done.Go(func() {
			req, _ := http.NewRequestWithContext(ctx, "GET", base+"/api/battles/"+id+"/events", nil)
			req.Header.Set("X-Forwarded-For", benchNetwork(i))
			resp, err := http.DefaultTransport.RoundTrip(req)
			opened.Done()
			if err != nil {
				return
			}
			defer resp.Body.Close()
			sc := bufio.NewScanner(resp.Body)
			sc.Buffer(make([]byte, 64<<10), 1<<20)
			for sc.Scan() {
				onLine(i, sc.Text())
			}
		})
	}
	opened.Wait()
	return done.Wait
}

// benchBattle is a battle a benchmark created.
type benchBattle struct {
	ID        string `json:"id"`
	HostToken string `json:"host_token"`
}

// createBenchBattle creates a battle from the JSON body.
func createBenchBattle(b *testing.B, client *http.Client, base, body string) benchBattle {
	b.Helper()
	resp, err := client.Post(base+"/api/battles", "application/json", strings.NewReader(body))
	if err != nil {
		b.Fatal(err)
	}
	defer resp.Body.Close()
	var created benchBattle
	if err := json.NewDecoder(resp.Body).Decode(&created); err != nil || resp.StatusCode != http.StatusCreated {
		b.Fatalf("creating the battle: %d, %v", resp.StatusCode, err)
	}
	return created
}

// postAtRate sends n requests, rate a second: request i is made by
// newRequest(i) and comes from watcher cookies[i] on network
// benchNetwork(i). It returns how long each took to be answered, in
// order; an answer other than want fails b. sent, when not nil, is told
// when request i goes out.
func postAtRate(b *testing.B, client *http.Client, n, rate int, cookies []*http.Cookie, want int,
	newRequest func(i int) *http.Request, sent func(i int, at time.Time)) millis {
	took := make(millis, n)
	tick := time.NewTicker(time.Second / time.Duration(rate))
	defer tick.Stop()
	var posting sync.WaitGroup
	for i := range n {
		<-tick.C
		posting.Go(func() {
			req := newRequest(i)
			req.Header.Set("Content-Type", "application/json")
			req.Header.Set("X-Forwarded-For", benchNetwork(i))
			req.AddCookie(cookies[i])
			start := time.Now()
			if sent != nil {
				sent(i, start)
			}
			resp, err := client.Do(req)
			took[i] = float64(time.Since(start).Microseconds()) / 1000
			if err != nil {
				b.Error(err)
				return
			}
			resp.Body.Close()
			if resp.StatusCode != want {
				b.Errorf("request %d: %d, want %d", i, resp.StatusCode, want)
			}
		})
	}
	posting.Wait()
	return took
}
