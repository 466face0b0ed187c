package app_test

import (
	"context"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"

	"github.com/tributary-dev/tributary/internal/joinsim"
	"github.com/tributary-dev/tributary/internal/kafkaio"
	"github.com/tributary-dev/tributary/internal/testenv"
	"github.com/tributary-dev/tributary/internal/txsim"
	"github.com/tributary-dev/tributary/schemas"
)

// scrape reads a /metrics page the way Prometheus does.
func scrape(t *testing.T, url string) map[string]*dto.MetricFamily {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: %s", url, resp.Status)
	}
	var p expfmt.TextParser
	fams, err := p.TextToMetricFamilies(resp.Body)
	if err != nil {
		t.Fatalf("%s does not parse: %v", url, err)
	}
	return fams
}

// value sums a family's samples whose labels include want: counters and gauges by value,
// histograms by their count.
func value(fams map[string]*dto.MetricFamily, name string, want map[string]string) float64 {
	f := fams[name]
	if f == nil {
		return 0
	}
	var sum float64
metric:
	for _, m := range f.GetMetric() {
		for k, v := range want {
			found := false
			for _, l := range m.GetLabel() {
				if l.GetName() == k && l.GetValue() == v {
					found = true
				}
			}
			if !found {
				continue metric
			}
		}
		switch {
		case m.Counter != nil:
			sum += m.GetCounter().GetValue()
		case m.Gauge != nil:
			sum += m.GetGauge().GetValue()
		case m.Histogram != nil:
			sum += float64(m.GetHistogram().GetSampleCount())
		case m.Untyped != nil:
			sum += m.GetUntyped().GetValue()
		}
	}
	return sum
}

// anyMoved says whether some family named with prefix has a sample above zero.
func anyMoved(fams map[string]*dto.MetricFamily, prefix string) bool {
	for name := range fams {
		if strings.HasPrefix(name, prefix) && value(fams, name, nil) > 0 {
			return true
		}
	}
	return false
}

// TestMetricsMove scrapes /metrics on the API and on a listener of its own while a join
// simulation, a late row and transactions run, and checks each family the dashboards
// read moves as the run says it should.
func TestMetricsMove(t *testing.T) {
	cfg := testenv.Config(t)
	cfg.MetricsAddress = "127.0.0.1:" + strconv.Itoa(testenv.FreePort(t))
	cfg.Join.Deadline = 3 * time.Second
	env := testenv.Start(t, cfg)
	apiURL := "http://" + env.Running.APIAddress + "/metrics"
	ownURL := "http://" + env.Running.MetricsAddress + "/metrics"
	before := scrape(t, ownURL)
	join := map[string]string{"pipeline": schemas.PipelineJoin}
	if v := value(before, "tributary_bridge_records_total", join); v != 0 {
		t.Fatalf("join records before any were sent: %v", v)
	}

	plan := joinsim.Plan{RunID: "metrics", Events: 200, Seed: 5, MissingFraction: 0.05, DuplicateFraction: 0.03, MalformedFraction: 0.05}
	exp := plan.Expected()
	res := runSimulation(t, env, plan)
	if res.Report.DeadLettered != exp.Malformed || exp.Malformed == 0 {
		t.Fatalf("report %+v, want %d dead-lettered", res.Report, exp.Malformed)
	}
	// A row for an event already acked: per event id, the bridge finds its workflow closed
	// and records the row late.
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	id := plan.RunID + "-0"
	row := fmt.Sprintf(`{"id":%q,"feature1":1.0}`, id)
	if err := env.Deps.Producer.Send(ctx, kafkaio.Message(schemas.JoinTopics[0], []byte(id), []byte(row))); err != nil {
		t.Fatal(err)
	}
	if err := txsim.Produce(ctx, env.Deps.Producer, "metrics", 3, 6000, 2000, nil); err != nil {
		t.Fatal(err)
	}

	// Wait for a late join row, a closed transactions window and every transaction handled.
	var after map[string]*dto.MetricFamily
	deadline := time.Now().Add(2 * time.Minute)
	for {
		after = scrape(t, ownURL)
		late := value(after, "tributary_late_records_total", join)
		closes := value(after, "tributary_window_close_delay_seconds", map[string]string{"pipeline": schemas.PipelineTransactions})
		txRecords := value(after, "tributary_bridge_records_total", map[string]string{"pipeline": schemas.PipelineTransactions})
		if late >= 1 && closes >= 1 && txRecords >= 6000 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("after 2 minutes: %v join records late, %v transactions windows closed, %v transactions records handled", late, closes, txRecords)
		}
		time.Sleep(200 * time.Millisecond)
	}

	// The join: every row handled (each event's rows, duplicates, malformed extras, the
	// late row), one delivery per workflow per batch, each malformed row dead-lettered once
	// under its reason, an ack delay for each event acked.
	records := value(after, "tributary_bridge_records_total", join)
	if min := float64(3*plan.Events - exp.Incomplete); records < min {
		t.Errorf("join records %v, want at least %v", records, min)
	}
	if d := value(after, "tributary_bridge_deliveries_total", join); d <= 0 || d > records {
		t.Errorf("join deliveries %v for %v records", d, records)
	}
	if dl := value(after, "tributary_dead_lettered_total", join); dl != float64(exp.Malformed) {
		t.Errorf("join dead-lettered %v, want %d", dl, exp.Malformed)
	}
	for _, m := range after["tributary_dead_lettered_total"].GetMetric() {
		for _, l := range m.GetLabel() {
			if l.GetName() == "reason" {
				t.Logf("dead-lettered, reason %q: %v", l.GetValue(), m.GetCounter().GetValue())
			}
			if l.GetName() == "reason" && strings.ContainsAny(l.GetValue(), "0123456789\"") {
				t.Errorf("reason label %q carries a record's values", l.GetValue())
			}
		}
	}
	t.Logf("join: %v records, %v deliveries, %v ack delays (sum %.2f s)", records, value(after, "tributary_bridge_deliveries_total", join),
		value(after, "tributary_join_ack_delay_seconds", nil), after["tributary_join_ack_delay_seconds"].GetMetric()[0].GetHistogram().GetSampleSum())
	if acks := value(after, "tributary_join_ack_delay_seconds", nil); acks < float64(plan.Events) {
		t.Errorf("%v ack delays observed, want at least %d", acks, plan.Events)
	}
	// Lag: a gauge per owned input partition, back to zero once everything is handled.
	for _, topic := range schemas.JoinTopics {
		for p := range cfg.Partitions {
			labels := map[string]string{"pipeline": schemas.PipelineJoin, "topic": topic, "partition": strconv.Itoa(p)}
			if after["tributary_bridge_lag_records"] == nil || !hasSeries(after["tributary_bridge_lag_records"], labels) {
				t.Errorf("no lag for %s/%d", topic, p)
			}
		}
	}
	waitFor(t, time.Minute, "join lag back to zero", func() bool {
		return value(scrape(t, ownURL), "tributary_bridge_lag_records", join) == 0
	})
	// The SDK's metrics (the worker's workflow tasks) and the process's own.
	if !anyMoved(after, "temporal_workflow_task_execution_latency") || !anyMoved(after, "temporal_request") {
		t.Error("the Temporal SDK's metrics did not move")
	}
	if value(after, "process_cpu_seconds_total", nil) <= 0 {
		t.Error("no process CPU time")
	}
	// The API's /metrics adds the embedded server's own.
	viaAPI := scrape(t, apiURL)
	if value(viaAPI, "tributary_bridge_records_total", join) < records {
		t.Error("the API's /metrics does not show the bridges' records")
	}
	if !anyMoved(viaAPI, "persistence_requests") || !anyMoved(viaAPI, "service_requests") {
		t.Error("the embedded server's metrics did not move")
	}
}

func hasSeries(f *dto.MetricFamily, want map[string]string) bool {
	for _, m := range f.GetMetric() {
		n := 0
		for _, l := range m.GetLabel() {
			if want[l.GetName()] == l.GetValue() {
				n++
			}
		}
		if n == len(want) {
			return true
		}
	}
	return false
}

// waitFor polls cond until it holds or d passes.
func waitFor(t *testing.T, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within %s", what, d)
		}
		time.Sleep(200 * time.Millisecond)
	}
}
