package hls

// maxEnded bounds the ended battle ids a Server remembers to answer 410
// Gone; older ones are answered 404 like unknown ids, without a lookup.
const maxEnded = 10_000

// endedSet is a bounded set of ended battle ids: past its size the
// oldest is forgotten. Requests for ids that are not live are answered
// from it alone, so a flood of made-up ids costs no database query.
type endedSet struct {
	ids   map[string]struct{}
	order []string // a ring of the ids, oldest at next once full
	next  int
	size  int
}

func newEndedSet(size int) *endedSet {
	return &endedSet{ids: make(map[string]struct{}), size: size}
}

func (e *endedSet) has(id string) bool {
	_, ok := e.ids[id]
	return ok
}

func (e *endedSet) add(id string) {
	if e.has(id) {
		return
	}
	if len(e.order) < e.size {
		e.order = append(e.order, id)
	} else {
		delete(e.ids, e.order[e.next])
		e.order[e.next] = id
		e.next = (e.next + 1) % e.size
	}
	e.ids[id] = struct{}{}
}
