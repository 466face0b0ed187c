package workflows

import (
	"time"

	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/workflow"
)

// localOptions run a local activity that is retried until it succeeds: storing and acking
// joins, flushing windows, looking up a traveler's stored visits. A local activity costs
// fewer history events and less latency than a regular one, as long as it does not wait
// on other workflows.
var localOptions = workflow.LocalActivityOptions{
	StartToCloseTimeout: 30 * time.Second,
	RetryPolicy: &temporal.RetryPolicy{
		InitialInterval:    100 * time.Millisecond,
		BackoffCoefficient: 2,
		MaximumInterval:    10 * time.Second,
	},
}

// flushOptions run FlushVisits as a regular activity, retried until it succeeds: it waits
// on the window workflows' updates, which a local activity would hold a workflow task for.
var flushOptions = workflow.ActivityOptions{
	StartToCloseTimeout: time.Minute,
	RetryPolicy: &temporal.RetryPolicy{
		InitialInterval:    200 * time.Millisecond,
		BackoffCoefficient: 2,
		MaximumInterval:    10 * time.Second,
	},
}

// runWriter names the running workflow run in the rows it writes, so that its own retried
// activity is told apart from another run writing the same row.
func runWriter(ctx workflow.Context) string {
	info := workflow.GetInfo(ctx)
	return info.WorkflowExecution.ID + "/" + info.WorkflowExecution.RunID
}

// continueAsNewDue reports whether a long-running workflow should continue as new: the
// server suggests it, or its history reached maxHistory events (0: only when suggested).
func continueAsNewDue(ctx workflow.Context, maxHistory int) bool {
	info := workflow.GetInfo(ctx)
	return info.GetContinueAsNewSuggested() || (maxHistory > 0 && info.GetCurrentHistoryLength() >= maxHistory)
}
