package app_test

import (
	"context"
	"testing"
	"time"

	"go.temporal.io/sdk/client"

	"github.com/tributary-dev/tributary/activities"
	"github.com/tributary-dev/tributary/internal/joinsim"
	"github.com/tributary-dev/tributary/internal/testenv"
	"github.com/tributary-dev/tributary/workflows"
)

func TestJoinSmoke(t *testing.T) {
	cfg := testenv.Config(t)
	cfg.JoinDeadline = 3 * time.Second
	env := testenv.Start(t, cfg)
	plan := joinsim.Plan{RunID: "smoke", Events: 200, Seed: 1, MissingFraction: 0.1, DuplicateFraction: 0.05, MalformedFraction: 0.02}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	run, err := env.Deps.Temporal.ExecuteWorkflow(ctx, client.StartWorkflowOptions{ID: workflows.SimulationIDPrefix + "join/smoke", TaskQueue: workflows.TaskQueue},
		workflows.SimulateJoinWorkflow, workflows.SimulateJoinParams{Sim: activities.JoinSimulation{Plan: plan}, Concurrency: 2, ResultTimeout: time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	var res workflows.SimulationProgress
	if err := run.Get(ctx, &res); err != nil {
		t.Fatal(err)
	}
	exp := plan.Expected()
	t.Logf("report %+v expected %+v p50 %s p99 %s", res, exp, res.Report.Delays.Quantile(0.5), res.Report.Delays.Quantile(0.99))
	if res.Report.Acked != exp.Complete || res.Report.Incomplete != exp.Incomplete || res.Report.DeadLettered != exp.Malformed {
		t.Fatalf("got %+v, want %+v", res.Report, exp)
	}
}
