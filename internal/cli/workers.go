package cli

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"time"

	"github.com/tributary-dev/tributary/internal/app"
	"github.com/tributary-dev/tributary/internal/config"
)

// Workers runs Tributary's roles against external Kafka, Temporal and database until ctx
// ends: the `workers` command, and `starter workers`.
func Workers(ctx context.Context, args []string, _ io.Writer, log *slog.Logger) error {
	fs, cfg, err := configFlags("workers", []config.FlagGroup{config.ClientFlags, config.ResultsFlags, config.PipelineFlags, config.SensorTimingFlags, config.ServeFlags})
	if err != nil {
		return err
	}
	role := fs.String("role", "all", "worker, bridge, api (comma-separated) or all")
	probe := fs.String("probe", "", "check that this URL answers 200 within 3 s and exit: the container health check, for images without curl")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *probe != "" {
		return probeURL(ctx, *probe)
	}
	roles, err := app.ParseRoles(*role)
	if err != nil {
		return fmt.Errorf("-role: %w", err)
	}
	if roles == (app.Roles{}) {
		return fmt.Errorf("-role %q runs nothing", *role)
	}
	if err := cfg.Validate(); err != nil {
		return err
	}
	// Kafka, Temporal and the database may come up after this role (compose, a restart):
	// Connect waits for each, saying once what it waits for.
	deps, err := app.Connect(ctx, *cfg, log)
	if err != nil {
		return err
	}
	defer deps.Close()
	return app.Run(ctx, deps, roles, func(r *app.Running) {
		log.Info("running", "role", *role, "kafka", cfg.KafkaBootstrap, "temporal", cfg.TemporalAddress, "api", r.APIAddress, "metrics", r.MetricsAddress)
	})
}

// probeURL succeeds when url answers 200 OK within three seconds.
func probeURL(ctx context.Context, url string) error {
	ctx, cancel := context.WithTimeout(ctx, 3*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return fmt.Errorf("-probe: %w", err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return fmt.Errorf("-probe %s: %w", url, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("-probe %s: %s", url, resp.Status)
	}
	return nil
}
