package cli

import (
	"context"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"time"

	"github.com/tributary-dev/tributary/internal/chaos"
)

// chaosRun runs the kill -9 suite once and prints its table row.
func chaosRun(ctx context.Context, args []string, out io.Writer, log *slog.Logger) error {
	fs := flag.NewFlagSet("chaos", flag.ContinueOnError)
	var o chaos.Options
	fs.Uint64Var(&o.Seed, "seed", 1, "seed of the faults' times and targets, and of the load")
	fs.DurationVar(&o.Duration, "duration", 90*time.Second, "how long the load runs")
	fs.Float64Var(&o.TxRate, "tx-rate", 500, "transactions per second")
	fs.Float64Var(&o.JoinRate, "join-rate", 100, "join events per second (three rows each)")
	fs.IntVar(&o.Kills, "kills", 4, "SIGKILLs of the second bridge or worker")
	fs.DurationVar(&o.StackDown, "stack-down", 10*time.Second, "how long the whole stack stays down after its SIGKILL halfway; 0 never kills it")
	fs.IntVar(&o.JoinShards, "join-shards", 4, "join shard workflows (0: one per event)")
	fs.StringVar(&o.Dir, "dir", "", "state and logs of the run (default: a new temporary directory)")
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
	fmt.Fprintf(out, "\n%s\n%s\n", chaos.TableHeader, rep.Row())
	if err != nil {
		return err
	}
	if !rep.Outcome.Clean() {
		return fmt.Errorf("the outputs differ from the inputs: %+v", rep.Outcome)
	}
	return nil
}
