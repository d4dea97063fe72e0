package hls

import (
	"context"
	"fmt"
	"net/http"
	"time"
)

// When a battle ends its live playlists close with #EXT-X-ENDLIST, and
// the stream goes on being served for a while (Server's linger) so that
// players a second or so behind play it to its end: the last playlists
// and every file they name are kept, the parts of the segment that was
// being made becoming its last segment. Requests waiting for a part that
// will never come get the last playlist (or a 404 for the part).

// final is what a battle's stream serves once the battle has ended.
type final struct {
	multivariant answer            // status 410 when nothing was published
	playlists    map[string]answer // by rung playlist name
	files        map[string]answer // by name
}

// answer is the final answer to a request for name, of kind.
func (f *final) answer(kind fileKind, name string) answer {
	switch kind {
	case kindMultivariant:
		return f.multivariant
	case kindMediaPlaylist:
		if a, ok := f.playlists[name]; ok {
			return a
		}
		return answer{status: http.StatusGone}
	}
	if a, ok := f.files[name]; ok {
		return a
	}
	return answer{status: http.StatusNotFound}
}

// end stops the muxer's writes and keeps its last playlists and files;
// requests waiting on gohlslib get them, gohlslib's muxers are closed.
// Later calls do nothing.
func (m *Muxer) end() {
	if m.closed.Swap(true) {
		return
	}
	for _, r := range m.rungs {
		r.close()
	}
	f := &final{
		multivariant: answer{status: http.StatusGone},
		playlists:    make(map[string]answer),
		files:        make(map[string]answer),
	}
	select {
	case <-m.ready:
		for _, r := range m.rungs {
			if err := m.finish(f, r); err != nil {
				m.logger.Error("hls: closing the live playlists", "rung", r.name, "err", err)
				clear(f.playlists)
				break
			}
		}
		if len(f.playlists) == len(m.rungs) {
			f.multivariant = playlistAnswer(renderMultivariant(m.rungs, m.fps), cacheMultivariant)
		}
	default:
		// Ended before every rung had a segment: nothing to play.
	}
	m.final.Store(f)
	close(m.ended)
	for _, r := range m.rungs {
		r.closeMuxer()
	}
}

// finish keeps rung r's last playlist, with #EXT-X-ENDLIST, and the files
// it names in f.
func (m *Muxer) finish(f *final, r *rung) error {
	status, p, err := r.gohlslibPlaylist("")
	if err != nil {
		return err
	}
	if status != http.StatusOK {
		return fmt.Errorf("gohlslib answered %d", status)
	}
	if len(p.parts) > 0 && len(p.segments) > 0 {
		// A segment is its parts one after the other.
		var body []byte
		var duration time.Duration
		for _, part := range p.parts {
			a := m.fileAnswer(r, part.uri, kindPart)
			if a.status != http.StatusOK {
				return fmt.Errorf("part %s: status %d", part.uri, a.status)
			}
			body = append(body, a.body...)
			duration += part.duration
		}
		last := p.segments[len(p.segments)-1]
		seg := liveSegment{
			msn:      p.nextMSN(),
			uri:      r.segmentName(p.nextMSN()),
			duration: duration,
			start:    last.start.Add(last.duration),
			parts:    p.parts,
		}
		f.files[seg.uri] = answer{
			status:        http.StatusOK,
			contentType:   headerMP4,
			contentLength: []string{fmt.Sprint(len(body))},
			cacheControl:  cacheHeaders[cacheMedia],
			body:          body,
		}
		p.segments, p.parts = append(p.segments, seg), nil
	}
	p.preloadHint, p.ended = "", true
	keep := func(name string, kind fileKind) error {
		if _, ok := f.files[name]; ok {
			return nil
		}
		a := m.fileAnswer(r, name, kind)
		if a.status != http.StatusOK {
			return fmt.Errorf("%s: status %d", name, a.status)
		}
		f.files[name] = a
		return nil
	}
	if err := keep(r.initName(), kindInit); err != nil {
		return err
	}
	for _, seg := range p.segments {
		if err := keep(seg.uri, kindSegment); err != nil {
			return err
		}
		for _, part := range seg.parts {
			if err := keep(part.uri, kindPart); err != nil {
				return err
			}
		}
	}
	f.playlists[r.name] = playlistAnswer(p.render(r.initName(), m.cues.List(), nil), cacheMediaPlaylist)
	return nil
}

// fileAnswer is the answer to a request for rung r's file name, from the
// cache or made now.
func (m *Muxer) fileAnswer(r *rung, name string, kind fileKind) answer {
	a, _ := m.files.do(context.Background(), name, true, func() answer { return m.produceFile(r, name, kind) })
	return a
}
