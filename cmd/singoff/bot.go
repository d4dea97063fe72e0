package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net/netip"
	"net/url"
	"os"
	"strings"
	"time"

	"github.com/pion/webrtc/v4"

	"github.com/singoff/singoff/ingest/whipclient"
	"github.com/singoff/singoff/internal/synth"
	"github.com/singoff/singoff/media"
)

type botConfig struct {
	base     string
	battle   string
	slot     int
	token    string
	codec    string
	loopback bool
	noise    bool
	retry    time.Duration
}

func bot(ctx context.Context, log *slog.Logger, args []string) error {
	c := botConfig{}
	fs := flag.NewFlagSet("bot", flag.ContinueOnError)
	fs.StringVar(&c.base, "base", "http://localhost:8080", "server base URL")
	fs.StringVar(&c.battle, "battle", "", "battle id")
	fs.IntVar(&c.slot, "slot", 1, "slot to sing in (1 or 2)")
	fs.StringVar(&c.token, "token", "", "the slot's singer token")
	fs.StringVar(&c.codec, "codec", "h264", "video codec: h264 or vp8")
	fs.BoolVar(&c.loopback, "loopback", false, "ICE on 127.0.0.1 only (for a server run with --loopback; the default when --base is a loopback address)")
	fs.BoolVar(&c.noise, "noise", false, "send moving noise (~2 Mb/s, like a camera) instead of the test picture")
	fs.DurationVar(&c.retry, "retry", 2*time.Second, "wait before publishing again after a failure (0: give up)")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if c.battle == "" || c.token == "" || (c.slot != 1 && c.slot != 2) {
		return errors.New("bot needs --battle, --token and --slot 1 or 2")
	}
	explicit := false
	fs.Visit(func(f *flag.Flag) { explicit = explicit || f.Name == "loopback" })
	if _, set := os.LookupEnv("SINGOFF_LOOPBACK"); !explicit && !set {
		c.loopback = isLoopbackURL(c.base)
	}
	return runBot(ctx, log.With("bot", c.slot), c)
}

// runBot publishes until ctx ends, publishing again after failures.
func runBot(ctx context.Context, log *slog.Logger, c botConfig) error {
	endpoint, err := url.JoinPath(c.base, "api/battles", c.battle, "singers", fmt.Sprint(c.slot), "whip")
	if err != nil {
		return err
	}
	for {
		err := publishOnce(ctx, log, c, endpoint)
		if ctx.Err() != nil {
			return err // nil, or the hang-up failed
		}
		var httpErr *whipclient.HTTPError
		if errors.As(err, &httpErr) && httpErr.Status >= 400 && httpErr.Status < 500 && httpErr.Status != 429 {
			return err // wrong token, ended battle: trying again will not help
		}
		if c.retry == 0 {
			return err
		}
		log.Warn("publishing stopped; trying again", "err", err, "in", c.retry)
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(c.retry):
		}
	}
}

func publishOnce(ctx context.Context, log *slog.Logger, c botConfig, endpoint string) error {
	codec, mime := media.CodecH264, webrtc.MimeTypeH264
	if strings.EqualFold(c.codec, "vp8") {
		codec, mime = media.CodecVP8, webrtc.MimeTypeVP8
	}
	src, err := synth.New(synth.Config{Slot: c.slot, VideoCodec: codec, Noise: c.noise})
	if err != nil {
		return err
	}
	pub, err := whipclient.Publish(ctx, endpoint, c.token, whipclient.Options{VideoCodec: mime, Loopback: c.loopback})
	if err != nil {
		src.Close()
		return err
	}
	log.Info("publishing", "endpoint", endpoint, "session", pub.Location())
	err = src.Sing(ctx, pub)
	closeCtx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	if cerr := pub.Close(closeCtx); cerr != nil && err == nil && ctx.Err() != nil {
		// Stopping: the session must go at once, not when ICE times out.
		err = fmt.Errorf("hanging up: %w", cerr)
	}
	return err
}

// isLoopbackURL tells whether u names this machine's loopback, where a
// singer needs no other network.
func isLoopbackURL(u string) bool {
	parsed, err := url.Parse(u)
	if err != nil {
		return false
	}
	host := parsed.Hostname()
	if host == "localhost" {
		return true
	}
	ip, err := netip.ParseAddr(host)
	return err == nil && ip.IsLoopback()
}
