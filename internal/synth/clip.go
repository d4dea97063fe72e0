package synth

import (
	"context"
	"fmt"
	"time"

	"github.com/singoff/singoff/internal/pacing"
	"github.com/singoff/singoff/media"
)

// Clip is media encoded ahead of time, faster than real time, to be played
// back in a loop without spending CPU on encoding (benchmarks).
type Clip struct {
	Length  time.Duration
	packets []timedPacket
}

// Encode generates length of media as fast as the encoders go.
func Encode(cfg Config, length time.Duration) (*Clip, error) {
	s, err := New(cfg)
	if err != nil {
		return nil, err
	}
	defer s.Close()
	// The clip starts over at a keyframe each loop; whole frames of both
	// tracks keep the loops' timestamps continuous.
	length = length.Round(time.Second)
	if length <= 0 {
		return nil, fmt.Errorf("synth: clip length %v shorter than a second", length)
	}
	s.start = time.Now()
	c := &Clip{Length: length}
	for {
		tp, err := s.next()
		if err != nil {
			return nil, err
		}
		if tp.at >= length {
			return c, nil
		}
		c.packets = append(c.packets, tp)
	}
}

// Packets returns the clip's units in media-time order with their RTP
// timestamps; loop n (from 0) adds n*Length to them.
func (c *Clip) Packets() []media.AccessUnit {
	out := make([]media.AccessUnit, len(c.packets))
	for i, tp := range c.packets {
		out[i] = tp.pkt
	}
	return out
}

// Play emits the clip in real time, looping with continuous timestamps,
// until ctx is done.
func (c *Clip) Play(ctx context.Context, emit func(media.AccessUnit)) error {
	start := time.Now()
	timer := pacing.NewTimer()
	defer timer.Stop()
	for loop := time.Duration(0); ; loop++ {
		offset := loop * c.Length
		for _, tp := range c.packets {
			at := offset + tp.at
			if !pacing.Until(ctx, timer, start.Add(at)) {
				return nil
			}
			p := tp.pkt
			p.RTPTime += uint32(int64(offset) * int64(p.ClockRate) / int64(time.Second))
			p.Arrival = time.Now()
			p.SenderNTP = start.Add(at)
			emit(p)
		}
	}
}
