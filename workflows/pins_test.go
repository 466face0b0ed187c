package workflows

import (
	"testing"

	"github.com/stretchr/testify/require"
	"go.temporal.io/sdk/testsuite"
	"go.temporal.io/sdk/workflow"
)

// TestCurrentPinsAreTheNewestVersions: a run started with CurrentPins takes what GetVersion
// gives a new run, so pinning changes no behaviour, only the history.
func TestCurrentPinsAreTheNewestVersions(t *testing.T) {
	require.Equal(t, changes, pinSets[CurrentPins])
	for p := range pinSets {
		require.LessOrEqual(t, p, CurrentPins, "a released set newer than the one runs start with")
	}
}

// versionsWorkflow reports the version of every change its run takes under pins p.
func versionsWorkflow(ctx workflow.Context, p Pins) (map[string]workflow.Version, error) {
	ctx = withPins(ctx, p)
	got := map[string]workflow.Version{}
	for _, id := range []string{versionInputWatermark, versionWatermarkNextTask, versionStageWatermark,
		versionRecordedWrites, versionFlushActivity, versionPruneSources} {
		got[id] = version(ctx, id)
	}
	return got, nil
}

// TestPinnedRunsDoNotAskGetVersion: the test environment's GetVersion answers "the code
// before the change" for every change, as a history recorded before would. A run without
// pins follows it; a pinned run takes its set and never asks; a set the worker does not
// know fails the run's task rather than guess.
func TestPinnedRunsDoNotAskGetVersion(t *testing.T) {
	run := func(p Pins) (map[string]workflow.Version, error) {
		var s testsuite.WorkflowTestSuite
		env := s.NewTestWorkflowEnvironment()
		for id, newest := range changes {
			env.OnGetVersion(id, workflow.DefaultVersion, newest).Return(workflow.DefaultVersion)
		}
		env.RegisterWorkflow(versionsWorkflow)
		env.ExecuteWorkflow(versionsWorkflow, p)
		if err := env.GetWorkflowError(); err != nil {
			return nil, err
		}
		var got map[string]workflow.Version
		require.NoError(t, env.GetWorkflowResult(&got))
		return got, nil
	}

	got, err := run(0)
	require.NoError(t, err)
	for id, v := range got {
		require.Equal(t, workflow.DefaultVersion, v, "%s: an unpinned run takes GetVersion's answer", id)
	}

	got, err = run(CurrentPins)
	require.NoError(t, err)
	require.Equal(t, pinSets[CurrentPins], got)

	_, err = run(CurrentPins + 1)
	require.ErrorContains(t, err, "this worker knows sets up to")
}
