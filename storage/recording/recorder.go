package recording

import (
	"errors"
	"fmt"
	"log/slog"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/bluenviron/mediacommon/v2/pkg/codecs/h264"
	"github.com/bluenviron/mediacommon/v2/pkg/formats/fmp4"
	"github.com/bluenviron/mediacommon/v2/pkg/formats/fmp4/seekablebuffer"
	"github.com/bluenviron/mediacommon/v2/pkg/formats/mp4/codecs"

	"github.com/singoff/singoff/internal/m3u8"
	"github.com/singoff/singoff/media"
)

// Track ids in init.mp4 and the segments.
const (
	videoTrackID = 1
	audioTrackID = 2
)

// maxAudioLag is how long a segment waits for audio to reach its end,
// counted in video time past that end, before it is written without.
const maxAudioLag = media.VideoClockRate / 2

// queuedSegments is how many finished segments may wait for the disk.
// Past that the recorder drops segments rather than hold up the program
// it is given (the live broadcast matters more than its replay).
const queuedSegments = 16

// ErrClosed is returned by writes to a closed recorder.
var ErrClosed = errors.New("recording: recorder closed")

type videoSample struct {
	pts int64 // media.VideoClockRate
	ntp time.Time
	fmp4.Sample
}

type audioSample struct {
	pts int64 // media.AudioClockRate
	au  []byte
}

// segmentJob is a finished segment on its way to the disk.
type segmentJob struct {
	seq           int
	start         time.Time
	duration      time.Duration
	video         []videoSample
	audio         []audioSample
	discontinuity bool
}

// stager follows what a recorder writes, so that it can be sent on (the
// S3 store uploads it). Its methods are called in order from the
// recorder's writing goroutine; the init segment is written before the
// recorder exists.
type stager interface {
	// admit tells whether a segment of size bytes may be written; false
	// drops it (a hole in the recording, marked as a discontinuity).
	admit(size int) bool
	// segment follows a segment written, as the playlist lists it.
	segment(e segmentEntry, size int)
	// file follows another file written: the thumbnail (written again
	// now and then).
	file(name string)
	// finished follows the last write: whether the playlist became VOD
	// and whether anything was recorded (else the recording is gone).
	finished(ended, recorded bool)
}

// errNoRoom drops a segment its stager has no room for.
var errNoRoom = errors.New("recording: no room to stage the segment")

// recorder cuts the program into segments of about segmentDuration at
// keyframes and has a goroutine of its own write them, so that the
// program's writer never waits on the disk.
type recorder struct {
	logger          *slog.Logger
	stage           stager // nil when nothing follows the files
	dir             string
	segmentDuration int64 // media.VideoClockRate
	frameDuration   int64 // media.VideoClockRate, for the last frame
	onClose         func()
	// checkFloor fails when the disk has less free space than its floor
	// (wrapping ErrDiskFloor); it is asked before every segment.
	checkFloor func() error

	mu          sync.Mutex
	closed      bool
	started     bool // a keyframe has come
	segStart    int64
	lastCut     int64
	cuts        []int64 // keyframe times that end the queued segments
	video       []videoSample
	pendingTail *videoSample // the latest frame, whose duration is not known yet
	audio       []audioSample
	nextSeq     int
	dropped     bool  // a segment was dropped since the last one queued
	lowDisk     error // set when the recording stopped at the disk floor

	cues   m3u8.Cues
	stills stills

	jobs    chan segmentJob
	done    chan struct{}
	ended   bool           // set before jobs is closed
	diskErr error          // the writer's first error; read after done
	written *atomic.Uint64 // the store's count of segment bytes written
}

func newRecorder(dir string, info media.ProgramInfo, segmentDuration time.Duration, logger *slog.Logger, written *atomic.Uint64,
	stage stager, checkFloor func() error, onClose func()) (*recorder, error) {
	init := fmp4.Init{Tracks: []*fmp4.InitTrack{
		{ID: videoTrackID, TimeScale: media.VideoClockRate, Codec: &codecs.H264{SPS: info.Video[0].SPS, PPS: info.Video[0].PPS}},
		{ID: audioTrackID, TimeScale: media.AudioClockRate, Codec: &codecs.MPEG4Audio{Config: info.Audio}},
	}}
	var buf seekablebuffer.Buffer
	if err := init.Marshal(&buf); err != nil {
		return nil, fmt.Errorf("recording: init segment: %w", err)
	}
	if err := writeFileAtomic(dir, initName, buf.Bytes()); err != nil {
		return nil, fmt.Errorf("recording: %w", err)
	}
	fps := int64(info.FPS)
	if fps <= 0 {
		fps = 30
	}
	r := &recorder{
		logger:          logger,
		stage:           stage,
		dir:             dir,
		segmentDuration: segmentDuration.Nanoseconds() * media.VideoClockRate / int64(time.Second),
		frameDuration:   media.VideoClockRate / fps,
		onClose:         onClose,
		checkFloor:      checkFloor,
		written:         written,
		jobs:            make(chan segmentJob, queuedSegments),
		done:            make(chan struct{}),
	}
	go r.writeLoop(segmentDuration)
	return r, nil
}

// WriteVideo implements media.Sink: the recording keeps the top rung.
func (r *recorder) WriteVideo(rung int, ntp time.Time, pts int64, au [][]byte) error {
	if rung != 0 {
		return nil
	}
	key := h264.IsRandomAccess(au)
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closed {
		return ErrClosed
	}
	if r.lowDisk != nil {
		return r.lowDisk
	}
	if !r.started {
		if !key {
			return nil // a recording starts at a keyframe
		}
		r.started = true
		r.segStart, r.lastCut = pts, pts
	}
	payload, err := h264.AVCC(au).Marshal()
	if err != nil {
		return fmt.Errorf("recording: %w", err)
	}
	if t := r.pendingTail; t != nil {
		t.Duration = uint32(max(pts-t.pts, 0))
		r.video = append(r.video, *t)
	}
	if key && pts-r.lastCut >= r.segmentDuration {
		r.cuts = append(r.cuts, pts)
		r.lastCut = pts
	}
	r.pendingTail = &videoSample{pts: pts, ntp: ntp, Sample: fmp4.Sample{IsNonSyncSample: !key, Payload: payload}}
	r.queueReadySegments(false)
	return nil
}

// WriteAudio implements media.Sink.
func (r *recorder) WriteAudio(_ time.Time, pts int64, aus [][]byte) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closed {
		return ErrClosed
	}
	if r.lowDisk != nil {
		return r.lowDisk
	}
	if !r.started {
		return nil // nothing to play it with before the first keyframe
	}
	for i, au := range aus {
		r.audio = append(r.audio, audioSample{pts: pts + int64(i)*media.AACFrameSamples, au: append([]byte(nil), au...)})
	}
	r.queueReadySegments(false)
	return nil
}

// audioInVideoTime converts an audio timestamp to the video clock.
func audioInVideoTime(pts int64) int64 {
	return pts * media.VideoClockRate / media.AudioClockRate
}

// queueReadySegments hands the writer every segment whose end is known
// and whose audio has come (or is late past maxAudioLag). With all, it
// also hands it what remains: the recording is closing.
func (r *recorder) queueReadySegments(all bool) {
	for len(r.cuts) > 0 {
		end := r.cuts[0]
		audioEnd := int64(-1)
		if n := len(r.audio); n > 0 {
			audioEnd = audioInVideoTime(r.audio[n-1].pts + media.AACFrameSamples)
		}
		if !all && audioEnd < end && r.pendingTail.pts-end < maxAudioLag {
			return
		}
		r.cuts = r.cuts[1:]
		r.queueSegment(end)
	}
	if all && (len(r.video) > 0 || r.pendingTail != nil) {
		if t := r.pendingTail; t != nil {
			t.Duration = uint32(r.frameDuration)
			if n := len(r.video); n > 0 {
				t.Duration = r.video[n-1].Duration
			}
			r.video = append(r.video, *t)
			r.pendingTail = nil
		}
		last := r.video[len(r.video)-1]
		r.queueSegment(last.pts + int64(last.Duration))
	}
}

// queueSegment queues the segment from segStart to end.
func (r *recorder) queueSegment(end int64) {
	nv := 0
	for nv < len(r.video) && r.video[nv].pts < end {
		nv++
	}
	na := 0
	for na < len(r.audio) && audioInVideoTime(r.audio[na].pts) < end {
		na++
	}
	if nv == 0 {
		return
	}
	job := segmentJob{
		seq:           r.nextSeq,
		start:         r.video[0].ntp,
		duration:      time.Duration((end - r.segStart) * int64(time.Second) / media.VideoClockRate),
		video:         r.video[:nv:nv],
		audio:         r.audio[:na:na],
		discontinuity: r.dropped,
	}
	r.video = append([]videoSample(nil), r.video[nv:]...)
	r.audio = append([]audioSample(nil), r.audio[na:]...)
	r.segStart = end
	select {
	case r.jobs <- job:
		r.nextSeq++
		r.dropped = false
	default:
		r.logger.Error("recording: disk too slow, segment dropped", "dir", r.dir, "duration", job.duration)
		r.dropped = true
	}
}

// Close implements Recorder.
func (r *recorder) Close(ended bool) error {
	r.mu.Lock()
	if r.closed {
		r.mu.Unlock()
		return ErrClosed
	}
	r.closed = true
	if r.started {
		r.queueReadySegments(true)
	}
	r.ended = ended
	close(r.jobs)
	r.mu.Unlock()

	<-r.done
	r.onClose()
	return r.diskErr
}

// writeLoop writes the queued segments, rewriting the playlist after
// each, until the recorder closes. Below the disk floor it stops: the
// playlist is finished (VOD) at the last segment written, later segments
// are dropped, and writes to the recorder fail with the floor's error.
func (r *recorder) writeLoop(segmentDuration time.Duration) {
	defer close(r.done)
	var entries []segmentEntry
	stopped := false
	for job := range r.jobs {
		if stopped {
			continue
		}
		if err := r.checkFloor(); err != nil {
			stopped = true
			r.stopLow(err, entries, segmentDuration)
			continue
		}
		size, err := r.writeSegment(job)
		if errors.Is(err, errNoRoom) {
			r.logger.Warn("recording: segment dropped, the staging backlog is full", "dir", r.dir, "duration", job.duration)
			continue
		}
		if err != nil {
			r.fail(err)
			continue
		}
		// A segment that failed to write leaves a hole too.
		afterHole := len(entries) > 0 && entries[len(entries)-1].name != segmentName(job.seq-1)
		e := segmentEntry{
			name:          segmentName(job.seq),
			duration:      job.duration,
			start:         job.start,
			discontinuity: job.discontinuity || afterHole,
		}
		entries = append(entries, e)
		if err := writeFileAtomic(r.dir, playlistName, renderPlaylist(entries, segmentDuration, r.cues.List(), false)); err != nil {
			r.fail(err)
		}
		if r.stage != nil {
			r.stage.segment(e, size)
		}
		r.saveThumb(false)
	}
	if len(entries) == 0 {
		// Nothing playable was recorded; leave no recording behind.
		if err := os.RemoveAll(r.dir); err != nil {
			r.fail(err)
		}
		if r.stage != nil {
			r.stage.finished(r.ended, false)
		}
		return
	}
	if !stopped {
		r.saveThumb(true)
	}
	if r.ended && !stopped {
		if err := writeFileAtomic(r.dir, playlistName, renderPlaylist(entries, segmentDuration, r.cues.List(), true)); err != nil {
			r.fail(err)
		}
	}
	if r.stage != nil {
		r.stage.finished(r.ended, true)
	}
}

// stopLow stops the recording at the disk floor (err): what was recorded
// is finished as VOD, and the program's next write is told.
func (r *recorder) stopLow(err error, entries []segmentEntry, segmentDuration time.Duration) {
	r.logger.Warn("recording: free disk space under the floor; the recording stops here", "err", err)
	r.mu.Lock()
	r.lowDisk = err
	r.mu.Unlock()
	if len(entries) == 0 {
		return
	}
	if err := writeFileAtomic(r.dir, playlistName, renderPlaylist(entries, segmentDuration, r.cues.List(), true)); err != nil {
		r.fail(err)
	}
}

func (r *recorder) fail(err error) {
	r.logger.Error("recording: writing", "dir", r.dir, "err", err)
	if r.diskErr == nil {
		r.diskErr = err
	}
}

// writeSegment writes a segment's file and returns its size.
func (r *recorder) writeSegment(job segmentJob) (int, error) {
	part := fmp4.Part{SequenceNumber: uint32(job.seq + 1)}
	video := &fmp4.PartTrack{ID: videoTrackID, BaseTime: uint64(job.video[0].pts)}
	for i := range job.video {
		video.Samples = append(video.Samples, &job.video[i].Sample)
	}
	part.Tracks = append(part.Tracks, video)
	if len(job.audio) > 0 {
		audio := &fmp4.PartTrack{ID: audioTrackID, BaseTime: uint64(job.audio[0].pts)}
		for _, a := range job.audio {
			audio.Samples = append(audio.Samples, &fmp4.Sample{Duration: media.AACFrameSamples, Payload: a.au})
		}
		part.Tracks = append(part.Tracks, audio)
	}
	var buf seekablebuffer.Buffer
	if err := part.Marshal(&buf); err != nil {
		return 0, fmt.Errorf("segment %d: %w", job.seq, err)
	}
	if r.stage != nil && !r.stage.admit(buf.Len()) {
		return 0, errNoRoom
	}
	if err := writeFileAtomic(r.dir, segmentName(job.seq), buf.Bytes()); err != nil {
		return 0, err
	}
	r.written.Add(uint64(buf.Len()))
	return buf.Len(), nil
}
