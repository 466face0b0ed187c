package bridge

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/confluentinc/confluent-kafka-go/v2/kafka"

	"github.com/tributary-dev/tributary/schemas"
	"github.com/tributary-dev/tributary/travel"
	"github.com/tributary-dev/tributary/workflows"
)

func msg(topic string, partition int32, offset int64) *kafka.Message {
	return &kafka.Message{TopicPartition: kafka.TopicPartition{Topic: &topic, Partition: partition, Offset: kafka.Offset(offset)}}
}

func TestNextOffsets(t *testing.T) {
	batch := []*kafka.Message{msg("a", 0, 5), msg("b", 1, 9), msg("a", 0, 6), msg("a", 1, 2), msg("b", 1, 10)}
	got := nextOffsets(batch)
	want := map[string]kafka.Offset{"a/0": 7, "b/1": 11, "a/1": 3}
	if len(got) != len(want) {
		t.Fatalf("got %v", got)
	}
	for _, tp := range got {
		k := schemas.TopicPartition(*tp.Topic, tp.Partition)
		if want[k] != tp.Offset {
			t.Errorf("%s: next offset %d, want %d", k, tp.Offset, want[k])
		}
	}
}

func TestJoinRouteRejectsBadRecords(t *testing.T) {
	j, err := NewJoin(nil, nil, JoinOptions{})
	if err != nil {
		t.Fatal(err)
	}
	m := msg("topic1", 0, 1)
	m.Key = []byte("e1")
	m.Value = []byte(`{"v":1,"id":"e1","created_at":"2026-01-01T00:00:00Z","fields":{"feature1":"x"}}`)
	if _, err := j.Route(m); err == nil {
		t.Fatal("a record with a text feature was routed")
	}
	m.Value = []byte(`{"v":1,"id":"e1","created_at":"2026-01-01T00:00:00Z","fields":{"feature1":2}}`)
	r, err := j.Route(m)
	if err != nil {
		t.Fatal(err)
	}
	if r.WorkflowID != "join/e1" {
		t.Errorf("routed to %s", r.WorkflowID)
	}
}

func TestJoinSignalsStayUnderTheSizeLimit(t *testing.T) {
	var sizes []int
	fields := json.RawMessage(`{"feature1":` + strings.Repeat("1", 900) + `}`)
	var recs []schemas.JoinArrival
	for i := range 1000 {
		recs = append(recs, schemas.JoinArrival{EventID: fmt.Sprint(i), Topic: "topic1", Offset: int64(i), Fields: fields})
	}
	chunks := splitArrivals(recs)
	total := 0
	for _, c := range chunks {
		b, _ := json.Marshal(schemas.JoinSignal{Arrivals: c})
		sizes = append(sizes, len(b))
		if len(b) > 512<<10 {
			t.Errorf("a signal of %d bytes", len(b))
		}
		for i, a := range c {
			if a.Offset != int64(total+i) {
				t.Fatalf("arrival %d out of order", total+i)
			}
		}
		total += len(c)
	}
	if total != 1000 || len(chunks) < 3 {
		t.Errorf("%d arrivals in %d signals of %v bytes", total, len(chunks), sizes)
	}
}

func TestSensorsRouteChecksReadings(t *testing.T) {
	now := time.Date(2026, 11, 22, 8, 0, 0, 0, time.UTC)
	s, err := NewSensors(nil, SensorsOptions{FutureTolerance: time.Minute, Now: func() time.Time { return now }})
	if err != nil {
		t.Fatal(err)
	}
	record := func(key, value string) *kafka.Message {
		m := msg(schemas.TopicSensorReadings, 2, 40)
		m.Key, m.Value = []byte(key), []byte(value)
		return m
	}
	route := func(key, value string) (Routed, error) { return s.Route(record(key, value)) }
	ok := `{"v":1,"sensor_id":"s1","traveler_id":"t1","traveler_type":"bike","x":1.5,"y":-2,"t":"2026-11-22T08:00:30Z"}`
	r, err := route("t1", ok)
	if err != nil || r.WorkflowID != "traveler/t1" {
		t.Fatalf("routed %+v, %v", r, err)
	}
	if rd := r.Value.(travel.Reading); rd.X != 1.5 || rd.Ref.Partition != 2 || rd.Ref.Offset != 40 || rd.Ref.Topic != schemas.TopicSensorReadings {
		t.Errorf("reading %+v", rd)
	}
	for reason, value := range map[string]string{
		"not a finite number": strings.Replace(ok, `"x":1.5`, `"x":"NaN"`, 1),
		"in the future":       strings.Replace(ok, "08:00:30", "08:01:31", 1),
		"traveler type":       strings.Replace(ok, "bike", "boat", 1),
		"not a number":        strings.Replace(ok, `"x":1.5`, `"x":"east"`, 1),
		"schema version":      strings.Replace(ok, `"v":1`, `"v":2`, 1),
		"differs":             ok, // keyed by another traveler
		"unknown field":       strings.Replace(ok, `"y":-2`, `"y":-2,"z":1`, 1),
	} {
		key := "t1"
		if reason == "differs" {
			key = "t2"
		}
		if _, err := route(key, value); err == nil || !strings.Contains(err.Error(), reason) {
			t.Errorf("%s: error %v", reason, err)
		}
	}
	sharded, err := NewSensors(nil, SensorsOptions{Shards: 4, FutureTolerance: time.Minute, Now: s.opts.Now})
	if err != nil {
		t.Fatal(err)
	}
	if r, err := sharded.Route(record("t1", ok)); err != nil || r.WorkflowID != workflows.TravelerWorkflowID("t1", 4) {
		t.Errorf("sharded: routed to %q, %v", r.WorkflowID, err)
	}
}
