package api_test

import (
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/tributary-dev/tributary/schemas"
)

// The join's endpoints answer from what the database holds: counts by status over the
// interval, the ack delay's quantiles and histogram, the newest acks, and an event's rows.
func TestJoinEndpoints(t *testing.T) {
	f := newFixture(t)
	now := time.Now().UTC()
	var events []schemas.JoinedEvent
	for i, delayMs := range []int{3, 8, 15, 40, 90, 150, 400, 900, 1500, 40000} {
		status := schemas.JoinComplete
		if i >= 8 {
			status = schemas.JoinIncomplete
		}
		stored := now.Add(-time.Duration(i) * time.Second)
		events = append(events, schemas.JoinedEvent{EventID: "ev-" + string(rune('a'+i)), Status: status, Topics: "topic1,topic2",
			FirstAt: stored.Add(-time.Minute), LastAt: stored.Add(-time.Duration(delayMs) * time.Millisecond), Duplicates: i % 2, Writer: "w", StoredAt: stored})
	}
	old := events[0]
	old.EventID, old.StoredAt, old.LastAt = "ev-old", now.Add(-2*time.Hour), now.Add(-2*time.Hour)
	events = append(events, old)
	if err := f.db.Create(events).Error; err != nil {
		t.Fatal(err)
	}
	if err := f.db.Table("data1").Create(&schemas.DataRow{EventID: "ev-a", CreatedAt: now.Add(-time.Minute), Fields: `{"feature1":1}`, Partition: 2, Offset: 17}).Error; err != nil {
		t.Fatal(err)
	}
	if err := f.db.Create([]schemas.LateRecord{
		{Topic: "topic1", Partition: 0, Offset: 1, Pipeline: schemas.PipelineJoin, Key: "ev-a", Reason: "late", At: now},
		{Topic: "topic1", Partition: 0, Offset: 2, Pipeline: schemas.PipelineLikes, Key: "v", Reason: "late", At: now},
	}).Error; err != nil {
		t.Fatal(err)
	}
	if err := f.db.Create([]schemas.DeadLetter{
		{Topic: "topic2", Partition: 0, Offset: 5, Pipeline: schemas.PipelineJoin, Key: "x", Reason: "not a join row", At: now},
		{Topic: "topic2", Partition: 0, Offset: 6, Pipeline: schemas.PipelineJoin, Key: "y", Reason: "not a join row", At: now.Add(-3 * time.Hour)},
	}).Error; err != nil {
		t.Fatal(err)
	}

	var sum struct {
		Complete, Incomplete, Duplicates, Late int64
		DeadLettered                           int64 `json:"dead_lettered"`
		Delay                                  struct {
			Count         int
			P50, P90, P99 float64
			P50Ms         float64 `json:"p50_ms"`
			P90Ms         float64 `json:"p90_ms"`
			P99Ms         float64 `json:"p99_ms"`
			Buckets       []struct {
				LeMs  float64 `json:"le_ms"`
				Count int
			}
		}
	}
	if code := f.do(t, "GET", "/api/join/summary?minutes=15", "", &sum); code != 200 {
		t.Fatalf("summary: %d", code)
	}
	if sum.Complete != 8 || sum.Incomplete != 2 || sum.Duplicates != 5 || sum.Late != 1 || sum.DeadLettered != 1 {
		t.Errorf("summary %+v", sum)
	}
	if sum.Delay.Count != 10 || sum.Delay.P50Ms != 150 || sum.Delay.P90Ms != 40000 || sum.Delay.P99Ms != 40000 {
		t.Errorf("delays %+v", sum.Delay)
	}
	total := 0
	for _, b := range sum.Delay.Buckets {
		total += b.Count
		if b.LeMs == 5 && b.Count != 1 || b.LeMs == 50 && b.Count != 1 || b.LeMs == 0 && b.Count != 0 {
			t.Errorf("bucket %+v", b)
		}
	}
	if total != 10 {
		t.Errorf("histogram holds %d delays, want 10", total)
	}

	var acks struct {
		Acks []struct {
			EventID string  `json:"event_id"`
			DelayMs float64 `json:"delay_ms"`
		}
	}
	if code := f.do(t, "GET", "/api/join/acks?limit=3", "", &acks); code != 200 || len(acks.Acks) != 3 || acks.Acks[0].EventID != "ev-a" || acks.Acks[0].DelayMs != 3 {
		t.Errorf("acks: %d %+v", code, acks)
	}

	var ev struct {
		Status   string
		Arrivals []struct {
			Topic     string
			Partition int32
			Offset    int64
		}
		Ack *struct {
			EventID string `json:"event_id"`
		}
		Late       int64
		WorkflowID string `json:"workflow_id"`
		TemporalUI string `json:"temporal_ui"`
	}
	if code := f.do(t, "GET", "/api/join/events/ev-a", "", &ev); code != 200 {
		t.Fatalf("event: %d", code)
	}
	if ev.Status != schemas.JoinComplete || len(ev.Arrivals) != 1 || ev.Arrivals[0].Offset != 17 || ev.Ack == nil || ev.Late != 1 ||
		!strings.HasPrefix(ev.TemporalUI, "http://ui.test/namespaces/default/workflows/") || !strings.HasSuffix(ev.TemporalUI, "ev-a") {
		t.Errorf("event %+v", ev)
	}
	var e errBody
	for path, want := range map[string]int{
		"/api/join/summary?minutes=0":    http.StatusBadRequest,
		"/api/join/summary?minutes=abc":  http.StatusBadRequest,
		"/api/join/summary?minutes=9999": http.StatusBadRequest,
		"/api/join/acks?limit=-1":        http.StatusBadRequest,
		"/api/join/events/a%7Cb":         http.StatusBadRequest,
		"/api/join/events/nobody":        http.StatusNotFound,
	} {
		if code := f.do(t, "GET", path, "", &e); code != want || e.Error == "" {
			t.Errorf("GET %s: %d %q, want %d with an error", path, code, e.Error, want)
		}
	}
}
