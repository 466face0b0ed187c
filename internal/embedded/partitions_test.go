package embedded

import (
	"context"
	"database/sql"
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/worker"
	"go.temporal.io/sdk/workflow"
)

func leftBehind(workflow.Context) (string, error) { return "ran", nil }

// Tasks an earlier version wrote to all four partitions of a task queue are still handed
// to a worker by the server that reads and writes one.
func TestTasksLeftInOtherPartitionsAreRun(t *testing.T) {
	file := filepath.Join(t.TempDir(), "temporal.db")
	start := func(writePartitions int) (*Temporal, client.Client) {
		ports, err := FreePorts("127.0.0.1", 1)
		if err != nil {
			t.Fatal(err)
		}
		srv, err := StartTemporal(TemporalOptions{DatabaseFile: file, Port: ports[0], Namespaces: []string{"left"}, writePartitions: writePartitions})
		if err != nil {
			t.Fatal(err)
		}
		c, err := client.Dial(client.Options{HostPort: srv.Address, Namespace: "left"})
		if err != nil {
			_ = srv.Stop()
			t.Fatal(err)
		}
		return srv, c
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()

	// As an earlier version did: tasks written to four partitions, no worker to take them.
	const n = 24
	srv, c := start(4)
	for i := range n {
		opts := client.StartWorkflowOptions{ID: fmt.Sprintf("left-%d", i), TaskQueue: "left"}
		if _, err := c.ExecuteWorkflow(ctx, opts, leftBehind); err != nil {
			t.Fatal(err)
		}
	}
	c.Close()
	if err := srv.Stop(); err != nil {
		t.Fatal(err)
	}
	// 24 tasks over four partitions: that none is outside the first has odds of 4^-24.
	if left := tasksOutsideFirstPartition(t, file); left == 0 {
		t.Fatal("the old server left no task outside the first partition")
	}

	srv, c = start(0)
	defer func() {
		c.Close()
		if err := srv.Stop(); err != nil {
			t.Error(err)
		}
	}()
	w := worker.New(c, "left", worker.Options{})
	w.RegisterWorkflow(leftBehind)
	if err := w.Start(); err != nil {
		t.Fatal(err)
	}
	defer w.Stop()
	for i := range n {
		var got string
		if err := c.GetWorkflow(ctx, fmt.Sprintf("left-%d", i), "").Get(ctx, &got); err != nil || got != "ran" {
			t.Fatalf("workflow left-%d: %q, %v", i, got, err)
		}
	}
}

// tasksOutsideFirstPartition counts the tasks the SQLite file at path holds for task queue
// partitions other than the first: Temporal's sql persistence names a task's queue by the
// namespace id's 16 bytes and then the partition's name, "/_sys/NAME/N" for those.
func tasksOutsideFirstPartition(t *testing.T, path string) int {
	t.Helper()
	db, err := sql.Open(SQLiteDriver, "file:"+path)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var n int
	if err := db.QueryRow(`SELECT count(*) FROM tasks WHERE substr(task_queue_id, 17, 6) = CAST('/_sys/' AS BLOB)`).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}
