package cli

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"strconv"
	"time"

	"go.temporal.io/sdk/client"

	"github.com/tributary-dev/tributary/activities"
	"github.com/tributary-dev/tributary/internal/app"
	"github.com/tributary-dev/tributary/internal/config"
	"github.com/tributary-dev/tributary/internal/joinsim"
	"github.com/tributary-dev/tributary/internal/progress"
	"github.com/tributary-dev/tributary/schemas"
	"github.com/tributary-dev/tributary/workflows"
)

// joinFlags are the simulation settings of `simulate join` and `demo`.
type joinFlags struct {
	events      int
	rate        float64
	concurrency int
	missing     float64
	duplicates  float64
	malformed   float64
	seed        uint64
	from        string
	runID       string
	wait        time.Duration
}

func (j *joinFlags) register(fs *flag.FlagSet) {
	fs.IntVar(&j.events, "n", 2000, "events to send (ignored with -from)")
	fs.Float64Var(&j.rate, "rate", 500, "events per second; 0 sends as fast as possible")
	fs.IntVar(&j.concurrency, "concurrency", 3, "chunk activities producing at once")
	fs.Float64Var(&j.missing, "missing", 0.05, "fraction of events missing one topic's row")
	fs.Float64Var(&j.duplicates, "duplicates", 0.02, "fraction of rows sent twice")
	fs.Float64Var(&j.malformed, "malformed", 0.01, "fraction of events that also get a malformed record")
	fs.Uint64Var(&j.seed, "seed", 1, "random seed: the same seed sends the same rows")
	fs.StringVar(&j.from, "from", "", "directory with three CSV/XLSX files (one per topic, name order) to send instead")
	fs.StringVar(&j.runID, "run", "", "run id, the prefix of every event id (default: from the clock)")
	fs.DurationVar(&j.wait, "wait", 0, "how long to wait for acks after sending (default: join deadline + 30s)")
}

func (j *joinFlags) validate() error {
	var errs []error
	for name, v := range map[string]float64{"-missing": j.missing, "-duplicates": j.duplicates, "-malformed": j.malformed} {
		if v < 0 || v > 1 {
			errs = append(errs, fmt.Errorf("%s must be between 0 and 1, got %g", name, v))
		}
	}
	if j.events < 1 && j.from == "" {
		errs = append(errs, fmt.Errorf("-n must be at least 1, got %d", j.events))
	}
	if j.rate < 0 {
		errs = append(errs, fmt.Errorf("-rate must be 0 or more, got %g", j.rate))
	}
	if j.concurrency < 1 {
		errs = append(errs, fmt.Errorf("-concurrency must be at least 1, got %d", j.concurrency))
	}
	return errors.Join(errs...)
}

func (j *joinFlags) params(deadline time.Duration) workflows.SimulateJoinParams {
	run := j.runID
	if run == "" {
		run = "r" + strconv.FormatInt(time.Now().UnixMilli(), 36)
	}
	wait := j.wait
	if wait <= 0 {
		wait = deadline + 30*time.Second
	}
	return workflows.SimulateJoinParams{
		Sim: activities.JoinSimulation{
			Plan: joinsim.Plan{RunID: run, Events: j.events, Seed: j.seed, MissingFraction: j.missing,
				DuplicateFraction: j.duplicates, MalformedFraction: j.malformed, NAFraction: 0.05},
			FromDir: j.from,
		},
		Rate: j.rate, Concurrency: j.concurrency, ResultTimeout: wait,
	}
}

// simulateJoin is `starter simulate join` against a running stack.
func simulateJoin(ctx context.Context, args []string, out io.Writer, log *slog.Logger) error {
	fs, cfg, err := configFlags("simulate join", []config.FlagGroup{config.ClientFlags})
	if err != nil {
		return err
	}
	var jf joinFlags
	jf.register(fs)
	if err := fs.Parse(args); err != nil {
		return err
	}
	if err := jf.validate(); err != nil {
		return err
	}
	dctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	c, err := app.DialTemporal(dctx, *cfg, log, nil)
	cancel()
	if err != nil {
		return err
	}
	defer c.Close()
	_, err = runJoinSimulation(ctx, c, jf.params(cfg.Join.Deadline), out)
	return err
}

// runJoinSimulation starts the simulation workflow, draws its progress from QueryProgress,
// and prints the report.
func runJoinSimulation(ctx context.Context, c client.Client, p workflows.SimulateJoinParams, out io.Writer) (workflows.SimulationProgress, error) {
	id := workflows.SimulationWorkflowID(schemas.PipelineJoin, p.Sim.Plan.RunID)
	run, err := c.ExecuteWorkflow(ctx, client.StartWorkflowOptions{ID: id, TaskQueue: workflows.TaskQueue}, workflows.SimulateJoinWorkflow, p)
	if err != nil {
		return workflows.SimulationProgress{}, fmt.Errorf("start simulation %s: %w", id, err)
	}
	fmt.Fprintf(out, "simulation %s started (see it in the Temporal UI)\n", id)
	done := make(chan error, 1)
	var res workflows.SimulationProgress
	go func() { done <- run.Get(ctx, &res) }()
	var sending, acking *progress.Bar
	tick := time.NewTicker(200 * time.Millisecond)
	defer tick.Stop()
	for {
		select {
		case err := <-done:
			if sending != nil && acking == nil {
				sending.Set(res.Sent)
				sending.Done()
			}
			if acking != nil {
				acking.Set(res.Report.Resolved())
				acking.Done()
			}
			if err != nil {
				return res, fmt.Errorf("simulation %s: %w", id, err)
			}
			printJoinReport(out, p.Sim.Plan.RunID, res)
			return res, nil
		case <-tick.C:
			v, err := c.QueryWorkflow(ctx, id, "", workflows.QueryProgress)
			if err != nil {
				continue
			}
			var pr workflows.SimulationProgress
			if err := v.Get(&pr); err != nil || pr.Total == 0 {
				continue
			}
			if sending == nil {
				sending = progress.New(out, "sending events", pr.Total)
			}
			if pr.Phase == workflows.PhaseProducing {
				sending.Set(pr.Sent)
				continue
			}
			if acking == nil {
				sending.Set(pr.Sent)
				sending.Done()
				acking = progress.New(out, "awaiting acks", pr.Total)
			}
			acking.Set(pr.Report.Resolved())
		}
	}
}
