package workflows

import (
	"go.temporal.io/sdk/workflow"

	"github.com/tributary-dev/tributary/schemas"
)

// SignalCeilingWorkflow is the least a signalled per-key workflow can do: take one signal
// and end. The bench drives it with SignalWithStart to measure the server's ceiling, the
// rate per-event joins are compared with.
func SignalCeilingWorkflow(ctx workflow.Context) error {
	var s schemas.JoinSignal
	workflow.GetSignalChannel(ctx, SignalJoinArrivals).Receive(ctx, &s)
	return nil
}

// StartCeilingWorkflow is the least a per-event join started with its rows can do: take
// them as input and end. The bench starts it with eager execution, as the bridge starts a
// per-event join, for the ceiling of that way in.
func StartCeilingWorkflow(ctx workflow.Context, s schemas.JoinSignal) error {
	return nil
}
