package main

import (
	"context"
	"os"

	"github.com/singoff/singoff/internal/loadtest"
)

func runLoadtest(ctx context.Context, args []string) error {
	return loadtest.Main(ctx, args, os.Stdout)
}
