package app_test

import (
	"context"
	"testing"
	"time"

	"github.com/confluentinc/confluent-kafka-go/v2/kafka"

	"github.com/tributary-dev/tributary/internal/app"
	"github.com/tributary-dev/tributary/internal/bridge"
	"github.com/tributary-dev/tributary/internal/joinsim"
	"github.com/tributary-dev/tributary/internal/kafkaio"
	"github.com/tributary-dev/tributary/internal/testenv"
	"github.com/tributary-dev/tributary/internal/txsim"
	"github.com/tributary-dev/tributary/schemas"
	"github.com/tributary-dev/tributary/workflows"
)

// TestTransactionsExactlyOnce sends 100,000 transactions through the embedded stack and
// checks every closed 3-second window against a computation from the topic. Then it
// rewinds the bridge into the middle of what it delivered (nothing may change), and then
// ends the window workflow and rewinds again, so a fresh run meets records of windows that
// are already final: still nothing changes, and the replayed records are counted late.
func TestTransactionsExactlyOnce(t *testing.T) {
	cfg := testenv.Config(t)
	env := testenv.Start(t, cfg)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	n := 100000
	if testing.Short() {
		n = 20000
	}
	if err := txsim.Produce(ctx, env.Deps.Producer, "tx", 11, n, 20000, nil); err != nil {
		t.Fatal(err)
	}
	verified := waitVerified(t, env, n, true)
	t.Logf("first pass: %+v", verified)
	if verified.Late != 0 {
		t.Errorf("%d records late on the first pass", verified.Late)
	}
	rows := windowRows(t, env)

	group := bridge.GroupID(schemas.PipelineTransactions)
	rewindTo := func(frac float64) {
		env.StopRoles(t)
		parts, err := kafkaio.GroupOffsets(ctx, cfg.KafkaBootstrap, group, schemas.TopicTransactions)
		if err != nil {
			t.Fatal(err)
		}
		for i := range parts {
			parts[i].Offset = kafkaOffset(int64(float64(parts[i].Offset) * frac))
		}
		if err := kafkaio.SetGroupOffsets(ctx, cfg.KafkaBootstrap, group, parts); err != nil {
			t.Fatal(err)
		}
		env.RunRoles(t, app.Roles{Worker: true, Bridge: true})
		waitGroupCaughtUp(t, cfg.KafkaBootstrap, group, schemas.TopicTransactions)
	}

	// A rewind into the middle of earlier batches: the workflow's applied offsets turn the
	// redelivery away before it reaches a window.
	rewindTo(0.5)
	again := waitVerified(t, env, n, true)
	if again.Late != 0 {
		t.Errorf("the rewind produced %d late records; the offsets should have stopped it", again.Late)
	}
	sameRows(t, rows, windowRows(t, env))

	// A fresh run of the window workflow knows no offsets: the replayed records reach
	// windows, which are already final, so they are late and the rows stay as they were.
	id := workflows.WindowIDPrefix + schemas.PipelineTransactions + "/all"
	if err := env.Deps.Temporal.TerminateWorkflow(ctx, id, "", "test: start the key from scratch"); err != nil {
		t.Fatal(err)
	}
	rewindTo(0.7)
	fresh := waitVerified(t, env, n, false)
	if fresh.Late == 0 {
		t.Error("replayed records into a fresh run were not counted late")
	}
	sameRows(t, rows, windowRows(t, env))
	t.Logf("after a fresh run and a rewind: %+v", fresh)
}

func kafkaOffset(o int64) kafka.Offset { return kafka.Offset(o) }

// waitVerified waits until the windows of all n transactions are closed and match.
func waitVerified(t *testing.T, env *testenv.Env, n int, excludeLate bool) txsim.Verification {
	t.Helper()
	var v txsim.Verification
	var err error
	defer func() {
		if t.Failed() {
			t.Logf("last verification: %+v, err %v", v, err)
		}
	}()
	testenv.Eventually(t, 3*time.Minute, "every transactions window closed and equal to the recomputation", func() bool {
		v, err = txsim.Verify(context.Background(), env.Config.KafkaBootstrap, env.Deps.DB, time.Now().Add(-2*time.Second), excludeLate)
		return err == nil && v.Records >= n && v.Open == 0 && len(v.Differences) == 0 && v.Windows > 0
	})
	return v
}

func windowRows(t *testing.T, env *testenv.Env) map[string]schemas.WindowResult {
	t.Helper()
	var rows []schemas.WindowResult
	if err := env.Deps.DB.Where("pipeline = ?", schemas.PipelineTransactions).Find(&rows).Error; err != nil {
		t.Fatal(err)
	}
	out := map[string]schemas.WindowResult{}
	for _, r := range rows {
		out[r.WindowStart.UTC().Format(time.RFC3339)] = r
	}
	return out
}

func sameRows(t *testing.T, before, after map[string]schemas.WindowResult) {
	t.Helper()
	if len(before) != len(after) {
		t.Errorf("%d window rows before, %d after", len(before), len(after))
	}
	for k, b := range before {
		a := after[k]
		if a.Count != b.Count || a.Sum != b.Sum || a.Writer != b.Writer || !a.ClosedAt.Equal(b.ClosedAt) {
			t.Errorf("window %s changed: %+v -> %+v", k, b, a)
		}
	}
}

func waitGroupCaughtUp(t *testing.T, bootstrap, group, topic string) {
	t.Helper()
	end, err := joinsim.EndOffsets(bootstrap, []string{topic})
	if err != nil {
		t.Fatal(err)
	}
	testenv.Eventually(t, 2*time.Minute, group+" to commit the end of "+topic, func() bool {
		parts, err := kafkaio.GroupOffsets(context.Background(), bootstrap, group, topic)
		if err != nil {
			return false
		}
		for _, p := range parts {
			if int64(p.Offset) < end[topic][p.Partition] {
				return false
			}
		}
		return true
	})
}
