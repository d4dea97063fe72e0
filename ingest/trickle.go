package ingest

import (
	"context"
	"fmt"
	"strings"

	"github.com/pion/sdp/v3"
	"github.com/pion/webrtc/v4"
)

// Restart is the outcome of a PATCH: after an ICE restart, the server's
// answer fragment (application/trickle-ice-sdpfrag) and the session's new
// ETag; the zero Restart otherwise.
type Restart struct {
	Fragment string // "" when no restart happened
	ETag     string
}

// Patch applies a trickle-ICE fragment (RFC 9725, an
// application/trickle-ice-sdpfrag body) to a session of slot. ifMatch is
// the If-Match header value; "" and "*" match any ETag. New ICE
// credentials in the fragment restart ICE: the result then carries the
// server's answer fragment and the new ETag.
func (r *Room) Patch(ctx context.Context, slot int, session string, frag []byte, ifMatch string) (Restart, error) {
	sess, err := r.session(slot, session)
	if err != nil {
		return Restart{}, err
	}
	f, err := parseSDPFrag(frag)
	if err != nil {
		return Restart{}, err
	}
	sess.mu.Lock()
	defer sess.mu.Unlock()
	if ifMatch != "" && ifMatch != "*" && ifMatch != sess.etag {
		return Restart{}, fmt.Errorf("%w: If-Match does not match the session's ETag", ErrPrecondition)
	}
	remote := sess.pc.RemoteDescription()
	if remote == nil {
		return Restart{}, fmt.Errorf("%w: the session has no remote description", ErrConflict)
	}
	restart := f.ufrag != "" && f.ufrag != remoteUfrag(remote)
	if restart {
		sess.remoteCandidates = 0 // a new ICE generation
	}
	taken := f.candidates[:0]
	for _, c := range f.candidates {
		if r.srv.takeCandidate(sess, strings.TrimPrefix(c.value, "candidate:")) {
			taken = append(taken, c)
		}
	}
	f.candidates = taken
	if restart {
		return r.srv.restartICE(ctx, sess, remote, f)
	}
	for _, c := range f.candidates {
		if err := sess.pc.AddICECandidate(candidateInit(c)); err != nil {
			r.srv.log.Info("candidate refused", "battle", r.id, "slot", slot, "session", session, "err", err)
			return Restart{}, fmt.Errorf("%w: candidate %.60q not added", ErrUnusable, c.value)
		}
	}
	return Restart{}, nil
}

// Hangup ends a session of slot (DELETE).
func (r *Room) Hangup(slot int, session string) error {
	sess, err := r.session(slot, session)
	if err != nil {
		return err
	}
	sess.slot.remove(sess)
	r.srv.log.Info("session ended", "battle", r.id, "slot", slot, "session", session)
	return nil
}

func (r *Room) session(slot int, id string) (*session, error) {
	sl, err := r.slot(slot)
	if err != nil {
		return nil, err
	}
	return sl.lookup(id)
}

func candidateInit(c fragCandidate) webrtc.ICECandidateInit {
	init := webrtc.ICECandidateInit{Candidate: c.value}
	if c.mid != "" {
		init.SDPMid = &c.mid
	} else {
		init.SDPMLineIndex = &c.index
	}
	return init
}

// restartICE makes the client's new ICE credentials a new remote offer,
// answers it and returns the server's new credentials and candidates as a
// fragment, with a new ETag (RFC 9725 4.4.2). sess.mu is held.
func (s *Server) restartICE(ctx context.Context, sess *session, remote *webrtc.SessionDescription, frag sdpFrag) (Restart, error) {
	offer := withICECredentials(remote.SDP, frag)
	if err := sess.pc.SetRemoteDescription(webrtc.SessionDescription{Type: webrtc.SDPTypeOffer, SDP: offer}); err != nil {
		s.log.Info("ICE restart refused", "battle", sess.slot.room.id, "slot", sess.slot.n, "session", sess.id, "err", err)
		return Restart{}, fmt.Errorf("%w: the ICE restart cannot be negotiated", ErrUnusable)
	}
	answer, err := s.answer(ctx, sess)
	if err != nil {
		return Restart{}, err
	}
	answerFrag, err := localFrag(answer)
	if err != nil {
		return Restart{}, err
	}
	sess.etag = newETag()
	return Restart{Fragment: answerFrag, ETag: sess.etag}, nil
}

// withICECredentials rewrites an offer with frag's ICE credentials and
// candidates in place of the old ones.
func withICECredentials(offer string, frag sdpFrag) string {
	var b strings.Builder
	index := -1
	addCandidates := func() {
		for _, c := range frag.candidates {
			if int(c.index) == index {
				b.WriteString("a=" + c.value + "\r\n")
			}
		}
	}
	for line := range strings.Lines(offer) {
		line = strings.TrimRight(line, "\r\n")
		switch {
		case strings.HasPrefix(line, "m="):
			if index >= 0 {
				addCandidates()
			}
			index++
		case strings.HasPrefix(line, "a=ice-ufrag:"):
			line = "a=ice-ufrag:" + frag.ufrag
		case strings.HasPrefix(line, "a=ice-pwd:"):
			line = "a=ice-pwd:" + frag.pwd
		case strings.HasPrefix(line, "a=candidate:"), line == "a=end-of-candidates":
			continue
		}
		b.WriteString(line + "\r\n")
	}
	if index >= 0 {
		addCandidates()
	}
	return b.String()
}

func remoteUfrag(desc *webrtc.SessionDescription) string {
	for line := range strings.Lines(desc.SDP) {
		if v, ok := strings.CutPrefix(strings.TrimRight(line, "\r\n"), "a=ice-ufrag:"); ok {
			return v
		}
	}
	return ""
}

// localFrag is the trickle-ICE fragment of a local description: its
// credentials, and per media section its mid and candidates.
func localFrag(desc string) (string, error) {
	var sd sdp.SessionDescription
	if err := sd.UnmarshalString(desc); err != nil {
		return "", fmt.Errorf("parsing the local description: %w", err)
	}
	var b strings.Builder
	// The credentials of the first section that has them (a rejected
	// section has none), once, before the sections.
	for _, key := range []string{"ice-ufrag", "ice-pwd"} {
		for _, md := range sd.MediaDescriptions {
			if v, ok := md.Attribute(key); ok {
				fmt.Fprintf(&b, "a=%s:%s\r\n", key, v)
				break
			}
		}
	}
	for _, md := range sd.MediaDescriptions {
		fmt.Fprintf(&b, "m=%s %d %s %s\r\n", md.MediaName.Media, md.MediaName.Port.Value,
			strings.Join(md.MediaName.Protos, "/"), strings.Join(md.MediaName.Formats, " "))
		if mid, ok := md.Attribute("mid"); ok {
			fmt.Fprintf(&b, "a=mid:%s\r\n", mid)
		}
		for _, a := range md.Attributes {
			if a.Key == "candidate" {
				fmt.Fprintf(&b, "a=candidate:%s\r\n", a.Value)
			}
		}
		b.WriteString("a=end-of-candidates\r\n")
	}
	return b.String(), nil
}
