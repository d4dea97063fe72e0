package hls

import (
	"bytes"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"

	"github.com/bluenviron/mediacommon/v2/pkg/formats/fmp4"
	"github.com/bluenviron/mediacommon/v2/pkg/formats/fmp4/seekablebuffer"
)

// gohlslib writes each track of an fMP4 stream as a stream of its own,
// and publishes the audio as a rendition with its own playlist and parts:
// a watcher then makes two requests per part time, one set of them for a
// few kilobytes of audio. singoff serves one muxed stream instead, the
// video stream's playlist naming files that hold video and audio: the
// video's init file, parts and segments, each merged with the audio's of
// the same name and number. gohlslib cuts the parts and segments of all
// its streams at the same instants, under one lock, so the video's part n
// and the audio's part n are published together and cover the same time.
//
// The ids gohlslib gives the streams: the kind and the position of the
// track in Muxer.Tracks.
const (
	videoStreamID = "video1"
	audioStreamID = "audio2"
)

// muxedAudioTrackID is the audio track's id in the merged files; the video
// keeps the id 1 gohlslib gives it.
const muxedAudioTrackID = 2

// audioName is the name of the audio file that goes with the video file
// name, and false when name is not a video file.
func audioName(name string) (string, bool) {
	marker := "_" + videoStreamID + "_"
	if !strings.Contains(name, marker) {
		return "", false
	}
	return strings.Replace(name, marker, "_"+audioStreamID+"_", 1), true
}

// produceMuxed answers a request for a rung's video init file, part or
// segment named name with the file merged with the audio's of the same
// name (audio).
func (m *Muxer) produceMuxed(rg *rung, name, audio string, kind fileKind) answer {
	videoRec := &recorder{header: make(http.Header)}
	rg.muxer.Handle(videoRec, fileRequest(name, ""))
	if videoRec.status != http.StatusOK {
		return videoRec.answer()
	}
	// The audio file exists once the video one does (gohlslib publishes
	// them under one lock).
	audioRec := &recorder{header: make(http.Header)}
	rg.muxer.Handle(audioRec, fileRequest(audio, ""))
	if audioRec.status != http.StatusOK {
		return audioRec.answer()
	}

	var merged []byte
	var err error
	if kind == kindInit {
		merged, err = mergeInits(videoRec.body.Bytes(), audioRec.body.Bytes())
	} else {
		merged, err = mergeFragments(videoRec.body.Bytes(), audioRec.body.Bytes())
	}
	if err != nil {
		m.logger.Error("hls: merging audio into video", "file", name, "err", err)
		return answer{status: http.StatusInternalServerError}
	}
	return answer{
		status:        http.StatusOK,
		contentType:   headerMP4,
		contentLength: []string{strconv.Itoa(len(merged))},
		cacheControl:  cacheHeaders[cacheMedia],
		body:          merged,
	}
}

var headerMP4 = []string{"video/mp4"}

// fileRequest is a request to gohlslib for one of its files, with a
// query.
func fileRequest(name, query string) *http.Request {
	return &http.Request{Method: http.MethodGet, URL: &url.URL{Path: name, RawQuery: query}, Header: http.Header{}}
}

// mergeInits returns an init file with the video track of video and the
// audio track of audio.
func mergeInits(video, audio []byte) ([]byte, error) {
	var v, a fmp4.Init
	if err := v.Unmarshal(bytes.NewReader(video)); err != nil {
		return nil, fmt.Errorf("video init: %w", err)
	}
	if err := a.Unmarshal(bytes.NewReader(audio)); err != nil {
		return nil, fmt.Errorf("audio init: %w", err)
	}
	if len(v.Tracks) != 1 || len(a.Tracks) != 1 {
		return nil, fmt.Errorf("%d video and %d audio tracks, want 1 and 1", len(v.Tracks), len(a.Tracks))
	}
	a.Tracks[0].ID = muxedAudioTrackID
	v.Tracks = append(v.Tracks, a.Tracks[0])
	var buf seekablebuffer.Buffer
	if err := v.Marshal(&buf); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// mergeFragments returns the fragments of video (a part, or a segment
// made of parts) with the audio of the fragments of audio that bear the
// same sequence numbers.
func mergeFragments(video, audio []byte) ([]byte, error) {
	var v, a fmp4.Parts
	if err := v.Unmarshal(video); err != nil {
		return nil, fmt.Errorf("video: %w", err)
	}
	if err := a.Unmarshal(audio); err != nil {
		return nil, fmt.Errorf("audio: %w", err)
	}
	audioBySeq := make(map[uint32]*fmp4.Part, len(a))
	for _, p := range a {
		audioBySeq[p.SequenceNumber] = p
	}
	for _, p := range v {
		ap, ok := audioBySeq[p.SequenceNumber]
		if !ok {
			continue
		}
		delete(audioBySeq, p.SequenceNumber)
		for _, t := range ap.Tracks {
			t.ID = muxedAudioTrackID
			p.Tracks = append(p.Tracks, t)
		}
	}
	if len(audioBySeq) > 0 {
		return nil, fmt.Errorf("%d audio fragments without video", len(audioBySeq))
	}
	var buf seekablebuffer.Buffer
	if err := v.Marshal(&buf); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}
