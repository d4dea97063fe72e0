package web_test

import (
	"bufio"
	"context"
	"net/http"
	"sync"
	"testing"
)

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
