// Command starter brings up Tributary's embedded stack and launches simulations.
// See `starter help`.
package main

import (
	"context"
	"log/slog"
	"os"
	"os/signal"
	"syscall"

	"github.com/tributary-dev/tributary/internal/cli"
)

func main() {
	level := slog.LevelInfo
	_ = level.UnmarshalText([]byte(os.Getenv("TRIBUTARY_LOG_LEVEL")))
	if os.Getenv("TRIBUTARY_LOG_LEVEL") == "" {
		level = slog.LevelWarn
	}
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: level}))
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	os.Exit(cli.Main(ctx, os.Args[1:], os.Stdout, os.Stderr, log))
}
