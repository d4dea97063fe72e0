package ingest

import (
	"context"
	"errors"
	"fmt"
	"mime"
	"net/http"
	"strings"

	"github.com/pion/sdp/v3"
	"github.com/pion/webrtc/v4"
	"github.com/singoff/singoff/internal/httpjson"
)

// Content types of WHIP and WHEP.
const (
	contentTypeSDP     = "application/sdp"
	contentTypeSDPFrag = "application/trickle-ice-sdpfrag"
)

// ServeWHIP answers a WHIP publish offer for slot: 201 with the SDP
// answer; the session's URL is location(sessionID). A publisher already on
// the slot is replaced.
func (s *Server) ServeWHIP(w http.ResponseWriter, r *http.Request, slot *Slot, location func(sessionID string) string) {
	s.serveOffer(w, r, slot, location, true)
}

// ServeWHEP answers a WHEP subscribe offer for slot: 201 with the SDP
// answer at once, whether or not the slot has a publisher; media flows
// whenever it has one.
func (s *Server) ServeWHEP(w http.ResponseWriter, r *http.Request, slot *Slot, location func(sessionID string) string) {
	s.serveOffer(w, r, slot, location, false)
}

func (s *Server) serveOffer(w http.ResponseWriter, r *http.Request, slot *Slot, location func(string) string, publish bool) {
	s.setCORS(w)
	if !hasContentType(r, contentTypeSDP) {
		httpjson.Error(w, http.StatusUnsupportedMediaType, "content type must be %s", contentTypeSDP)
		return
	}
	body, ok := httpjson.ReadBody(w, r)
	if !ok {
		return
	}
	info, err := checkOffer(body, publish)
	if err != nil {
		writeError(w, err)
		return
	}
	sess, err := s.newSession(r.Context(), slot, string(body), info, publish)
	if err != nil {
		writeError(w, err)
		return
	}
	h := w.Header()
	h.Set("Content-Type", contentTypeSDP)
	h.Set("Location", location(sess.id))
	h.Set("ETag", sess.currentETag())
	h.Set("Accept-Patch", contentTypeSDPFrag)
	s.setICEServerLinks(w)
	w.WriteHeader(http.StatusCreated)
	_, _ = w.Write([]byte(sess.pc.LocalDescription().SDP))
	s.log.Info("ingest: session started", "room", slot.room.id, "slot", slot.n, "session", sess.id, "publish", publish)
}

// ServeSession handles PATCH (trickle ICE, ICE restart) and DELETE on a
// session of slot.
func (s *Server) ServeSession(w http.ResponseWriter, r *http.Request, slot *Slot, sessionID string) {
	s.setCORS(w)
	sess := slot.lookup(sessionID)
	if sess == nil {
		httpjson.Error(w, http.StatusNotFound, "no such session")
		return
	}
	switch r.Method {
	case http.MethodDelete:
		slot.remove(sess)
		w.WriteHeader(http.StatusOK)
	case http.MethodPatch:
		s.patch(w, r, sess)
	default:
		w.Header().Set("Allow", "PATCH, DELETE")
		httpjson.Error(w, http.StatusMethodNotAllowed, "method %s not allowed", r.Method)
	}
}

func (s *Server) patch(w http.ResponseWriter, r *http.Request, sess *session) {
	if !hasContentType(r, contentTypeSDPFrag) {
		httpjson.Error(w, http.StatusUnsupportedMediaType, "content type must be %s", contentTypeSDPFrag)
		return
	}
	body, ok := httpjson.ReadBody(w, r)
	if !ok {
		return
	}
	frag, err := parseSDPFrag(body)
	if err != nil {
		httpjson.Error(w, http.StatusBadRequest, "%v", err)
		return
	}
	sess.mu.Lock()
	defer sess.mu.Unlock()
	if m := r.Header.Get("If-Match"); m != "" && m != "*" && m != sess.etag {
		httpjson.Error(w, http.StatusPreconditionFailed, "ETag does not match")
		return
	}
	remote := sess.pc.RemoteDescription()
	if remote == nil {
		httpjson.Error(w, http.StatusConflict, "session has no remote description")
		return
	}
	if frag.ufrag != "" && frag.ufrag != remoteUfrag(remote) {
		s.restartICE(w, r.Context(), sess, remote, frag)
		return
	}
	for _, c := range frag.candidates {
		if err := sess.pc.AddICECandidate(candidateInit(c)); err != nil {
			httpjson.Error(w, http.StatusUnprocessableEntity, "candidate not added: %v", err)
			return
		}
	}
	w.WriteHeader(http.StatusNoContent)
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
// answers it and replies with the server's new credentials and candidates
// as a fragment and a new ETag (RFC 9725 4.4.2). sess.mu is held.
func (s *Server) restartICE(w http.ResponseWriter, ctx context.Context, sess *session, remote *webrtc.SessionDescription, frag sdpFrag) {
	offer := withICECredentials(remote.SDP, frag)
	if err := sess.pc.SetRemoteDescription(webrtc.SessionDescription{Type: webrtc.SDPTypeOffer, SDP: offer}); err != nil {
		httpjson.Error(w, http.StatusUnprocessableEntity, "ICE restart rejected: %v", err)
		return
	}
	if err := s.answer(ctx, sess.pc); err != nil {
		writeError(w, err)
		return
	}
	answerFrag, err := localFrag(sess.pc.LocalDescription())
	if err != nil {
		httpjson.Error(w, http.StatusInternalServerError, "%v", err)
		return
	}
	sess.etag = `"` + randomID() + `"`
	w.Header().Set("Content-Type", contentTypeSDPFrag)
	w.Header().Set("ETag", sess.etag)
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write([]byte(answerFrag))
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
func localFrag(desc *webrtc.SessionDescription) (string, error) {
	var sd sdp.SessionDescription
	if err := sd.UnmarshalString(desc.SDP); err != nil {
		return "", fmt.Errorf("local description: %w", err)
	}
	var b strings.Builder
	wrote := false
	for _, md := range sd.MediaDescriptions {
		if !wrote {
			for _, key := range []string{"ice-ufrag", "ice-pwd"} {
				if v, ok := md.Attribute(key); ok {
					fmt.Fprintf(&b, "a=%s:%s\r\n", key, v)
				}
			}
			wrote = true
		}
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

// ServeOptions answers a CORS preflight or a WHIP/WHEP OPTIONS request.
func (s *Server) ServeOptions(w http.ResponseWriter, r *http.Request) {
	s.setCORS(w)
	h := w.Header()
	h.Set("Accept-Post", contentTypeSDP)
	h.Set("Accept-Patch", contentTypeSDPFrag)
	h.Set("Access-Control-Allow-Methods", "OPTIONS, POST, PATCH, DELETE")
	h.Set("Access-Control-Allow-Headers", "Authorization, Content-Type, If-Match")
	h.Set("Access-Control-Max-Age", "600")
	s.setICEServerLinks(w)
	w.WriteHeader(http.StatusNoContent)
}

func (s *Server) setCORS(w http.ResponseWriter) {
	h := w.Header()
	h.Set("Access-Control-Allow-Origin", "*")
	h.Set("Access-Control-Expose-Headers", "Location, ETag, Link, Accept-Patch, Accept-Post")
}

func (s *Server) setICEServerLinks(w http.ResponseWriter) {
	for _, u := range s.cfg.ICEServers {
		w.Header().Add("Link", fmt.Sprintf(`<%s>; rel="ice-server"`, u))
	}
}

func hasContentType(r *http.Request, want string) bool {
	mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type"))
	return err == nil && strings.EqualFold(mt, want)
}

// writeError answers an error of newSession or restartICE.
func writeError(w http.ResponseWriter, err error) {
	var oe *offerError
	switch {
	case errors.As(err, &oe):
		httpjson.Error(w, oe.status, "%s", oe.msg)
	case errors.Is(err, errSlotClosed):
		httpjson.Error(w, http.StatusNotFound, "slot closed")
	case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		httpjson.Error(w, http.StatusServiceUnavailable, "%v", err)
	default:
		httpjson.Error(w, http.StatusInternalServerError, "%v", err)
	}
}
