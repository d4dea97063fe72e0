// Package testorigin serves a live LL-HLS program for the load tests and
// benchmarks: an hls.Server on 127.0.0.1 fed in real time by a
// testprogram, behind a handler that counts the requests it gets by kind.
package testorigin

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/singoff/singoff/hls"
	"github.com/singoff/singoff/internal/testprogram"
)

// BattleID is the id of the one battle an Origin serves.
const BattleID = "loadtest"

// CountsPath is where an Origin serves its Counts as JSON.
const CountsPath = "/counts"

// Counts are the requests an Origin got. Blocking playlist reloads and
// parts are also counted by distinct URL, so that a test can tell how
// many times each was asked for.
type Counts struct {
	Playlists         int // multivariant and plain media playlist requests
	BlockingPlaylists int
	Inits             int
	Parts             int
	Other             int
	DistinctBlocking  int // distinct (playlist, _HLS_msn, _HLS_part, _HLS_skip)
	DistinctParts     int
}

// Origin is a running origin.
type Origin struct {
	// URL is the origin's root, e.g. http://127.0.0.1:41234.
	URL string

	server *http.Server
	hls    *hls.Server
	stop   context.CancelFunc
	fed    chan struct{}

	mu       sync.Mutex
	counts   Counts
	blocking map[string]struct{}
	parts    map[string]struct{}
}

// Start serves program, looped at real time, as battle BattleID on a
// free port of 127.0.0.1 until Close.
func Start(program *testprogram.Program, logger *slog.Logger) (*Origin, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	o := &Origin{
		URL:      "http://" + ln.Addr().String(),
		hls:      hls.NewServer(logger, nil),
		fed:      make(chan struct{}),
		blocking: make(map[string]struct{}),
		parts:    make(map[string]struct{}),
	}
	muxer, err := o.hls.Start(BattleID, program.Info)
	if err != nil {
		ln.Close()
		return nil, err
	}
	mux := http.NewServeMux()
	mux.Handle("/hls/{id}/{file}", o.count(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		// Behind the edge every viewer is the edge's address.
		client, _, err := net.SplitHostPort(r.RemoteAddr)
		if err != nil {
			client = r.RemoteAddr
		}
		o.hls.Serve(w, r, r.PathValue("id"), r.PathValue("file"), client)
	})))
	mux.HandleFunc(CountsPath, func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(o.Counts())
	})
	// No write timeout: blocking playlist reloads wait for their part.
	o.server = &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	go o.server.Serve(ln)

	ctx, cancel := context.WithCancel(context.Background())
	o.stop = cancel
	go func() {
		defer close(o.fed)
		if err := program.Feed(ctx, muxer, 24*time.Hour, 1); err != nil && !errors.Is(err, context.Canceled) {
			logger.Error("testorigin: feeding the program", "err", err)
		}
	}()
	return o, nil
}

// PlaylistURL is the multivariant playlist of the origin's battle.
func (o *Origin) PlaylistURL() string {
	return o.URL + "/hls/" + BattleID + "/index.m3u8"
}

// Counts returns the requests counted so far.
func (o *Origin) Counts() Counts {
	o.mu.Lock()
	defer o.mu.Unlock()
	c := o.counts
	c.DistinctBlocking = len(o.blocking)
	c.DistinctParts = len(o.parts)
	return c
}

// Close stops the feed and the server.
func (o *Origin) Close() {
	o.stop()
	<-o.fed
	o.hls.End(BattleID)
	o.server.Close()
}

func (o *Origin) count(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		name := r.URL.Path[strings.LastIndexByte(r.URL.Path, '/')+1:]
		q := r.URL.Query()
		o.mu.Lock()
		switch {
		case strings.HasSuffix(name, ".m3u8") && q.Has("_HLS_msn"):
			o.counts.BlockingPlaylists++
			o.blocking[fmt.Sprintf("%s?%s/%s/%s", name, q.Get("_HLS_msn"), q.Get("_HLS_part"), q.Get("_HLS_skip"))] = struct{}{}
		case strings.HasSuffix(name, ".m3u8"):
			o.counts.Playlists++
		case strings.HasSuffix(name, "_init.mp4"):
			o.counts.Inits++
		case strings.Contains(name, "_part") && strings.HasSuffix(name, ".mp4"):
			o.counts.Parts++
			o.parts[name] = struct{}{}
		default:
			o.counts.Other++
		}
		o.mu.Unlock()
		next.ServeHTTP(w, r)
	})
}

// GetCounts fetches the Counts of the origin at root (its URL).
func GetCounts(ctx context.Context, root string) (Counts, error) {
	var c Counts
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, root+CountsPath, nil)
	if err != nil {
		return c, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return c, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return c, fmt.Errorf("GET %s: %s", req.URL, resp.Status)
	}
	return c, json.NewDecoder(resp.Body).Decode(&c)
}
