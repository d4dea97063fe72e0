package synth

import (
	"context"
	"time"

	pionmedia "github.com/pion/webrtc/v4/pkg/media"

	"github.com/singoff/singoff/ingest/whipclient"
	"github.com/singoff/singoff/media"
)

// Sing publishes the source through pub until ctx is done or a write
// fails, answering pub's keyframe requests; it closes the Source.
func (s *Source) Sing(ctx context.Context, pub *whipclient.Publisher) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	go func() {
		for {
			select {
			case <-ctx.Done():
				return
			case <-pub.KeyframeRequests():
				s.RequestKeyframe()
			}
		}
	}()
	frame := time.Second / time.Duration(s.cfg.FPS)
	var writeErr error
	err := s.Run(ctx, func(u media.AccessUnit) {
		if writeErr != nil {
			return
		}
		if u.Codec.IsVideo() {
			writeErr = pub.WriteVideo(pionmedia.Sample{Data: u.Data, Duration: frame})
		} else {
			writeErr = pub.WriteAudio(pionmedia.Sample{Data: u.Data, Duration: 20 * time.Millisecond})
		}
		if writeErr != nil {
			cancel()
		}
	})
	if writeErr != nil {
		return writeErr
	}
	return err
}
