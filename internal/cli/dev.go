package cli

import (
	"context"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"time"

	"github.com/tributary-dev/tributary/internal/app"
	"github.com/tributary-dev/tributary/internal/config"
)

// configFlags binds the groups of the shared configuration a command reads to its flags;
// defaults, if given, adjust the defaults before the environment is applied.
func configFlags(name string, groups []config.FlagGroup, defaults ...func(*config.Config)) (*flag.FlagSet, *config.Config, error) {
	cfg, err := config.FromEnv(defaults...)
	if err != nil {
		return nil, nil, err
	}
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	cfg.RegisterFlags(fs, groups...)
	return fs, &cfg, nil
}

// dev runs the embedded stack with a worker and a bridge until ctx ends.
func dev(ctx context.Context, args []string, out io.Writer, log *slog.Logger) error {
	fs, cfg, err := configFlags("dev", config.AllFlags)
	if err != nil {
		return err
	}
	roleList := fs.String("roles", "all", "what runs beside the broker and Temporal: worker, bridge, api (comma-separated), all or none (roles in processes of their own: `workers -role`)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	roles, err := app.ParseRoles(*roleList)
	if err != nil {
		return fmt.Errorf("-roles: %w", err)
	}
	return runStackRoles(ctx, *cfg, roles, out, log, nil)
}

// runStack starts everything, calls then (if set) once the bridge owns partitions, and
// runs until ctx ends.
func runStack(ctx context.Context, cfg config.Config, out io.Writer, log *slog.Logger, then func(ctx context.Context, d *app.Deps)) error {
	return runStackRoles(ctx, cfg, app.Roles{Worker: true, Bridge: true, API: true}, out, log, then)
}

// runStackRoles is runStack with only some roles in this process.
func runStackRoles(ctx context.Context, cfg config.Config, roles app.Roles, out io.Writer, log *slog.Logger, then func(ctx context.Context, d *app.Deps)) error {
	if err := cfg.Validate(); err != nil {
		return err
	}
	stack, err := app.StartStack(cfg, log, out)
	if err != nil {
		return err
	}
	defer stack.Close()
	if stack.Temporal.UIAddress != "" {
		// The dashboard links workflows to the UI this stack serves.
		cfg.TemporalUIURL = "http://" + stack.Temporal.UIAddress
	}
	cctx, cancel := context.WithTimeout(ctx, time.Minute)
	deps, err := app.Connect(cctx, cfg, log)
	cancel()
	if err != nil {
		return err
	}
	defer deps.Close()
	deps.Metrics.Include(stack.Metrics)
	mode := "one workflow per event id"
	if cfg.Join.Shards > 0 {
		mode = fmt.Sprintf("%d shard workflows", cfg.Join.Shards)
	}
	travelers := "one workflow per traveler"
	if cfg.Sensors.Shards > 0 {
		travelers = fmt.Sprintf("%d traveler shards", cfg.Sensors.Shards)
	}
	return app.Run(ctx, deps, roles, func(r *app.Running) {
		if roles.Worker {
			fmt.Fprintf(out, "worker    ready  task queue tributary\n")
		}
		if roles.Bridge {
			fmt.Fprintf(out, "bridge    ready  join (%s), sensors (%s), likes, transactions; results in %s\n", mode, travelers, cfg.Database())
		}
		if r.APIAddress != "" {
			fmt.Fprintf(out, "api       ready  http://%s (dashboard; POST /videos/{id}/likes; /metrics)\n", r.APIAddress)
		}
		if r.MetricsAddress != "" {
			fmt.Fprintf(out, "metrics   ready  http://%s/metrics\n", r.MetricsAddress)
		}
		fmt.Fprintln(out, "Press Ctrl-C to stop.")
		if then != nil {
			go then(ctx, deps)
		}
	})
}
