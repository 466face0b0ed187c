// Command workers runs Tributary's worker roles against external Kafka, Temporal and
// database, configured by flags or KAFKA_BOOTSTRAP_SERVERS, TEMPORAL_ADDRESS,
// TEMPORAL_NAMESPACE and DATABASE_URL:
//
//	workers -role worker   Temporal worker: workflows and activities
//	workers -role bridge   Kafka consumer group that signals the workflows
//	workers -role api      HTTP API and dashboard
//	workers -role all      all of them (the default)
//
// Each role scales by running more copies. `starter workers` is the same command.
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

	"github.com/tributary-dev/tributary/internal/cli"
	"github.com/tributary-dev/tributary/internal/config"
)

func main() {
	level, err := config.LogLevel(slog.LevelInfo)
	if err != nil {
		fmt.Fprintln(os.Stderr, "workers:", err)
		os.Exit(2)
	}
	log := slog.New(slog.NewJSONHandler(os.Stderr, &slog.HandlerOptions{Level: level}))
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := cli.Workers(ctx, os.Args[1:], os.Stdout, log); err != nil && !errors.Is(err, flag.ErrHelp) {
		log.Error("workers stopped", "err", err)
		os.Exit(1)
	}
}
