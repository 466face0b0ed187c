package workflows

import (
	"time"

	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/workflow"
)

// localOptions run a local activity: storing and acking joins, looking up a traveler's
// stored visits, and (in runs recorded before versionRecordedWrites) flushing windows. A
// local activity costs fewer history events and less latency than a regular one, as long
// as it does not wait on other workflows. Its attempts stop after a minute (the SDK would
// otherwise stop at StartToCloseTimeout); runDurably then goes on with a regular activity.
var localOptions = workflow.LocalActivityOptions{
	StartToCloseTimeout:    30 * time.Second,
	ScheduleToCloseTimeout: time.Minute,
	RetryPolicy: &temporal.RetryPolicy{
		InitialInterval:    100 * time.Millisecond,
		BackoffCoefficient: 2,
		MaximumInterval:    10 * time.Second,
	},
}

// flushOptions run the activities that write aggregates (FlushVisits, FlushWindows) as
// regular activities, retried until they succeed: see runRecorded.
var flushOptions = workflow.ActivityOptions{
	StartToCloseTimeout: time.Minute,
	RetryPolicy: &temporal.RetryPolicy{
		InitialInterval:    200 * time.Millisecond,
		BackoffCoefficient: 2,
		MaximumInterval:    10 * time.Second,
	},
}

// durableOptions run an activity that local attempts could not finish, retried without end:
// a workflow never fails because its database or broker is unreachable, and its pending
// activity shows the last failure in the UI and in `temporal workflow describe`.
var durableOptions = workflow.ActivityOptions{
	StartToCloseTimeout: time.Minute,
	RetryPolicy: &temporal.RetryPolicy{
		InitialInterval:    time.Second,
		BackoffCoefficient: 2,
		MaximumInterval:    30 * time.Second,
	},
}

// runDurably runs an activity locally and, if a minute of local attempts did not succeed,
// as a regular activity retried until it does (or the workflow is cancelled). Either way
// the activity writes keyed upserts, so the attempts that fail part-way change nothing.
func runDurably(ctx workflow.Context, activity any, result any, args ...any) error {
	err := workflow.ExecuteLocalActivity(workflow.WithLocalActivityOptions(ctx, localOptions), activity, args...).Get(ctx, result)
	if err == nil || temporal.IsCanceledError(err) {
		return err
	}
	workflow.GetLogger(ctx).Error("local activity keeps failing; retrying it as a regular activity", "err", err)
	return workflow.ExecuteActivity(workflow.WithActivityOptions(ctx, durableOptions), activity, args...).Get(ctx, result)
}

// versionRecordedWrites is the change id of flushing windows through a regular activity
// instead of a local one (runRecorded).
const versionRecordedWrites = "recorded-writes"

// recordedWrites reports whether this run flushes through runRecorded (version 1); runs
// recorded before replay with runDurably.
func recordedWrites(ctx workflow.Context) bool {
	return version(ctx, versionRecordedWrites) == 1
}

// runRecorded runs an activity that writes results as a regular activity, retried until it
// succeeds. Its input is written to the workflow's history before it runs, so every attempt
// writes the same thing. A local activity runs inside the workflow task that decides what
// to write: if that task then fails (the server killed, the task timed out, a new update
// made it unhandled), the retried task decides again from a history that may have changed
// (an update lost with the server's memory, a watermark read that failed this time, new
// records applied first), and finding its own earlier write it keeps that one: the fault
// suite lost records that way, counted in a window the retried run flushed again. With the
// decision recorded first, a task that fails has written nothing, and the activity's own
// retries repeat one recorded input. The server's eager execution hands the activity to
// the worker in its answer to the workflow task, which saves the trip through matching.
// (A join's finish stays local, for its latency: its input is signals, which a history only
// gains, so a retried task finishes the same events, at most with more rows, and
// FinishJoins keeps what an earlier attempt stored and records the extra rows late.)
func runRecorded(ctx workflow.Context, activity any, result any, args ...any) error {
	return workflow.ExecuteActivity(workflow.WithActivityOptions(ctx, flushOptions), activity, args...).Get(ctx, result)
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
