package ingest

import (
	"errors"
	"strings"
	"testing"
)

func FuzzCheckOffer(f *testing.F) {
	f.Add([]byte(unsupportedOffer), true)
	f.Add([]byte(strings.ReplaceAll(unsupportedOffer, "AV1", "VP8")), true)
	f.Add([]byte(strings.ReplaceAll(unsupportedOffer, "G722", "opus")), false)
	f.Add([]byte("v=0\r\n"), false)
	f.Add([]byte("garbage"), true)
	f.Fuzz(func(t *testing.T, offer []byte, publish bool) {
		info, err := checkOffer(offer, publish)
		if err == nil {
			if !info.video && !info.audio {
				t.Fatal("accepted an offer with nothing usable")
			}
			return
		}
		var oe *offerError
		if !errors.As(err, &oe) || (oe.status != statusMalformed && oe.status != statusUnusable) || oe.msg == "" {
			t.Fatalf("error %v is not a 400 or 422 offerError", err)
		}
	})
}

func TestCheckOffer(t *testing.T) {
	vp8 := strings.ReplaceAll(unsupportedOffer, "AV1", "VP8")
	if info, err := checkOffer([]byte(vp8), true); err != nil || !info.video || info.audio {
		t.Errorf("VP8 publish offer: %+v %v", info, err)
	}
	// A sendonly offer is no use to a subscriber.
	if _, err := checkOffer([]byte(vp8), false); err == nil {
		t.Error("sendonly offer accepted for WHEP")
	}
	h264 := strings.ReplaceAll(unsupportedOffer, "packetization-mode=0", "packetization-mode=1")
	if info, err := checkOffer([]byte(h264), true); err != nil || !info.video {
		t.Errorf("H264 publish offer: %+v %v", info, err)
	}
	twoVideo := vp8 + strings.Join(strings.SplitAfter(vp8, "\r\n")[14:], "")
	if _, err := checkOffer([]byte(twoVideo), true); err == nil || !strings.Contains(err.Error(), "at most one") {
		t.Errorf("two video sections: %v", err)
	}
}

func FuzzParseSDPFrag(f *testing.F) {
	f.Add([]byte("a=ice-ufrag:abcd\r\na=ice-pwd:abcdefghijklmnopqrstuvwx\r\nm=audio 9 UDP/TLS/RTP/SAVPF 0\r\na=mid:0\r\na=candidate:1 1 udp 2130706431 127.0.0.1 5000 typ host\r\na=end-of-candidates\r\n"))
	f.Add([]byte("a=mid:1\na=candidate:2 1 tcp 1 10.0.0.1 9 typ host tcptype passive\n"))
	f.Add([]byte("a=ice-ufrag:x\r\n"))
	f.Add([]byte("m=\r\nx"))
	f.Fuzz(func(t *testing.T, body []byte) {
		frag, err := parseSDPFrag(body)
		if err != nil {
			return
		}
		if (frag.ufrag == "") != (frag.pwd == "") {
			t.Fatal("credentials half set")
		}
		for _, c := range frag.candidates {
			if !strings.HasPrefix(c.value, "candidate:") {
				t.Fatalf("candidate value %q", c.value)
			}
		}
	})
}

func TestParseSDPFrag(t *testing.T) {
	frag, err := parseSDPFrag([]byte("a=ice-ufrag:abcd\r\na=ice-pwd:pw\r\nm=audio 9 UDP/TLS/RTP/SAVPF 0\r\na=mid:a0\r\na=candidate:1 1 udp 2130706431 127.0.0.1 5000 typ host\r\nm=video 9 UDP/TLS/RTP/SAVPF 0\r\na=candidate:2 1 udp 2130706431 127.0.0.1 5001 typ host\r\na=end-of-candidates\r\n"))
	if err != nil {
		t.Fatal(err)
	}
	if frag.ufrag != "abcd" || frag.pwd != "pw" || len(frag.candidates) != 2 ||
		frag.candidates[0].mid != "a0" || frag.candidates[1].mid != "1" || frag.candidates[1].index != 1 {
		t.Errorf("parsed %+v", frag)
	}
	for _, bad := range []string{"a=ice-ufrag:x\r\n", "hello", "v=0\r\n", "a=candidate:garbage\r\n"} {
		if _, err := parseSDPFrag([]byte(bad)); err == nil {
			t.Errorf("%q parsed", bad)
		}
	}
}
