package battle

import (
	"net/netip"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/singoff/singoff/storage"
)

// View is the battle object of the HTTP contract.
type View struct {
	ID             string       `json:"id"`
	Title          string       `json:"title"`
	State          string       `json:"state"`
	CreatedAt      time.Time    `json:"created_at"`
	StartedAt      *time.Time   `json:"started_at"`
	EndedAt        *time.Time   `json:"ended_at"`
	DurationSecs   *float64     `json:"duration_seconds"`
	Singers        []SingerView `json:"singers"`
	Viewers        int          `json:"viewers"`
	HLSURL         string       `json:"hls_url"`
	VODURL         *string      `json:"vod_url"`
	RecordingError *string      `json:"recording_error,omitempty"`
	Rounds         int          `json:"rounds"`
	TurnSeconds    int          `json:"turn_seconds"`
	Round          int          `json:"round"`
	Turn           *int         `json:"turn"`
	TurnEndsAt     *time.Time   `json:"turn_ends_at"`
	VotingOpen     bool         `json:"voting_open"`
	VotingEndsAt   *time.Time   `json:"voting_ends_at"`
	Votes          [][2]int     `json:"votes"`
	Winner         *int         `json:"winner"`
}

// SingerView is one slot in the battle object.
type SingerView struct {
	Slot      int    `json:"slot"`
	Name      string `json:"name"`
	Connected bool   `json:"connected"`
}

func (a *API) view(c *gin.Context, b *storage.Battle) (View, error) {
	base := a.baseURL(c)
	v := View{
		ID:          b.ID,
		Title:       b.Title,
		State:       b.State,
		CreatedAt:   b.CreatedAt,
		StartedAt:   timeOrNil(b.StartedAt),
		EndedAt:     timeOrNil(b.EndedAt),
		HLSURL:      base + "/hls/" + b.ID + "/index.m3u8",
		Rounds:      b.Rounds,
		TurnSeconds: b.TurnSeconds,
	}
	if !b.StartedAt.IsZero() && !b.EndedAt.IsZero() {
		d := b.EndedAt.Sub(b.StartedAt).Seconds()
		v.DurationSecs = &d
	}
	var connected [2]bool
	if b.State != storage.StateEnded {
		connected = a.m.Connected(b.ID)
		v.Viewers = a.m.Viewers(b.ID)
	}
	for i := range 2 {
		name := b.SingerNames[i]
		if name == "" {
			name = "Singer " + string(rune('1'+i))
		}
		v.Singers = append(v.Singers, SingerView{Slot: i + 1, Name: name, Connected: connected[i]})
	}
	if b.Recorded {
		u := base + "/vod/" + b.ID + "/index.m3u8"
		v.VODURL = &u
	}
	if b.RecordingError != "" {
		v.RecordingError = &b.RecordingError
	}
	tally, err := a.m.cfg.Store.Tally(c.Request.Context(), b.ID, max(b.Rounds, 1))
	if err != nil {
		return v, err
	}
	v.Votes = tally
	tl := a.m.Timeline(b, time.Now())
	v.Round, v.VotingOpen = tl.Round, tl.VotingOpen
	if tl.Turn != 0 {
		v.Turn, v.TurnEndsAt = &tl.Turn, &tl.TurnEndsAt
	}
	if tl.VotingOpen {
		v.VotingEndsAt = &tl.VotingEnds
	}
	if tl.Finished {
		w := winner(tally)
		v.Winner = &w
	}
	return v, nil
}

func timeOrNil(t time.Time) *time.Time {
	if t.IsZero() {
		return nil
	}
	return &t
}

// baseURL is the scheme and host the client used, so returned URLs work
// behind a TLS-terminating proxy (X-Forwarded-Proto/Host, honoured only
// from trusted proxies).
func (a *API) baseURL(c *gin.Context) string {
	scheme := "http"
	if c.Request.TLS != nil {
		scheme = "https"
	}
	host := c.Request.Host
	if a.fromTrustedProxy(c) {
		if p := c.GetHeader("X-Forwarded-Proto"); p == "https" || p == "http" {
			scheme = p
		}
		if h := c.GetHeader("X-Forwarded-Host"); h != "" {
			host = h
		}
	}
	return scheme + "://" + host
}

// fromTrustedProxy tells whether the direct peer is one of the proxies
// the server was told to trust.
func (a *API) fromTrustedProxy(c *gin.Context) bool {
	peer, err := netip.ParseAddr(c.RemoteIP())
	if err != nil {
		return false
	}
	for _, p := range a.trusted {
		if p.Contains(peer.Unmap()) {
			return true
		}
	}
	return false
}
