package workflows

import (
	"time"

	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/workflow"

	"github.com/tributary-dev/tributary/activities"
)

// versionInputWatermark is the change id of judging window closes, join deadlines and the
// end of visits by the input watermark instead of the clock (DESIGN.md, data path step 4).
const versionInputWatermark = "input-watermark"

// versionWatermarkNextTask is the change id of trusting a watermark a signal-fed workflow
// read only from its next workflow task on (inputClock.held). Version 2 knows the next task
// by its history length alone: version 1 also took a later workflow time for one, but that
// time moves within a task whenever a local activity returns.
const versionWatermarkNextTask = "watermark-next-task"

// versionStageWatermark is the change id of closing the sensor minutes by the stage
// watermark (the traveler workflows' held readings hold it back) and of the traveler
// workflows clearing their stage marks.
const versionStageWatermark = "stage-watermark"

// byStageWatermark reports whether this run keeps or reads stage marks (version 1).
func byStageWatermark(ctx workflow.Context) bool {
	return version(ctx, versionStageWatermark) == 1
}

// byInputWatermark reports whether this run judges time by its input (version 1); runs
// recorded before replay with the clock.
func byInputWatermark(ctx workflow.Context) bool {
	return version(ctx, versionInputWatermark) == 1
}

const (
	// inputSlack is how long after something falls due by the clock a workflow first asks
	// for the watermark: a caught-up bridge reports its progress every 250 ms.
	inputSlack = 500 * time.Millisecond
	// minInputPoll and maxInputPoll bound the wait between reads while the input is behind
	// (a bridge down, a backlog): the wait doubles from the one to the other.
	minInputPoll = 250 * time.Millisecond
	maxInputPoll = 5 * time.Second
)

// watermarkOptions read the watermark. A read that fails is not retried for long: the
// workflow asks again at its next wake, and meanwhile nothing falls due.
var watermarkOptions = workflow.LocalActivityOptions{
	StartToCloseTimeout:    10 * time.Second,
	ScheduleToCloseTimeout: 20 * time.Second,
	RetryPolicy:            &temporal.RetryPolicy{InitialInterval: 200 * time.Millisecond, MaximumInterval: 2 * time.Second},
}

// latest is the latest of the times.
func latest(t time.Time, others ...time.Time) time.Time {
	for _, o := range others {
		if o.After(t) {
			t = o
		}
	}
	return t
}

// inputClock is what a workflow knows of its pipeline's input watermark (internal/watermark):
// the highest one it was told with a batch or read itself. Whatever waits on the input (a
// window's close, a join's deadline, the end of a visit) falls due once this clock reaches
// it; the wall clock only says when to look. So records that wait in Kafka behind a dead
// bridge or a backlog are applied before anything they belong to is judged.
type inputClock struct {
	pipeline string
	// stage reads the pipeline's stage watermark instead of its input watermark (a window
	// fed by a first stage's workflows, not by the bridges: the sensor minutes).
	stage bool
	// at points into the workflow's state, so that it survives continue-as-new.
	at *time.Time
	// readAt is when (workflow time) it was last read; poll is the wait before the next read.
	readAt time.Time
	poll   time.Duration
	// bySignal holds each watermark read until the next workflow task. A bridge counts a
	// record delivered once the server accepted its signal, and a signal accepted while
	// a workflow task runs reaches the workflow only in the next task: a watermark read in
	// this task may already cover records this task has not seen. The next task has them,
	// and the workflow applies every waiting signal before it judges anything. (Batches
	// sent as updates are applied when delivered; their workflows need no hold.)
	bySignal bool
	// held is a read watermark not trusted yet, read at readAt in the task at history
	// length heldIn.
	held   time.Time
	heldIn int
	// byLength knows the next task by its history length alone (version 2 of
	// watermark-next-task).
	byLength bool
}

// nextTask reports whether the workflow runs a later task than the one that read held:
// its history grew (every task starts with a longer history than the last; within a task
// the length stays). Runs of version 1 also took a later workflow time for a later task,
// which a local activity returning within the same task gives too: a visit was ended on a
// watermark read in that very task, before a signal the server had accepted meanwhile.
// The SDK's test environment keeps no history length (zero unless a test sets one); there
// the clock, which only its timers move, tells the next task.
func (c *inputClock) nextTask(ctx workflow.Context) bool {
	length := workflow.GetInfo(ctx).GetCurrentHistoryLength()
	if length > c.heldIn {
		return true
	}
	if c.byLength && length > 0 {
		return false
	}
	return workflow.Now(ctx).After(c.readAt)
}

// holdReads makes the clock trust each watermark it reads only from the next workflow
// task on (bySignal), in runs of version watermark-next-task.
func (c *inputClock) holdReads(ctx workflow.Context) *inputClock {
	v := version(ctx, versionWatermarkNextTask)
	c.bySignal, c.byLength = v >= 1, v >= 2
	return c
}

// observe takes a watermark a batch carried; it never moves the clock back.
func (c *inputClock) observe(w time.Time) {
	if w.After(*c.at) {
		*c.at = w
	}
}

// now is the input watermark known.
func (c *inputClock) now() time.Time { return *c.at }

// reached reports whether the input has passed t.
func (c *inputClock) reached(t time.Time) bool { return !c.at.Before(t) }

// wake is when (workflow time) to look again for what falls due at input time t: t itself
// once reached; at once while a read is held for the next task; otherwise t plus the
// slack, and while reads find the input behind, no sooner than the next read.
func (c *inputClock) wake(t time.Time) time.Time {
	if c.reached(t) {
		return t
	}
	if !c.held.IsZero() {
		return c.readAt
	}
	at := t.Add(inputSlack)
	if !c.readAt.IsZero() && c.readAt.Add(c.poll).After(at) {
		at = c.readAt.Add(c.poll)
	}
	return at
}

// refresh reads the watermark when the clock says t is due but the input has not reached
// it. It reports whether the input has reached t.
func (c *inputClock) refresh(ctx workflow.Context, t time.Time) bool {
	if !c.held.IsZero() && c.nextTask(ctx) {
		c.observe(c.held)
		c.held = time.Time{}
	}
	if c.reached(t) {
		return true
	}
	now := workflow.Now(ctx)
	if !c.held.IsZero() || now.Before(c.wake(t)) {
		return false
	}
	var a *activities.Activities
	read := a.InputWatermark
	if c.stage {
		read = a.StageWatermark
	}
	var w time.Time
	err := workflow.ExecuteLocalActivity(workflow.WithLocalActivityOptions(ctx, watermarkOptions), read, c.pipeline).Get(ctx, &w)
	if err != nil {
		workflow.GetLogger(ctx).Warn("read input watermark", "pipeline", c.pipeline, "err", err)
	}
	c.readAt = workflow.Now(ctx)
	if c.bySignal && !w.Before(t) {
		c.held, c.heldIn = w, workflow.GetInfo(ctx).GetCurrentHistoryLength()
		c.poll = 0
		return false
	}
	c.observe(w)
	if c.reached(t) {
		c.poll = 0
		return true
	}
	c.poll = min(max(2*c.poll, minInputPoll), maxInputPoll)
	return false
}
