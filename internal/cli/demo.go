package cli

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"time"

	"github.com/tributary-dev/tributary/internal/app"
	"github.com/tributary-dev/tributary/internal/config"
)

// demo starts the embedded stack, runs one join simulation with the default flags, prints
// its report, and keeps the stack up (for the Temporal UI) until Ctrl-C, or exits with -exit.
// It runs the join sharded over 4 workflows with a 5-second deadline, so that 2,000 events
// at 500 per second are through in seconds; -join-shards 0 shows the per-event mode. Then
// it feeds sensor traffic and likes, for the dashboard, until Ctrl-C.
func demo(ctx context.Context, args []string, out io.Writer, log *slog.Logger) error {
	fs, cfg, err := configFlags("demo", config.AllFlags, func(c *config.Config) {
		c.Join.Shards = 4
		c.Join.Deadline = 5 * time.Second
		c.Sensors.Shards = 4
	})
	if err != nil {
		return err
	}
	var jf joinFlags
	jf.register(fs)
	exit := fs.Bool("exit", false, "stop the stack once the report is printed")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if err := jf.validate(); err != nil {
		return err
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var simErr error
	err = runStack(ctx, *cfg, out, log, func(ctx context.Context, d *app.Deps) {
		_, simErr = runJoinSimulation(ctx, d.Temporal, jf.params(cfg.Join.Deadline), out)
		if simErr != nil || *exit {
			cancel()
			return
		}
		feed(ctx, *cfg, d.Producer, log)
		fmt.Fprintf(out, "\nThe stack stays up, fed with sensor traffic and likes: open the dashboard (http://%s) and the Temporal UI above,\n"+
			"or run `starter simulate sensors|likes|join` in another terminal. Ctrl-C stops it.\n", cfg.APIAddress)
	})
	if simErr != nil {
		return simErr
	}
	return err
}
