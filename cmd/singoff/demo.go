package main

import (
	"context"
	"log/slog"
	"time"

	"github.com/singoff/singoff/battle"
)

// runDemo creates a battle sung by two synthetic singers, so that a fresh
// `make run` shows a live program at once.
func runDemo(ctx context.Context, log *slog.Logger, base string, loopback bool, m *battle.Manager) {
	title := "Demo battle"
	b, tokens, err := m.Create(ctx, battle.CreateRequest{Title: &title, Singers: []string{"Bot One", "Bot Two"}})
	if err != nil {
		log.Error("demo battle", "err", err)
		return
	}
	log.Info("demo battle: watch it here", "watch", base+"/b/"+b.ID, "hls", base+"/hls/"+b.ID+"/index.m3u8")
	for slot := 1; slot <= 2; slot++ {
		go func() {
			err := runBot(ctx, log.With("bot", slot), botConfig{
				base: base, battle: b.ID, slot: slot, token: tokens.Singers[slot-1],
				codec: "h264", loopback: loopback, retry: 2 * time.Second,
			})
			if err != nil {
				log.Error("demo singer stopped", "slot", slot, "err", err)
			}
		}()
	}
}
