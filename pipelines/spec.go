// Package pipelines declares Tributary's window pipelines. A pipeline is a Spec, not a code
// path: the bridge, the window workflow and the flush activity read everything they need
// from it.
package pipelines

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/tributary-dev/tributary/schemas"
	"github.com/tributary-dev/tributary/window"
)

// GlobalKey is the key of a pipeline that aggregates its whole stream.
const GlobalKey = "all"

// Filter keeps the records whose Field equals Equals.
type Filter struct {
	Field  string
	Equals string
}

// Spec declares a window pipeline.
type Spec struct {
	Name  string
	Topic string
	// KeyField names the record field that keys the windows; empty aggregates every record
	// under GlobalKey.
	KeyField string
	// RecordKeyField names the field a Kafka record's key, when it has one, must equal.
	RecordKeyField string
	// ValueField names the numeric field aggregated; empty counts records (value 1).
	ValueField string
	// TimeField names the RFC 3339 event time field.
	TimeField string
	Filter    *Filter
	// Windows are the window sizes, each with its advance and grace.
	Windows []window.Spec
	// Aggregations name what the outputs report; every partial carries count, sum, min and
	// max, from which avg follows.
	Aggregations []string
	// OutputTopics maps a window size to the topic its closed windows are written to.
	OutputTopics map[time.Duration]string
}

// Item is one record reduced to what windows need.
type Item struct {
	Key   string
	Value float64
	At    time.Time
}

// ErrFiltered marks a valid record the spec's filter leaves out: its offset advances,
// nothing is aggregated, and it is not a dead letter.
var ErrFiltered = errors.New("filtered out")

// Extract validates a record (its Kafka key, which may be empty, and its value) and reduces
// it to an Item. A malformed record returns an error saying why; a record the filter leaves
// out returns ErrFiltered.
func (s Spec) Extract(key, value []byte) (Item, error) {
	if err := schemas.CheckRecord(value); err != nil {
		return Item{}, err
	}
	var rec map[string]any
	dec := json.NewDecoder(bytes.NewReader(value))
	dec.UseNumber()
	if err := dec.Decode(&rec); err != nil || rec == nil {
		return Item{}, fmt.Errorf("not a JSON object: %v", err)
	}
	if v, _ := rec["v"].(json.Number); v.String() != fmt.Sprint(schemas.RecordVersion) {
		return Item{}, fmt.Errorf("schema version %v, want %d", rec["v"], schemas.RecordVersion)
	}
	if s.RecordKeyField != "" && len(key) > 0 {
		if id, _ := rec[s.RecordKeyField].(string); id != string(key) {
			return Item{}, fmt.Errorf("record key %q differs from field %q (%q)", key, s.RecordKeyField, rec[s.RecordKeyField])
		}
	}
	it := Item{Key: GlobalKey, Value: 1}
	if s.KeyField != "" {
		k, ok := rec[s.KeyField].(string)
		if !ok || k == "" || len(k) > schemas.MaxEventIDLen || bytes.ContainsAny([]byte(k), "/\x00") {
			return Item{}, fmt.Errorf("field %q must be a non-empty string of at most %d characters without '/'", s.KeyField, schemas.MaxEventIDLen)
		}
		it.Key = k
	}
	if s.ValueField != "" {
		n, ok := rec[s.ValueField].(json.Number)
		if !ok {
			return Item{}, fmt.Errorf("field %q must be a number", s.ValueField)
		}
		v, err := n.Float64()
		if err != nil {
			return Item{}, fmt.Errorf("field %q: %v", s.ValueField, err)
		}
		if err := schemas.CheckValue(s.ValueField, v); err != nil {
			return Item{}, err
		}
		it.Value = v
	}
	ts, _ := rec[s.TimeField].(string)
	at, err := time.Parse(time.RFC3339Nano, ts)
	if err != nil {
		return Item{}, fmt.Errorf("field %q must be an RFC 3339 time", s.TimeField)
	}
	it.At = at.UTC()
	if it.At.Before(schemas.MinEventTime) {
		return Item{}, fmt.Errorf("field %q: %s is before %s", s.TimeField, ts, schemas.MinEventTime.Format(time.RFC3339))
	}
	if s.Filter != nil {
		if v, _ := rec[s.Filter.Field].(string); v != s.Filter.Equals {
			return it, ErrFiltered
		}
	}
	return it, nil
}

// Validate reports a spec that cannot run.
func (s Spec) Validate() error {
	var errs []error
	if s.Name == "" || s.Topic == "" || s.TimeField == "" {
		errs = append(errs, errors.New("a spec needs a name, a topic and a time field"))
	}
	if len(s.Windows) == 0 {
		errs = append(errs, fmt.Errorf("%s: no windows", s.Name))
	}
	for _, w := range s.Windows {
		if err := w.Validate(); err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", s.Name, err))
		}
		if s.OutputTopics[w.Size] == "" {
			errs = append(errs, fmt.Errorf("%s: no output topic for %s windows", s.Name, w.Size))
		}
	}
	return errors.Join(errs...)
}

// Topics are the topics the pipeline reads and writes, for creation at start-up.
func (s Spec) Topics() []string {
	ts := []string{s.Topic, s.Topic + ".dlq", schemas.LateTopic(s.Name)}
	for _, t := range s.OutputTopics {
		if !slices.Contains(ts, t) {
			ts = append(ts, t)
		}
	}
	slices.Sort(ts)
	return ts
}

// Likes counts likes per video in tumbling windows of 1, 5 and 10 minutes.
func Likes() Spec {
	grace := 5 * time.Second
	return Spec{
		Name: schemas.PipelineLikes, Topic: schemas.TopicLikes,
		KeyField: "video_id", RecordKeyField: "video_id", TimeField: "at",
		Windows: []window.Spec{
			{Size: time.Minute, Grace: grace}, {Size: 5 * time.Minute, Grace: grace}, {Size: 10 * time.Minute, Grace: grace},
		},
		Aggregations: []string{"count"},
		OutputTopics: schemas.LikesOutputTopics,
	}
}

// Transactions sums, counts and averages paid transactions over the whole stream in
// tumbling 3-second windows.
func Transactions() Spec {
	return Spec{
		Name: schemas.PipelineTransactions, Topic: schemas.TopicTransactions,
		ValueField: "amount", RecordKeyField: "id", TimeField: "at",
		Filter:       &Filter{Field: "status", Equals: schemas.StatusPaid},
		Windows:      []window.Spec{{Size: 3 * time.Second, Grace: time.Second}},
		Aggregations: []string{"sum", "count", "avg"},
		OutputTopics: map[time.Duration]string{3 * time.Second: schemas.TopicTransactionsAggregate},
	}
}

// SensorsGrace is how long a sensor minute stays open after its end by default: a visit's
// speeds reach the windows when the visit ends, an idle gap after its last reading.
const SensorsGrace = 2 * time.Minute

// Sensors aggregates, per sensor and traveler type ("sensor|type") and per minute, the
// travelers whose speed was measured in the minute: count, and min, max and average of
// each traveler's mean speed in it. Its partials come from TravelerWorkflow's visits, not
// from a bridge, so Topic names only where the readings come from.
func Sensors(grace time.Duration) Spec {
	return Spec{
		Name: schemas.PipelineSensors, Topic: schemas.TopicSensorReadings, TimeField: "t",
		Windows:      []window.Spec{{Size: time.Minute, Grace: grace}},
		Aggregations: []string{"count", "min", "max", "avg"},
		OutputTopics: map[time.Duration]string{time.Minute: schemas.TopicSensorMetrics},
	}
}

// ByName returns the window pipeline of that name.
func ByName(name string) (Spec, bool) {
	switch name {
	case schemas.PipelineSensors:
		return Sensors(SensorsGrace), true
	case schemas.PipelineLikes:
		return Likes(), true
	case schemas.PipelineTransactions:
		return Transactions(), true
	}
	return Spec{}, false
}
