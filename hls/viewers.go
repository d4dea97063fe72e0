package hls

import (
	"container/list"
	"sync"
	"time"
)

// viewerWindow is how long a client counts as watching after its last
// request. LL-HLS players ask for a playlist several times a second, so
// anyone still watching is seen far more often than this.
const viewerWindow = 30 * time.Second

// maxViewers bounds the distinct clients a battle remembers, and so its
// viewer count: past it, new clients are not counted until others leave
// the window. It keeps the memory of a battle bounded whatever clients
// put in their User-Agent.
const maxViewers = 10_000

// maxUserAgent bounds the part of a User-Agent kept in a viewer key.
const maxUserAgent = 200

// viewers counts distinct clients seen in the last viewerWindow.
type viewers struct {
	mu sync.Mutex
	// bySeen holds a *viewer per client, least recently seen first, so
	// that those out of the window are dropped from its front.
	bySeen *list.List
	byKey  map[string]*list.Element
}

type viewer struct {
	key  string
	seen time.Time
}

func newViewers() *viewers {
	return &viewers{bySeen: list.New(), byKey: make(map[string]*list.Element)}
}

// seen records a request at now of the client named client (its address
// as the HTTP layer determined it) with the User-Agent userAgent: several
// viewers behind one address count apart when their browsers differ.
func (v *viewers) seen(client, userAgent string, now time.Time) {
	if len(userAgent) > maxUserAgent {
		userAgent = userAgent[:maxUserAgent]
	}
	key := client + "\x00" + userAgent
	v.mu.Lock()
	defer v.mu.Unlock()
	if e, ok := v.byKey[key]; ok {
		e.Value.(*viewer).seen = now
		v.bySeen.MoveToBack(e)
		return
	}
	v.expireLocked(now)
	if len(v.byKey) >= maxViewers {
		return
	}
	v.byKey[key] = v.bySeen.PushBack(&viewer{key: key, seen: now})
}

// count tells how many distinct clients were seen in the window before now.
func (v *viewers) count(now time.Time) int {
	v.mu.Lock()
	defer v.mu.Unlock()
	v.expireLocked(now)
	return len(v.byKey)
}

// expireLocked forgets the clients last seen before the window: those at
// the front of bySeen.
func (v *viewers) expireLocked(now time.Time) {
	for e := v.bySeen.Front(); e != nil; e = v.bySeen.Front() {
		vw := e.Value.(*viewer)
		if now.Sub(vw.seen) <= viewerWindow {
			return
		}
		v.bySeen.Remove(e)
		delete(v.byKey, vw.key)
	}
}
