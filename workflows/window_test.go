package workflows

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/mock"
	"github.com/stretchr/testify/require"
	"go.temporal.io/sdk/converter"
	sdklog "go.temporal.io/sdk/log"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/testsuite"
	"go.temporal.io/sdk/workflow"

	"github.com/tributary-dev/tributary/activities"
	"github.com/tributary-dev/tributary/schemas"
	"github.com/tributary-dev/tributary/window"
)

// flushRecorder stands in for the database behind FlushWindows and answers like it.
type flushRecorder struct {
	mu      sync.Mutex
	flushed []activities.ClosedWindow
	writers map[string]string
}

func (f *flushRecorder) flush(_ context.Context, req activities.FlushRequest) (activities.FlushResult, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.writers == nil {
		f.writers = map[string]string{}
	}
	var res activities.FlushResult
	for _, w := range req.Windows {
		if prev, ok := f.writers[w.ID()]; ok && prev != req.Writer {
			res.AlreadyFinal = append(res.AlreadyFinal, w.ID())
			continue
		}
		f.writers[w.ID()] = req.Writer
		f.flushed = append(f.flushed, w)
	}
	return res, nil
}

var wt0 = time.Date(2026, 11, 22, 10, 0, 0, 0, time.UTC)

func newWindowEnv(t *testing.T, rec *flushRecorder) *testsuite.TestWorkflowEnvironment {
	return newWindowEnvFlushing(rec.flush)
}

// newWindowEnvFlushing is a window workflow's test environment whose FlushWindows is flush.
func newWindowEnvFlushing(flush func(context.Context, activities.FlushRequest) (activities.FlushResult, error)) *testsuite.TestWorkflowEnvironment {
	env, _ := windowEnv(flush)
	return env
}

// windowEnv is newWindowEnvFlushing with the test's hand on the input watermark.
func windowEnv(flush func(context.Context, activities.FlushRequest) (activities.FlushResult, error)) (*testsuite.TestWorkflowEnvironment, *testInput) {
	var s testsuite.WorkflowTestSuite
	s.SetLogger(sdklog.NewStructuredLogger(slog.New(slog.NewTextHandler(io.Discard, nil))))
	env := s.NewTestWorkflowEnvironment()
	env.SetStartTime(wt0)
	var a *activities.Activities
	env.RegisterActivity(a)
	env.OnActivity(a.FlushWindows, mock.Anything, mock.Anything).Return(flush)
	return env, followInput(env)
}

func partial(key string, size time.Duration, start time.Time, values ...float64) schemas.WindowPartial {
	p := schemas.WindowPartial{Key: key, SizeSeconds: int64(size / time.Second), Start: start}
	for i, v := range values {
		p.Partial.Add(v, start.Add(time.Duration(i)*time.Millisecond))
	}
	return p
}

type sent struct {
	ack schemas.WindowAck
	err error
}

func sendBatch(env *testsuite.TestWorkflowEnvironment, after time.Duration, b schemas.WindowBatch, out *sent) {
	env.RegisterDelayedCallback(func() {
		env.UpdateWorkflow(UpdateWindowBatch, "", &testsuite.TestUpdateCallback{
			OnReject: func(err error) { out.err = err },
			OnAccept: func() {},
			OnComplete: func(v any, err error) {
				if err != nil {
					out.err = err
					return
				}
				out.ack = v.(schemas.WindowAck)
			},
		}, b)
	}, after)
}

var threeSeconds = []window.Spec{{Size: 3 * time.Second, Grace: time.Second}}

func TestWindowClosesByTimer(t *testing.T) {
	rec := &flushRecorder{}
	env := newWindowEnv(t, rec)
	var r1 sent
	sendBatch(env, 100*time.Millisecond, schemas.WindowBatch{
		Ranges:   []schemas.OffsetRange{{Topic: "tx", Partition: 0, From: 0, To: 9}},
		Partials: []schemas.WindowPartial{partial("all", 3*time.Second, wt0, 10, 20, 30)},
	}, &r1)
	env.RegisterDelayedCallback(func() {
		require.Empty(t, rec.flushed, "a window stays open until its end plus grace")
	}, 3500*time.Millisecond)
	env.RegisterDelayedCallback(func() {
		require.Len(t, rec.flushed, 1)
		env.CancelWorkflow()
	}, 5*time.Second)
	env.ExecuteWorkflow(WindowWorkflow, WindowParams{Pipeline: "transactions", Windows: threeSeconds})
	require.NoError(t, r1.err)
	w := rec.flushed[0]
	require.Equal(t, int64(3), w.Partial.Count)
	require.Equal(t, 60.0, w.Partial.Sum)
	require.True(t, w.Start.Equal(wt0))
}

func TestWindowRejectsOverlappingOffsets(t *testing.T) {
	rec := &flushRecorder{}
	env := newWindowEnv(t, rec)
	var first, overlap, next sent
	sendBatch(env, 100*time.Millisecond, schemas.WindowBatch{
		Ranges:   []schemas.OffsetRange{{Topic: "tx", Partition: 0, From: 0, To: 9}},
		Partials: []schemas.WindowPartial{partial("all", 3*time.Second, wt0, 1, 1)},
	}, &first)
	// A resend that straddles offset 9 cannot be split: it is turned away with the applied offsets.
	sendBatch(env, 200*time.Millisecond, schemas.WindowBatch{
		Ranges:   []schemas.OffsetRange{{Topic: "tx", Partition: 0, From: 5, To: 14}},
		Partials: []schemas.WindowPartial{partial("all", 3*time.Second, wt0, 1, 1, 1)},
	}, &overlap)
	sendBatch(env, 300*time.Millisecond, schemas.WindowBatch{
		Ranges:   []schemas.OffsetRange{{Topic: "tx", Partition: 0, From: 10, To: 14}},
		Partials: []schemas.WindowPartial{partial("all", 3*time.Second, wt0, 1)},
	}, &next)
	env.RegisterDelayedCallback(func() { env.CancelWorkflow() }, 6*time.Second)
	env.ExecuteWorkflow(WindowWorkflow, WindowParams{Pipeline: "transactions", Windows: threeSeconds})
	require.NoError(t, first.err)
	require.NoError(t, next.err)
	rejected, ok, err := AsOffsetsAppliedError(overlap.err)
	require.NoError(t, err)
	require.True(t, ok, "got %v", overlap.err)
	require.Equal(t, map[string]int64{"tx/0": 9}, rejected.Applied)
	_, ok, _ = AsOffsetsAppliedError(errors.New("another error"))
	require.False(t, ok)
	require.Len(t, rec.flushed, 1)
	require.Equal(t, int64(3), rec.flushed[0].Partial.Count, "the overlapping batch counted nothing")
}

// The input watermark, not the clock, closes a window: while the bridge is down its
// records wait in Kafka, the window waits for them past its close time, and they count.
// Only a record that comes after the input has passed the close is late.
func TestWindowWaitsForTheInput(t *testing.T) {
	rec := &flushRecorder{}
	env, in := windowEnv(rec.flush)
	in.hold(wt0.Add(time.Second)) // the bridge is down from here on
	var first, backlog, late sent
	sendBatch(env, 100*time.Millisecond, schemas.WindowBatch{
		Ranges:    []schemas.OffsetRange{{Topic: "tx", Partition: 0, From: 0, To: 0}},
		Partials:  []schemas.WindowPartial{partial("all", 3*time.Second, wt0, 5)},
		Watermark: wt0,
	}, &first)
	waiting := queryAt[WindowStatus](t, env, 30*time.Second, QueryStatus)
	// The bridge is back and delivers what waited: a record of the same window.
	sendBatch(env, 30*time.Second, schemas.WindowBatch{
		Ranges:    []schemas.OffsetRange{{Topic: "tx", Partition: 0, From: 1, To: 1}},
		Partials:  []schemas.WindowPartial{partial("all", 3*time.Second, wt0, 7)},
		Watermark: wt0.Add(time.Second),
	}, &backlog)
	env.RegisterDelayedCallback(in.release, 31*time.Second)
	sendBatch(env, 45*time.Second, schemas.WindowBatch{
		Ranges:    []schemas.OffsetRange{{Topic: "tx", Partition: 0, From: 2, To: 2}},
		Partials:  []schemas.WindowPartial{partial("all", 3*time.Second, wt0, 100)},
		Watermark: wt0.Add(45 * time.Second),
	}, &late)
	env.RegisterDelayedCallback(env.CancelWorkflow, time.Minute)
	env.ExecuteWorkflow(WindowWorkflow, WindowParams{Pipeline: "transactions", Windows: threeSeconds})
	require.Equal(t, 1, waiting.Open, "26 s past its close time, the window still waits for the input")
	require.Greater(t, in.reads, 3, "the workflow kept asking while the input was behind")
	require.Less(t, in.reads, 20, "and backed off while it did")
	require.NoError(t, backlog.err)
	require.Empty(t, backlog.ack.Late, "a record that waited in Kafka is not late")
	require.Len(t, rec.flushed, 1)
	require.Equal(t, int64(2), rec.flushed[0].Partial.Count, "both records are in the window")
	require.Equal(t, 12.0, rec.flushed[0].Partial.Sum)
	require.Equal(t, []int{0}, late.ack.Late, "a record after the input passed the close is late")
}

// A watermark carried by a batch closes a window at once, without waiting for its timer.
func TestWindowClosesWhenABatchCarriesTheWatermarkPast(t *testing.T) {
	rec := &flushRecorder{}
	env, in := windowEnv(rec.flush)
	in.hold(time.Time{})
	var a, b sent
	sendBatch(env, 100*time.Millisecond, schemas.WindowBatch{
		Ranges:   []schemas.OffsetRange{{Topic: "tx", Partition: 0, From: 0, To: 0}},
		Partials: []schemas.WindowPartial{partial("all", 3*time.Second, wt0, 5)},
	}, &a)
	sendBatch(env, 200*time.Millisecond, schemas.WindowBatch{
		Ranges:    []schemas.OffsetRange{{Topic: "tx", Partition: 1, From: 0, To: 0}},
		Partials:  []schemas.WindowPartial{partial("all", 3*time.Second, wt0.Add(9*time.Second), 7)},
		Watermark: wt0.Add(5 * time.Second),
	}, &b)
	env.RegisterDelayedCallback(func() {
		require.Len(t, rec.flushed, 1, "the carried watermark closed the first window at once")
		env.CancelWorkflow()
	}, 300*time.Millisecond)
	env.ExecuteWorkflow(WindowWorkflow, WindowParams{Pipeline: "transactions", Windows: threeSeconds})
	require.Zero(t, in.reads, "no read was needed")
	require.Len(t, rec.flushed, 1, "the second window waits for its close")
}

func TestWindowIdleRunEnds(t *testing.T) {
	rec := &flushRecorder{}
	env := newWindowEnv(t, rec)
	var a sent
	sendBatch(env, 100*time.Millisecond, schemas.WindowBatch{
		Ranges:   []schemas.OffsetRange{{Topic: "likes", Partition: 0, From: 0, To: 0}},
		Partials: []schemas.WindowPartial{partial("v1", time.Minute, wt0, 1)},
	}, &a)
	env.ExecuteWorkflow(WindowWorkflow, WindowParams{Pipeline: "likes", Windows: []window.Spec{{Size: time.Minute, Grace: 5 * time.Second}}, Idle: 2 * time.Minute})
	require.True(t, env.IsWorkflowCompleted())
	require.NoError(t, env.GetWorkflowError())
	require.Len(t, rec.flushed, 1, "the open window was flushed before the run ended")
}

// A visit source is kept while its windows are open, so a repeat is turned away; once its
// windows are final the entry is dropped, and a repeat can only be late.
func TestWindowPrunesFinishedVisitSources(t *testing.T) {
	rec := &flushRecorder{}
	env := newWindowEnv(t, rec)
	minute := []window.Spec{{Size: time.Minute, Grace: 10 * time.Second}}
	visit := schemas.OffsetRange{Topic: schemas.VisitSourcePrefix + "t1/s1", From: wt0.UnixMilli(), To: wt0.Add(20 * time.Second).UnixMilli()}
	kafka := schemas.OffsetRange{Topic: "sensor-readings", Partition: 0, From: 0, To: 5}
	piece := schemas.WindowBatch{Ranges: []schemas.OffsetRange{visit}, Partials: []schemas.WindowPartial{partial("s1|car", time.Minute, wt0, 12)}}
	var first, repeatOpen, other, wake, repeatFinal sent
	sendBatch(env, time.Second, piece, &first)
	sendBatch(env, 2*time.Second, piece, &repeatOpen)
	sendBatch(env, 3*time.Second, schemas.WindowBatch{Ranges: []schemas.OffsetRange{kafka}}, &other)
	before := queryAt[WindowStatus](t, env, 4*time.Second, QueryStatus)
	// 10:01:10 closes the minute; the visit ended at 10:00:20, so from 10:01:30 the next
	// batch finds its entry pruned.
	sendBatch(env, 94*time.Second, schemas.WindowBatch{Ranges: []schemas.OffsetRange{{Topic: "sensor-readings", Partition: 0, From: 6, To: 7}}, Watermark: wt0.Add(94 * time.Second)}, &wake)
	after := queryAt[WindowStatus](t, env, 95*time.Second, QueryStatus)
	sendBatch(env, 96*time.Second, piece, &repeatFinal)
	env.RegisterDelayedCallback(func() { env.CancelWorkflow() }, 100*time.Second)
	env.ExecuteWorkflow(WindowWorkflow, WindowParams{Pipeline: schemas.PipelineSensors, Windows: minute})
	require.NoError(t, first.err)
	var appErr *temporal.ApplicationError
	require.ErrorAs(t, repeatOpen.err, &appErr, "a repeat while the windows are open is turned away")
	require.Contains(t, before.Applied, visit.TopicPartition())
	require.NotContains(t, after.Applied, visit.TopicPartition(), "a finished visit source is dropped")
	require.Contains(t, after.Applied, kafka.TopicPartition(), "a Kafka partition is kept")
	require.NoError(t, repeatFinal.err)
	require.Equal(t, []int{0}, repeatFinal.ack.Late, "a repeat after its windows are final is late")
	require.Len(t, rec.flushed, 1)
	require.Equal(t, int64(1), rec.flushed[0].Partial.Count)
}

// A state carried over continue-as-new by a run of an older version spells its open
// windows' keys otherwise (Unix nanoseconds); a partial for such a window must join it, not
// open a second window that would be flushed twice.
func TestWindowCarriedStateWithOldKeysMerges(t *testing.T) {
	rec := &flushRecorder{}
	env := newWindowEnv(t, rec)
	old := partial("all", 3*time.Second, wt0, 10, 20)
	state := &WindowState{
		Open: map[string]*OpenWindow{
			fmt.Sprintf("all|3|%d", wt0.UnixNano()): {Key: "all", SizeSeconds: 3, Start: wt0, CloseAt: wt0.Add(4 * time.Second), Partial: old.Partial},
		},
		Applied: map[string]int64{"tx/0": 9},
	}
	var r sent
	sendBatch(env, 100*time.Millisecond, schemas.WindowBatch{
		Ranges:   []schemas.OffsetRange{{Topic: "tx", Partition: 0, From: 10, To: 10}},
		Partials: []schemas.WindowPartial{partial("all", 3*time.Second, wt0, 30)},
	}, &r)
	env.RegisterDelayedCallback(func() { env.CancelWorkflow() }, 6*time.Second)
	env.ExecuteWorkflow(WindowWorkflow, WindowParams{Pipeline: "transactions", Windows: threeSeconds, State: state})
	require.NoError(t, r.err)
	require.Len(t, rec.flushed, 1, "one window, flushed once")
	require.Equal(t, int64(3), rec.flushed[0].Partial.Count)
	require.Equal(t, 60.0, rec.flushed[0].Partial.Sum)
}

// TestWindowOutlivesAnUnreachableDatabase: a flush that keeps failing (the database down)
// does not fail the workflow: the activity is retried until the database is back, and the
// window is written once. (The test environment stops an unlimited retry after 10 attempts,
// about 40 seconds with these backoffs; the server does not.)
func TestWindowOutlivesAnUnreachableDatabase(t *testing.T) {
	rec := &flushRecorder{}
	var mu sync.Mutex
	var calls int
	var firstCall time.Time
	var env *testsuite.TestWorkflowEnvironment
	env = newWindowEnvFlushing(func(ctx context.Context, req activities.FlushRequest) (activities.FlushResult, error) {
		mu.Lock()
		calls++
		if firstCall.IsZero() {
			firstCall = env.Now()
		}
		down := env.Now().Before(firstCall.Add(20 * time.Second))
		mu.Unlock()
		if down {
			return activities.FlushResult{}, errors.New("database is unreachable")
		}
		return rec.flush(ctx, req)
	})
	var r sent
	sendBatch(env, 100*time.Millisecond, schemas.WindowBatch{
		Ranges:   []schemas.OffsetRange{{Topic: "tx", Partition: 0, From: 0, To: 2}},
		Partials: []schemas.WindowPartial{partial("all", 3*time.Second, wt0, 10, 20, 30)},
	}, &r)
	env.RegisterDelayedCallback(func() { env.CancelWorkflow() }, 20*time.Minute)
	env.ExecuteWorkflow(WindowWorkflow, WindowParams{Pipeline: "transactions", Windows: threeSeconds})
	require.NoError(t, r.err)
	var canceled *temporal.CanceledError
	require.ErrorAs(t, env.GetWorkflowError(), &canceled, "the workflow ends only when cancelled")
	require.Len(t, rec.flushed, 1, "the window is written once the database is back")
	require.Equal(t, int64(3), rec.flushed[0].Partial.Count)
	require.Greater(t, calls, 5, "the flush was retried while the database was down")
}

// The sensor minutes close by the stage watermark: while a traveler workflow holds readings
// of a minute unflushed (the worker was down while the bridge delivered them), the minute
// stays open although the input watermark passed its close; once the readings are flushed
// and the hold is cleared, it closes with them. Other pipelines read the input watermark.
func TestSensorMinuteWaitsForTheStage(t *testing.T) {
	rec := &flushRecorder{}
	env, in := windowEnv(rec.flush)
	minute := []window.Spec{{Size: time.Minute, Grace: 2 * time.Second}}
	in.holdStage(wt0.Add(10 * time.Second)) // a traveler holds readings from 10:00:10
	var first, held sent
	sendBatch(env, time.Second, schemas.WindowBatch{
		Ranges:   []schemas.OffsetRange{{Topic: schemas.VisitSourcePrefix + "t1/s1", From: wt0.UnixMilli(), To: wt0.Add(5 * time.Second).UnixMilli()}},
		Partials: []schemas.WindowPartial{partial("s1|car", time.Minute, wt0, 10)},
	}, &first)
	waiting := queryAt[WindowStatus](t, env, 90*time.Second, QueryStatus)
	// The traveler flushes its visit, then clears its hold.
	sendBatch(env, 91*time.Second, schemas.WindowBatch{
		Ranges:   []schemas.OffsetRange{{Topic: schemas.VisitSourcePrefix + "t2/s1", From: wt0.Add(10 * time.Second).UnixMilli(), To: wt0.Add(15 * time.Second).UnixMilli()}},
		Partials: []schemas.WindowPartial{partial("s1|car", time.Minute, wt0, 20)},
	}, &held)
	env.RegisterDelayedCallback(func() { in.holdStage(time.Time{}) }, 92*time.Second)
	env.RegisterDelayedCallback(env.CancelWorkflow, 3*time.Minute)
	env.ExecuteWorkflow(WindowWorkflow, WindowParams{Pipeline: schemas.PipelineSensors, Windows: minute})
	require.Equal(t, 1, waiting.Open, "28 s past its close by the input, the minute waits for the held readings")
	require.Positive(t, in.stageReads, "the minute read the stage watermark")
	require.NoError(t, held.err)
	require.Empty(t, held.ack.Late, "the held visit is not late")
	require.Len(t, rec.flushed, 1)
	require.Equal(t, int64(2), rec.flushed[0].Partial.Count, "both visits are in the minute")
}

// QueryOpen answers a key's open windows with what they hold so far, and nothing of a
// window once it closed.
func TestWindowAnswersItsOpenWindows(t *testing.T) {
	rec := &flushRecorder{}
	env := newWindowEnv(t, rec)
	var r1 sent
	sendBatch(env, 100*time.Millisecond, schemas.WindowBatch{
		Ranges: []schemas.OffsetRange{{Topic: "likes", Partition: 0, From: 0, To: 9}},
		Partials: []schemas.WindowPartial{
			partial("video-1", 3*time.Second, wt0, 1, 1),
			partial("video-2", 3*time.Second, wt0, 1),
			partial("video-1", 3*time.Second, wt0.Add(3*time.Second), 1, 1, 1),
		},
	}, &r1)
	open := func(key string) []OpenWindow {
		v, err := env.QueryWorkflow(QueryOpen, key)
		require.NoError(t, err)
		var out []OpenWindow
		require.NoError(t, v.Get(&out))
		return out
	}
	env.RegisterDelayedCallback(func() {
		got := open("video-1")
		require.Len(t, got, 2)
		require.Equal(t, int64(2), got[0].Partial.Count)
		require.True(t, got[0].Start.Equal(wt0))
		require.Equal(t, int64(3), got[1].Partial.Count)
		require.Len(t, open(""), 3, "every key's windows when no key is asked for")
		require.Empty(t, open("video-9"))
	}, time.Second)
	env.RegisterDelayedCallback(func() {
		got := open("video-1")
		require.Len(t, got, 1, "the first window closed at its end plus grace")
		require.True(t, got[0].Start.Equal(wt0.Add(3*time.Second)))
		env.CancelWorkflow()
	}, 5*time.Second)
	env.ExecuteWorkflow(WindowWorkflow, WindowParams{Pipeline: "likes", Windows: threeSeconds})
	require.NoError(t, r1.err)
}

// A bridge that loses the answer naming a batch's late partials (killed, stopped, its
// connection cut) leaves the records to its successor, which sends them in other batches:
// the workflow turns those away for overlapping applied offsets, and its rejection carries
// the late span, through continue-as-new too, so that the successor can record them.
func TestWindowRejectionNamesTheLateRecordsItApplied(t *testing.T) {
	lateKey := schemas.WindowKey("all", 3, wt0)
	batches := func(env *testsuite.TestWorkflowEnvironment) (onTime, late, repeat *sent) {
		onTime, late, repeat = &sent{}, &sent{}, &sent{}
		sendBatch(env, 100*time.Millisecond, schemas.WindowBatch{
			Ranges:   []schemas.OffsetRange{{Topic: "tx", Partition: 0, From: 0, To: 0}},
			Partials: []schemas.WindowPartial{partial("all", 3*time.Second, wt0, 5)},
		}, onTime)
		sendBatch(env, 200*time.Millisecond, schemas.WindowBatch{
			Ranges:    []schemas.OffsetRange{{Topic: "tx", Partition: 0, From: 1, To: 3}},
			Partials:  []schemas.WindowPartial{partial("all", 3*time.Second, wt0, 6, 7), partial("all", 3*time.Second, wt0.Add(9*time.Second), 8)},
			Watermark: wt0.Add(5 * time.Second),
		}, late)
		sendBatch(env, 300*time.Millisecond, schemas.WindowBatch{
			Ranges:   []schemas.OffsetRange{{Topic: "tx", Partition: 0, From: 2, To: 5}},
			Partials: []schemas.WindowPartial{partial("all", 3*time.Second, wt0, 7), partial("all", 3*time.Second, wt0.Add(9*time.Second), 8, 9, 10)},
		}, repeat)
		return onTime, late, repeat
	}

	rec := &flushRecorder{}
	env, in := windowEnv(rec.flush)
	in.hold(time.Time{})
	onTime, late, repeat := batches(env)
	env.RegisterDelayedCallback(func() { env.CancelWorkflow() }, time.Second)
	env.ExecuteWorkflow(WindowWorkflow, WindowParams{Pipeline: "transactions", Windows: threeSeconds})
	require.NoError(t, onTime.err)
	require.NoError(t, late.err)
	require.Equal(t, []int{0}, late.ack.Late)
	rejected, ok, err := AsOffsetsAppliedError(repeat.err)
	require.NoError(t, err)
	require.True(t, ok, "got %v", repeat.err)
	require.Equal(t, map[string]int64{"tx/0": 3}, rejected.Applied)
	require.Len(t, rejected.Late, 1)
	require.Equal(t, []string{lateKey}, rejected.Late[0].Windows)
	require.True(t, rejected.Late[0].Covers("tx", 0, 2, lateKey), "offset 2 was in the late batch")
	require.False(t, rejected.Late[0].Covers("tx", 0, 0, lateKey), "offset 0 came in time")
	require.False(t, rejected.Late[0].Covers("tx", 0, 2, schemas.WindowKey("all", 3, wt0.Add(9*time.Second))), "the later window was open")

	// The same, with the run continuing as new after the late batch: the span goes along.
	rec = &flushRecorder{}
	env, in = windowEnv(rec.flush)
	in.hold(time.Time{})
	batches(env)
	env.ExecuteWorkflow(WindowWorkflow, WindowParams{Pipeline: "transactions", Windows: threeSeconds, MaxUpdates: 2})
	var can *workflow.ContinueAsNewError
	require.ErrorAs(t, env.GetWorkflowError(), &can)
	var next WindowParams
	require.NoError(t, converter.GetDefaultDataConverter().FromPayloads(can.Input, &next))
	require.NotNil(t, next.State)
	require.Len(t, next.State.Late, 1)
	require.Equal(t, []schemas.OffsetRange{{Topic: "tx", Partition: 0, From: 1, To: 3}}, next.State.Late[0].Ranges)

	// Spans outlive neither their retention nor their number.
	w := newWindower(WindowParams{Pipeline: "transactions", Windows: threeSeconds})
	b := schemas.WindowBatch{Ranges: []schemas.OffsetRange{{Topic: "tx"}}, Partials: []schemas.WindowPartial{partial("all", 3*time.Second, wt0, 1)}}
	for i := range maxLateSpans + 10 {
		w.rememberLate(b, []int{0}, wt0.Add(time.Duration(i)*time.Millisecond))
	}
	require.Len(t, w.state.Late, maxLateSpans)
	w.rememberLate(b, nil, wt0.Add(lateSpanRetention+time.Second))
	require.Empty(t, w.state.Late)
}
