package app_test

import (
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/confluentinc/confluent-kafka-go/v2/kafka"
	"github.com/stretchr/testify/require"

	"github.com/tributary-dev/tributary/bridge"
	"github.com/tributary-dev/tributary/internal/app"
	"github.com/tributary-dev/tributary/internal/config"
	"github.com/tributary-dev/tributary/internal/joinsim"
	"github.com/tributary-dev/tributary/internal/kafkaio"
	"github.com/tributary-dev/tributary/internal/testenv"
	"github.com/tributary-dev/tributary/internal/txsim"
	"github.com/tributary-dev/tributary/pipelines"
	"github.com/tributary-dev/tributary/schemas"
	"github.com/tributary-dev/tributary/window"
	"github.com/tributary-dev/tributary/workflows"
)

// TestTransactionsExactlyOnce sends 100,000 transactions through the embedded stack and
// checks every closed 3-second window against a computation from the topic. Then it
// rewinds the bridge into the middle of what it delivered (nothing may change), and then
// ends the window workflow and rewinds again, so a fresh run meets records of windows that
// are already final: still nothing changes, and the replayed records are counted late.
func TestTransactionsExactlyOnce(t *testing.T) {
	forEachDatabase(t, testTransactionsExactlyOnce)
}

func testTransactionsExactlyOnce(t *testing.T, cfg config.Config) {
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
	rows := transactionRows(t, env)

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
	sameRows(t, rows, transactionRows(t, env))

	// A fresh run of the window workflow knows no offsets: the replayed records reach
	// windows, which are already final, so they are late and the rows stay as they were.
	id := workflows.WindowWorkflowID(schemas.PipelineTransactions, pipelines.GlobalKey, 0)
	if err := env.Deps.Temporal.TerminateWorkflow(ctx, id, "", "test: start the key from scratch"); err != nil {
		t.Fatal(err)
	}
	rewindTo(0.7)
	fresh := waitVerified(t, env, n, false)
	if fresh.Late == 0 {
		t.Error("replayed records into a fresh run were not counted late")
	}
	sameRows(t, rows, transactionRows(t, env))
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
	require.Eventually(t, func() bool {
		v, err = txsim.Verify(context.Background(), env.Config.KafkaBootstrap, env.Deps.DB, time.Now().Add(-2*time.Second), excludeLate)
		return err == nil && v.Records >= n && v.Open == 0 && len(v.Differences) == 0 && v.Windows > 0
	}, 3*time.Minute, testenv.Poll, "every transactions window closed and equal to the recomputation")
	return v
}

// windowRows reads a pipeline's window rows, keyed by keyOf.
func windowRows(t *testing.T, env *testenv.Env, pipeline string, keyOf func(schemas.WindowResult) string) map[string]schemas.WindowResult {
	t.Helper()
	var rows []schemas.WindowResult
	if err := env.Deps.DB.Where("pipeline = ?", pipeline).Find(&rows).Error; err != nil {
		t.Fatal(err)
	}
	out := map[string]schemas.WindowResult{}
	for _, r := range rows {
		out[keyOf(r)] = r
	}
	return out
}

// transactionRows are the transactions windows by their start.
func transactionRows(t *testing.T, env *testenv.Env) map[string]schemas.WindowResult {
	return windowRows(t, env, schemas.PipelineTransactions, func(r schemas.WindowResult) string { return r.WindowStart.UTC().Format(time.RFC3339) })
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
	require.Eventually(t, func() bool {
		parts, err := kafkaio.GroupOffsets(context.Background(), bootstrap, group, topic)
		if err != nil {
			return false
		}
		for _, p := range parts {
			// A partition that never held a record has nothing to commit.
			if e := end[topic][p.Partition]; e > 0 && int64(p.Offset) < e {
				return false
			}
		}
		return true
	}, 2*time.Minute, testenv.Poll, group+" to commit the end of "+topic)
}

// TestLikes sends likes for 100 videos and waits for their 1-minute windows to close: each
// video's row and its record on video_aggregations_1 hold exactly the likes sent.
func TestLikes(t *testing.T) {
	cfg := testenv.Config(t)
	env := testenv.Start(t, cfg)
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	want := map[string]int64{} // "video|window start" -> likes
	var msgs []*kafka.Message
	rng := rand.New(rand.NewPCG(3, 0))
	zipf := rand.NewZipf(rng, 1.3, 1, 99)
	minute := window.Spec{Size: time.Minute}
	for range 3000 {
		video, at := fmt.Sprintf("video-%d", zipf.Uint64()), time.Now().UTC()
		key, value, err := schemas.LikeRecord(video, at)
		if err != nil {
			t.Fatal(err)
		}
		msgs = append(msgs, kafkaio.Message(schemas.TopicLikes, key, value))
		want[video+"|"+minute.Starts(at)[0].Format(time.RFC3339)]++
	}
	msgs = append(msgs, kafkaio.Message(schemas.TopicLikes, []byte("video-x"), []byte(`{"v":1,"video_id":"video-x"}`)))
	if err := env.Deps.Producer.Send(ctx, msgs...); err != nil {
		t.Fatal(err)
	}
	// Likes also come in over HTTP, as the original system's endpoint took them.
	api := "http://" + env.Running.APIAddress
	for n := 1; n <= 5; n++ {
		var res struct {
			Accepted int       `json:"accepted"`
			At       time.Time `json:"at"`
		}
		resp, err := http.Post(api+"/videos/video-http/likes", "application/json", strings.NewReader(fmt.Sprintf(`{"count":%d}`, n)))
		if err != nil {
			t.Fatal(err)
		}
		err = json.NewDecoder(resp.Body).Decode(&res)
		resp.Body.Close()
		if err != nil || resp.StatusCode != http.StatusAccepted || res.Accepted != n {
			t.Fatalf("POST likes: %d %+v %v", resp.StatusCode, res, err)
		}
		want["video-http|"+minute.Starts(res.At)[0].Format(time.RFC3339)] += int64(n)
	}
	got := map[string]int64{}
	require.Eventually(t, func() bool {
		var rows []schemas.WindowResult
		if err := env.Deps.DB.Where("pipeline = ? AND size_seconds = 60", schemas.PipelineLikes).Find(&rows).Error; err != nil {
			return false
		}
		got = map[string]int64{}
		for _, r := range rows {
			got[r.Key+"|"+r.WindowStart.UTC().Format(time.RFC3339)] = r.Count
		}
		return len(got) >= len(want)
	}, 3*time.Minute, testenv.Poll, "every 1-minute likes window to close")
	for k, n := range want {
		if got[k] != n {
			t.Errorf("window %s: %d likes stored, %d sent", k, got[k], n)
		}
	}
	if len(got) != len(want) {
		t.Errorf("%d windows stored, %d expected", len(got), len(want))
	}
	// The API serves the HTTP-ingested video's windows.
	var rows struct {
		Windows []struct {
			Count int64     `json:"count"`
			Start time.Time `json:"start"`
		} `json:"windows"`
	}
	resp, err := http.Get(api + "/api/windows?pipeline=likes&size=60&key=video-http")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if err := json.NewDecoder(resp.Body).Decode(&rows); err != nil || len(rows.Windows) == 0 {
		t.Fatalf("GET windows of video-http: %v %+v", err, rows)
	}
	for _, w := range rows.Windows {
		if k := "video-http|" + w.Start.UTC().Format(time.RFC3339); w.Count != want[k] {
			t.Errorf("API window %s: %d likes, %d sent", k, w.Count, want[k])
		}
	}
	// The same counts went out on video_aggregations_1, one record per window.
	out := readWindowOutputs(t, cfg.KafkaBootstrap, schemas.LikesOutputTopics[time.Minute])
	for k, n := range want {
		if out[k] != n {
			t.Errorf("output %s: %d, want %d", k, out[k], n)
		}
	}
	// The malformed like went to the dead-letter topic, and nothing else stopped.
	dead := countRecords(t, cfg.KafkaBootstrap, kafkaio.DLQTopic(schemas.TopicLikes), func(*kafka.Message) bool { return true })
	if dead != 1 {
		t.Errorf("%d likes dead-lettered, want 1", dead)
	}
}

func readWindowOutputs(t *testing.T, bootstrap, topic string) map[string]int64 {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	out := map[string]int64{}
	err := kafkaio.ReadTopic(ctx, bootstrap, topic, func(m *kafka.Message) error {
		var o schemas.WindowOutput
		if err := json.Unmarshal(m.Value, &o); err != nil {
			return err
		}
		k := o.Key + "|" + o.WindowStart.UTC().Format(time.RFC3339)
		if _, twice := out[k]; twice {
			t.Errorf("window %s output twice", k)
		}
		out[k] = o.Count
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}
