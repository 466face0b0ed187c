package app_test

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/confluentinc/confluent-kafka-go/v2/kafka"
	"github.com/stretchr/testify/require"
	enumspb "go.temporal.io/api/enums/v1"
	historypb "go.temporal.io/api/history/v1"
	"go.temporal.io/sdk/worker"

	"github.com/tributary-dev/tributary/internal/app"
	"github.com/tributary-dev/tributary/internal/joinsim"
	"github.com/tributary-dev/tributary/internal/kafkaio"
	"github.com/tributary-dev/tributary/internal/testenv"
	"github.com/tributary-dev/tributary/internal/txsim"
	"github.com/tributary-dev/tributary/pipelines"
	"github.com/tributary-dev/tributary/schemas"
	"github.com/tributary-dev/tributary/travel"
	"github.com/tributary-dev/tributary/workflows"
)

var updateHistories = flag.Bool("update-histories", false, "write the recorded histories to workflows/testdata")

// TestRecordedHistoriesReplay runs the join in both modes, a simulation, the window
// pipelines and the sensors in both modes on the real server, exports their histories and replays them with the current code. With
// -update-histories it also writes them to workflows/testdata, where the workflows
// package replays them on every test run.
func TestRecordedHistoriesReplay(t *testing.T) {
	dir := t.TempDir()
	if *updateHistories {
		dir = filepath.Join("..", "..", "workflows", "testdata")
	}
	var files []string
	record := func(t *testing.T, env *testenv.Env, name, workflowID, runID string) *historypb.History {
		h := testenv.History(t, env.Deps.Temporal, workflowID, runID)
		path := filepath.Join(dir, name+".json")
		testenv.WriteHistory(t, h, path)
		files = append(files, path)
		requireNoVersionMarkers(t, h)
		return h
	}

	t.Run("per-event", func(t *testing.T) {
		cfg := testenv.Config(t)
		cfg.Join.Deadline = 2 * time.Second
		env := testenv.Start(t, cfg)
		sendRows(t, env, "rec-complete", schemas.TopicJoin1, schemas.TopicJoin2, schemas.TopicJoin2, schemas.TopicJoin3)
		sendRows(t, env, "rec-incomplete", schemas.TopicJoin1, schemas.TopicJoin3)
		for _, id := range []string{"rec-complete", "rec-incomplete"} {
			waitClosed(t, env, workflows.JoinWorkflowID(id, 0))
			record(t, env, "join_"+id[4:], workflows.JoinWorkflowID(id, 0), "")
		}
	})

	t.Run("sharded", func(t *testing.T) {
		cfg := testenv.Config(t)
		cfg.Join.Shards = 1
		cfg.Join.ShardHistory = 60
		cfg.Join.Deadline = 2 * time.Second
		env := testenv.Start(t, cfg)
		shard := workflows.JoinShardID(0)
		// One event at a time, each finished before the next, so each costs the shard an
		// update and a local activity, and the history passes its limit.
		for i := range 30 {
			sendRows(t, env, fmt.Sprintf("shard-%d", i), schemas.JoinTopics...)
			require.Eventually(t, func() bool {
				st, err := shardStatus(env, shard)
				return err == nil && st.Stats.Complete == int64(i+1)
			}, 30*time.Second, testenv.Poll, "shard to finish an event")
		}
		sendRows(t, env, "shard-half", schemas.TopicJoin2)
		// Wait for the second run (the first continued as new) to finish every event.
		require.Eventually(t, func() bool {
			d, err := env.Deps.Temporal.DescribeWorkflowExecution(context.Background(), shard, "")
			if err != nil {
				return false
			}
			st, err := shardStatus(env, shard)
			return err == nil && d.WorkflowExecutionInfo.GetExecution().GetRunId() != d.WorkflowExecutionInfo.GetFirstRunId() &&
				st.Pending == 0 && st.Stats.Complete+st.Stats.Incomplete == 31
		}, time.Minute, testenv.Poll, "shard to continue as new and finish every event")
		h := record(t, env, "join_shard_run2", shard, "")
		first := h.Events[0].GetWorkflowExecutionStartedEventAttributes().GetContinuedExecutionRunId()
		if first == "" {
			t.Fatal("second shard run does not name the run it continued")
		}
		h1 := record(t, env, "join_shard_run1", shard, first)
		last := h1.Events[len(h1.Events)-1]
		if last.GetEventType() != enumspb.EVENT_TYPE_WORKFLOW_EXECUTION_CONTINUED_AS_NEW {
			t.Fatalf("first shard run ended with %s, want continued-as-new", last.GetEventType())
		}
		// The second run is still open: replaying it checks the part recorded so far.
	})

	t.Run("simulation", func(t *testing.T) {
		cfg := testenv.Config(t)
		cfg.Join.Shards = 2
		cfg.Join.Deadline = 2 * time.Second
		env := testenv.Start(t, cfg)
		plan := joinsim.Plan{RunID: "recsim", Events: 300, Seed: 3, MissingFraction: 0.05, DuplicateFraction: 0.05, MalformedFraction: 0.02}
		runSimulation(t, env, plan)
		record(t, env, "simulate_join", workflows.SimulationWorkflowID(schemas.PipelineJoin, plan.RunID), "")
	})

	t.Run("windows", func(t *testing.T) {
		cfg := testenv.Config(t)
		env := testenv.Start(t, cfg)
		ctx := context.Background()
		if err := txsim.Produce(ctx, env.Deps.Producer, "rec", 5, 3000, 1000, nil); err != nil {
			t.Fatal(err)
		}
		sendLike(t, env, "video-rec")
		require.Eventually(t, func() bool {
			v, err := txsim.Verify(ctx, cfg.KafkaBootstrap, env.Deps.DB, time.Now().Add(-2*time.Second), true)
			return err == nil && v.Records == 3000 && v.Open == 0 && len(v.Differences) == 0
		}, time.Minute, testenv.Poll, "transactions windows to close")
		record(t, env, "window_transactions", workflows.WindowWorkflowID(schemas.PipelineTransactions, pipelines.GlobalKey, 0), "")
		record(t, env, "window_likes", workflows.WindowWorkflowID(schemas.PipelineLikes, "video-rec", 0), "")
	})

	t.Run("window shard", func(t *testing.T) {
		cfg := testenv.Config(t)
		cfg.Windows.Shards = 1
		cfg.Windows.MaxUpdates = 4
		env := testenv.Start(t, cfg)
		ctx := context.Background()
		shard := workflows.WindowShardID(schemas.PipelineLikes, 0)
		// One like at a time, each accepted before the next: one update each, so the
		// shard continues as new after four.
		for i := range 6 {
			sendLike(t, env, fmt.Sprintf("video-%d", i))
			require.Eventually(t, func() bool {
				v, err := env.Deps.Temporal.QueryWorkflow(ctx, shard, "", workflows.QueryStatus)
				if err != nil {
					return false
				}
				var st workflows.WindowStatus
				return v.Get(&st) == nil && st.Stats.Records >= int64(3*(i+1))
			}, 30*time.Second, testenv.Poll, "the shard to take the like")
		}
		h := record(t, env, "window_shard_run2", shard, "")
		first := h.Events[0].GetWorkflowExecutionStartedEventAttributes().GetContinuedExecutionRunId()
		if first == "" {
			t.Fatal("the window shard did not continue as new")
		}
		record(t, env, "window_shard_run1", shard, first)
	})

	t.Run("traveler", func(t *testing.T) {
		cfg := testenv.Config(t)
		cfg.Sensors.IdleGap = time.Second
		cfg.Sensors.Disorder = 500 * time.Millisecond
		cfg.SensorGrace = 2 * time.Second
		env := testenv.Start(t, cfg)
		rs := recordedTrip("rec-traveler", time.Now().Add(-3*time.Second))
		rs[5].X += 300 // an impossible jump, dead-lettered by the workflow
		sendReadings(t, env, rs...)
		waitClosed(t, env, workflows.TravelerWorkflowID("rec-traveler", 0))
		record(t, env, "traveler", workflows.TravelerWorkflowID("rec-traveler", 0), "")
		key := workflows.WindowWorkflowID(schemas.PipelineSensors, schemas.SensorKey("rec-sensor", "car"), 0)
		require.Eventually(t, func() bool {
			v, err := env.Deps.Temporal.QueryWorkflow(context.Background(), key, "", workflows.QueryStatus)
			var st workflows.WindowStatus
			return err == nil && v.Get(&st) == nil && st.Stats.Closed > 0 && st.Open == 0
		}, time.Minute, testenv.Poll, "the sensor minutes to close")
		record(t, env, "window_sensors", key, "")
	})

	t.Run("traveler shard", func(t *testing.T) {
		cfg := testenv.Config(t)
		cfg.Sensors.Shards = 1
		cfg.Sensors.ShardHistory = 40
		cfg.Sensors.IdleGap = time.Second
		cfg.Sensors.Disorder = 500 * time.Millisecond
		env := testenv.Start(t, cfg)
		shard := workflows.TravelerShardID(0)
		// Travelers one after another, each sent in two signals: the shard's history passes
		// its limit and it continues as new with travelers still followed.
		for i := range 8 {
			rs := recordedTrip(fmt.Sprintf("rec-shard-%d", i), time.Now().Add(-3*time.Second))
			sendReadings(t, env, rs[:5]...)
			sendReadings(t, env, rs[5:]...)
			require.Eventually(t, func() bool {
				v, err := env.Deps.Temporal.QueryWorkflow(context.Background(), shard, "", workflows.QueryStatus)
				var st workflows.TravelerStatus
				return err == nil && v.Get(&st) == nil && st.Stats.Readings+st.Stats.Redelivered >= int64(len(rs)*(i+1))
			}, 30*time.Second, testenv.Poll, "the shard to take the readings")
		}
		require.Eventually(t, func() bool {
			d, err := env.Deps.Temporal.DescribeWorkflowExecution(context.Background(), shard, "")
			if err != nil || d.WorkflowExecutionInfo.GetExecution().GetRunId() == d.WorkflowExecutionInfo.GetFirstRunId() {
				return false
			}
			var n int64
			env.Deps.DB.Model(&schemas.Visit{}).Count(&n)
			// The second run's first workflow task completed too (four events): a history
			// that is only its start and a scheduled task cannot be replayed (seen on a
			// loaded machine).
			return n == 8 && historyLen(env, shard, 4) >= 4
		}, time.Minute, testenv.Poll, "the shard to continue as new, store every visit and run its first task")
		h := record(t, env, "traveler_shard_run2", shard, "")
		first := h.Events[0].GetWorkflowExecutionStartedEventAttributes().GetContinuedExecutionRunId()
		if first == "" {
			t.Fatal("the traveler shard did not continue as new")
		}
		record(t, env, "traveler_shard_run1", shard, first)
	})

	replayer := worker.NewWorkflowReplayer()
	app.RegisterWorkflows(replayer)
	for _, f := range files {
		if err := replayer.ReplayWorkflowHistoryFromJSONFile(nil, f); err != nil {
			t.Errorf("replay %s: %v", filepath.Base(f), err)
		}
	}
}

// historyLen counts the current run's history events, up to enough.
func historyLen(env *testenv.Env, workflowID string, enough int) int {
	iter := env.Deps.Temporal.GetWorkflowHistory(context.Background(), workflowID, "", false, enumspb.HISTORY_EVENT_FILTER_TYPE_ALL_EVENT)
	n := 0
	for n < enough && iter.HasNext() {
		if _, err := iter.Next(); err != nil {
			return n
		}
		n++
	}
	return n
}

// recordedTrip is a car crossing rec-sensor at 12 m/s, a reading every 200 ms from start.
func recordedTrip(traveler string, start time.Time) []travel.Reading {
	var rs []travel.Reading
	for i := range 10 {
		rs = append(rs, travel.Reading{SensorID: "rec-sensor", TravelerID: traveler, Type: "car", X: 2.4 * float64(i), Y: 1,
			At: start.Add(time.Duration(i) * 200 * time.Millisecond).UTC().Truncate(time.Millisecond)})
	}
	return rs
}

func sendReadings(t *testing.T, env *testenv.Env, rs ...travel.Reading) {
	t.Helper()
	var msgs []*kafka.Message
	for _, r := range rs {
		b, err := json.Marshal(schemas.NewSensorReading(r))
		if err != nil {
			t.Fatal(err)
		}
		msgs = append(msgs, kafkaio.Message(schemas.TopicSensorReadings, []byte(r.TravelerID), b))
	}
	if err := env.Deps.Producer.Send(context.Background(), msgs...); err != nil {
		t.Fatal(err)
	}
}

// requireNoVersionMarkers checks that a run started with pinned versions (by a bridge, or
// by continue-as-new) recorded no version marker and upserted no search attribute: a
// per-event join's history is its start, its signals, its workflow tasks, its finish and
// its end.
func requireNoVersionMarkers(t *testing.T, h *historypb.History) {
	t.Helper()
	for _, e := range h.GetEvents() {
		if m := e.GetMarkerRecordedEventAttributes(); m != nil {
			require.NotEqual(t, "Version", m.GetMarkerName(), "event %d: a version marker in a pinned run", e.GetEventId())
		}
		require.NotEqual(t, enumspb.EVENT_TYPE_UPSERT_WORKFLOW_SEARCH_ATTRIBUTES, e.GetEventType(), "event %d: a search attribute upserted in a pinned run", e.GetEventId())
	}
}

// sendRows produces one row per topic given (a topic given twice sends a duplicate).
func sendRows(t *testing.T, env *testenv.Env, id string, topics ...string) {
	t.Helper()
	for _, topic := range topics {
		v := joinsim.Row(id, []byte(`{"feature1":1,"feature2":null}`), time.Now().UTC())
		if err := env.Deps.Producer.Send(context.Background(), kafkaio.Message(topic, []byte(id), v)); err != nil {
			t.Fatal(err)
		}
	}
}

func shardStatus(env *testenv.Env, id string) (workflows.JoinStatus, error) {
	var st workflows.JoinStatus
	v, err := env.Deps.Temporal.QueryWorkflow(context.Background(), id, "", workflows.QueryStatus)
	if err != nil {
		return st, err
	}
	return st, v.Get(&st)
}

func waitClosed(t *testing.T, env *testenv.Env, workflowID string) {
	t.Helper()
	require.Eventually(t, func() bool {
		d, err := env.Deps.Temporal.DescribeWorkflowExecution(context.Background(), workflowID, "")
		return err == nil && d.WorkflowExecutionInfo.GetStatus() == enumspb.WORKFLOW_EXECUTION_STATUS_COMPLETED
	}, time.Minute, testenv.Poll, workflowID+" to close")
}

func TestMain(m *testing.M) {
	flag.Parse()
	os.Exit(m.Run())
}

// sendLike puts one like of a video on the likes topic, now.
func sendLike(t *testing.T, env *testenv.Env, video string) {
	t.Helper()
	key, value, err := schemas.LikeRecord(video, time.Now())
	if err == nil {
		err = env.Deps.Producer.Send(context.Background(), kafkaio.Message(schemas.TopicLikes, key, value))
	}
	if err != nil {
		t.Fatal(err)
	}
}
