package workflows

import (
	"context"
	"io"
	"log/slog"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/mock"
	"github.com/stretchr/testify/require"
	"go.temporal.io/sdk/converter"
	sdklog "go.temporal.io/sdk/log"
	"go.temporal.io/sdk/testsuite"
	"go.temporal.io/sdk/workflow"

	"github.com/tributary-dev/tributary/activities"
	"github.com/tributary-dev/tributary/schemas"
	"github.com/tributary-dev/tributary/travel"
)

// visitStore stands in for the database behind FlushVisits and TravelerFloors: it keeps the
// visit rows by key, as the upsert does, and answers floors from them.
type visitStore struct {
	mu       sync.Mutex
	rows     map[string]travel.Visit
	flushes  int
	rejected []travel.Rejected
}

func (s *visitStore) flush(_ context.Context, req activities.FlushVisitsRequest) (activities.FlushVisitsResult, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.rows == nil {
		s.rows = map[string]travel.Visit{}
	}
	s.flushes++
	for _, v := range req.Visits {
		s.rows[v.TravelerID+"@"+v.SensorID+"@"+v.Entered.String()] = v
	}
	s.rejected = append(s.rejected, req.Rejected...)
	return activities.FlushVisitsResult{}, nil
}

func (s *visitStore) floors(_ context.Context, ids []string) (map[string]map[string]time.Time, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := map[string]map[string]time.Time{}
	for _, v := range s.rows {
		if !slices.Contains(ids, v.TravelerID) {
			continue
		}
		if out[v.TravelerID] == nil {
			out[v.TravelerID] = map[string]time.Time{}
		}
		if v.Left.After(out[v.TravelerID][v.SensorID]) {
			out[v.TravelerID][v.SensorID] = v.Left
		}
	}
	return out, nil
}

func (s *visitStore) visits() []travel.Visit {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []travel.Visit
	for _, k := range slices.Sorted(func(yield func(string) bool) {
		for k := range s.rows {
			if !yield(k) {
				return
			}
		}
	}) {
		out = append(out, s.rows[k])
	}
	return out
}

func newTravelerEnv(store *visitStore) *testsuite.TestWorkflowEnvironment {
	var s testsuite.WorkflowTestSuite
	s.SetLogger(sdklog.NewStructuredLogger(slog.New(slog.NewTextHandler(io.Discard, nil))))
	env := s.NewTestWorkflowEnvironment()
	var a *activities.Activities
	env.RegisterActivity(a)
	env.OnActivity(a.FlushVisits, mock.Anything, mock.Anything).Return(store.flush)
	env.OnActivity(a.TravelerFloors, mock.Anything, mock.Anything).Return(store.floors)
	env.SetStartTime(tt0)
	followInput(env)
	return env
}

var tt0 = time.Date(2026, 11, 22, 8, 0, 30, 0, time.UTC)

// line is a car crossing sensor s1 at 10 m/s for 5 s, then 20 m/s for 5 s, one reading a
// second, at offsets from first: its speeds are known exactly.
func line(traveler string, first int64) []travel.Reading {
	var rs []travel.Reading
	x := 0.0
	for i := range 11 {
		rs = append(rs, travel.Reading{SensorID: "s1", TravelerID: traveler, Type: "car", X: x, Y: 3, At: tt0.Add(time.Duration(i) * time.Second),
			Ref: travel.Ref{Topic: schemas.TopicSensorReadings, Offset: first + int64(i)}})
		if i < 5 {
			x += 10
		} else {
			x += 20
		}
	}
	return rs
}

func readingsAt(env *testsuite.TestWorkflowEnvironment, after time.Duration, rs ...travel.Reading) {
	env.RegisterDelayedCallback(func() {
		// The bridge tells the watermark of an input read to its end: the clock.
		env.SignalWorkflow(SignalTravelerReadings, schemas.TravelerSignal{Readings: rs, Watermark: env.Now()})
	}, after)
}

func perTraveler() TravelerParams {
	return TravelerParams{Disorder: 3 * time.Second, IdleGap: 20 * time.Second}
}

func TestTravelerKnownTrajectory(t *testing.T) {
	store := &visitStore{}
	env := newTravelerEnv(store)
	rs := line("t1", 100)
	for i, r := range rs {
		readingsAt(env, time.Duration(i+1)*time.Second, r)
	}
	cur := queryAt[TravelerCurrent](t, env, 8500*time.Millisecond, QueryCurrent, "")
	env.ExecuteWorkflow(TravelerWorkflow, perTraveler())
	require.NoError(t, env.GetWorkflowError(), "the run ends once its traveler went quiet")
	require.True(t, cur.Known)
	require.Len(t, cur.Open, 1, "a live visit while readings come in")
	require.Equal(t, 5, cur.Open[0].Readings, "readings of the last 3 s wait for the disorder")
	vs := store.visits()
	require.Len(t, vs, 1)
	v := vs[0]
	require.Equal(t, 11, v.Readings)
	require.Equal(t, 10.0, v.MinSpeed)
	require.Equal(t, 20.0, v.MaxSpeed)
	require.Equal(t, 15.0, v.AvgSpeed)
	require.True(t, v.Entered.Equal(tt0) && v.Left.Equal(tt0.Add(10*time.Second)))
	// 08:00:31..08:00:59 and 08:01:00..: the speeds split by minute (29 s then 1 s after 08:00:30).
	require.Len(t, v.Minutes, 1)
}

func TestTravelerOutOfOrderAndDuplicatesChangeNothing(t *testing.T) {
	run := func(order func([]travel.Reading) [][]travel.Reading) travel.Visit {
		store := &visitStore{}
		env := newTravelerEnv(store)
		for i, batch := range order(line("t1", 100)) {
			readingsAt(env, time.Duration(i+1)*time.Second, batch...)
		}
		env.ExecuteWorkflow(TravelerWorkflow, perTraveler())
		require.NoError(t, env.GetWorkflowError())
		vs := store.visits()
		require.Len(t, vs, 1)
		return vs[0]
	}
	inOrder := run(func(rs []travel.Reading) [][]travel.Reading {
		var out [][]travel.Reading
		for _, r := range rs {
			out = append(out, []travel.Reading{r})
		}
		return out
	})
	shuffled := run(func(rs []travel.Reading) [][]travel.Reading {
		// Each reading at most 2 s from its place; every third one also sent twice (a
		// producer retry: a new offset); a whole batch redelivered (the same offsets).
		// Offsets grow in the order records reach the topic.
		order := []int{1, 0, 2, 4, 3, 5, 7, 6, 8, 10, 9}
		var out [][]travel.Reading
		next := int64(500)
		send := func(r travel.Reading) {
			r.Ref.Offset = next
			next++
			out = append(out, []travel.Reading{r})
		}
		for i, j := range order {
			send(rs[j])
			if i%3 == 0 {
				send(rs[j])
			}
		}
		return append(out, out[len(out)-1])
	})
	inOrder.Last, shuffled.Last = travel.Reading{}, travel.Reading{}
	require.Equal(t, inOrder, shuffled)
}

func TestTravelerIdleGapEndsAVisitAndSensorsMakeVisits(t *testing.T) {
	store := &visitStore{}
	env := newTravelerEnv(store)
	params := perTraveler()
	params.Sharded = true
	rs := line("t1", 0)
	readingsAt(env, 11*time.Second, rs...)
	// The traveler comes back to s1 a minute later, and is also seen by s2.
	back := line("t1", 100)
	for i := range back {
		back[i].At = back[i].At.Add(time.Minute)
	}
	other := line("t2", 200)
	for i := range other {
		other[i].SensorID = "s2"
	}
	readingsAt(env, 40*time.Second, append(back[:6], other...)...)
	env.RegisterDelayedCallback(func() {
		require.Empty(t, store.visits(), "the first visit lasts until its idle gap has passed its last reading")
	}, 33*time.Second)
	env.RegisterDelayedCallback(func() {
		require.Len(t, store.visits(), 1, "the first visit ended after its idle gap")
	}, 35*time.Second)
	env.RegisterDelayedCallback(func() { env.SetCurrentHistoryLength(1000) }, 90*time.Second)
	readingsAt(env, 91*time.Second) // wakes the shard to continue as new
	env.ExecuteWorkflow(TravelerWorkflow, TravelerParams{Sharded: true, Disorder: 3 * time.Second, IdleGap: 20 * time.Second, MaxHistory: 1000})
	var can *workflow.ContinueAsNewError
	require.ErrorAs(t, env.GetWorkflowError(), &can)
	vs := store.visits()
	require.Len(t, vs, 3, "t1 twice at s1, and t2 at s2")
	require.Equal(t, 6, vs[1].Readings)
	require.Equal(t, "s2", vs[2].SensorID)
}

func TestTravelerImpossibleJumpIsRefusedAndFloorsDropOldReadings(t *testing.T) {
	store := &visitStore{}
	env := newTravelerEnv(store)
	// A visit already stored by an earlier run ends at tt0+4s: readings up to there are
	// dropped, the rest make a new visit.
	_, _ = store.flush(context.Background(), activities.FlushVisitsRequest{Visits: []travel.Visit{{TravelerID: "t1", SensorID: "s1", Entered: tt0, Left: tt0.Add(4 * time.Second)}}})
	rs := line("t1", 0)
	rs[7].X += 400
	readingsAt(env, time.Second, rs...)
	var stats TravelerStats
	env.ExecuteWorkflow(TravelerWorkflow, perTraveler())
	require.NoError(t, env.GetWorkflowResult(&stats))
	require.Len(t, store.rejected, 1)
	require.Contains(t, store.rejected[0].Reason, "impossible jump")
	require.Equal(t, int64(7), store.rejected[0].Reading.Ref.Offset)
	vs := store.visits()
	require.Len(t, vs, 2)
	require.True(t, vs[1].Entered.Equal(tt0.Add(5*time.Second)))
	require.Equal(t, 5, vs[1].Readings, "readings 5..10 but the jump")
	require.Equal(t, int64(5), stats.Stale)
	require.Equal(t, int64(1), stats.Rejected)
}

func TestTravelerShardCarriesStateAcrossContinueAsNew(t *testing.T) {
	store := &visitStore{}
	env := newTravelerEnv(store)
	params := TravelerParams{Sharded: true, Disorder: 3 * time.Second, IdleGap: 20 * time.Second, MaxHistory: 50}
	rs := line("t1", 0)
	readingsAt(env, time.Second, rs[:6]...)
	env.RegisterDelayedCallback(func() { env.SetCurrentHistoryLength(params.MaxHistory) }, 1500*time.Millisecond)
	readingsAt(env, 2*time.Second, rs[6])
	env.ExecuteWorkflow(TravelerWorkflow, params)
	var can *workflow.ContinueAsNewError
	require.ErrorAs(t, env.GetWorkflowError(), &can)
	var next TravelerParams
	require.NoError(t, converter.GetDefaultDataConverter().FromPayloads(can.Input, &next))
	require.Len(t, next.State.Travelers, 1)
	require.Empty(t, store.visits())

	env2 := newTravelerEnv(store)
	next.MaxHistory = 0
	readingsAt(env2, time.Second, rs...) // offsets 0..6 redelivered, 7..10 new
	env2.RegisterDelayedCallback(func() { env2.SetCurrentHistoryLength(1) }, time.Minute)
	env2.RegisterDelayedCallback(func() {
		v, err := env2.QueryWorkflow(QueryStatus)
		require.NoError(t, err)
		var st TravelerStatus
		require.NoError(t, v.Get(&st))
		require.Equal(t, 0, st.Following)
		require.Equal(t, int64(7), st.Stats.Redelivered)
		require.Equal(t, int64(11), st.Stats.Readings)
		require.Equal(t, int64(1), st.Stats.Visits)
	}, time.Minute)
	env2.ExecuteWorkflow(TravelerWorkflow, next)
	vs := store.visits()
	require.Len(t, vs, 1)
	require.Equal(t, 15.0, vs[0].AvgSpeed)
}

func TestTravelerShardFlushesEndedVisitsTogether(t *testing.T) {
	store := &visitStore{}
	env := newTravelerEnv(store)
	// Two travelers go quiet 300 ms apart: with a 1 s flush delay their visits go together.
	readingsAt(env, time.Second, line("t1", 0)...)
	readingsAt(env, 1300*time.Millisecond, line("t2", 100)...)
	var held int
	env.RegisterDelayedCallback(func() { held = len(store.visits()) }, 24500*time.Millisecond)
	env.RegisterDelayedCallback(func() { env.SetCurrentHistoryLength(1000) }, time.Minute)
	readingsAt(env, 61*time.Second)
	env.ExecuteWorkflow(TravelerWorkflow, TravelerParams{Sharded: true, Disorder: 3 * time.Second, IdleGap: 20 * time.Second, MaxHistory: 1000, FlushDelay: time.Second})
	var can *workflow.ContinueAsNewError
	require.ErrorAs(t, env.GetWorkflowError(), &can)
	require.Zero(t, held, "t1 ended at 24 s and waits for the flush delay")
	require.Len(t, store.visits(), 2)
	require.Equal(t, 1, store.flushes, "one flush for both")
}

// A visit does not end while its traveler's readings wait in Kafka: its idle gap counts in
// input time, so the readings that come after an outage continue the same visit.
func TestTravelerVisitWaitsForTheInput(t *testing.T) {
	store := &visitStore{}
	env := newTravelerEnv(store)
	in := followInput(env)
	rs := line("t1", 0)
	readingsAt(env, 6*time.Second, rs[:6]...)
	env.RegisterDelayedCallback(func() { in.hold(env.Now()) }, 6*time.Second)
	env.RegisterDelayedCallback(func() {
		require.Empty(t, store.visits(), "a minute past the idle gap by the clock, the visit goes on")
		env.SignalWorkflow(SignalTravelerReadings, schemas.TravelerSignal{Readings: rs[6:], Watermark: tt0.Add(6 * time.Second)})
		in.release()
	}, 90*time.Second)
	env.ExecuteWorkflow(TravelerWorkflow, perTraveler())
	require.NoError(t, env.GetWorkflowError())
	vs := store.visits()
	require.Len(t, vs, 1, "one visit, not two")
	require.Equal(t, 11, vs[0].Readings)
}

// TestTravelerSignalDuringTheWatermarkRead delivers a visit's last readings while the
// workflow reads the watermark that covers them, as a bridge does that signals and then
// records its progress while the workflow's task runs: the signal reaches the workflow
// only in its next task, and the visit must wait for it rather than end without them.
func TestTravelerSignalDuringTheWatermarkRead(t *testing.T) {
	store := &visitStore{}
	env := newTravelerEnv(store)
	in := followInput(env)
	rs := line("t1", 0)
	readingsAt(env, 6*time.Second, rs[:6]...)
	env.RegisterDelayedCallback(func() { in.hold(env.Now()) }, 6*time.Second)
	env.RegisterDelayedCallback(func() {
		in.deliverAtNextRead(func() {
			env.SignalWorkflow(SignalTravelerReadings, schemas.TravelerSignal{Readings: rs[6:]})
			in.release()
		})
	}, 60*time.Second)
	env.ExecuteWorkflow(TravelerWorkflow, perTraveler())
	require.NoError(t, env.GetWorkflowError())
	vs := store.visits()
	require.Len(t, vs, 1, "one visit, not two")
	require.Equal(t, 11, vs[0].Readings)
}

// TestTravelerClearsItsStageMarks: a traveler workflow records, as its signals' marks come
// in, the oldest reading it holds (the first of its open visit) and, once the visit is
// flushed, that it holds nothing; each record comes after what it says is true.
func TestTravelerClearsItsStageMarks(t *testing.T) {
	store := &visitStore{}
	env := newTravelerEnv(store)
	var mu sync.Mutex
	var clears []activities.ClearStageRequest
	var flushedBefore []int // store.flushes at each clear
	var a *activities.Activities
	env.OnActivity(a.ClearStage, mock.Anything, mock.Anything).Return(func(_ context.Context, req activities.ClearStageRequest) (bool, error) {
		mu.Lock()
		defer mu.Unlock()
		store.mu.Lock()
		flushedBefore = append(flushedBefore, store.flushes)
		store.mu.Unlock()
		clears = append(clears, req)
		return true, nil
	})
	rs := line("t1", 100)
	for i, r := range rs {
		env.RegisterDelayedCallback(func() {
			env.SignalWorkflow(SignalTravelerReadings, schemas.TravelerSignal{Readings: []travel.Reading{r}, Watermark: env.Now(), Mark: int64(i + 1)})
		}, time.Duration(i+1)*time.Second)
	}
	env.ExecuteWorkflow(TravelerWorkflow, perTraveler())
	require.NoError(t, env.GetWorkflowError())
	require.NotEmpty(t, clears)
	for i, c := range clears[:len(clears)-1] {
		require.True(t, c.Oldest.Equal(tt0), "clear %d while the visit is open: oldest %s, want its first reading", i, c.Oldest)
		require.Zero(t, flushedBefore[i])
	}
	last := clears[len(clears)-1]
	require.EqualValues(t, len(rs), last.Mark, "the last clear covers every mark")
	require.True(t, last.Oldest.IsZero(), "after the flush nothing is held: %s", last.Oldest)
	require.Equal(t, 1, flushedBefore[len(clears)-1], "the visit was flushed before the clear that lets its minutes close")
	require.Equal(t, "sensors", last.Pipeline)
}
