package main

import (
	"context"
	"log/slog"
	"strings"

	"github.com/asticode/go-astiav"
)

// routeFFmpegLogs sends libav's warnings and errors to slog (the process
// has one libav log, hence here); its info chatter is dropped.
func routeFFmpegLogs(log *slog.Logger) {
	log = log.With("component", "ffmpeg")
	astiav.SetLogLevel(astiav.LogLevelWarning)
	astiav.SetLogCallback(func(_ astiav.Classer, l astiav.LogLevel, _, msg string) {
		level := slog.LevelWarn
		if l <= astiav.LogLevelError {
			level = slog.LevelError
		}
		if msg = strings.TrimSpace(msg); msg != "" {
			log.Log(context.Background(), level, msg)
		}
	})
}
