package app_test

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/sdk/activity"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/interceptor"
	"go.temporal.io/sdk/worker"
	"go.temporal.io/sdk/workflow"
	"gorm.io/gorm"

	"github.com/tributary-dev/tributary/activities"
	"github.com/tributary-dev/tributary/internal/testenv"
	"github.com/tributary-dev/tributary/internal/watermark"
	"github.com/tributary-dev/tributary/pipelines"
	"github.com/tributary-dev/tributary/schemas"
	"github.com/tributary-dev/tributary/window"
	"github.com/tributary-dev/tributary/workflows"
)

// TestFailedTaskAfterAFlushLosesNothing fails the workflow task in which a window workflow
// flushed a window, once, right after the flush returned, and makes the retried task find
// the world changed, as after a server restart: its watermark reads fail for a while (the
// input watermark it saw is not in its history), and one more record of the window comes
// meanwhile. Whatever the retried task decides, the window's row and the records set
// aside as late must together hold every record. With the flush run as a local activity,
// the first attempt wrote the row; the retried task kept the window open, took the new
// record into it, flushed again, found the row its run had written, and kept it: one
// record counted nowhere.
func TestFailedTaskAfterAFlushLosesNothing(t *testing.T) {
	env := testenv.StartStack(t, testenv.Config(t))
	ctx := context.Background()
	db := env.Deps.DB
	spec := pipelines.Transactions()
	ws := spec.Windows[0]
	start := time.Now().UTC().Add(-10 * time.Minute).Truncate(ws.Size)
	closeAt := ws.CloseAt(start)
	setWatermark := func(at time.Time) { recordCaughtUp(t, db, spec.Name, spec.Topic, at) }
	setWatermark(start)

	acts := &activities.Activities{DB: db, Log: env.Log}
	var readsFail, failed atomic.Bool
	w := worker.New(env.Deps.Temporal, workflows.TaskQueue, worker.Options{
		Interceptors: []interceptor.WorkerInterceptor{&failAfterFlush{failed: &failed, then: func() { readsFail.Store(true) }}},
	})
	w.RegisterWorkflow(workflows.WindowWorkflow)
	w.RegisterActivityWithOptions(acts.FlushWindows, activity.RegisterOptions{Name: "FlushWindows"})
	w.RegisterActivityWithOptions(func(ctx context.Context, pipeline string) (time.Time, error) {
		if readsFail.Load() {
			return time.Time{}, errors.New("watermark unreadable")
		}
		return acts.InputWatermark(ctx, pipeline)
	}, activity.RegisterOptions{Name: "InputWatermark"})
	if err := w.Start(); err != nil {
		t.Fatal(err)
	}
	defer w.Stop()

	id := "retry-" + t.Name()
	send := func(from, to int64, values ...float64) schemas.WindowAck {
		t.Helper()
		var p window.Partial
		for _, v := range values {
			p.Add(v, start.Add(time.Second))
		}
		b := schemas.WindowBatch{
			Ranges:   []schemas.OffsetRange{{Topic: spec.Topic, Partition: 0, From: from, To: to}},
			Partials: []schemas.WindowPartial{{Key: "all", SizeSeconds: int64(ws.Size / time.Second), Start: start, Partial: p}},
		}
		op := env.Deps.Temporal.NewWithStartWorkflowOperation(client.StartWorkflowOptions{
			ID: id, TaskQueue: workflows.TaskQueue, WorkflowIDConflictPolicy: enumspb.WORKFLOW_ID_CONFLICT_POLICY_USE_EXISTING,
		}, workflows.WindowWorkflow, workflows.WindowParams{Pipeline: spec.Name, Windows: spec.Windows})
		uctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
		defer cancel()
		h, err := env.Deps.Temporal.UpdateWithStartWorkflow(uctx, client.UpdateWithStartWorkflowOptions{
			StartWorkflowOperation: op,
			UpdateOptions: client.UpdateWorkflowOptions{UpdateName: workflows.UpdateWindowBatch, Args: []any{b},
				WaitForStage: client.WorkflowUpdateStageCompleted},
		})
		if err != nil {
			t.Fatal(err)
		}
		var ack schemas.WindowAck
		if err := h.Get(uctx, &ack); err != nil {
			t.Fatal(err)
		}
		return ack
	}

	if ack := send(0, 2, 10, 20, 30); len(ack.Late) != 0 {
		t.Fatalf("the first records came late: %+v", ack)
	}
	setWatermark(closeAt.Add(time.Second)) // the window closes; its flush fails the task once
	row := func() (schemas.WindowResult, bool) {
		var r schemas.WindowResult
		q := db.Where("pipeline = ? AND key = ? AND window_start = ?", spec.Name, "all", start).Limit(1).Find(&r)
		return r, q.Error == nil && q.RowsAffected == 1
	}
	require.Eventually(t, func() bool { _, ok := row(); return ok && failed.Load() }, time.Minute, testenv.Poll, "the window's row")

	late := 0
	if ack := send(3, 3, 40); len(ack.Late) == 1 {
		late = 1
	}
	readsFail.Store(false)
	require.Eventually(t, func() bool {
		var st workflows.WindowStatus
		v, err := env.Deps.Temporal.QueryWorkflow(ctx, id, "", workflows.QueryStatus)
		return err == nil && v.Get(&st) == nil && st.Open == 0 && st.Stats.Records == 4
	}, 2*time.Minute, testenv.Poll, "the window to settle")
	r, _ := row()
	if int(r.Count)+late != 4 {
		t.Fatalf("the row counts %d records and %d came late: %d of 4 are counted nowhere", r.Count, late, 4-int(r.Count)-late)
	}
}

// failAfterFlush makes the workflow task in which FlushWindows returned fail once (a panic,
// which the worker reports as a failed task and the server retries), and calls then first.
type failAfterFlush struct {
	interceptor.WorkerInterceptorBase
	failed *atomic.Bool
	then   func()
}

func (f *failAfterFlush) InterceptWorkflow(_ workflow.Context, next interceptor.WorkflowInboundInterceptor) interceptor.WorkflowInboundInterceptor {
	return &flushInbound{WorkflowInboundInterceptorBase: interceptor.WorkflowInboundInterceptorBase{Next: next}, f: f}
}

type flushInbound struct {
	interceptor.WorkflowInboundInterceptorBase
	f *failAfterFlush
}

func (i *flushInbound) Init(out interceptor.WorkflowOutboundInterceptor) error {
	return i.Next.Init(&flushOutbound{WorkflowOutboundInterceptorBase: interceptor.WorkflowOutboundInterceptorBase{Next: out}, f: i.f})
}

type flushOutbound struct {
	interceptor.WorkflowOutboundInterceptorBase
	f *failAfterFlush
}

func (o *flushOutbound) ExecuteActivity(ctx workflow.Context, name string, args ...any) workflow.Future {
	return o.wrap(name, o.Next.ExecuteActivity(ctx, name, args...))
}

func (o *flushOutbound) ExecuteLocalActivity(ctx workflow.Context, name string, args ...any) workflow.Future {
	return o.wrap(name, o.Next.ExecuteLocalActivity(ctx, name, args...))
}

func (o *flushOutbound) wrap(name string, fut workflow.Future) workflow.Future {
	if name != "FlushWindows" {
		return fut
	}
	return &failingGet{Future: fut, f: o.f}
}

type failingGet struct {
	workflow.Future
	f *failAfterFlush
}

func (g *failingGet) Get(ctx workflow.Context, v any) error {
	err := g.Future.Get(ctx, v)
	if !workflow.IsReplaying(ctx) && g.f.failed.CompareAndSwap(false, true) {
		g.f.then()
		panic("the workflow task fails after the flush")
	}
	return err
}

// recordCaughtUp says, as a bridge would, that partition 0 of a pipeline's topic was read
// to its end at input time at: with no other partition, the pipeline's input watermark.
func recordCaughtUp(t *testing.T, db *gorm.DB, pipeline, topic string, at time.Time) {
	t.Helper()
	rows := []schemas.InputProgress{{Pipeline: pipeline, Topic: topic, Partition: 0, CaughtUpMs: at.UnixMilli(), Owner: "test"}}
	if err := watermark.Record(context.Background(), db, rows); err != nil {
		t.Fatal(err)
	}
}
