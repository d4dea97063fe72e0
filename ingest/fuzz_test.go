package ingest

import (
	"errors"
	"strings"
	"testing"

	"github.com/singoff/singoff/internal/testmedia"
)

func FuzzCheckOffer(f *testing.F) {
	f.Add([]byte(testmedia.UnsupportedOffer), true)
	f.Add([]byte(testmedia.VP8Offer), true)
	f.Add([]byte(strings.ReplaceAll(testmedia.UnsupportedOffer, "G722", "opus")), false)
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
		if !errors.Is(err, ErrMalformed) && !errors.Is(err, ErrUnusable) {
			t.Fatalf("error %v is neither ErrMalformed nor ErrUnusable", err)
		}
	})
}

func TestCheckOffer(t *testing.T) {
	h264 := strings.ReplaceAll(testmedia.UnsupportedOffer, "packetization-mode=0", "packetization-mode=1")
	twoVideo := testmedia.VP8Offer + strings.Join(strings.SplitAfter(testmedia.VP8Offer, "\r\n")[14:], "")
	cases := []struct {
		name    string
		offer   string
		publish bool
		want    offerInfo
		err     error
		says    string
	}{
		{"VP8 publisher", testmedia.VP8Offer, true, offerInfo{video: true}, nil, ""},
		{"H264 publisher", h264, true, offerInfo{video: true}, nil, ""},
		{"sendonly offer to subscribe", testmedia.VP8Offer, false, offerInfo{}, ErrUnusable, "no audio or video section"},
		{"two video sections", twoVideo, true, offerInfo{}, ErrUnusable, "at most one"},
		{"unsupported codecs", testmedia.UnsupportedOffer, true, offerInfo{}, ErrUnusable, "offered AV1, G722, H264 (packetization-mode 0)"},
		{"not SDP", "garbage", true, offerInfo{}, ErrMalformed, "not SDP"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			info, err := checkOffer([]byte(c.offer), c.publish)
			if info != c.want || !errors.Is(err, c.err) || (err != nil && !strings.Contains(err.Error(), c.says)) {
				t.Errorf("checkOffer: %+v, %v; want %+v, %v saying %q", info, err, c.want, c.err, c.says)
			}
		})
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
			if !errors.Is(err, ErrMalformed) {
				t.Fatalf("error %v is not ErrMalformed", err)
			}
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
	bad := []struct{ name, frag string }{
		{"ufrag without pwd", "a=ice-ufrag:x\r\n"},
		{"not SDP", "hello"},
		{"a session line", "v=0\r\n"},
		{"bad candidate", "a=candidate:garbage\r\n"},
	}
	for _, c := range bad {
		t.Run(c.name, func(t *testing.T) {
			if _, err := parseSDPFrag([]byte(c.frag)); !errors.Is(err, ErrMalformed) {
				t.Errorf("%q: %v, want ErrMalformed", c.frag, err)
			}
		})
	}
}
