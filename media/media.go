// Package media holds the few types that cross the seams of the pipeline:
// what ingest hands the compositor (AccessUnit, Feed) and what the compositor
// hands the HLS muxer and the recorder (ProgramInfo, Sink).
package media

import (
	"time"

	"github.com/bluenviron/mediacommon/v2/pkg/codecs/mpeg4audio"
)

// Codec is a codec a singer may publish.
type Codec int

// Codecs a singer may publish.
const (
	CodecUnknown Codec = iota
	CodecH264
	CodecVP8
	CodecOpus
)

func (c Codec) String() string {
	switch c {
	case CodecH264:
		return "H264"
	case CodecVP8:
		return "VP8"
	case CodecOpus:
		return "opus"
	}
	return "unknown"
}

// IsVideo tells whether c is a video codec.
func (c Codec) IsVideo() bool { return c == CodecH264 || c == CodecVP8 }

// AccessUnit is one depacketized media unit of a singer's track: an H264
// access unit, a VP8 frame or an Opus packet.
type AccessUnit struct {
	Codec Codec
	// Data is an H264 access unit in Annex-B form (start codes before
	// every NAL unit), a whole VP8 frame or one Opus packet.
	Data     []byte
	Keyframe bool
	// RTPTime is the RTP timestamp of the unit as sent, in ClockRate
	// units. It wraps; Session changes restart it.
	RTPTime   uint32
	ClockRate uint32
	// Arrival is when the last RTP packet of the unit reached the server.
	Arrival time.Time
	// SenderNTP is the sender's wall clock for RTPTime, mapped through
	// the latest RTCP sender report of this track; zero before the
	// first report. Audio and video of one sender share this clock, so
	// it is what keeps them in sync.
	SenderNTP time.Time
	// Session identifies the publisher's session: a reconnect (a new
	// WHIP POST for the slot) gives a new value, and timestamps start
	// over.
	Session uint64
	// Loss is true when units were lost just before this one.
	Loss bool
}

// Feed is one singer slot as the compositor sees it. It lives as long as
// the battle, across the publisher's reconnects.
type Feed interface {
	// Units delivers the slot's units in order of arrival. The channel
	// is closed when the slot is closed for good.
	Units() <-chan AccessUnit
	// RequestKeyframe asks the current publisher for a keyframe; it is
	// rate-limited by the implementation and safe to call often.
	RequestKeyframe()
}

// ProgramInfo describes the compositor's output, known once its encoders
// are open and before the first sample.
type ProgramInfo struct {
	// Video is the ladder, top rung first: the program at its full size
	// (ProgramWidth × ProgramHeight), then any smaller renditions scaled
	// from the same picture. Every rung has the same frame rate and
	// keyframes at the same instants.
	Video []VideoRung
	FPS   int
	// Audio is the AAC-LC configuration, one track shared by every rung.
	Audio        mpeg4audio.AudioSpecificConfig
	AudioBitrate int // bit/s
}

// VideoRung is one H264 rendition of the program.
type VideoRung struct {
	Width, Height int
	Bitrate       int // the encoder's target, bit/s
	// SPS and PPS without start codes.
	SPS, PPS []byte
}

// The program: its picture, frame rate and clock rates, and the length
// of one AAC-LC access unit.
const (
	ProgramWidth    = 1280
	ProgramHeight   = 720
	ProgramFPS      = 30
	VideoClockRate  = 90000
	AudioClockRate  = 48000
	AACFrameSamples = 1024
)

// Recorder writes one battle's program to a recording.
type Recorder interface {
	Sink
	// Close writes what is pending and stops the recording. With ended
	// the playlist becomes VOD (#EXT-X-ENDLIST); without, it stays an
	// EVENT playlist that is finished at the next start, as after a
	// crash.
	Close(ended bool) error
}

// Scene is what the program shows of the battle over the singers'
// pictures, and how it weighs their voices. It is comparable: a change is
// one !=.
type Scene struct {
	Names     [2]string
	Round     int // 0 before the start
	Rounds    int
	Turn      int    // the slot singing, 0 none
	Remaining int    // whole seconds left in the turn, when Turn != 0
	Votes     [2]int // the current round's tally
	// VotingOpen brightens the vote bar and, between turns, asks for votes.
	VotingOpen bool
	// Finished: the result stands. Winner is then 1 or 2, or 0 for a
	// draw, and Score the rounds each singer won ("Ann wins 2–1"; left
	// zero, the result shows without it).
	Finished bool
	Winner   int
	Score    [2]int
	// Cheers are the audience's cheers for each side so far (the cheer
	// meter): the crowd's noise, apart from the votes.
	Cheers [2]int
}

// Sink receives the program. Timestamps count from the start of the
// program: PTS in VideoClockRate units for video and AudioClockRate units
// for audio; the H264 stream has no B-frames, so DTS equals PTS. ntp is
// the wall-clock time of the sample.
type Sink interface {
	// WriteVideo takes one H264 access unit of ladder rung (0 the top) as
	// NAL units without start codes.
	WriteVideo(rung int, ntp time.Time, pts int64, au [][]byte) error
	// WriteAudio takes one or more consecutive AAC access units, the
	// first at pts, each 1024 samples long.
	WriteAudio(ntp time.Time, pts int64, aus [][]byte) error
}

// Cue is a battle event placed on the program's clock: the live and
// recorded playlists carry it as an EXT-X-DATERANGE, so players show it
// in step with the picture.
type Cue struct {
	ID       string        // unique in the battle, e.g. "turn-2-1", "round-2", "result"
	Class    string        // e.g. "singoff.turn", "singoff.round", "singoff.result"
	Start    time.Time     // on the program's clock: the ntp of the sample showing it
	Duration time.Duration // 0: open-ended
	// Data are client attributes, names without the X- prefix in upper
	// case ("SLOT", "ROUND", "WINNER", …), values as text.
	Data map[string]string
}

// Cuer takes a battle's events: the live muxer and the recorder.
type Cuer interface {
	Cue(c Cue)
}

// Stills take the program's latest picture, a small JPEG, about once a
// second: the live thumbnail, and the replay's.
type Stills interface {
	Still(ntp time.Time, jpeg []byte)
}
