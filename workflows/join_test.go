package workflows

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/mock"
	"github.com/stretchr/testify/require"
	"go.temporal.io/sdk/converter"
	sdklog "go.temporal.io/sdk/log"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/testsuite"
	"go.temporal.io/sdk/worker"
	"go.temporal.io/sdk/workflow"

	"github.com/tributary-dev/tributary/activities"
	"github.com/tributary-dev/tributary/schemas"
)

// finishRecorder stands in for the database and broker behind FinishJoins: it keeps what
// each call asked for, and answers like the real activity about events already final.
type finishRecorder struct {
	mu       sync.Mutex
	calls    []activities.FinishJoinsRequest
	finalBy  map[string]string
	failOnce bool
}

func (f *finishRecorder) finish(_ context.Context, req activities.FinishJoinsRequest) (activities.FinishJoinsResult, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.failOnce {
		f.failOnce = false
		return activities.FinishJoinsResult{}, errors.New("database is locked")
	}
	if f.finalBy == nil {
		f.finalBy = map[string]string{}
	}
	f.calls = append(f.calls, req)
	var res activities.FinishJoinsResult
	for _, ev := range req.Events {
		if w, ok := f.finalBy[ev.EventID]; ok && w != req.Writer {
			res.AlreadyFinal = append(res.AlreadyFinal, ev.EventID)
			continue
		}
		f.finalBy[ev.EventID] = req.Writer
	}
	return res, nil
}

func (f *finishRecorder) events() []activities.FinishedJoin {
	return flatten(f, func(r activities.FinishJoinsRequest) []activities.FinishedJoin { return r.Events })
}

func (f *finishRecorder) late() []schemas.JoinArrival {
	return flatten(f, func(r activities.FinishJoinsRequest) []schemas.JoinArrival { return r.Late })
}

func flatten[T any](f *finishRecorder, part func(activities.FinishJoinsRequest) []T) []T {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []T
	for _, c := range f.calls {
		out = append(out, part(c)...)
	}
	return out
}

func newJoinEnv(t *testing.T, rec *finishRecorder) *testsuite.TestWorkflowEnvironment {
	var s testsuite.WorkflowTestSuite
	s.SetLogger(sdklog.NewStructuredLogger(slog.New(slog.NewTextHandler(io.Discard, nil))))
	env := s.NewTestWorkflowEnvironment()
	var a *activities.Activities
	env.RegisterActivity(a)
	env.OnActivity(a.FinishJoins, mock.Anything, mock.Anything).Return(rec.finish)
	followInput(env)
	return env
}

func arrival(id, topic string, offset int64) schemas.JoinArrival {
	return schemas.JoinArrival{EventID: id, Topic: topic, Partition: 0, Offset: offset,
		CreatedAt: time.Date(2026, 1, 1, 0, 0, 0, int(offset), time.UTC), Fields: json.RawMessage(`{"feature1":1}`)}
}

func signalAt(env *testsuite.TestWorkflowEnvironment, after time.Duration, arrivals ...schemas.JoinArrival) {
	env.RegisterDelayedCallback(func() {
		// The bridge tells the watermark of an input read to its end: the clock.
		env.SignalWorkflow(SignalJoinArrivals, schemas.JoinSignal{Arrivals: arrivals, Watermark: env.Now()})
	}, after)
}

func perEvent() JoinParams { return JoinParams{Deadline: 30 * time.Second} }

func TestJoinAllThreeArrive(t *testing.T) {
	rec := &finishRecorder{}
	env := newJoinEnv(t, rec)
	signalAt(env, time.Second, arrival("e1", schemas.TopicJoin1, 10), arrival("e1", schemas.TopicJoin2, 20))
	signalAt(env, 2*time.Second, arrival("e1", schemas.TopicJoin3, 30))
	env.ExecuteWorkflow(JoinWorkflow, perEvent())
	require.True(t, env.IsWorkflowCompleted())
	require.NoError(t, env.GetWorkflowError())
	var res JoinResult
	require.NoError(t, env.GetWorkflowResult(&res))
	require.Equal(t, JoinResult{Status: schemas.JoinComplete}, res)
	evs := rec.events()
	require.Len(t, evs, 1)
	require.Equal(t, "e1", evs[0].EventID)
	require.Len(t, evs[0].Rows, 3)
	for i, r := range evs[0].Rows {
		require.Equal(t, schemas.JoinTopics[i], r.Topic, "rows are stored in topic order")
	}
}

// A run started with its rows (JoinParams.First) takes them as a signal's, first: with all
// three it finishes at once; with two, it waits for the third by signal, and a repeat of a
// row it started with is a redelivery, not a duplicate.
func TestJoinStartedWithItsRows(t *testing.T) {
	t.Run("all three", func(t *testing.T) {
		rec := &finishRecorder{}
		env := newJoinEnv(t, rec)
		p := perEvent()
		p.First = &schemas.JoinSignal{Arrivals: []schemas.JoinArrival{
			arrival("e1", schemas.TopicJoin2, 20), arrival("e1", schemas.TopicJoin1, 10), arrival("e1", schemas.TopicJoin3, 30)}}
		env.ExecuteWorkflow(JoinWorkflow, p)
		require.NoError(t, env.GetWorkflowError())
		var res JoinResult
		require.NoError(t, env.GetWorkflowResult(&res))
		require.Equal(t, JoinResult{Status: schemas.JoinComplete}, res)
		require.Len(t, rec.events(), 1)
		require.Len(t, rec.events()[0].Rows, 3)
	})
	t.Run("two, then the third", func(t *testing.T) {
		rec := &finishRecorder{}
		env := newJoinEnv(t, rec)
		p := perEvent()
		p.First = &schemas.JoinSignal{Arrivals: []schemas.JoinArrival{arrival("e1", schemas.TopicJoin1, 10), arrival("e1", schemas.TopicJoin2, 20)},
			Watermark: env.Now()}
		signalAt(env, time.Second, arrival("e1", schemas.TopicJoin1, 10))
		signalAt(env, 2*time.Second, arrival("e1", schemas.TopicJoin3, 30))
		env.ExecuteWorkflow(JoinWorkflow, p)
		require.NoError(t, env.GetWorkflowError())
		var res JoinResult
		require.NoError(t, env.GetWorkflowResult(&res))
		require.Equal(t, JoinResult{Status: schemas.JoinComplete}, res, "the repeat is no duplicate")
		evs := rec.events()
		require.Len(t, evs, 1)
		require.Len(t, evs[0].Rows, 3)
	})
}

func TestJoinOutOfOrder(t *testing.T) {
	rec := &finishRecorder{}
	env := newJoinEnv(t, rec)
	signalAt(env, time.Second, arrival("e1", schemas.TopicJoin3, 5))
	signalAt(env, 2*time.Second, arrival("e1", schemas.TopicJoin1, 1))
	signalAt(env, 3*time.Second, arrival("e1", schemas.TopicJoin2, 9))
	env.ExecuteWorkflow(JoinWorkflow, perEvent())
	var res JoinResult
	require.NoError(t, env.GetWorkflowResult(&res))
	require.Equal(t, schemas.JoinComplete, res.Status)
	require.Equal(t, []string{"topic1", "topic2", "topic3"}, topicsOf(rec.events()[0]))
}

func TestJoinDuplicateArrival(t *testing.T) {
	rec := &finishRecorder{}
	env := newJoinEnv(t, rec)
	// A second row for topic1 (a new record, new offset) is a duplicate; the same record
	// signalled again (same offset, as after a bridge crash) is a redelivery.
	signalAt(env, time.Second, arrival("e1", schemas.TopicJoin1, 1), arrival("e1", schemas.TopicJoin1, 2))
	signalAt(env, 2*time.Second, arrival("e1", schemas.TopicJoin1, 2), arrival("e1", schemas.TopicJoin2, 3))
	status := queryAt[JoinStatus](t, env, 3*time.Second, QueryStatus)
	signalAt(env, 4*time.Second, arrival("e1", schemas.TopicJoin3, 4))
	env.ExecuteWorkflow(JoinWorkflow, perEvent())
	var res JoinResult
	require.NoError(t, env.GetWorkflowResult(&res))
	require.Equal(t, JoinResult{Status: schemas.JoinComplete, Duplicates: 1}, res)
	require.Equal(t, []string{"topic1", "topic2"}, status.Topics)
	require.Equal(t, int64(1), status.Stats.Redelivered)
	require.Equal(t, int64(1), status.Stats.Duplicates)
	require.Equal(t, int64(1), rec.events()[0].Rows[0].Offset, "the first row of a topic is the one kept")
}

func TestJoinDeadline(t *testing.T) {
	rec := &finishRecorder{}
	env := newJoinEnv(t, rec)
	signalAt(env, time.Second, arrival("e1", schemas.TopicJoin1, 1), arrival("e1", schemas.TopicJoin3, 2))
	start := env.Now()
	env.ExecuteWorkflow(JoinWorkflow, perEvent())
	var res JoinResult
	require.NoError(t, env.GetWorkflowResult(&res))
	require.Equal(t, schemas.JoinIncomplete, res.Status)
	elapsed := env.Now().Sub(start)
	require.GreaterOrEqual(t, elapsed, 31*time.Second, "waits the deadline from the first row")
	require.Less(t, elapsed, 33*time.Second)
	require.Equal(t, []string{"topic1", "topic3"}, topicsOf(rec.events()[0]))
}

func TestJoinRetriesTheFinishStep(t *testing.T) {
	rec := &finishRecorder{failOnce: true}
	env := newJoinEnv(t, rec)
	signalAt(env, time.Second, arrival("e1", "topic1", 1), arrival("e1", "topic2", 1), arrival("e1", "topic3", 1))
	env.ExecuteWorkflow(JoinWorkflow, perEvent())
	require.NoError(t, env.GetWorkflowError())
	require.Len(t, rec.events(), 1, "the failed attempt stored nothing, the retry stored the event once")
}

func TestJoinShardAcrossContinueAsNew(t *testing.T) {
	rec := &finishRecorder{}
	params := JoinParams{Sharded: true, Deadline: 10 * time.Second, RecentDone: 100, MaxHistory: 40}
	env := newJoinEnv(t, rec)
	// Ten complete events, one row at a time, then one event that never gets topic2.
	off := int64(0)
	at := time.Second
	for i := range 10 {
		id := "s" + string(rune('a'+i))
		for _, topic := range schemas.JoinTopics {
			off++
			signalAt(env, at, arrival(id, topic, off))
			at += 100 * time.Millisecond
		}
	}
	signalAt(env, at, arrival("half", schemas.TopicJoin1, 1000), arrival("half", schemas.TopicJoin3, 1001))
	// The test environment keeps no history length of its own: say it grew past the limit
	// once every signal was sent.
	env.RegisterDelayedCallback(func() { env.SetCurrentHistoryLength(params.MaxHistory) }, at+time.Second)
	env.ExecuteWorkflow(JoinWorkflow, params)
	err := env.GetWorkflowError()
	var can *workflow.ContinueAsNewError
	require.ErrorAs(t, err, &can, "a shard with a long history continues as new")
	var next JoinParams
	require.NoError(t, converter.GetDefaultDataConverter().FromPayloads(can.Input, &next))
	require.Nil(t, next.State, "the state travels packed")
	carried, err := unpackState(next.PackedState)
	require.NoError(t, err)
	require.Contains(t, carried.Pending, "half")
	firstRun := len(rec.events())
	require.Positive(t, firstRun)

	// The next run carries the pending ids, the applied offsets and the recent ids.
	env2 := newJoinEnv(t, rec)
	next.MaxHistory = 0
	// A redelivery of everything (offsets already applied) changes nothing; a late
	// duplicate of a finished id is recognised; the pending ones complete.
	var replay []schemas.JoinArrival
	for o := int64(1); o <= off; o++ {
		replay = append(replay, arrival("ignored", schemas.JoinTopics[(o-1)%3], o))
	}
	signalAt(env2, time.Second, replay...)
	signalAt(env2, 2*time.Second, arrival("sa", schemas.TopicJoin2, 2000))
	signalAt(env2, 3*time.Second, arrival("half", schemas.TopicJoin2, 2001))
	env2.RegisterDelayedCallback(func() {
		v, err := env2.QueryWorkflow(QueryStatus)
		require.NoError(t, err)
		var st JoinStatus
		require.NoError(t, v.Get(&st))
		require.Equal(t, 0, st.Pending)
		require.Equal(t, int64(11), st.Stats.Complete)
		require.Equal(t, int64(off), st.Stats.Redelivered)
		require.Equal(t, int64(1), st.Stats.Late)
		env2.CancelWorkflow()
	}, time.Minute)
	env2.ExecuteWorkflow(JoinWorkflow, next)
	evs := rec.events()
	require.Len(t, evs, 11, "every event finished exactly once across both runs")
	seen := map[string]bool{}
	for _, ev := range evs {
		require.False(t, seen[ev.EventID], "event %s finished twice", ev.EventID)
		seen[ev.EventID] = true
		require.Equal(t, schemas.JoinComplete, ev.Status)
	}
	require.Len(t, rec.late(), 1)
	require.Equal(t, "sa", rec.late()[0].EventID)
}

func TestJoinShardDeadlines(t *testing.T) {
	rec := &finishRecorder{}
	env := newJoinEnv(t, rec)
	signalAt(env, time.Second, arrival("a", "topic1", 1))
	signalAt(env, 5*time.Second, arrival("b", "topic1", 2))
	env.RegisterDelayedCallback(func() {
		require.Len(t, rec.events(), 1, "a expired at 11s, b not yet")
	}, 12*time.Second)
	env.RegisterDelayedCallback(func() {
		require.Len(t, rec.events(), 2)
		env.CancelWorkflow()
	}, 16*time.Second)
	env.ExecuteWorkflow(JoinWorkflow, JoinParams{Sharded: true, Deadline: 10 * time.Second})
	evs := rec.events()
	require.Equal(t, []string{"a", "b"}, []string{evs[0].EventID, evs[1].EventID})
	require.Equal(t, schemas.JoinIncomplete, evs[1].Status)
}

func topicsOf(ev activities.FinishedJoin) []string {
	var ts []string
	for _, r := range ev.Rows {
		ts = append(ts, r.Topic)
	}
	return ts
}

// Rows that wait in Kafka behind a dead bridge still complete their event: the deadline
// counts in input time, and the input stands still while the bridge is down.
func TestJoinDeadlineWaitsForTheInput(t *testing.T) {
	rec := &finishRecorder{}
	env := newJoinEnv(t, rec)
	in := followInput(env)
	env.RegisterDelayedCallback(func() { in.hold(env.Now()) }, time.Second)
	signalAt(env, time.Second, arrival("e1", schemas.TopicJoin1, 1))
	waiting := queryAt[JoinStatus](t, env, 90*time.Second, QueryStatus)
	// The bridge is back: what waited arrives, with the watermark it had reached.
	env.RegisterDelayedCallback(func() {
		env.SignalWorkflow(SignalJoinArrivals, schemas.JoinSignal{
			Arrivals:  []schemas.JoinArrival{arrival("e1", schemas.TopicJoin2, 2), arrival("e1", schemas.TopicJoin3, 3)},
			Watermark: env.Now().Add(-89 * time.Second)})
		in.release()
	}, 90*time.Second)
	env.ExecuteWorkflow(JoinWorkflow, perEvent())
	var res JoinResult
	require.NoError(t, env.GetWorkflowResult(&res))
	require.Equal(t, []string{"topic1"}, waiting.Topics, "a minute past its deadline by the clock, the event still waits")
	require.Greater(t, in.reads, 3)
	require.Equal(t, schemas.JoinComplete, res.Status, "the rows that waited in Kafka complete the event")
}

// TestJoinRowsDuringTheWatermarkRead delivers an event's last rows while the workflow
// reads the watermark that covers them: they reach the workflow only in its next task,
// and the event must complete rather than be judged at the deadline without them.
func TestJoinRowsDuringTheWatermarkRead(t *testing.T) {
	rec := &finishRecorder{}
	env := newJoinEnv(t, rec)
	in := followInput(env)
	env.RegisterDelayedCallback(func() { in.hold(env.Now()) }, time.Second)
	signalAt(env, time.Second, arrival("e1", schemas.TopicJoin1, 1))
	env.RegisterDelayedCallback(func() {
		in.deliverAtNextRead(func() {
			env.SignalWorkflow(SignalJoinArrivals, schemas.JoinSignal{
				Arrivals: []schemas.JoinArrival{arrival("e1", schemas.TopicJoin2, 2), arrival("e1", schemas.TopicJoin3, 3)}})
			in.release()
		})
	}, time.Minute)
	env.ExecuteWorkflow(JoinWorkflow, perEvent())
	var res JoinResult
	require.NoError(t, env.GetWorkflowResult(&res))
	require.Equal(t, schemas.JoinComplete, res.Status, "the rows delivered before the watermark was recorded complete the event")
}

// updateAt sends arrivals to a shard as the bridge does, packed by update, and fails the
// test if the update is refused.
func updateAt(t *testing.T, env *testsuite.TestWorkflowEnvironment, after time.Duration, arrivals ...schemas.JoinArrival) {
	env.RegisterDelayedCallback(func() {
		packed, err := schemas.PackJoinSignal(schemas.JoinSignal{Arrivals: arrivals, Watermark: env.Now()})
		require.NoError(t, err)
		env.UpdateWorkflow(UpdateJoinRows, "", acceptedUpdate(t), packed)
	}, after)
}

// acceptedUpdate is an update callback that fails the test unless the update completes.
func acceptedUpdate(t *testing.T) *testsuite.TestUpdateCallback {
	return &testsuite.TestUpdateCallback{
		OnReject:   func(err error) { t.Errorf("update rejected: %v", err) },
		OnAccept:   func() {},
		OnComplete: func(_ interface{}, err error) { require.NoError(t, err) },
	}
}

// A shard still takes rows in JSON, as bridges sent them before the packed update, and
// refuses packed rows that do not unpack with an error the bridge does not retry.
func TestJoinShardTakesJSONRowsAndRefusesMalformedOnes(t *testing.T) {
	rec := &finishRecorder{}
	env := newJoinEnv(t, rec)
	env.RegisterDelayedCallback(func() {
		env.UpdateWorkflow(UpdateJoinArrivals, "", acceptedUpdate(t), schemas.JoinSignal{
			Arrivals: []schemas.JoinArrival{arrival("a", schemas.TopicJoin1, 1), arrival("a", schemas.TopicJoin2, 2)}, Watermark: env.Now()})
	}, time.Second)
	var refused error
	env.RegisterDelayedCallback(func() {
		env.UpdateWorkflow(UpdateJoinRows, "", &testsuite.TestUpdateCallback{
			OnReject:   func(err error) { t.Errorf("update rejected before it was accepted: %v", err) },
			OnAccept:   func() {},
			OnComplete: func(_ interface{}, err error) { refused = err },
		}, []byte("not packed rows"))
	}, 2*time.Second)
	updateAt(t, env, 3*time.Second, arrival("a", schemas.TopicJoin3, 3))
	env.RegisterDelayedCallback(func() { env.CancelWorkflow() }, time.Minute)
	env.ExecuteWorkflow(JoinWorkflow, JoinParams{Sharded: true, Deadline: time.Hour})
	var app *temporal.ApplicationError
	require.ErrorAs(t, refused, &app)
	require.Equal(t, ErrorTypeMalformedRows, app.Type())
	require.True(t, app.NonRetryable())
	evs := rec.events()
	require.Len(t, evs, 1)
	require.Equal(t, schemas.JoinComplete, evs[0].Status, "rows in JSON and packed join one event")
	require.Equal(t, []string{schemas.TopicJoin1, schemas.TopicJoin2, schemas.TopicJoin3}, topicsOf(evs[0]))
}

// A shard takes rows by update as it does by signal: events complete, rows sent again are
// recognised by offset, and after MaxUpdates updates the run continues as new with its
// pending events, which the next run completes.
func TestJoinShardTakesRowsByUpdate(t *testing.T) {
	rec := &finishRecorder{}
	params := JoinParams{Sharded: true, Deadline: time.Hour, RecentDone: 100, MaxUpdates: 10}
	env := newJoinEnv(t, rec)
	updateAt(t, env, time.Second, arrival("a", schemas.TopicJoin1, 1), arrival("a", schemas.TopicJoin2, 2))
	updateAt(t, env, 2*time.Second, arrival("a", schemas.TopicJoin1, 1), arrival("a", schemas.TopicJoin3, 3))
	updateAt(t, env, 3*time.Second, arrival("half", schemas.TopicJoin1, 4))
	// The rest of the run's budget: rows already applied, which change nothing.
	for i := 3; i < params.MaxUpdates; i++ {
		updateAt(t, env, 4*time.Second+time.Duration(i)*time.Millisecond, arrival("a", schemas.TopicJoin1, 1))
	}
	env.ExecuteWorkflow(JoinWorkflow, params)
	var can *workflow.ContinueAsNewError
	require.ErrorAs(t, env.GetWorkflowError(), &can, "a shard continues as new after %d updates", params.MaxUpdates)
	evs := rec.events()
	require.Len(t, evs, 1)
	require.Equal(t, "a", evs[0].EventID)
	require.Equal(t, schemas.JoinComplete, evs[0].Status)
	require.Equal(t, []string{schemas.TopicJoin1, schemas.TopicJoin2, schemas.TopicJoin3}, topicsOf(evs[0]))
	var next JoinParams
	require.NoError(t, converter.GetDefaultDataConverter().FromPayloads(can.Input, &next))
	carried, err := unpackState(next.PackedState)
	require.NoError(t, err)
	require.Equal(t, int64(params.MaxUpdates-2), carried.Stats.Redelivered)
	require.Contains(t, carried.Pending, "half")

	env2 := newJoinEnv(t, rec)
	updateAt(t, env2, time.Second, arrival("half", schemas.TopicJoin2, 5), arrival("half", schemas.TopicJoin3, 6))
	env2.RegisterDelayedCallback(func() { env2.CancelWorkflow() }, time.Minute)
	env2.ExecuteWorkflow(JoinWorkflow, next)
	evs = rec.events()
	require.Len(t, evs, 2)
	require.Equal(t, "half", evs[1].EventID)
	require.Equal(t, schemas.JoinComplete, evs[1].Status)
}

// backlog is n events of one topic each, from offset from on, whose fields are pad bytes
// long: a shard left with many pending events, as a backlog read unevenly leaves it.
func backlog(prefix, topic string, from int64, n int, pad func(i int) string) []schemas.JoinArrival {
	out := make([]schemas.JoinArrival, n)
	for i := range out {
		a := arrival(fmt.Sprintf("%s-%d", prefix, i), topic, from+int64(i))
		a.Fields = json.RawMessage(fmt.Sprintf(`{"feature1":%d,"pad":%q}`, i, pad(i)))
		out[i] = a
	}
	return out
}

// A shard with more pending rows than the server takes in a continue-as-new input (2 MiB)
// carries them packed; one whose packed state is still too large goes on in its run until
// the pending events complete, and continues as new then.
func TestJoinShardCarriesALargeBacklog(t *testing.T) {
	// The worker's allowance for one stretch of workflow code, as the real worker has it:
	// packing thousands of rows takes longer than the SDK's default under the race detector.
	// The test's own limit on real time waited for a local activity goes from the SDK's 3 s
	// to a minute for the same reason: under -race on a slower machine of the same size,
	// finishing 1,500 events' rows took longer than 3 s.
	newEnv := func(t *testing.T, rec *finishRecorder) *testsuite.TestWorkflowEnvironment {
		env := newJoinEnv(t, rec)
		env.SetWorkerOptions(worker.Options{DeadlockDetectionTimeout: TaskDeadlockTimeout})
		env.SetTestTimeout(time.Minute)
		return env
	}
	t.Run("packed under the limit", func(t *testing.T) {
		rec := &finishRecorder{}
		env := newEnv(t, rec)
		params := JoinParams{Sharded: true, Deadline: time.Hour, MaxUpdates: 4}
		same := func(int) string { return strings.Repeat("x", 200) }
		for u := range 4 {
			updateAt(t, env, time.Duration(u+1)*time.Second, backlog(fmt.Sprintf("u%d", u), schemas.TopicJoin1, int64(u*3000), 3000, same)...)
		}
		env.ExecuteWorkflow(JoinWorkflow, params)
		var can *workflow.ContinueAsNewError
		require.ErrorAs(t, env.GetWorkflowError(), &can)
		var next JoinParams
		require.NoError(t, converter.GetDefaultDataConverter().FromPayloads(can.Input, &next))
		carried, err := unpackState(next.PackedState)
		require.NoError(t, err)
		require.Equal(t, 12000, len(carried.Pending))
		plain, err := json.Marshal(carried)
		require.NoError(t, err)
		require.Greater(t, len(plain), 2<<20, "the state unpacked is over the server's limit")
		require.Less(t, len(next.PackedState), maxCarried)
	})

	t.Run("too large even packed", func(t *testing.T) {
		rec := &finishRecorder{}
		env := newEnv(t, rec)
		params := JoinParams{Sharded: true, Deadline: time.Hour, MaxUpdates: 4}
		rng := rand.New(rand.NewPCG(1, 2))
		noise := func(int) string {
			b := make([]byte, 600)
			for i := range b {
				b[i] = byte(rng.Uint32())
			}
			return base64.StdEncoding.EncodeToString(b)
		}
		same := func(int) string { return "" }
		for u := range 4 {
			updateAt(t, env, time.Duration(u+1)*time.Second, backlog(fmt.Sprintf("u%d", u), schemas.TopicJoin1, int64(u*1500), 1500, noise)...)
		}
		// The budget is spent and the state too large: the run goes on. The rows of the
		// other topics come and complete the events, a quarter per update; the run
		// continues as new once what is still pending fits.
		for u := range 4 {
			off := int64(100000 + u*3000)
			at := time.Duration(10+u) * time.Second
			updateAt(t, env, at, append(backlog(fmt.Sprintf("u%d", u), schemas.TopicJoin2, off, 1500, same),
				backlog(fmt.Sprintf("u%d", u), schemas.TopicJoin3, off+1500, 1500, same)...)...)
		}
		env.ExecuteWorkflow(JoinWorkflow, params)
		var can *workflow.ContinueAsNewError
		require.ErrorAs(t, env.GetWorkflowError(), &can)
		var next JoinParams
		require.NoError(t, converter.GetDefaultDataConverter().FromPayloads(can.Input, &next))
		require.Less(t, len(next.PackedState), maxCarried)
		carried, err := unpackState(next.PackedState)
		require.NoError(t, err)
		finished := len(rec.events())
		require.GreaterOrEqual(t, finished, 1500, "the run went on past its budget and finished events")
		require.Equal(t, 6000, finished+len(carried.Pending), "every event finished or carried")
	})
}
