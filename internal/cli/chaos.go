package cli

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"time"

	"github.com/tributary-dev/tributary/internal/chaos"
)

// chaosRun runs the fault suite once and prints its table.
func chaosRun(ctx context.Context, args []string, out io.Writer, log *slog.Logger) error {
	fs := flag.NewFlagSet("chaos", flag.ContinueOnError)
	var o chaos.Options
	fs.Uint64Var(&o.Seed, "seed", 1, "seed of the faults' times and targets, and of the load")
	fs.DurationVar(&o.Duration, "duration", 3*time.Minute, "how long the load runs")
	fs.Float64Var(&o.Rates.Tx, "tx-rate", 500, "transactions per second")
	fs.Float64Var(&o.Rates.Join, "join-rate", 100, "join events per second (three rows each)")
	fs.Float64Var(&o.Rates.Likes, "likes-rate", 100, "likes per second")
	fs.IntVar(&o.Rates.Videos, "videos", 20, "videos the likes go to")
	fs.Float64Var(&o.Rates.Travelers, "travelers-rate", 2, "travelers entering a sensor's view per second")
	fs.IntVar(&o.Faults, "faults", 12, "faults to the bridges and workers: SIGKILL, SIGSTOP past the session timeout, a bridge added and removed")
	fs.DurationVar(&o.StackDown, "stack-down", 30*time.Second, "how long the whole stack stays down after its SIGKILL halfway; 0 never kills it")
	fs.DurationVar(&o.WorkersDown, "workers-down", time.Minute, "how long both workers are stopped (SIGSTOP) once, a quarter in; 0 never")
	fs.DurationVar(&o.Settle, "settle", 4*time.Minute, "how long the outputs may take to catch up after the load")
	fs.IntVar(&o.JoinShards, "join-shards", 4, "join shard workflows (0: one per event)")
	fs.StringVar(&o.Dir, "dir", "", "state and logs of the run (default: a new temporary directory)")
	fs.StringVar(&o.Database, "database", "", "results database of every process: a postgres:// URL (default: SQLite in the state directory)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	self, err := os.Executable()
	if err != nil {
		return fmt.Errorf("find the starter binary: %w", err)
	}
	o.Starter, o.Out, o.Log = self, out, log
	if o.Dir == "" {
		if o.Dir, err = os.MkdirTemp("", "tributary-chaos-"); err != nil {
			return err
		}
	}
	rep, err := chaos.Run(ctx, o)
	fmt.Fprintf(out, "\n%s\n", rep.Table())
	if err != nil {
		return err
	}
	if !rep.Outcome.Clean() {
		return errors.New("the outputs differ from the inputs")
	}
	return nil
}
