package loadtest

import (
	"context"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"time"
)

// Main runs `singoff loadtest` with args (the flags after the command
// name) and prints the report to stdout.
func Main(ctx context.Context, args []string, stdout io.Writer) error {
	fs := flag.NewFlagSet("loadtest", flag.ContinueOnError)
	fs.SetOutput(stdout)
	cfg := Config{
		Logger: slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn})),
	}
	fs.StringVar(&cfg.URL, "url", "", "the stream's playlist, e.g. http://host:8080/hls/{id}/index.m3u8")
	fs.IntVar(&cfg.Watchers, "watchers", 100, "simulated LL-HLS watchers")
	fs.IntVar(&cfg.Variant, "variant", 0, "the variant of the multivariant playlist to follow, by its place (0: the first, the top rung)")
	fs.DurationVar(&cfg.Duration, "duration", 30*time.Second, "how long they watch")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("loadtest: unexpected argument %q", fs.Arg(0))
	}
	if cfg.URL == "" {
		return fmt.Errorf("loadtest: --url is required")
	}
	report, err := Run(ctx, cfg)
	if err != nil {
		return err
	}
	_, err = io.WriteString(stdout, report.String())
	return err
}
