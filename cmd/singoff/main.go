// Command singoff is the singing-battle broadcast server and its helper
// commands.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"syscall"
)

const usage = `singoff: live singing battles over WebRTC and LL-HLS

Usage:
  singoff serve     [flags]   run the server
  singoff bot       [flags]   a synthetic singer (WHIP client)
  singoff loadtest  [flags]   simulated LL-HLS watchers

Run "singoff <command> -h" for a command's flags. Every flag can also be
set as SINGOFF_<FLAG> (upper case, dashes as underscores).
`

func main() {
	if len(os.Args) < 2 {
		fmt.Fprint(os.Stderr, usage)
		os.Exit(2)
	}
	logger := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: logLevel()}))
	routeFFmpegLogs(logger)
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()

	var err error
	switch cmd, args := os.Args[1], os.Args[2:]; cmd {
	case "serve":
		err = serve(ctx, logger, args)
	case "bot":
		err = bot(ctx, logger, args)
	case "loadtest":
		err = runLoadtest(ctx, args)
	case "-h", "--help", "help":
		fmt.Print(usage)
		return
	default:
		fmt.Fprintf(os.Stderr, "singoff: unknown command %q\n\n%s", cmd, usage)
		os.Exit(2)
	}
	if errors.Is(err, flag.ErrHelp) {
		return
	}
	if err != nil {
		logger.Error(os.Args[1]+" failed", "err", err)
		os.Exit(1)
	}
}

func logLevel() slog.Level {
	var l slog.Level
	if err := l.UnmarshalText([]byte(os.Getenv("SINGOFF_LOG_LEVEL"))); err != nil {
		return slog.LevelInfo
	}
	return l
}
