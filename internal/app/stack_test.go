package app_test

import (
	"context"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/confluentinc/confluent-kafka-go/v2/kafka"
	"github.com/stretchr/testify/require"

	"github.com/tributary-dev/tributary/activities"
	"github.com/tributary-dev/tributary/bridge"
	"github.com/tributary-dev/tributary/internal/app"
	"github.com/tributary-dev/tributary/internal/badinput"
	"github.com/tributary-dev/tributary/internal/config"
	"github.com/tributary-dev/tributary/internal/joinsim"
	"github.com/tributary-dev/tributary/internal/kafkaio"
	"github.com/tributary-dev/tributary/internal/testenv"
	"github.com/tributary-dev/tributary/schemas"
	"github.com/tributary-dev/tributary/workflows"

	"go.temporal.io/sdk/client"
)

// TestRestartResumes stops the whole stack while an event waits for its third topic and
// starts it again on the same state directory: topics, committed offsets and the waiting
// workflow are all still there, and the event is acked once.
func TestRestartResumes(t *testing.T) {
	cfg := testenv.Config(t)
	cfg.Join.Deadline = 5 * time.Minute
	env := testenv.Start(t, cfg)
	sendRows(t, env, "restart-1", schemas.TopicJoin1, schemas.TopicJoin2)
	require.Eventually(t, func() bool {
		v, err := env.Deps.Temporal.QueryWorkflow(context.Background(), workflows.JoinWorkflowID("restart-1", 0), "", workflows.QueryStatus)
		if err != nil {
			return false
		}
		var st workflows.JoinStatus
		return v.Get(&st) == nil && len(st.Topics) == 2
	}, time.Minute, testenv.Poll, "the workflow to hold two topics")
	env.Close(t)

	env = testenv.Start(t, cfg)
	parts, err := kafkaio.GroupOffsets(context.Background(), cfg.KafkaBootstrap, bridge.GroupID(schemas.PipelineJoin), schemas.JoinTopics...)
	if err != nil {
		t.Fatal(err)
	}
	var committed int64
	for _, p := range parts {
		if p.Offset >= 0 {
			committed += int64(p.Offset)
		}
	}
	if committed != 2 {
		t.Errorf("committed offsets add up to %d after restart, want the 2 records sent", committed)
	}
	sendRows(t, env, "restart-1", schemas.TopicJoin3)
	waitClosed(t, env, workflows.JoinWorkflowID("restart-1", 0))
	// The relay sends the ack once it has its turn: at once after a clean stop (the last
	// relay gave its lease up), up to the lease's 6 s after a crash.
	var acks []schemas.Ack
	require.Eventually(t, func() bool {
		acks = readAcks(t, cfg.KafkaBootstrap, "restart")
		return len(acks) > 0
	}, time.Minute, testenv.Poll, "the ack relayed")
	if len(acks) != 1 || acks[0].Status != schemas.JoinComplete || len(acks[0].Arrivals) != 3 {
		t.Fatalf("acks after restart: %+v, want one complete ack", acks)
	}
}

// TestJoinFromFiles sends the shipped sample files (an XLSX and two CSVs shaped like the
// original's sim_file1..3), and the original files themselves when ../shared has them.
func TestJoinFromFiles(t *testing.T) {
	cfg := testenv.Config(t)
	env := testenv.Start(t, cfg)
	dirs := map[string]string{"samples": filepath.Join("..", "..", "samples", "join")}
	if orig := filepath.Join("..", "..", "..", "shared", "seeds", "genetika-data"); dirExists(orig) {
		dirs["original"] = orig
	} else {
		t.Log("the original sim_file1..3 are not beside the project; sending the samples only")
	}
	for name, dir := range dirs {
		fs, err := joinsim.LoadFiles(dir)
		if err != nil {
			t.Fatal(err)
		}
		want := joinsim.NewFileSource(name, fs)
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		run, err := env.Deps.Temporal.ExecuteWorkflow(ctx,
			client.StartWorkflowOptions{ID: workflows.SimulationWorkflowID(schemas.PipelineJoin, name), TaskQueue: workflows.TaskQueue},
			workflows.SimulateJoinWorkflow,
			workflows.SimulateJoinParams{Sim: activities.JoinSimulation{Plan: joinsim.Plan{RunID: name}, FromDir: dir}, Concurrency: 3, ResultTimeout: time.Minute})
		if err != nil {
			t.Fatal(err)
		}
		var res workflows.SimulationProgress
		err = run.Get(ctx, &res)
		cancel()
		if err != nil {
			t.Fatal(err)
		}
		complete := 0
		for n := range want.Len() {
			if want.Event(n).Complete() {
				complete++
			}
		}
		if res.Total != want.Len() || res.Report.Acked != complete || res.Report.Resolved() != want.Len() {
			t.Fatalf("%s: %d events, report %+v; want %d events, %d complete", name, res.Total, res.Report, want.Len(), complete)
		}
		// Each file's row is stored whole in its topic's table, NA as null.
		for i, topic := range schemas.JoinTopics {
			var row schemas.DataRow
			id := name + "-" + fs.Rows[i][0].ID
			if err := env.Deps.DB.Table(schemas.JoinTables[topic]).Where("event_id = ?", id).First(&row).Error; err != nil {
				t.Fatalf("%s: row %s of %s: %v", name, id, topic, err)
			}
			if row.Fields != string(fs.Rows[i][0].Fields) {
				t.Errorf("%s: stored %s, sent %s", name, row.Fields, fs.Rows[i][0].Fields)
			}
		}
		t.Logf("%s: %d events from %v, all resolved; ack p50 %s", name, res.Total, fs.Paths, res.Report.Delays.Quantile(0.5))
	}
}

func dirExists(p string) bool {
	st, err := os.Stat(p)
	return err == nil && st.IsDir()
}

// badInputTopics maps each pipeline of the bad-input corpus to the input topics its records
// are sent to.
var badInputTopics = map[string][]string{
	"join":         schemas.JoinTopics,
	"transactions": {schemas.TopicTransactions},
	"likes":        {schemas.TopicLikes},
	"sensors":      {schemas.TopicSensorReadings},
}

// badInputReasons are words each case's dead-letter reason must hold, where they say more
// than that the record was refused.
var badInputReasons = map[string]string{
	"oversized": "exceeds", "invalid-utf8": "UTF-8", "far-future": "in the future", "far-past": "before 1970",
	"key-differs": "differs", "unknown-version": "schema version", "huge-number": "range",
}

// TestBadInputCorpus sends the committed corpus of bad records (not JSON, wrong types,
// missing fields, unknown version, oversized, invalid UTF-8, NaN, infinities, huge numbers,
// times far in the past or future, key different from the id) to every input topic, keyed
// "bad-1", with good records after them. Every bad record lands on its topic's dead-letter
// topic with its reason, and every bridge moves past them: each group commits the end of
// its topics, and the good join event is acked.
func TestBadInputCorpus(t *testing.T) {
	cfg := testenv.Config(t)
	env := testenv.Start(t, cfg)
	ctx := context.Background()
	want := map[string]map[string]string{} // topic -> value -> case
	for pipeline, topics := range badInputTopics {
		recs, err := badinput.Records(pipeline)
		if err != nil || len(recs) < 10 {
			t.Fatalf("corpus %s: %d records, %v", pipeline, len(recs), err)
		}
		for _, topic := range topics {
			want[topic] = map[string]string{}
			for name, v := range recs {
				want[topic][string(v)] = name
				if err := env.Deps.Producer.Send(ctx, kafkaio.Message(topic, []byte(badinput.Key), v)); err != nil {
					t.Fatal(err)
				}
			}
		}
	}
	sendRows(t, env, "good-1", schemas.JoinTopics...)
	sendLike(t, env, "good-video")
	waitClosed(t, env, workflows.JoinWorkflowID("good-1", 0))

	for topic, cases := range want {
		got := map[string]string{}
		require.Eventually(t, func() bool {
			got = map[string]string{}
			err := kafkaio.ReadTopic(ctx, cfg.KafkaBootstrap, kafkaio.DLQTopic(topic), func(m *kafka.Message) error {
				if src := kafkaio.Header(m, kafkaio.HeaderSourceTopic); src != topic {
					return fmt.Errorf("dead letter on %s names source %q", kafkaio.DLQTopic(topic), src)
				}
				got[string(m.Value)] = kafkaio.Header(m, kafkaio.HeaderReason)
				return nil
			})
			return err == nil && len(got) >= len(cases)
		}, time.Minute, testenv.Poll, "the dead letters of "+topic)
		for v, name := range cases {
			reason, ok := got[v]
			switch {
			case !ok:
				t.Errorf("%s: %s was not dead-lettered", topic, name)
			case reason == "":
				t.Errorf("%s: %s was dead-lettered without a reason", topic, name)
			case badInputReasons[name] != "" && !strings.Contains(reason, badInputReasons[name]):
				t.Errorf("%s: %s dead-lettered for %q, want a reason with %q", topic, name, reason, badInputReasons[name])
			}
		}
		if len(got) != len(cases) {
			t.Errorf("%s: %d dead letters for %d bad records", topic, len(got), len(cases))
		}
	}
	for _, pipeline := range []string{schemas.PipelineTransactions, schemas.PipelineLikes, schemas.PipelineSensors} {
		topic := badInputTopics[pipeline][0]
		waitGroupCaughtUp(t, cfg.KafkaBootstrap, bridge.GroupID(pipeline), topic)
	}
}

// TestBusyPort: a port in use gives an error that names the flag to change.
func TestBusyPort(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	port := strconv.Itoa(l.Addr().(*net.TCPAddr).Port)
	for flagName, mutate := range map[string]func(c *config.Config){
		"-kafka":    func(c *config.Config) { c.KafkaBootstrap = "127.0.0.1:" + port },
		"-temporal": func(c *config.Config) { c.TemporalAddress = "127.0.0.1:" + port },
	} {
		cfg := testenv.Config(t)
		mutate(&cfg)
		_, err := app.StartStack(cfg, testenv.Logger(t), os.Stderr)
		if err == nil || !strings.Contains(err.Error(), flagName) || !strings.Contains(err.Error(), "busy") {
			t.Errorf("port taken for %s: error %v, want one naming the flag", flagName, err)
		}
	}
}
