package workflows

import (
	"path/filepath"
	"strings"
	"testing"
	"time"

	"go.temporal.io/sdk/worker"
	"go.temporal.io/sdk/workflow"
)

// The histories under testdata were recorded from real runs on the embedded server
// (go test ./internal/app -run RecordedHistories -update-histories). Replaying them proves
// the current code makes the same decisions as the code that ran.
func TestReplayRecordedHistories(t *testing.T) {
	files, err := filepath.Glob(filepath.Join("testdata", "*.json"))
	if err != nil {
		t.Fatal(err)
	}
	if len(files) < 79 {
		t.Fatalf("found %d recorded histories, want at least 79", len(files))
	}
	r := worker.NewWorkflowReplayer()
	r.RegisterWorkflowWithOptions(JoinWorkflow, workflow.RegisterOptions{Name: WorkflowJoin})
	r.RegisterWorkflowWithOptions(SimulateJoinWorkflow, workflow.RegisterOptions{Name: WorkflowSimulateJoin})
	r.RegisterWorkflowWithOptions(WindowWorkflow, workflow.RegisterOptions{Name: WorkflowWindow})
	r.RegisterWorkflowWithOptions(TravelerWorkflow, workflow.RegisterOptions{Name: WorkflowTraveler})
	for _, f := range files {
		t.Run(strings.TrimSuffix(filepath.Base(f), ".json"), func(t *testing.T) {
			if err := r.ReplayWorkflowHistoryFromJSONFile(nil, f); err != nil {
				t.Fatal(err)
			}
		})
	}
}

// changedJoinWorkflow is JoinWorkflow as someone might carelessly change it: it now waits a
// moment before it starts. The recorded histories have no such timer, so replay must fail.
func changedJoinWorkflow(ctx workflow.Context, p JoinParams) (JoinResult, error) {
	if err := workflow.Sleep(ctx, time.Second); err != nil {
		return JoinResult{}, err
	}
	return JoinWorkflow(ctx, p)
}

// changedWindowWorkflow is WindowWorkflow with a timer added before it starts.
func changedWindowWorkflow(ctx workflow.Context, p WindowParams) error {
	if err := workflow.Sleep(ctx, time.Millisecond); err != nil {
		return err
	}
	return WindowWorkflow(ctx, p)
}

// changedTravelerWorkflow is TravelerWorkflow with a timer added before it starts.
func changedTravelerWorkflow(ctx workflow.Context, p TravelerParams) (TravelerStats, error) {
	if err := workflow.Sleep(ctx, time.Millisecond); err != nil {
		return TravelerStats{}, err
	}
	return TravelerWorkflow(ctx, p)
}

func TestReplayDetectsAChangedWorkflow(t *testing.T) {
	r := worker.NewWorkflowReplayer()
	r.RegisterWorkflowWithOptions(changedJoinWorkflow, workflow.RegisterOptions{Name: WorkflowJoin})
	r.RegisterWorkflowWithOptions(changedWindowWorkflow, workflow.RegisterOptions{Name: WorkflowWindow})
	r.RegisterWorkflowWithOptions(changedTravelerWorkflow, workflow.RegisterOptions{Name: WorkflowTraveler})
	for _, name := range []string{"join_complete", "join_shard_run1", "window_shard_run1", "traveler", "traveler_shard_run1"} {
		err := r.ReplayWorkflowHistoryFromJSONFile(nil, filepath.Join("testdata", name+".json"))
		if err == nil {
			t.Fatalf("%s replayed against a changed workflow without error", name)
		}
		if !strings.Contains(err.Error(), "nondeterministic") && !strings.Contains(err.Error(), "TMPRL1100") { // the SDK's nondeterminism code
			t.Errorf("%s: want a nondeterminism error, got %v", name, err)
		}
	}
}
