package ingest

import (
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/pion/rtcp"
	"github.com/pion/webrtc/v4"
	"github.com/singoff/singoff/internal/pionapi"
	"github.com/singoff/singoff/media"
)

// session is one WHIP (publish) or WHEP (subscribe) peer connection.
type session struct {
	id      string
	slot    *slot
	pc      *webrtc.PeerConnection
	publish bool
	// serial is the media.AccessUnit Session value of a publisher.
	serial    uint64
	videoSSRC atomic.Uint32
	// keyframeWanted is a keyframe request that came before the video.
	keyframeWanted atomic.Bool
	closeOnce      sync.Once

	// mu serializes PATCHes and guards etag and remoteCandidates.
	mu   sync.Mutex
	etag string
	// remoteCandidates counts the client's candidates taken (see
	// maxRemoteCandidates).
	remoteCandidates int
}

func (sess *session) close() {
	sess.closeOnce.Do(func() { _ = sess.pc.Close() })
}

// newETag is a fresh quoted entity tag.
func newETag() string { return `"` + randomID() + `"` }

// Answer is an accepted offer: the SDP answer and the session made for it.
type Answer struct {
	SDP     string
	Session string // the session's id (goes into the WHIP Location)
	ETag    string // quoted entity tag of the session's ICE state
}

// Publish answers a WHIP offer for slot (1 or 2): the new session
// replaces the slot's current publisher. Hooks.Admit is asked first;
// Hooks.Negotiated follows when it admits.
func (r *Room) Publish(ctx context.Context, slot int, offer []byte) (Answer, error) {
	return r.offer(ctx, slot, offer, true)
}

// Subscribe answers a WHEP offer for slot (1 or 2) at once, whether or
// not the slot has a publisher: media flows whenever it has one.
func (r *Room) Subscribe(ctx context.Context, slot int, offer []byte) (Answer, error) {
	return r.offer(ctx, slot, offer, false)
}

func (r *Room) offer(ctx context.Context, n int, offer []byte, publish bool) (Answer, error) {
	sl, err := r.slot(n)
	if err != nil {
		return Answer{}, err
	}
	if sl.isClosed() {
		return Answer{}, errRoomClosed
	}
	info, err := checkOffer(offer, publish)
	if err != nil {
		return Answer{}, err
	}
	if !publish && sl.subscribers() >= maxSubscribers {
		return Answer{}, errTooManySubscribers // before the work of a peer connection
	}
	if publish && r.hooks.Admit != nil {
		if err := r.hooks.Admit(n); err != nil {
			return Answer{}, err
		}
	}
	answer, err := r.srv.newSession(ctx, sl, string(offer), info, publish)
	if publish && r.hooks.Negotiated != nil {
		r.hooks.Negotiated(n, err == nil)
	}
	if err != nil {
		return Answer{}, err
	}
	r.srv.log.Info("session started", "battle", r.id, "slot", n, "session", answer.Session, "publish", publish)
	return answer, nil
}

// gatherTimeout bounds ICE gathering: host candidates on a mux are
// immediate, so this only matters when a STUN server hangs.
const gatherTimeout = 5 * time.Second

// newSession answers offer for sl and registers the session there. It
// changes nothing when it fails.
func (s *Server) newSession(ctx context.Context, sl *slot, offer string, info offerInfo, publish bool) (Answer, error) {
	api := s.subscribeAPI
	if publish {
		api = s.publishAPI
	}
	pc, err := api.NewPeerConnection(webrtc.Configuration{})
	if err != nil {
		return Answer{}, fmt.Errorf("new peer connection: %w", err)
	}
	sess := &session{id: randomID(), etag: newETag(), slot: sl, pc: pc, publish: publish}
	answer, err := s.negotiate(ctx, sess, offer, info)
	if err == nil {
		err = sl.add(sess)
	}
	if err != nil {
		sess.close()
		return Answer{}, err
	}
	return Answer{SDP: answer, Session: sess.id, ETag: sess.etag}, nil
}

// negotiate applies the offer to sess and returns the answer.
func (s *Server) negotiate(ctx context.Context, sess *session, offer string, info offerInfo) (string, error) {
	pc, sl := sess.pc, sess.slot
	if sess.publish {
		sess.serial = s.sessionSerial.Add(1)
		pc.OnTrack(func(track *webrtc.TrackRemote, recv *webrtc.RTPReceiver) {
			s.receive(sess, track, recv)
		})
	} else {
		for _, t := range []*forwardTrack{&sl.video, &sl.audio} {
			if (t.kind == webrtc.RTPCodecTypeVideo && !info.video) || (t.kind == webrtc.RTPCodecTypeAudio && !info.audio) {
				continue
			}
			sender, err := pc.AddTrack(subscription{t, sess})
			if err != nil {
				return "", fmt.Errorf("adding the %s track: %w", t.kind, err)
			}
			go forwardFeedback(sender, sess)
		}
	}
	pc.OnConnectionStateChange(func(st webrtc.PeerConnectionState) {
		s.log.Debug("session state", "battle", sl.room.id, "slot", sl.n, "session", sess.id, "state", st)
		switch {
		case st == webrtc.PeerConnectionStateFailed:
			// Not from inside pion's callback: remove closes the connection.
			go sl.remove(sess)
		case sess.publish:
			sl.publisherChanged(sess)
		case st == webrtc.PeerConnectionStateConnected:
			sl.keyframes.request() // the new subscriber starts at a keyframe
			// and lip-syncs from the start.
			sl.video.resendReport(sess)
			sl.audio.resendReport(sess)
		}
	})
	offer = s.filterOfferCandidates(sess, offer)
	if err := pc.SetRemoteDescription(webrtc.SessionDescription{Type: webrtc.SDPTypeOffer, SDP: offer}); err != nil {
		s.log.Info("offer rejected", "battle", sl.room.id, "slot", sl.n, "err", err)
		return "", fmt.Errorf("%w: the offer cannot be negotiated", ErrUnusable)
	}
	if sess.publish {
		preferSendableVideo(pc, sl)
	}
	answerMusicOpus(pc)
	return s.answer(ctx, sess)
}

// answerMusicOpus makes the answer carry musicOpus's parameters: pion
// answers with the offer's own otherwise. The payload type stays the
// offer's, and so do the feedback types both sides have.
func answerMusicOpus(pc *webrtc.PeerConnection) {
	opus := musicOpus
	opus.PayloadType = 0 // the offer's
	opus.RTCPFeedback = []webrtc.RTCPFeedback{{Type: webrtc.TypeRTCPFBTransportCC}}
	for _, tr := range pc.GetTransceivers() {
		if tr.Kind() == webrtc.RTPCodecTypeAudio {
			_ = tr.SetCodecPreferences([]webrtc.RTPCodecParameters{opus})
		}
	}
}

// answer creates and sets the local answer and waits for ICE gathering so
// that it carries the candidates.
func (s *Server) answer(ctx context.Context, sess *session) (string, error) {
	pc, sl := sess.pc, sess.slot
	gathered := webrtc.GatheringCompletePromise(pc)
	answer, err := pc.CreateAnswer(nil)
	if err == nil {
		err = pc.SetLocalDescription(answer)
	}
	if err != nil {
		// The offer's fault, as a rule: codecs pion cannot match.
		s.log.Info("no answer to the offer", "battle", sl.room.id, "slot", sl.n, "session", sess.id, "err", err)
		return "", fmt.Errorf("%w: the offer cannot be answered", ErrUnusable)
	}
	ctx, cancel := context.WithTimeout(ctx, gatherTimeout)
	defer cancel()
	select {
	case <-gathered:
		return pc.LocalDescription().SDP, nil
	case <-ctx.Done():
		return "", fmt.Errorf("ICE gathering: %w", ctx.Err())
	}
}

// preferSendableVideo orders the publisher's video codecs so that the one
// chosen is one every current subscriber of the slot can receive, H264
// before VP8 otherwise.
func preferSendableVideo(pc *webrtc.PeerConnection, sl *slot) {
	order := sl.video.acceptedByAll([]media.Codec{media.CodecH264, media.CodecVP8})
	for _, c := range []media.Codec{media.CodecH264, media.CodecVP8} {
		if !slices.Contains(order, c) {
			order = append(order, c)
		}
	}
	var prefs []webrtc.RTPCodecParameters
	for _, c := range order {
		for _, p := range videoCodecs {
			if codecOfMime(p.MimeType) == c {
				prefs = append(prefs, p)
			}
		}
	}
	for _, tr := range pc.GetTransceivers() {
		if tr.Kind() == webrtc.RTPCodecTypeVideo {
			_ = tr.SetCodecPreferences(prefs)
		}
	}
}

// receive reads one publisher track: forwards each packet to the slot's
// subscribers, then depacketizes it into the slot's feed.
func (s *Server) receive(sess *session, track *webrtc.TrackRemote, recv *webrtc.RTPReceiver) {
	sl := sess.slot
	codec := codecOfMime(track.Codec().MimeType)
	if codec == media.CodecUnknown {
		return
	}
	fwd := &sl.audio
	if codec.IsVideo() {
		fwd = &sl.video
		sess.videoSSRC.Store(uint32(track.SSRC()))
		if sess.keyframeWanted.Swap(false) {
			sl.keyframes.request()
		}
	}
	clockRate := track.Codec().ClockRate
	clock := &senderClock{}
	go readSenderReports(sess, recv, uint32(track.SSRC()), clock, fwd)
	unpack := newUnpacker(codec, clockRate)
	emit := func(p media.AccessUnit) {
		p.SenderNTP = clock.at(p.RTPTime, clockRate)
		p.Session = sess.serial
		sl.feed.send(p)
	}
	for {
		pkt, _, err := track.ReadRTP()
		if err != nil {
			return
		}
		at := time.Now()
		s.counters.rtpPacketsIn.Add(1)
		s.counters.rtpBytesIn.Add(uint64(len(pkt.Payload)))
		if sl.publisher.Load() != sess {
			continue // replaced, about to be closed
		}
		fwd.write(sess.serial, codec, clockRate, pkt, at)
		if s.observeForward != nil {
			s.observeForward(time.Since(at))
		}
		unpack.push(pkt, at, emit)
	}
}

// readSenderReports reads the RTCP of a publisher's track: its sender
// reports set the track's clock and are translated for the subscribers;
// they also pace the slot's REMB when no subscriber's feedback does.
func readSenderReports(pub *session, recv *webrtc.RTPReceiver, ssrc uint32, clock *senderClock, fwd *forwardTrack) {
	for {
		pkts, _, err := recv.ReadRTCP()
		if closing(pub, err) {
			return
		}
		for _, p := range pkts {
			if sr, ok := p.(*rtcp.SenderReport); ok && sr.SSRC == ssrc {
				clock.update(sr.NTPTime, sr.RTPTime)
				fwd.senderReport(pub.serial, sr)
				pub.slot.remindBitrate(pub)
			}
		}
	}
}

// forwardFeedback reads a subscriber's RTCP for one track: keyframe
// requests go on to the slot's publisher (rate-limited there), and the
// subscriber's bandwidth estimate (made of its TWCC feedback as the RTCP
// is read) to the slot's bitrate cap. NACKs are answered by pion's
// responder interceptor before this.
func forwardFeedback(sender *webrtc.RTPSender, sub *session) {
	sl := sub.slot
	defer sl.uncapBitrate(sub)
	for {
		pkts, attrs, err := sender.ReadRTCP()
		if closing(sub, err) {
			return
		}
		for _, p := range pkts {
			switch p.(type) {
			case *rtcp.PictureLossIndication, *rtcp.FullIntraRequest:
				sl.room.srv.counters.plisIn.Add(1)
				sl.keyframes.request()
			case *rtcp.TransportLayerNack:
				sl.room.srv.counters.nacksIn.Add(1)
			}
		}
		if bps, ok := pionapi.BandwidthEstimate(attrs); ok {
			sl.capBitrate(sub, bps)
		}
	}
}

// closing tells whether err, from reading sess's RTCP, means that the
// connection is closing. Any other error is a malformed packet, which
// costs its sender only that packet: RTCP goes through pion's
// interceptors (NACKs answered, feedback estimated) only as it is read,
// so reading must go on.
func closing(sess *session, err error) bool {
	return err != nil && (errors.Is(err, io.EOF) || errors.Is(err, io.ErrClosedPipe) ||
		sess.pc.ConnectionState() == webrtc.PeerConnectionStateClosed)
}
