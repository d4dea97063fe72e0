package ingest

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/pion/rtcp"
	"github.com/pion/webrtc/v4"
	"github.com/singoff/singoff/media"
)

// session is one WHIP (publish) or WHEP (subscribe) peer connection.
type session struct {
	id      string
	slot    *Slot
	pc      *webrtc.PeerConnection
	publish bool
	// serial is the media.Packet Session value of a publisher.
	serial    uint64
	videoSSRC atomic.Uint32
	// keyframeWanted is a keyframe request that came before the video.
	keyframeWanted atomic.Bool
	closeOnce      sync.Once

	// mu serializes PATCHes and guards etag.
	mu   sync.Mutex
	etag string
}

func (sess *session) close() {
	sess.closeOnce.Do(func() { _ = sess.pc.Close() })
}

func (sess *session) currentETag() string {
	sess.mu.Lock()
	defer sess.mu.Unlock()
	return sess.etag
}

// gatherTimeout bounds ICE gathering: host candidates on a mux are
// immediate, so this only matters when a STUN server hangs.
const gatherTimeout = 5 * time.Second

// newSession answers offer for slot and registers the session there. It
// changes nothing when it fails.
func (s *Server) newSession(ctx context.Context, slot *Slot, offer string, info offerInfo, publish bool) (*session, error) {
	pc, err := s.api.NewPeerConnection(webrtc.Configuration{})
	if err != nil {
		return nil, fmt.Errorf("new peer connection: %w", err)
	}
	sess := &session{id: randomID(), etag: `"` + randomID() + `"`, slot: slot, pc: pc, publish: publish}
	if err := s.negotiate(ctx, sess, offer, info); err != nil {
		sess.close()
		return nil, err
	}
	if err := slot.add(sess); err != nil {
		sess.close()
		return nil, err
	}
	return sess, nil
}

func (s *Server) negotiate(ctx context.Context, sess *session, offer string, info offerInfo) error {
	pc, slot := sess.pc, sess.slot
	if sess.publish {
		sess.serial = s.sessionSerial.Add(1)
		pc.OnTrack(func(track *webrtc.TrackRemote, recv *webrtc.RTPReceiver) {
			s.receive(sess, track, recv)
		})
	} else {
		for _, t := range []*forwardTrack{slot.video, slot.audio} {
			if (t.kind == webrtc.RTPCodecTypeVideo && !info.video) || (t.kind == webrtc.RTPCodecTypeAudio && !info.audio) {
				continue
			}
			sender, err := pc.AddTrack(t)
			if err != nil {
				return fmt.Errorf("add track: %w", err)
			}
			go forwardFeedback(sender, slot)
		}
	}
	pc.OnConnectionStateChange(func(st webrtc.PeerConnectionState) {
		s.log.Debug("ingest: session state", "room", slot.room.id, "slot", slot.n, "session", sess.id, "publish", sess.publish, "state", st)
		switch st {
		case webrtc.PeerConnectionStateConnected:
			if sess.publish {
				slot.setConnected(sess, true)
			} else {
				slot.requestKeyframe()
			}
		case webrtc.PeerConnectionStateDisconnected:
			if sess.publish {
				slot.setConnected(sess, false)
			}
		case webrtc.PeerConnectionStateFailed:
			// Not from inside pion's callback: remove closes the connection.
			go slot.remove(sess)
		}
	})
	if err := pc.SetRemoteDescription(webrtc.SessionDescription{Type: webrtc.SDPTypeOffer, SDP: offer}); err != nil {
		return &offerError{status: statusUnusable, msg: "offer rejected: " + err.Error()}
	}
	if sess.publish {
		preferSendableVideo(pc, slot)
	}
	return s.answer(ctx, pc)
}

// answer creates and sets the local answer and waits for ICE gathering so
// that it carries the candidates.
func (s *Server) answer(ctx context.Context, pc *webrtc.PeerConnection) error {
	answer, err := pc.CreateAnswer(nil)
	if err != nil {
		return &offerError{status: statusUnusable, msg: "cannot answer offer: " + err.Error()}
	}
	gathered := webrtc.GatheringCompletePromise(pc)
	if err := pc.SetLocalDescription(answer); err != nil {
		return fmt.Errorf("set local description: %w", err)
	}
	ctx, cancel := context.WithTimeout(ctx, gatherTimeout)
	defer cancel()
	select {
	case <-gathered:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("ICE gathering: %w", ctx.Err())
	}
}

// preferSendableVideo orders the publisher's video codecs so that the one
// chosen is one every current subscriber of the slot can receive, H264
// before VP8 otherwise.
func preferSendableVideo(pc *webrtc.PeerConnection, slot *Slot) {
	order := slot.video.acceptedByAll([]media.Codec{media.CodecH264, media.CodecVP8})
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
	slot := sess.slot
	codec := codecOfMime(track.Codec().MimeType)
	if codec == media.CodecUnknown {
		return
	}
	fwd := slot.audio
	if codec.IsVideo() {
		fwd = slot.video
		sess.videoSSRC.Store(uint32(track.SSRC()))
		if sess.keyframeWanted.Swap(false) {
			slot.requestKeyframe()
		}
	}
	clockRate := track.Codec().ClockRate
	clock := &senderClock{}
	go readSenderReports(recv, uint32(track.SSRC()), clock)
	unpack := newUnpacker(codec, clockRate)
	emit := func(p media.AccessUnit) {
		p.SenderNTP = clock.at(p.RTPTime, clockRate)
		p.Session = sess.serial
		slot.feed.send(p)
	}
	for {
		pkt, _, err := track.ReadRTP()
		if err != nil {
			return
		}
		at := time.Now()
		s.counters.rtpPacketsIn.Add(1)
		s.counters.rtpBytesIn.Add(uint64(len(pkt.Payload)))
		if slot.publisher.Load() != sess {
			continue // replaced, about to be closed
		}
		fwd.write(sess.serial, codec, clockRate, pkt, at)
		if s.observeForward != nil {
			s.observeForward(time.Since(at))
		}
		unpack.push(pkt, at, emit)
	}
}

func readSenderReports(recv *webrtc.RTPReceiver, ssrc uint32, clock *senderClock) {
	for {
		pkts, _, err := recv.ReadRTCP()
		if err != nil {
			return
		}
		for _, p := range pkts {
			if sr, ok := p.(*rtcp.SenderReport); ok && sr.SSRC == ssrc {
				clock.update(sr.NTPTime, sr.RTPTime)
			}
		}
	}
}

// forwardFeedback reads a subscriber's RTCP for one track and passes
// keyframe requests on to the slot's publisher (rate-limited there).
// NACKs are answered by pion's responder interceptor before this.
func forwardFeedback(sender *webrtc.RTPSender, slot *Slot) {
	for {
		pkts, _, err := sender.ReadRTCP()
		if err != nil {
			return
		}
		for _, p := range pkts {
			switch p.(type) {
			case *rtcp.PictureLossIndication, *rtcp.FullIntraRequest:
				slot.room.srv.counters.plisIn.Add(1)
				slot.requestKeyframe()
			case *rtcp.TransportLayerNack:
				slot.room.srv.counters.nacksIn.Add(1)
			}
		}
	}
}
