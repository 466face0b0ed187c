package embedded_test

import (
	"context"
	"net/url"
	"testing"
	"time"

	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/api/workflowservice/v1"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/worker"
	"go.temporal.io/sdk/workflow"
	pgv12 "go.temporal.io/server/schema/postgresql/v12"
	"gorm.io/driver/postgres"
	"gorm.io/gorm"
	"gorm.io/gorm/logger"

	"github.com/tributary-dev/tributary/internal/embedded"
	"github.com/tributary-dev/tributary/internal/pgtest"
)

// echo waits for one signal and returns what it carried.
func echo(ctx workflow.Context) (string, error) {
	var v string
	workflow.GetSignalChannel(ctx, "say").Receive(ctx, &v)
	return v, nil
}

// startOnPostgres starts a server on the PostgreSQL database url names, and stops it
// when the test ends (or earlier, through the returned function).
func startOnPostgres(t *testing.T, pgURL string) (*embedded.Temporal, func()) {
	t.Helper()
	ports, err := embedded.FreePorts("127.0.0.1", 1)
	if err != nil {
		t.Fatal(err)
	}
	srv, err := embedded.StartTemporal(embedded.TemporalOptions{PostgresURL: pgURL, Port: ports[0], Namespaces: []string{"tributary-test"}, HistoryShards: 2})
	if err != nil {
		t.Fatal(err)
	}
	stopped := false
	stop := func() {
		if !stopped {
			stopped = true
			if err := srv.Stop(); err != nil {
				t.Error(err)
			}
		}
	}
	t.Cleanup(stop)
	return srv, stop
}

// The server sets its schema up on an empty PostgreSQL server, runs a workflow, and on a
// second start finds its schema current, its namespace there and the workflow's history.
func TestTemporalOnPostgres(t *testing.T) {
	u, err := url.Parse(pgtest.Start(t))
	if err != nil {
		t.Fatal(err)
	}
	u.Path = "/temporal"
	srv, stop := startOnPostgres(t, u.String())
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()

	c, err := client.Dial(client.Options{HostPort: srv.Address, Namespace: "tributary-test"})
	if err != nil {
		t.Fatal(err)
	}
	w := worker.New(c, "pg", worker.Options{})
	w.RegisterWorkflow(echo)
	if err := w.Start(); err != nil {
		t.Fatal(err)
	}
	run, err := c.SignalWithStartWorkflow(ctx, "echo-1", "say", "kept in PostgreSQL", client.StartWorkflowOptions{TaskQueue: "pg"}, echo)
	if err != nil {
		t.Fatal(err)
	}
	var got string
	if err := run.Get(ctx, &got); err != nil || got != "kept in PostgreSQL" {
		t.Fatalf("result %q, %v", got, err)
	}
	w.Stop()
	c.Close()
	stop()

	// Both databases carry the schema version this server's plugin asks for.
	for db, want := range map[string]string{"temporal": pgv12.Version, "temporal_visibility": pgv12.VisibilityVersion} {
		u.Path = "/" + db
		g, err := gorm.Open(postgres.Open(u.String()), &gorm.Config{Logger: logger.Discard})
		if err != nil {
			t.Fatal(err)
		}
		var version string
		if err := g.Raw("SELECT curr_version FROM schema_version").Scan(&version).Error; err != nil || version != want {
			t.Errorf("%s: schema version %q (%v), want %s", db, version, err, want)
		}
		if s, err := g.DB(); err == nil {
			s.Close()
		}
	}

	// A second start on the same databases: nothing to set up, the history is there.
	u.Path = "/temporal"
	srv, _ = startOnPostgres(t, u.String())
	c, err = client.Dial(client.Options{HostPort: srv.Address, Namespace: "tributary-test"})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	d, err := c.DescribeWorkflowExecution(ctx, "echo-1", "")
	if err != nil {
		t.Fatal(err)
	}
	if s := d.WorkflowExecutionInfo.GetStatus(); s != enumspb.WORKFLOW_EXECUTION_STATUS_COMPLETED {
		t.Fatalf("after a restart the workflow is %s", s)
	}
	got = ""
	if err := c.GetWorkflow(ctx, "echo-1", "").Get(ctx, &got); err != nil || got != "kept in PostgreSQL" {
		t.Fatalf("result after a restart %q, %v", got, err)
	}
	// Visibility lives in its own database and answers list queries.
	list, err := c.ListWorkflow(ctx, &workflowservice.ListWorkflowExecutionsRequest{Query: "WorkflowId = 'echo-1'"})
	if err != nil || len(list.Executions) != 1 {
		t.Fatalf("visibility lists %d executions (%v), want 1", len(list.GetExecutions()), err)
	}
}
