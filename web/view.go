package web

import (
	"time"

	"github.com/singoff/singoff/battle"
)

// view is the battle object of the HTTP contract.
type view struct {
	ID             string       `json:"id"`
	Title          string       `json:"title"`
	State          string       `json:"state"`
	CreatedAt      time.Time    `json:"created_at"`
	StartedAt      *time.Time   `json:"started_at"`
	EndedAt        *time.Time   `json:"ended_at"`
	DurationSecs   *float64     `json:"duration_seconds"`
	Singers        []singerView `json:"singers"`
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
	// The audience: the cheers per side, the chat's mode (on, slow,
	// off) and the rematch's id.
	Cheers    [2]int  `json:"cheers"`
	ChatMode  string  `json:"chat_mode"`
	RematchID *string `json:"rematch_id"`
}

// singerView is one slot in the battle object.
type singerView struct {
	Slot      int    `json:"slot"`
	Name      string `json:"name"`
	Connected bool   `json:"connected"`
}

// viewOf renders st with URLs under base. The live program of a battle
// another origin runs is there (the origin's URL), unless the client came
// through an edge, which routes it by battle id.
func viewOf(st battle.Status, base urlBase) view {
	b := st.Battle
	live := base.url
	if base.direct && b.Origin != "" {
		live = b.Origin
	}
	v := view{
		ID:          b.ID,
		Title:       b.Title,
		State:       b.State,
		CreatedAt:   b.CreatedAt,
		StartedAt:   timeOrNil(b.StartedAt),
		EndedAt:     timeOrNil(b.EndedAt),
		Viewers:     st.Viewers,
		HLSURL:      live + "/hls/" + b.ID + "/index.m3u8",
		Rounds:      b.Rounds,
		TurnSeconds: b.TurnSeconds,
		Votes:       st.Votes,
		Round:       st.Timeline.Round,
		VotingOpen:  st.Timeline.VotingOpen,
		Cheers:      b.Cheers,
		ChatMode:    battle.ChatModeOf(b),
	}
	if b.RematchID != "" {
		v.RematchID = &b.RematchID
	}
	if !b.StartedAt.IsZero() && !b.EndedAt.IsZero() {
		d := b.EndedAt.Sub(b.StartedAt).Seconds()
		v.DurationSecs = &d
	}
	for i, name := range b.SingerNames {
		v.Singers = append(v.Singers, singerView{Slot: i + 1, Name: name, Connected: st.Connected[i]})
	}
	if b.Recorded {
		u := base.url + "/vod/" + b.ID + "/index.m3u8"
		v.VODURL = &u
	}
	if b.RecordingError != "" {
		v.RecordingError = &b.RecordingError
	}
	if tl := st.Timeline; tl.Turn != 0 {
		v.Turn, v.TurnEndsAt = &tl.Turn, &tl.TurnEndsAt
	}
	if st.Timeline.VotingOpen {
		v.VotingEndsAt = &st.Timeline.VotingEnds
	}
	if st.Timeline.Finished {
		w := st.Winner
		v.Winner = &w
	}
	return v
}

func timeOrNil(t time.Time) *time.Time {
	if t.IsZero() {
		return nil
	}
	return &t
}
