package bridge

import (
	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/sdk/client"

	"github.com/tributary-dev/tributary/workflows"
)

// MaxSignalBytes keeps a signal's payload under the SDK's 512 KiB warning and well under
// Temporal's size limit; a larger group is sent as several signals, in order.
const MaxSignalBytes = 384 << 10

// MaxUpdateBytes bounds the packed rows of one update to a join shard: half Temporal's
// 2 MiB limit on a payload, the update's input, which the server also stores in the history
// event that accepts it. Each update to a shard costs a round trip through the server and a
// workflow task, so a bridge batch is better sent as few large updates than as many small
// ones: measured with `starter bench join -per-event 0 -sharded 60000` when updates were
// JSON, 384 KiB updates gave 4,045 to 4,272 events/s over three runs and 1.5 MiB ones
// 5,155 to 5,411.
const MaxUpdateBytes = 1 << 20

// MaxUpdateUnpacked bounds the rows of one update to a join shard before they are packed,
// in their JSON size (encodedArrivalSize): packed, rows of the original's shape take a
// fifth of that, and what packs worse is cut again to fit MaxUpdateBytes.
const MaxUpdateUnpacked = 4 << 20

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

// chunkBySize cuts a workflow's items into calls of at most limit bytes, in order; size
// bounds an item's encoded size.
func chunkBySize[T any](items []T, limit int, size func(T) int) [][]T {
	var chunks [][]T
	var cur []T
	total := 0
	for _, it := range items {
		n := size(it)
		if len(cur) > 0 && total+n > limit {
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
