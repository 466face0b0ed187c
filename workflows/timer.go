package workflows

import (
	"time"

	"go.temporal.io/sdk/workflow"
)

// wakeTimer keeps one timer for the earliest time a workflow has work to do without a
// signal (a join's deadline, a traveler going quiet). It is replaced only when an earlier
// time comes up, so a signal does not cost a timer.
type wakeTimer struct {
	future workflow.Future
	at     time.Time
	cancel workflow.CancelFunc
}

// arm sets the timer for at, unless at is zero or a timer for no later already runs.
func (t *wakeTimer) arm(ctx workflow.Context, at time.Time) {
	if at.IsZero() || (t.future != nil && !at.Before(t.at)) {
		return
	}
	if t.cancel != nil {
		t.cancel()
	}
	tctx, cancel := workflow.WithCancel(ctx)
	d := at.Sub(workflow.Now(ctx))
	if d < time.Millisecond {
		d = time.Millisecond
	}
	t.future, t.at, t.cancel = workflow.NewTimer(tctx, d), at, cancel
}

// fired forgets the timer that fired.
func (t *wakeTimer) fired() { t.future, t.cancel = nil, nil }
