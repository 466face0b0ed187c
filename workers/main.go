// Command workers runs Tributary's worker roles against external Kafka, Temporal and
// database, configured by flags or KAFKA_BOOTSTRAP_SERVERS, TEMPORAL_ADDRESS,
// TEMPORAL_NAMESPACE and DATABASE_URL:
//
//	workers -role worker   Temporal worker: workflows and activities
//	workers -role bridge   Kafka consumer group that signals the workflows
//	workers -role all      both (the default)
//
// Each role scales by running more copies.
package main

import (
	"context"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/tributary-dev/tributary/internal/app"
	"github.com/tributary-dev/tributary/internal/config"
)

func main() {
	level, err := config.LogLevel(slog.LevelInfo)
	if err != nil {
		fmt.Fprintln(os.Stderr, "workers:", err)
		os.Exit(2)
	}
	log := slog.New(slog.NewJSONHandler(os.Stderr, &slog.HandlerOptions{Level: level}))
	if err := run(log); err != nil {
		log.Error("workers stopped", "err", err)
		os.Exit(1)
	}
}

func run(log *slog.Logger) error {
	cfg, err := config.FromEnv()
	if err != nil {
		return err
	}
	fs := flag.NewFlagSet("workers", flag.ContinueOnError)
	cfg.RegisterFlags(fs)
	role := fs.String("role", "all", "worker, bridge, api or all")
	if err := fs.Parse(os.Args[1:]); err != nil {
		return err
	}
	roles := app.Roles{Worker: *role == "worker" || *role == "all", Bridge: *role == "bridge" || *role == "all", API: *role == "api" || *role == "all"}
	if !roles.Worker && !roles.Bridge && !roles.API {
		return fmt.Errorf("-role %q: want worker, bridge, api or all", *role)
	}
	if err := cfg.Validate(); err != nil {
		return err
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	cctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	deps, err := app.Connect(cctx, cfg, log)
	cancel()
	if err != nil {
		return err
	}
	defer deps.Close()
	return app.Run(ctx, deps, roles, func(*app.Running) {
		log.Info("running", "role", *role, "kafka", cfg.KafkaBootstrap, "temporal", cfg.TemporalAddress)
	})
}
