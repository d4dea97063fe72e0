package testmedia

import "strings"

// UnsupportedOffer is a browser-like publish offer that parses but offers
// only codecs the server does not take: G722 audio, AV1 video and H264 in
// packetization mode 0.
const UnsupportedOffer = "v=0\r\n" +
	"o=- 1 2 IN IP4 127.0.0.1\r\n" +
	"s=-\r\n" +
	"t=0 0\r\n" +
	"a=group:BUNDLE 0 1\r\n" +
	"m=audio 9 UDP/TLS/RTP/SAVPF 9\r\n" +
	"c=IN IP4 0.0.0.0\r\n" +
	"a=mid:0\r\n" +
	"a=sendonly\r\n" +
	"a=rtpmap:9 G722/8000\r\n" +
	"a=ice-ufrag:abcd\r\n" +
	"a=ice-pwd:abcdefghijklmnopqrstuvwx\r\n" +
	"a=fingerprint:sha-256 75:74:5A:A6:A4:E5:52:F4:A7:67:4C:01:C7:EE:91:3F:21:3D:A2:E3:53:7B:6F:30:86:F2:30:AA:65:FB:04:24\r\n" +
	"a=setup:actpass\r\n" +
	"m=video 9 UDP/TLS/RTP/SAVPF 45 97\r\n" +
	"c=IN IP4 0.0.0.0\r\n" +
	"a=mid:1\r\n" +
	"a=sendonly\r\n" +
	"a=rtpmap:45 AV1/90000\r\n" +
	"a=rtpmap:97 H264/90000\r\n" +
	"a=fmtp:97 profile-level-id=42e01f;packetization-mode=0\r\n" +
	"a=ice-ufrag:abcd\r\n" +
	"a=ice-pwd:abcdefghijklmnopqrstuvwx\r\n" +
	"a=fingerprint:sha-256 75:74:5A:A6:A4:E5:52:F4:A7:67:4C:01:C7:EE:91:3F:21:3D:A2:E3:53:7B:6F:30:86:F2:30:AA:65:FB:04:24\r\n" +
	"a=setup:actpass\r\n"

// VP8Offer is UnsupportedOffer with VP8 in place of AV1: a publish offer
// the server takes (it declines the G722 audio).
var VP8Offer = strings.ReplaceAll(UnsupportedOffer, "AV1", "VP8")
