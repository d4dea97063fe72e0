package e2e

import (
	"context"
	"encoding/json"
	"net/http"
	"testing"
	"time"
)

// The chat across origins sharing PostgreSQL: a message posted on either
// origin, and a deletion, reach the subscribers of both, whichever runs
// the battle; cheers posted on the origin that does not run it count.
func TestChatAcrossOrigins(t *testing.T) {
	sh := startShared(t)
	origins := []*server{sh.startOrigin(t), sh.startOrigin(t)}
	var b battle
	origins[0].call(t, http.MethodPost, "/api/battles", "", map[string]any{"title": "two origins"}, http.StatusCreated, &b)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	subs := make([]*sseLog, len(origins))
	for i, o := range origins {
		subs[i] = followEvents(ctx, t, o.client, o.base+"/api/battles/"+b.ID+"/events")
	}
	w := origins[0].newWatcher(t, b.ID)
	var posted []chatMessage
	for i, o := range origins {
		status, data := o.post(t, w, http.MethodPost, "/api/battles/"+b.ID+"/chat", "", "",
			`{"name":"both","text":"from origin `+string(rune('A'+i))+`"}`)
		var m chatMessage
		if status != http.StatusCreated || json.Unmarshal(data, &m) != nil {
			t.Fatalf("posting on origin %d: %d %s", i, status, data)
		}
		posted = append(posted, m)
	}
	for i, sub := range subs {
		got := sub.waitChat(t, 2)
		if got[0].ID != posted[0].ID || got[1].ID != posted[1].ID {
			t.Fatalf("origin %d's subscriber got %+v, want %+v", i, got, posted)
		}
	}
	origins[1].call(t, http.MethodDelete, "/api/battles/"+b.ID+"/chat/"+posted[0].ID, b.HostToken, nil, http.StatusNoContent, nil)
	for i, sub := range subs {
		if got := sub.waitChat(t, 3); !got[2].Deleted || got[2].ID != posted[0].ID {
			t.Fatalf("origin %d's subscriber got %+v, want the deletion of %s", i, got[2], posted[0].ID)
		}
	}
	for i, o := range origins {
		if status, data := o.post(t, w, http.MethodPost, "/api/battles/"+b.ID+"/cheers", "", "", `{"slot":1,"count":3}`); status != http.StatusNoContent {
			t.Fatalf("cheers on origin %d: %d %s", i, status, data)
		}
	}
	waitFor(t, "the cheers of both origins counted", 10*time.Second, func() bool { return origins[0].battle(t, b.ID).Cheers == [2]int{6, 0} })
}
