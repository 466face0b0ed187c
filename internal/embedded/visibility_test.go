package embedded_test

import (
	"context"
	"fmt"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"go.temporal.io/api/workflowservice/v1"
	"go.temporal.io/sdk/client"

	"github.com/tributary-dev/tributary/internal/embedded"
)

// The embedded server keeps five of its visibility table's indexes; lists filtered on
// columns whose index it dropped still find exactly the executions they name.
func TestVisibilityListsWithoutTheDroppedIndexes(t *testing.T) {
	ports, err := embedded.FreePorts("127.0.0.1", 1)
	if err != nil {
		t.Fatal(err)
	}
	srv, err := embedded.StartTemporal(embedded.TemporalOptions{DatabaseFile: filepath.Join(t.TempDir(), "temporal.db"), Port: ports[0], Namespaces: []string{"vis"}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := srv.Stop(); err != nil {
			t.Error(err)
		}
	})
	c, err := client.Dial(client.Options{HostPort: srv.Address, Namespace: "vis"})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()

	// No worker runs: the executions stay open, on two task queues and of two types.
	for i, queue := range []string{"vis-a", "vis-b", "vis-a", "vis-b", "vis-b"} {
		opts := client.StartWorkflowOptions{ID: fmt.Sprintf("vis-%d", i), TaskQueue: queue}
		if _, err := c.ExecuteWorkflow(ctx, opts, fmt.Sprintf("Type%d", i%2)); err != nil {
			t.Fatal(err)
		}
	}
	if err := c.TerminateWorkflow(ctx, "vis-3", "", "the test ends it"); err != nil {
		t.Fatal(err)
	}
	for query, want := range map[string][]string{
		`TaskQueue = "vis-a"`: {"vis-0", "vis-2"},
		`TaskQueue = "vis-b" AND ExecutionStatus = "Running"`:            {"vis-1", "vis-4"},
		`WorkflowType = "Type1"`:                                         {"vis-1", "vis-3"},
		`ExecutionStatus = "Terminated"`:                                 {"vis-3"},
		`ExecutionTime > "2020-01-01T00:00:00Z" AND TaskQueue = "vis-b"`: {"vis-1", "vis-3", "vis-4"},
		`WorkflowId = "vis-2" AND TaskQueue = "vis-a"`:                   {"vis-2"},
		`RootWorkflowId = "vis-4" OR ParentWorkflowId = "vis-other"`:     {"vis-4"},
	} {
		var got []string
		deadline := time.Now().Add(30 * time.Second)
		for {
			resp, err := c.ListWorkflow(ctx, &workflowservice.ListWorkflowExecutionsRequest{Namespace: "vis", Query: query})
			if err != nil {
				t.Fatalf("%s: %v", query, err)
			}
			got = got[:0]
			for _, e := range resp.Executions {
				got = append(got, e.Execution.WorkflowId)
			}
			slices.Sort(got)
			if slices.Equal(got, want) || time.Now().After(deadline) {
				break
			}
			time.Sleep(50 * time.Millisecond)
		}
		if !slices.Equal(got, want) {
			t.Errorf("%s: %v, want %v", query, got, want)
		}
	}
}
