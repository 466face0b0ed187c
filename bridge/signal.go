package bridge

import (
	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/sdk/client"

	"github.com/tributary-dev/tributary/workflows"
)

// MaxSignalBytes keeps a signal's payload under the SDK's 512 KiB warning and well under
// Temporal's size limit; a larger group is sent as several signals, in order.
const MaxSignalBytes = 384 << 10

// signalStart are the options of a SignalWithStart: the running workflow of the id takes the
// signal; reuse says whether a closed id may start again.
func signalStart(workflowID string, reuse enumspb.WorkflowIdReusePolicy) client.StartWorkflowOptions {
	return client.StartWorkflowOptions{
		ID:                       workflowID,
		TaskQueue:                workflows.TaskQueue,
		WorkflowIDReusePolicy:    reuse,
		WorkflowIDConflictPolicy: enumspb.WORKFLOW_ID_CONFLICT_POLICY_USE_EXISTING,
	}
}

// chunkBySize cuts a workflow's items into signals of at most MaxSignalBytes, in order;
// size estimates an item's encoded size.
func chunkBySize[T any](items []T, size func(T) int) [][]T {
	var chunks [][]T
	var cur []T
	total := 0
	for _, it := range items {
		n := size(it)
		if len(cur) > 0 && total+n > MaxSignalBytes {
			chunks = append(chunks, cur)
			cur, total = nil, 0
		}
		cur = append(cur, it)
		total += n
	}
	if len(cur) > 0 {
		chunks = append(chunks, cur)
	}
	return chunks
}
