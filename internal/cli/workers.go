package cli

import (
	"context"
	"fmt"
	"io"
	"log/slog"

	"github.com/tributary-dev/tributary/internal/app"
)

// Workers runs Tributary's roles against external Kafka, Temporal and database until ctx
// ends: the `workers` command, and `starter workers`.
func Workers(ctx context.Context, args []string, _ io.Writer, log *slog.Logger) error {
	fs, cfg, err := configFlags("workers")
	if err != nil {
		return err
	}
	role := fs.String("role", "all", "worker, bridge, api (comma-separated) or all")
	if err := fs.Parse(args); err != nil {
		return err
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
	return app.Run(ctx, deps, roles, func(*app.Running) {
		log.Info("running", "role", *role, "kafka", cfg.KafkaBootstrap, "temporal", cfg.TemporalAddress)
	})
}
