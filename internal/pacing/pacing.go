// Package pacing waits for the moments real-time loops keep: a program
// tick, a synthetic singer's next frame.
package pacing

import (
	"context"
	"time"
)

// Until waits until at, reusing timer, or until ctx ends; it reports
// whether at came (false: ctx ended). A moment already past returns at
// once.
func Until(ctx context.Context, timer *time.Timer, at time.Time) bool {
	wait := time.Until(at)
	if wait <= 0 {
		return ctx.Err() == nil
	}
	timer.Reset(wait)
	select {
	case <-ctx.Done():
		timer.Stop()
		return false
	case <-timer.C:
		return true
	}
}

// NewTimer returns a stopped timer for Until.
func NewTimer() *time.Timer {
	t := time.NewTimer(time.Hour)
	t.Stop()
	return t
}
