package app_test

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	enumspb "go.temporal.io/api/enums/v1"
	historypb "go.temporal.io/api/history/v1"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/converter"

	"github.com/tributary-dev/tributary/internal/testenv"
	"github.com/tributary-dev/tributary/schemas"
	"github.com/tributary-dev/tributary/travel"
	"github.com/tributary-dev/tributary/workflows"
)

// TestWatermarkReadWaitsForTheNextTask gives a traveler workflow one workflow task that
// holds a reading's signal and a timer that fired while no worker ran, as after workers
// stopped for a while. The signal makes the workflow read the input watermark, which by
// then covers the traveler's visit, and record its stage (a second local activity); the
// fired timer then makes it look at the visit again. A signal the server accepted while
// that task ran reaches the workflow only in its next task, so the read may be trusted
// only there: the visit must not be ended in the task that read the watermark. Workflow
// time moves when a local activity returns, so "the clock moved since the read" is no sign
// of a new task; the fault suite saw a visit split by this.
func TestWatermarkReadWaitsForTheNextTask(t *testing.T) {
	env := testenv.StartStack(t, testenv.Config(t))
	ctx := context.Background()
	tc := env.Deps.Temporal
	setWatermark := func(at time.Time) {
		recordCaughtUp(t, env.Deps.DB, schemas.PipelineSensors, schemas.TopicSensorReadings, at)
	}
	// The readings are from a while ago, so the workflow reads the watermark as soon as
	// it has a task, and keeps reading it while it finds the input behind.
	start := time.Now().UTC().Truncate(time.Millisecond).Add(-10 * time.Second)
	setWatermark(start.Add(-time.Minute))

	const traveler = "held-read"
	id := workflows.TravelerWorkflowID(traveler, 0)
	reading := func(n int) travel.Reading {
		return travel.Reading{SensorID: "s1", TravelerID: traveler, Type: "pedestrian", X: 0.2 * float64(n),
			At:  start.Add(time.Duration(n) * 200 * time.Millisecond),
			Ref: travel.Ref{Topic: schemas.TopicSensorReadings, Partition: 0, Offset: int64(n)}}
	}
	signal := func(n int) {
		t.Helper()
		sig := schemas.TravelerSignal{Readings: []travel.Reading{reading(n)}, Watermark: start.Add(-time.Minute), Mark: int64(n + 1)}
		_, err := tc.SignalWithStartWorkflow(ctx, id, workflows.SignalTravelerReadings, sig,
			client.StartWorkflowOptions{ID: id, TaskQueue: workflows.TaskQueue}, workflows.TravelerWorkflow,
			workflows.TravelerParams{IdleGap: time.Second})
		if err != nil {
			t.Fatal(err)
		}
	}
	events := func() []*historypb.HistoryEvent { return testenv.History(t, tc, id, "").GetEvents() }
	has := func(typ enumspb.EventType, after int) bool {
		for _, ev := range events()[after:] {
			if ev.GetEventType() == typ {
				return true
			}
		}
		return false
	}

	w := env.Deps.NewWorker()
	require.NoError(t, w.Start())
	signal(0)
	require.Eventually(t, func() bool { return has(enumspb.EVENT_TYPE_WORKFLOW_TASK_COMPLETED, 0) }, time.Minute, testenv.Poll, "the first task")
	w.Stop()
	seen := len(events())

	// With no worker: the next reading arrives, the input passes the visit's end, and the
	// workflow's timer fires; one task will hold all three.
	signal(1)
	setWatermark(start.Add(time.Minute))
	require.Eventually(t, func() bool { return has(enumspb.EVENT_TYPE_TIMER_FIRED, seen) }, time.Minute, testenv.Poll, "the timer")

	w = env.Deps.NewWorker()
	require.NoError(t, w.Start())
	defer w.Stop()
	run := tc.GetWorkflow(ctx, id, "")
	wctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	require.NoError(t, run.Get(wctx, nil), "the traveler's run")

	// Which completed task recorded each watermark read and scheduled each flush.
	reads, flushes := map[int64]bool{}, map[int64]bool{}
	for _, ev := range events() {
		if m := ev.GetMarkerRecordedEventAttributes(); m != nil && markerActivity(t, m) == "InputWatermark" {
			reads[m.GetWorkflowTaskCompletedEventId()] = true
		}
		if a := ev.GetActivityTaskScheduledEventAttributes(); a != nil && a.GetActivityType().GetName() == "FlushVisits" {
			flushes[a.GetWorkflowTaskCompletedEventId()] = true
		}
	}
	require.NotEmpty(t, reads, "the workflow read the watermark")
	require.NotEmpty(t, flushes, "the visit was flushed")
	for task := range flushes {
		if reads[task] {
			t.Fatalf("the task completed at event %d read the watermark and ended the visit on it", task)
		}
	}
}

// markerActivity is the activity type a local activity's marker records.
func markerActivity(t *testing.T, m *historypb.MarkerRecordedEventAttributes) string {
	t.Helper()
	var data struct{ ActivityType string }
	if p := m.GetDetails()["data"]; p != nil {
		require.NoError(t, converter.GetDefaultDataConverter().FromPayloads(p, &data))
	}
	return data.ActivityType
}
