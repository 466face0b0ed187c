// Command starter brings up Tributary's embedded stack and launches simulations.
// See `starter help`.
package main

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"syscall"

	"github.com/tributary-dev/tributary/internal/cli"
	"github.com/tributary-dev/tributary/internal/config"
)

func main() {
	level, err := config.LogLevel(slog.LevelWarn)
	if err != nil {
		fmt.Fprintln(os.Stderr, "starter:", err)
		os.Exit(2)
	}
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: level}))
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	os.Exit(cli.Main(ctx, os.Args[1:], os.Stdout, os.Stderr, log))
}
