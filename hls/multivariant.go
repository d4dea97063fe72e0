package hls

import (
	"strconv"
	"time"

	"github.com/singoff/singoff/media"
)

// The multivariant playlist lists the ladder, one variant per rung, top
// first, each with the attributes Apple's authoring rules ask of every
// variant: BANDWIDTH and AVERAGE-BANDWIDTH (the muxed audio included:
// gohlslib counts the video alone), CODECS, RESOLUTION and FRAME-RATE.

// meterWindow is how many of a rung's latest segments its bit rates are
// measured over: about what its playlist lists.
const meterWindow = 7

// fMP4 bytes around the media, for the meter: each part is a moof (with
// an mfhd, and a traf of tfhd, tfdt and trun per track) and an mdat;
// each sample adds a trun entry (video: duration, size, flags and
// composition offset; audio: size) and each H264 NAL unit a length.
const (
	partOverhead        = 160
	videoSampleOverhead = 16
	audioSampleOverhead = 4
	naluLengthSize      = 4
)

// meter measures the sizes of a rung's segments as they are served
// (video and audio muxed), cutting them where gohlslib does: at the
// first keyframe segmentDuration or more after the segment's start.
type meter struct {
	start int64 // PTS of the open segment's first frame, -1 before the first keyframe
	open  int64 // bytes of the open segment so far
	done  [meterWindow]segmentSize
	count int // segments measured, all time
}

type segmentSize struct {
	bytes    int64
	duration time.Duration
}

func newMeter() meter { return meter{start: -1} }

// video counts a frame; it tells whether the frame completed the rung's
// first segment.
func (m *meter) video(pts int64, key bool, au [][]byte) (firstSegment bool) {
	const segmentTicks = int64(segmentDuration) * media.VideoClockRate / int64(time.Second)
	switch {
	case m.start < 0 && !key:
		return false
	case m.start < 0:
		m.start = pts
	case key && pts-m.start >= segmentTicks:
		d := time.Duration((pts - m.start) * int64(time.Second) / media.VideoClockRate)
		parts := int64((d + partDuration - 1) / partDuration)
		m.done[m.count%meterWindow] = segmentSize{bytes: m.open + parts*partOverhead, duration: d}
		m.count++
		m.open, m.start = 0, pts
		firstSegment = m.count == 1
	}
	m.open += videoSampleOverhead
	for _, nalu := range au {
		m.open += naluLengthSize + int64(len(nalu))
	}
	return firstSegment
}

// audio counts AAC access units, once the video has started.
func (m *meter) audio(aus [][]byte) {
	if m.start < 0 {
		return
	}
	for _, au := range aus {
		m.open += audioSampleOverhead + int64(len(au))
	}
}

// rates returns the peak and the average bit rate of the segments
// measured, 0 before the first.
func (m *meter) rates() (peak, average int) {
	var bytes int64
	var duration time.Duration
	for _, s := range m.done[:min(m.count, meterWindow)] {
		if s.duration <= 0 {
			continue
		}
		peak = max(peak, int(s.bytes*8*int64(time.Second)/int64(s.duration)))
		bytes += s.bytes
		duration += s.duration
	}
	if duration > 0 {
		average = int(bytes * 8 * int64(time.Second) / int64(duration))
	}
	return peak, average
}

// renderMultivariant writes the multivariant playlist of the ladder.
func renderMultivariant(rungs []*rung, fps int) []byte {
	b := make([]byte, 0, 512)
	b = append(b, "#EXTM3U\n#EXT-X-VERSION:10\n#EXT-X-INDEPENDENT-SEGMENTS\n"...)
	for _, r := range rungs {
		peak, average := r.bandwidth()
		b = append(b, "#EXT-X-STREAM-INF:BANDWIDTH="...)
		b = strconv.AppendInt(b, int64(peak), 10)
		b = append(b, ",AVERAGE-BANDWIDTH="...)
		b = strconv.AppendInt(b, int64(average), 10)
		b = append(b, `,CODECS="`...)
		b = append(b, r.codecs...)
		b = append(b, `",RESOLUTION=`...)
		b = strconv.AppendInt(b, int64(r.width), 10)
		b = append(b, 'x')
		b = strconv.AppendInt(b, int64(r.height), 10)
		b = append(b, ",FRAME-RATE="...)
		b = strconv.AppendFloat(b, float64(fps), 'f', 3, 64)
		b = append(b, '\n')
		b = append(b, r.name...)
		b = append(b, '\n')
	}
	return b
}
