package workflows

import (
	"testing"

	"github.com/stretchr/testify/require"
	"go.temporal.io/sdk/testsuite"
	"go.temporal.io/sdk/workflow"
)

// TestPinSetsAreWellFormed: a change is either in the current set or unpinned, never both
// (which would say two newest versions), and no set is newer than the one runs start with.
func TestPinSetsAreWellFormed(t *testing.T) {
	for id := range unpinned {
		_, pinned := pinSets[CurrentPins][id]
		require.False(t, pinned, "%s is both pinned and unpinned", id)
	}
	for p := range pinSets {
		require.LessOrEqual(t, p, CurrentPins, "a released set newer than the one runs start with")
	}
}

// versionsWorkflow reports the version of every change its run takes under pins p.
func versionsWorkflow(ctx workflow.Context, p Pins) (map[string]workflow.Version, error) {
	ctx = withPins(ctx, p)
	got := map[string]workflow.Version{}
	for _, id := range []string{versionInputWatermark, versionWatermarkNextTask, versionStageWatermark,
		versionRecordedWrites, versionFlushActivity, versionPruneSources, versionBinaryState} {
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
		for _, set := range []map[string]workflow.Version{pinSets[CurrentPins], unpinned} {
			for id, top := range set {
				env.OnGetVersion(id, workflow.DefaultVersion, top).Return(workflow.DefaultVersion)
			}
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
