package app_test

import (
	"context"
	"encoding/json"
	"fmt"
	"math"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/confluentinc/confluent-kafka-go/v2/kafka"
	"github.com/stretchr/testify/require"
	"go.temporal.io/api/enums/v1"

	"github.com/tributary-dev/tributary/bridge"
	"github.com/tributary-dev/tributary/internal/app"
	"github.com/tributary-dev/tributary/internal/config"
	"github.com/tributary-dev/tributary/internal/kafkaio"
	"github.com/tributary-dev/tributary/internal/sensorsim"
	"github.com/tributary-dev/tributary/internal/testenv"
	"github.com/tributary-dev/tributary/schemas"
	"github.com/tributary-dev/tributary/travel"
	"github.com/tributary-dev/tributary/workflows"
)

// sensorScenario is a small real-time traffic: pedestrians take about 10 s per view.
func sensorScenario(site string, legs int, cfgPause time.Duration, seed uint64) sensorsim.Scenario {
	return sensorsim.Scenario{Sensors: 3, Travelers: 40, Legs: legs, Pause: cfgPause, FieldOfView: 8, Every: 200 * time.Millisecond,
		Noise: 0.05, Jitter: 500 * time.Millisecond, Start: time.Now().Add(200 * time.Millisecond), Spread: 6 * time.Second,
		Bad: 0.25, Seed: seed, Run: site, Site: site}
}

// TestSensorsAgainstTrajectories sends simulated traffic through the embedded stack, first
// with one workflow per traveler, then with traveler shards, and compares every stored
// visit and every sensor minute with a computation from the generated trajectories; bad
// readings must be dead-lettered with their reason. Then the shards are ended and the
// bridge rewound to the start: the fresh runs learn from the stored visits, and nothing in
// the database changes.
func TestSensorsAgainstTrajectories(t *testing.T) {
	forEachDatabase(t, testSensorsAgainstTrajectories)
}

func testSensorsAgainstTrajectories(t *testing.T, cfg config.Config) {
	cfg.Sensors.Disorder = time.Second
	cfg.Sensors.IdleGap = 5 * time.Second // wall-clock too: generous, so a loaded machine does not split a visit
	cfg.SensorGrace = 30 * time.Second
	env := testenv.Start(t, cfg)
	ctx, cancel := context.WithTimeout(context.Background(), 6*time.Minute)
	defer cancel()
	pause := cfg.Sensors.IdleGap + cfg.Sensors.Disorder + time.Second

	var trips []sensorsim.Trip
	bad := map[string]int{}
	var delivered int64 // readings that pass the bridge's checks
	run := func(sc sensorsim.Scenario) {
		tr, deliveries := sc.Generate()
		if err := sensorsim.Produce(ctx, env.Deps.Producer, deliveries, true, nil); err != nil {
			t.Fatal(err)
		}
		for k, n := range sensorsim.Summarize(tr, deliveries).Bad {
			bad[k] += n
		}
		trips = append(trips, tr...)
		for _, d := range deliveries {
			if d.Bad == "" || d.Bad == sensorsim.BadJump {
				delivered++
			}
		}
		waitVisits(t, env, len(trips))
	}
	// While the first traveler crosses, the API answers its live visit from its workflow.
	api := "http://" + env.Running.APIAddress
	live := make(chan bool, 1)
	go func() {
		tick := time.NewTicker(100 * time.Millisecond)
		defer tick.Stop()
		deadline := time.After(20 * time.Second)
		for {
			var cur struct {
				Live bool `json:"live"`
				Open []struct {
					Readings int `json:"readings"`
				} `json:"open"`
			}
			if getJSON(api+"/api/travelers/a-traveler-0/current", &cur) == nil && cur.Live && len(cur.Open) == 1 && cur.Open[0].Readings > 1 {
				live <- true
				return
			}
			select {
			case <-tick.C:
			case <-deadline:
				live <- false
				return
			}
		}
	}()
	run(sensorScenario("a-", 2, pause, 1))
	if !<-live {
		t.Error("the API never showed a-traveler-0's live visit")
	}
	// The same code path, sharded.
	env.StopRoles(t)
	env.Deps.Config.Sensors.Shards = 4
	env.RunRoles(t, app.Roles{Worker: true, Bridge: true, API: true})
	run(sensorScenario("b-", 1, pause, 2))

	wantVisits, wantMinutes := sensorsim.Expected(trips)
	checkVisits(t, env, wantVisits)
	require.Eventually(t, func() bool {
		var n int64
		env.Deps.DB.Model(&schemas.WindowResult{}).Where("pipeline = ?", schemas.PipelineSensors).Count(&n)
		return int(n) >= len(wantMinutes)
	}, 3*time.Minute, testenv.Poll, "every sensor minute closed")
	rows := sensorRows(t, env)
	checkMinutes(t, rows, wantMinutes)
	checkMetricsAPI(t, api, wantMinutes)
	checkSensorDeadLetters(t, cfg.KafkaBootstrap, bad)

	// End the shards and replay the whole topic into fresh runs.
	env.StopRoles(t)
	for i := range 4 {
		id := workflows.TravelerShardID(i)
		d, err := env.Deps.Temporal.DescribeWorkflowExecution(ctx, id, "")
		if err == nil && d.WorkflowExecutionInfo.Status == enums.WORKFLOW_EXECUTION_STATUS_RUNNING {
			if err := env.Deps.Temporal.TerminateWorkflow(ctx, id, "", "test: start the shard from scratch"); err != nil {
				t.Fatal(err)
			}
		}
	}
	group := bridge.GroupID(schemas.PipelineSensors)
	parts, err := kafkaio.GroupOffsets(ctx, cfg.KafkaBootstrap, group, schemas.TopicSensorReadings)
	if err != nil {
		t.Fatal(err)
	}
	for i := range parts {
		parts[i].Offset = kafka.Offset(0)
	}
	if err := kafkaio.SetGroupOffsets(ctx, cfg.KafkaBootstrap, group, parts); err != nil {
		t.Fatal(err)
	}
	env.RunRoles(t, app.Roles{Worker: true, Bridge: true, API: true})
	waitGroupCaughtUp(t, cfg.KafkaBootstrap, group, schemas.TopicSensorReadings)
	// Every replayed reading reaches a fresh shard, which drops it below the stored visits'
	// ends; the travelers go quiet an idle gap later.
	require.Eventually(t, func() bool {
		var readings int64
		for i := range 4 {
			v, err := env.Deps.Temporal.QueryWorkflow(ctx, workflows.TravelerShardID(i), "", workflows.QueryStatus)
			if err != nil {
				return false
			}
			var st workflows.TravelerStatus
			if v.Get(&st) != nil || st.Following > 0 {
				return false
			}
			readings += st.Stats.Readings
		}
		return readings == delivered
	}, time.Minute, testenv.Poll, "the replay applied and every shard idle")
	checkVisits(t, env, wantVisits)
	after := sensorRows(t, env)
	if len(after) != len(rows) {
		t.Errorf("%d sensor minutes before the replay, %d after", len(rows), len(after))
	}
	for k, r := range rows {
		if a := after[k]; a.Count != r.Count || a.Sum != r.Sum || a.Writer != r.Writer {
			t.Errorf("sensor minute %s changed: %+v -> %+v", k, r, a)
		}
	}
	var late int64
	env.Deps.DB.Model(&schemas.LateRecord{}).Where("pipeline = ?", schemas.PipelineSensors).Count(&late)
	if late != 0 {
		t.Errorf("%d visit pieces late", late)
	}
}

func maxTime(a, b time.Time) time.Time {
	if b.After(a) {
		return b
	}
	return a
}

func waitVisits(t *testing.T, env *testenv.Env, want int) {
	t.Helper()
	require.Eventually(t, func() bool {
		var n int64
		env.Deps.DB.Model(&schemas.Visit{}).Count(&n)
		return int(n) >= want
	}, 2*time.Minute, testenv.Poll, "every visit stored")
}

func checkVisits(t *testing.T, env *testenv.Env, want map[string]travel.Visit) {
	t.Helper()
	var got []schemas.Visit
	if err := env.Deps.DB.Find(&got).Error; err != nil {
		t.Fatal(err)
	}
	if len(got) != len(want) {
		t.Errorf("%d visits stored, %d trips", len(got), len(want))
	}
	near := func(a, b float64) bool { return math.Abs(a-b) < 1e-9 }
	for _, g := range got {
		w, ok := want[g.TravelerID+"@"+g.SensorID]
		if !ok {
			t.Errorf("a visit no trip made: %+v", g)
			continue
		}
		if !g.Entered.Equal(w.Entered) || !g.Left.Equal(w.Left) || g.Readings != w.Readings || g.Type != w.Type ||
			!near(g.MinSpeed, w.MinSpeed) || !near(g.MaxSpeed, w.MaxSpeed) || !near(g.AvgSpeed, w.AvgSpeed) {
			t.Errorf("visit %s@%s:\n stored %+v\n want   %+v", g.TravelerID, g.SensorID, g, w)
		}
	}
}

// sensorRows are the sensor minutes by sensorsim.MinuteKey.
func sensorRows(t *testing.T, env *testenv.Env) map[string]schemas.WindowResult {
	return windowRows(t, env, schemas.PipelineSensors, func(r schemas.WindowResult) string {
		s, typ := schemas.SplitSensorKey(r.Key)
		return sensorsim.MinuteKey(s, typ, r.WindowStart)
	})
}

func checkMinutes(t *testing.T, rows map[string]schemas.WindowResult, want map[string]*sensorsim.Minute) {
	t.Helper()
	if len(rows) != len(want) {
		t.Errorf("%d sensor minutes stored, %d expected", len(rows), len(want))
	}
	for k, w := range want {
		r, ok := rows[k]
		if !ok {
			t.Errorf("sensor minute %s missing", k)
			continue
		}
		if r.Count != w.Count || math.Abs(r.Min-w.Min) > 1e-9 || math.Abs(r.Max-w.Max) > 1e-9 || math.Abs(r.Avg-w.Avg()) > 1e-9 {
			t.Errorf("sensor minute %s: stored count %d min %.6f max %.6f avg %.6f, want %d %.6f %.6f %.6f",
				k, r.Count, r.Min, r.Max, r.Avg, w.Count, w.Min, w.Max, w.Avg())
		}
	}
}

func checkSensorDeadLetters(t *testing.T, bootstrap string, bad map[string]int) {
	t.Helper()
	reasons := map[string]string{sensorsim.BadNaN: "out of range", sensorsim.BadFuture: "in the future", sensorsim.BadJump: "impossible jump"}
	got := map[string]int{}
	require.Eventually(t, func() bool {
		got = map[string]int{}
		err := kafkaio.ReadTopic(context.Background(), bootstrap, kafkaio.DLQTopic(schemas.TopicSensorReadings), func(m *kafka.Message) error {
			reason := kafkaio.Header(m, kafkaio.HeaderReason)
			for kind, text := range reasons {
				if strings.Contains(reason, text) {
					got[kind]++
				}
			}
			return nil
		})
		if err != nil {
			return false
		}
		for k, n := range bad {
			if got[k] != n {
				return false
			}
		}
		return len(bad) > 0
	}, time.Minute, testenv.Poll, "every bad reading dead-lettered")
	t.Logf("dead letters by kind: %v", got)
}

func getJSON(url string, into any) error {
	resp, err := http.Get(url)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("GET %s: %s", url, resp.Status)
	}
	return json.NewDecoder(resp.Body).Decode(into)
}

// checkMetricsAPI asks the API for each site's cars minute by minute and compares with the
// trajectories: travelers measured and their speeds.
func checkMetricsAPI(t *testing.T, api string, want map[string]*sensorsim.Minute) {
	t.Helper()
	var first, last time.Time
	for _, m := range want {
		if first.IsZero() || m.Start.Before(first) {
			first = m.Start
		}
		last = maxTime(last, m.Start)
	}
	for _, sensor := range []string{"a-sensor-0", "b-sensor-1"} {
		var got struct {
			Points []struct {
				Start    time.Time `json:"start"`
				Measured int64     `json:"measured"`
				Min      float64   `json:"min_speed"`
				Max      float64   `json:"max_speed"`
				Avg      float64   `json:"avg_speed"`
			} `json:"points"`
		}
		url := fmt.Sprintf("%s/api/sensors/metrics?sensor=%s&type=car&from=%s&to=%s", api, sensor,
			first.Add(-time.Minute).Format(time.RFC3339), last.Add(2*time.Minute).Format(time.RFC3339))
		if err := getJSON(url, &got); err != nil {
			t.Fatal(err)
		}
		seen := 0
		for _, p := range got.Points {
			w, ok := want[sensorsim.MinuteKey(sensor, "car", p.Start)]
			if !ok {
				if p.Measured != 0 {
					t.Errorf("API: %s cars at %s measured %d, want none", sensor, p.Start, p.Measured)
				}
				continue
			}
			seen++
			if p.Measured != w.Count || math.Abs(p.Min-w.Min) > 1e-9 || math.Abs(p.Max-w.Max) > 1e-9 || math.Abs(p.Avg-w.Avg()) > 1e-9 {
				t.Errorf("API: %s cars at %s: %+v, want %+v", sensor, p.Start, p, *w)
			}
		}
		if seen == 0 {
			t.Errorf("API: no minute of %s cars", sensor)
		}
	}
}
