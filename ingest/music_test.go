package ingest

import (
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/pion/webrtc/v4"
	"github.com/singoff/singoff/internal/pionapi"
)

// The answer asks for Opus as a singing show needs it: stereo, up to
// 128 kb/s, in-band FEC; with the offer's payload type and the feedback
// both sides have. (Which bitrate and channels a browser then sends, the
// page tests measure.)
func TestAnswerAsksForMusicOpus(t *testing.T) {
	ctx := testContext(t, 20*time.Second)
	h := newHarness(t)
	for _, c := range []struct {
		name    string
		publish bool
	}{{"publish", true}, {"subscribe", false}} {
		t.Run(c.name, func(t *testing.T) {
			offer := twccOffer(t, c.publish)
			room := h.room("music-" + c.name)
			call := room.Subscribe
			if c.publish {
				call = room.Publish
			}
			answer, err := call(ctx, 1, offer)
			if err != nil {
				t.Fatal(err)
			}
			pt := regexp.MustCompile(`a=rtpmap:(\d+) opus/48000/2`).FindStringSubmatch(answer.SDP)
			if pt == nil || pt[1] != "111" {
				t.Fatalf("no opus/48000/2 at the offer's payload type 111 in the answer:\n%s", answer.SDP)
			}
			fmtp := regexp.MustCompile(`a=fmtp:111 (.*)\r\n`).FindStringSubmatch(answer.SDP)
			if fmtp == nil {
				t.Fatalf("no fmtp for opus in the answer:\n%s", answer.SDP)
			}
			params := map[string]string{}
			for _, p := range strings.Split(fmtp[1], ";") {
				k, v, _ := strings.Cut(p, "=")
				params[k] = v
			}
			for k, v := range map[string]string{"stereo": "1", "sprop-stereo": "1", "maxaveragebitrate": "128000", "useinbandfec": "1"} {
				if params[k] != v {
					t.Errorf("answer's opus fmtp %q: %s=%q, want %q", fmtp[1], k, params[k], v)
				}
			}
			if !strings.Contains(answer.SDP, "a=rtcp-fb:111 "+webrtc.TypeRTCPFBTransportCC) {
				t.Errorf("the answer dropped opus's transport-cc feedback:\n%s", answer.SDP)
			}
		})
	}
}

// twccOffer is a pion client's offer with transport-cc feedback, as
// browsers offer.
func twccOffer(t *testing.T, publish bool) []byte {
	t.Helper()
	offer := offerWith(t, publish, pionapi.Options{Video: []webrtc.RTPCodecParameters{pionapi.H264(102, "42e01f", nil)},
		Audio: []webrtc.RTPCodecParameters{pionapi.Opus(111)}, TWCC: true, Loopback: true})
	if !strings.Contains(string(offer), "a=rtcp-fb:111 transport-cc") {
		t.Fatalf("the offer has no transport-cc for opus:\n%s", offer)
	}
	return offer
}
