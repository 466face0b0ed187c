package bench

import (
	"context"
	"fmt"

	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/api/workflowservice/v1"

	"github.com/tributary-dev/tributary/internal/app"
)

// historyEvents sums the runs and history events of the workflows of the given types, or
// of every workflow when no type is given.
func historyEvents(ctx context.Context, deps *app.Deps, types ...string) (runs, events int64, err error) {
	queries := []string{""}
	if len(types) > 0 {
		queries = queries[:0]
		for _, typ := range types {
			queries = append(queries, fmt.Sprintf("WorkflowType = '%s'", typ))
		}
	}
	for _, q := range queries {
		var token []byte
		for {
			resp, err := deps.Temporal.ListWorkflow(ctx, &workflowservice.ListWorkflowExecutionsRequest{
				Namespace: deps.Config.Namespace, PageSize: 1000, NextPageToken: token, Query: q,
			})
			if err != nil {
				return runs, events, fmt.Errorf("list workflow runs %q: %w", q, err)
			}
			for _, e := range resp.Executions {
				runs++
				n := e.HistoryLength
				if e.Status == enumspb.WORKFLOW_EXECUTION_STATUS_RUNNING {
					// Visibility records a running workflow's length only when it closes.
					d, err := deps.Temporal.DescribeWorkflowExecution(ctx, e.Execution.WorkflowId, e.Execution.RunId)
					if err != nil {
						return runs, events, fmt.Errorf("describe %s: %w", e.Execution.WorkflowId, err)
					}
					n = d.WorkflowExecutionInfo.HistoryLength
				}
				events += n
			}
			if token = resp.NextPageToken; len(token) == 0 {
				break
			}
		}
	}
	return runs, events, nil
}
