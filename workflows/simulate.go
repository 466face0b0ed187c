package workflows

import (
	"fmt"
	"time"

	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/workflow"

	"github.com/tributary-dev/tributary/activities"
	"github.com/tributary-dev/tributary/internal/joinsim"
)

// SimulateJoinParams configure a simulated join run.
type SimulateJoinParams struct {
	Sim activities.JoinSimulation
	// Rate is events per second over the whole run; 0 sends as fast as possible.
	Rate float64
	// Concurrency is how many chunk activities produce at once.
	Concurrency int
	// ChunkSize is events per chunk activity; 0 picks one from the event count.
	ChunkSize int
	// ResultTimeout is how long, after the last row was sent, the run waits for every
	// event's ack; it should exceed the join deadline.
	ResultTimeout time.Duration
}

// Simulation phases, as reported by QueryProgress.
const (
	PhaseProducing = "producing"
	PhaseWaiting   = "waiting for acks"
	PhaseDone      = "done"
)

// SimulationProgress answers QueryProgress and is the run's result.
type SimulationProgress struct {
	Phase   string
	Total   int
	Sent    int
	Rows    int
	Started time.Time
	// Expected outcome of the generated input.
	Report joinsim.Report
	// Late counts rows recognised as duplicates after their event was acked.
	Late int64
	// Produced counts what the chunk activities sent.
	Produced activities.ChunkResult
	// TimedOut is set when some events had no ack by ResultTimeout.
	TimedOut bool
}

// Duplicates is every repeated row the pipeline recognised, before and after the ack.
func (p SimulationProgress) Duplicates() int64 { return int64(p.Report.Duplicates) + p.Late }

// SimulateJoinWorkflow produces a run's rows in chunks, then reads the acks back until every
// event has one, and returns the report. QueryProgress shows how far it is.
func SimulateJoinWorkflow(ctx workflow.Context, p SimulateJoinParams) (SimulationProgress, error) {
	var a *activities.Activities
	prog := SimulationProgress{Phase: PhaseProducing, Started: workflow.Now(ctx)}
	if err := workflow.SetQueryHandler(ctx, QueryProgress, func() (SimulationProgress, error) { return prog, nil }); err != nil {
		return prog, err
	}
	actx := workflow.WithActivityOptions(ctx, workflow.ActivityOptions{
		StartToCloseTimeout: 10 * time.Minute,
		RetryPolicy:         &temporal.RetryPolicy{MaximumInterval: 10 * time.Second},
	})
	var from joinsim.Offsets
	if err := workflow.ExecuteActivity(actx, a.JoinResultOffsets).Get(ctx, &from); err != nil {
		return prog, fmt.Errorf("read result offsets: %w", err)
	}
	if err := workflow.ExecuteActivity(actx, a.CountJoinEvents, p.Sim).Get(ctx, &prog.Total); err != nil {
		return prog, fmt.Errorf("count events: %w", err)
	}
	if err := produce(actx, p, &prog); err != nil {
		return prog, err
	}
	prog.Phase = PhaseWaiting
	wait := p.ResultTimeout
	if wait <= 0 {
		wait = time.Minute
	}
	giveUp := workflow.Now(ctx).Add(wait)
	for prog.Report.Resolved() < prog.Total {
		if !workflow.Now(ctx).Before(giveUp) {
			prog.TimedOut = true
			break
		}
		var res activities.CollectResult
		req := activities.CollectRequest{RunID: p.Sim.Plan.RunID, From: from, Report: prog.Report, Budget: time.Second}
		if err := workflow.ExecuteActivity(actx, a.CollectJoinResults, req).Get(ctx, &res); err != nil {
			return prog, fmt.Errorf("collect results: %w", err)
		}
		from, prog.Report, prog.Late = res.Next, res.Report, res.Late
	}
	// Late duplicates can be recorded after the last ack: read their count once more.
	var res activities.CollectResult
	req := activities.CollectRequest{RunID: p.Sim.Plan.RunID, From: from, Report: prog.Report, Budget: 200 * time.Millisecond}
	if err := workflow.ExecuteActivity(actx, a.CollectJoinResults, req).Get(ctx, &res); err != nil {
		return prog, fmt.Errorf("collect results: %w", err)
	}
	prog.Report, prog.Late = res.Report, res.Late
	prog.Phase = PhaseDone
	return prog, nil
}

// produce runs the chunk activities, Concurrency at a time, each paced to its share of the rate.
func produce(ctx workflow.Context, p SimulateJoinParams, prog *SimulationProgress) error {
	var a *activities.Activities
	conc := max(p.Concurrency, 1)
	size := p.ChunkSize
	if size <= 0 {
		size = min(max(prog.Total/20, 50), 2000)
	}
	rate := 0.0
	if p.Rate > 0 {
		rate = p.Rate / float64(conc)
	}
	sel := workflow.NewSelector(ctx)
	var firstErr error
	inFlight := 0
	for from := 0; from < prog.Total || inFlight > 0; {
		if from < prog.Total && inFlight < conc && firstErr == nil {
			req := activities.ChunkRequest{Sim: p.Sim, From: from, To: min(from+size, prog.Total), Rate: rate}
			sel.AddFuture(workflow.ExecuteActivity(ctx, a.ProduceJoinChunk, req), func(f workflow.Future) {
				inFlight--
				var r activities.ChunkResult
				if err := f.Get(ctx, &r); err != nil {
					firstErr = fmt.Errorf("produce chunk: %w", err)
					return
				}
				prog.Sent += r.Events
				prog.Rows += r.Rows
				prog.Produced.Events += r.Events
				prog.Produced.Rows += r.Rows
				prog.Produced.Duplicated += r.Duplicated
				prog.Produced.Malformed += r.Malformed
			})
			inFlight++
			from = req.To
			continue
		}
		if inFlight == 0 {
			break
		}
		sel.Select(ctx)
	}
	return firstErr
}
