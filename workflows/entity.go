package workflows

import (
	"time"

	"go.temporal.io/sdk/workflow"
)

// entity is what differs between the signal-fed entity workflows (JoinWorkflow,
// TravelerWorkflow); runEntity is the loop they share. S is the signal's payload.
type entity[S any] interface {
	// apply takes one signal.
	apply(ctx workflow.Context, s S)
	// nextWake is when the entity has work to do without a signal; zero when it has none.
	nextWake() time.Time
	// settle acts on what is due (finishes joins, flushes visits) and reports whether it
	// did anything; force acts on everything held back.
	settle(ctx workflow.Context, force bool) (bool, error)
	// finished reports that a per-entity run has nothing left to do.
	finished() bool
}

// runEntity waits for a batch on one of the inputs (a signal channel; a shard's updates
// too) or for the next wake-up, applies what arrived and settles what is due, until a
// per-entity run is finished (it returns nil) or a shard is due to continue as new (due
// says when; it returns what next returns, the continue-as-new error, or goes on when next
// returns nil: not now). Every batch already delivered is applied before either, so none
// is left unread when the run ends.
func runEntity[S any](ctx workflow.Context, inputs []workflow.ReceiveChannel, e entity[S], sharded bool, due func() bool, next func() error) error {
	var timer wakeTimer
	for {
		timer.arm(ctx, e.nextWake())
		sel := workflow.NewSelector(ctx)
		for _, in := range inputs {
			sel.AddReceive(in, func(c workflow.ReceiveChannel, _ bool) {
				var s S
				c.Receive(ctx, &s)
				e.apply(ctx, s)
			})
		}
		if timer.future != nil {
			sel.AddFuture(timer.future, func(workflow.Future) { timer.fired() })
		}
		sel.Select(ctx)
		if err := drain(ctx, inputs, e, false); err != nil {
			return err
		}
		switch {
		case !sharded && e.finished():
			return drain(ctx, inputs, e, true)
		case sharded && due():
			if err := drain(ctx, inputs, e, true); err != nil {
				return err
			}
			if err := next(); err != nil {
				return err
			}
		}
	}
}

// drain applies every batch already delivered, input by input, and settles, until none is
// waiting and nothing is left to act on.
func drain[S any](ctx workflow.Context, inputs []workflow.ReceiveChannel, e entity[S], force bool) error {
	for {
		for _, in := range inputs {
			for {
				var s S
				if !in.ReceiveAsync(&s) {
					break
				}
				e.apply(ctx, s)
			}
		}
		acted, err := e.settle(ctx, force)
		if err != nil || !acted {
			return err
		}
	}
}
