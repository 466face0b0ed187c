package app_test

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/confluentinc/confluent-kafka-go/v2/kafka"
	"github.com/stretchr/testify/require"
	"go.temporal.io/sdk/client"

	"github.com/tributary-dev/tributary/activities"
	"github.com/tributary-dev/tributary/bridge"
	"github.com/tributary-dev/tributary/internal/app"
	"github.com/tributary-dev/tributary/internal/joinsim"
	"github.com/tributary-dev/tributary/internal/kafkaio"
	"github.com/tributary-dev/tributary/internal/testenv"
	"github.com/tributary-dev/tributary/schemas"
	"github.com/tributary-dev/tributary/workflows"
)

// TestJoinEndToEnd sends 2,000 events with missing, repeated and malformed rows through the
// real broker and Temporal server, in both modes, and checks that the ack topic, read by a
// consumer of its own, and the database agree exactly with what was sent. Then it rewinds
// the bridge's committed offsets to the start and shows the redelivery changes nothing.
func TestJoinEndToEnd(t *testing.T) {
	for _, c := range []struct {
		shards   int
		database string
	}{{0, "sqlite"}, {4, "sqlite"}, {4, "postgres"}} {
		shards := c.shards
		t.Run(fmt.Sprintf("shards=%d/%s", shards, c.database), func(t *testing.T) {
			cfg := databaseConfig(t, c.database)
			cfg.Join.Shards = shards
			cfg.Join.Deadline = 3 * time.Second
			env := testenv.Start(t, cfg)
			plan := joinsim.Plan{RunID: fmt.Sprintf("e2e%d", shards), Events: 2000, Seed: 42,
				MissingFraction: 0.05, DuplicateFraction: 0.03, MalformedFraction: 0.01, NAFraction: 0.05}
			exp := plan.Expected()

			res := runSimulation(t, env, plan)
			if res.Report.Acked != exp.Complete || res.Report.Incomplete != exp.Incomplete ||
				res.Report.DeadLettered != exp.Malformed || res.Report.AckRecords != plan.Events {
				t.Fatalf("report %+v, want %+v and %d ack records", res.Report, exp, plan.Events)
			}
			if got := res.Duplicates(); got != int64(exp.Duplicates) {
				t.Errorf("duplicates recognised %d, want %d", got, exp.Duplicates)
			}
			acks := readAcks(t, cfg.KafkaBootstrap, plan.RunID)
			late := lateByEvent(t, env) // before the rewind, whose redelivered rows are late too
			checkAcks(t, plan, acks, late)
			checkDatabase(t, env, plan)

			// Rewind: the bridge stops, its group goes back to offset 0 on every input
			// partition, and it starts again. Every record is delivered a second time.
			env.StopRoles(t)
			rewind(t, cfg.KafkaBootstrap)
			env.RunRoles(t, app.Roles{Worker: true, Bridge: true})
			waitCaughtUp(t, cfg.KafkaBootstrap)
			waitRedeliveryRecognised(t, env, shards, plan)
			checkAcks(t, plan, readAcks(t, cfg.KafkaBootstrap, plan.RunID), late)
			checkDatabase(t, env, plan)
			checkDeadLettersOnce(t, env, plan, exp.Malformed)
		})
	}
}

// checkDeadLettersOnce shows that the malformed rows, delivered twice, were dead-lettered
// once: one outbox row and one dead_letters row each, and one record each on the
// dead-letter topics.
func checkDeadLettersOnce(t *testing.T, env *testenv.Env, plan joinsim.Plan, want int) {
	t.Helper()
	var rows int64
	require.NoError(t, env.Deps.DB.Model(&schemas.OutboxRecord{}).
		Where("topic LIKE ? AND key LIKE ?", "%.dlq", plan.RunID+"%").Count(&rows).Error)
	require.Equal(t, int64(want), rows, "outbox rows of dead letters after the redelivery")
	var recorded int64
	require.NoError(t, env.Deps.DB.Model(&schemas.DeadLetter{}).
		Where("pipeline = ? AND key LIKE ?", schemas.PipelineJoin, plan.RunID+"%").Count(&recorded).Error)
	require.Equal(t, int64(want), recorded, "dead letters recorded after the redelivery")
	n := 0
	for _, topic := range schemas.JoinTopics {
		n += countRecords(t, env.Config.KafkaBootstrap, kafkaio.DLQTopic(topic), func(m *kafka.Message) bool {
			return strings.HasPrefix(string(m.Key), plan.RunID)
		})
	}
	require.Equal(t, want, n, "dead letters on the topics after the redelivery")
}

// countRecords counts the committed records of a topic that keep accepts. Records are
// read, not inferred from offsets: the outbox relay's commit markers take offsets too.
func countRecords(t *testing.T, bootstrap, topic string, keep func(*kafka.Message) bool) int {
	t.Helper()
	n := 0
	err := kafkaio.ReadTopic(context.Background(), bootstrap, topic, func(m *kafka.Message) error {
		if keep(m) {
			n++
		}
		return nil
	})
	require.NoError(t, err)
	return n
}

// runSimulation runs a join simulation to its report. The bounds are generous: the
// per-event mode runs at the embedded server's rate of workflow starts (about 30 a second
// here, far less while other test packages load the machine; one make test run needed
// more than three minutes for its 2,000 events).
func runSimulation(t *testing.T, env *testenv.Env, plan joinsim.Plan) workflows.SimulationProgress {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 8*time.Minute)
	defer cancel()
	run, err := env.Deps.Temporal.ExecuteWorkflow(ctx,
		client.StartWorkflowOptions{ID: workflows.SimulationWorkflowID(schemas.PipelineJoin, plan.RunID), TaskQueue: workflows.TaskQueue},
		workflows.SimulateJoinWorkflow,
		workflows.SimulateJoinParams{Sim: activities.JoinSimulation{Plan: plan}, Concurrency: 2, ResultTimeout: 6 * time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	var res workflows.SimulationProgress
	if err := run.Get(ctx, &res); err != nil {
		t.Fatal(err)
	}
	return res
}

// readAcks reads the whole ack topic with a consumer of its own and returns every ack of the run.
func readAcks(t *testing.T, bootstrap, runID string) []schemas.Ack {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	var acks []schemas.Ack
	err := kafkaio.ReadTopic(ctx, bootstrap, schemas.TopicAck, func(m *kafka.Message) error {
		var a schemas.Ack
		if err := json.Unmarshal(m.Value, &a); err != nil {
			return fmt.Errorf("ack %s: %w", m.TopicPartition, err)
		}
		if string(m.Key) != a.EventID {
			t.Errorf("ack key %q, event id %q", m.Key, a.EventID)
		}
		if strings.HasPrefix(a.EventID, runID+"-") {
			acks = append(acks, a)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return acks
}

// lateByEvent counts the join's late rows per event id.
func lateByEvent(t *testing.T, env *testenv.Env) map[string]int {
	t.Helper()
	var rows []schemas.LateRecord
	if err := env.Deps.DB.Where("pipeline = ?", schemas.PipelineJoin).Find(&rows).Error; err != nil {
		t.Fatal(err)
	}
	late := map[string]int{}
	for _, r := range rows {
		late[r.Key]++
	}
	return late
}

// checkAcks: every event acked exactly once, with the status its rows call for, and each
// repeated row recognised once: counted in the ack when it came before the event was final,
// recorded late (late[event id]) when it came after. The simulator sends a repeat after the
// event's rows, and whether the bridge delivers it in the same batch as the row that
// completes the event depends on where its batches are cut.
func checkAcks(t *testing.T, plan joinsim.Plan, acks []schemas.Ack, late map[string]int) {
	t.Helper()
	byID := map[string]schemas.Ack{}
	for _, a := range acks {
		if _, twice := byID[a.EventID]; twice {
			t.Errorf("event %s acked twice", a.EventID)
		}
		byID[a.EventID] = a
	}
	for n := range plan.Events {
		ev := plan.Generate(n)
		a, ok := byID[ev.ID]
		if !ok {
			t.Errorf("event %s has no ack", ev.ID)
			continue
		}
		want := schemas.JoinIncomplete
		if ev.Complete() {
			want = schemas.JoinComplete
		}
		if a.Status != want || len(a.Arrivals) != len(ev.Rows) || a.Duplicates+late[ev.ID] != len(ev.Duplicated) {
			t.Errorf("event %s: ack %+v and %d late rows, want status %s with %d arrivals and %d duplicates in the ack or late",
				ev.ID, a, late[ev.ID], want, len(ev.Rows), len(ev.Duplicated))
		}
	}
	if len(byID) != plan.Events {
		t.Errorf("%d acked ids, want %d", len(byID), plan.Events)
	}
}

// checkDatabase: one joined row per event with the right status, and each topic's rows in its table.
func checkDatabase(t *testing.T, env *testenv.Env, plan joinsim.Plan) {
	t.Helper()
	var joined []schemas.JoinedEvent
	if err := env.Deps.DB.Where("event_id LIKE ?", plan.RunID+"-%").Find(&joined).Error; err != nil {
		t.Fatal(err)
	}
	status := map[string]string{}
	for _, j := range joined {
		status[j.EventID] = j.Status
	}
	rows := map[string]int{}
	for n := range plan.Events {
		ev := plan.Generate(n)
		want := schemas.JoinIncomplete
		if ev.Complete() {
			want = schemas.JoinComplete
		}
		if status[ev.ID] != want {
			t.Errorf("event %s stored as %q, want %q", ev.ID, status[ev.ID], want)
		}
		for topic := range ev.Rows {
			rows[schemas.JoinTables[topic]]++
		}
	}
	if len(joined) != plan.Events {
		t.Errorf("%d joined rows, want %d", len(joined), plan.Events)
	}
	for table, want := range rows {
		var got int64
		if err := env.Deps.DB.Table(table).Where("event_id LIKE ?", plan.RunID+"-%").Count(&got).Error; err != nil {
			t.Fatal(err)
		}
		if got != int64(want) {
			t.Errorf("table %s has %d rows of the run, want %d", table, got, want)
		}
	}
}

func rewind(t *testing.T, bootstrap string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	parts, err := kafkaio.GroupOffsets(ctx, bootstrap, bridge.GroupID(schemas.PipelineJoin), schemas.JoinTopics...)
	if err != nil {
		t.Fatal(err)
	}
	for i := range parts {
		parts[i].Offset = 0
	}
	if err := kafkaio.SetGroupOffsets(ctx, bootstrap, bridge.GroupID(schemas.PipelineJoin), parts); err != nil {
		t.Fatal(err)
	}
}

// waitCaughtUp waits until the bridge committed the end of every input partition.
func waitCaughtUp(t *testing.T, bootstrap string) {
	t.Helper()
	end, err := joinsim.EndOffsets(bootstrap, schemas.JoinTopics)
	if err != nil {
		t.Fatal(err)
	}
	require.Eventually(t, func() bool {
		parts, err := kafkaio.GroupOffsets(context.Background(), bootstrap, bridge.GroupID(schemas.PipelineJoin), schemas.JoinTopics...)
		if err != nil {
			return false
		}
		for _, p := range parts {
			if int64(p.Offset) < end[*p.Topic][p.Partition] {
				return false
			}
		}
		return true
	}, 2*time.Minute, testenv.Poll, "bridge to commit the end of its input")
}

// waitRedeliveryRecognised waits until the workflows have seen every redelivered record: a
// per-event workflow is closed, so the bridge records as late each row its event did not
// store, and every row is then stored or late, once; a shard drops each by its applied
// offset.
func waitRedeliveryRecognised(t *testing.T, env *testenv.Env, shards int, plan joinsim.Plan) {
	t.Helper()
	valid := 0
	for n := range plan.Events {
		ev := plan.Generate(n)
		valid += len(ev.Rows) + len(ev.Duplicated)
	}
	require.Eventually(t, func() bool {
		if shards == 0 {
			var late, stored int64
			env.Deps.DB.Model(&schemas.LateRecord{}).Where("key LIKE ?", plan.RunID+"-%").Count(&late)
			for _, table := range schemas.JoinTables {
				var n int64
				env.Deps.DB.Table(table).Where("event_id LIKE ?", plan.RunID+"-%").Count(&n)
				stored += n
			}
			return late+stored == int64(valid)
		}
		var redelivered int64
		for s := range shards {
			v, err := env.Deps.Temporal.QueryWorkflow(context.Background(), workflows.JoinShardID(s), "", workflows.QueryStatus)
			if err != nil {
				return false
			}
			var st workflows.JoinStatus
			if err := v.Get(&st); err != nil {
				return false
			}
			redelivered += st.Stats.Redelivered
		}
		return redelivered == int64(valid)
	}, 2*time.Minute, testenv.Poll, "redelivered records to be recognised")
}
