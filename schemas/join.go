package schemas

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"
)

// JoinRow is one row sent to a join input topic: an event id, when the row was created,
// and the topic's own fields (numbers, or null for a missing value).
type JoinRow struct {
	Version   int             `json:"v"`
	EventID   string          `json:"id"`
	CreatedAt time.Time       `json:"created_at"`
	Fields    json.RawMessage `json:"fields"`
}

// MaxEventIDLen bounds event ids; they become workflow ids and primary keys.
const MaxEventIDLen = 200

// DecodeJoinRow parses and validates a join record. The error says what is wrong, for the
// dead-letter header.
func DecodeJoinRow(key, value []byte) (JoinRow, error) {
	var r JoinRow
	if err := CheckRecord(value); err != nil {
		return r, err
	}
	dec := json.NewDecoder(bytes.NewReader(value))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&r); err != nil {
		return r, fmt.Errorf("not a join row: %w", err)
	}
	if r.Version != RecordVersion {
		return r, fmt.Errorf("schema version %d, want %d", r.Version, RecordVersion)
	}
	if r.EventID == "" || len(r.EventID) > MaxEventIDLen || strings.ContainsAny(r.EventID, "\x00/") {
		return r, fmt.Errorf("event id %q: want 1 to %d characters, no '/' or NUL", r.EventID, MaxEventIDLen)
	}
	if len(key) > 0 && string(key) != r.EventID {
		return r, fmt.Errorf("record key %q differs from event id %q", key, r.EventID)
	}
	if r.CreatedAt.IsZero() {
		return r, errors.New("created_at is missing")
	}
	if r.CreatedAt.Before(MinEventTime) {
		return r, fmt.Errorf("created_at %s is before %s", r.CreatedAt.Format(time.RFC3339Nano), MinEventTime.Format(time.RFC3339))
	}
	var fields map[string]any
	fd := json.NewDecoder(bytes.NewReader(r.Fields))
	fd.UseNumber()
	if err := fd.Decode(&fields); err != nil || fields == nil {
		return r, errors.New("fields must be a JSON object")
	}
	for _, k := range slices.Sorted(maps.Keys(fields)) {
		switch v := fields[k].(type) {
		case nil:
		case json.Number:
			// Fields are stored, not aggregated: any finite number will do.
			if _, err := v.Float64(); err != nil {
				return r, fmt.Errorf("field %q: %s is out of range", k, v)
			}
		default:
			return r, fmt.Errorf("field %q must be a number or null", k)
		}
	}
	return r, nil
}

// Join outcomes.
const (
	JoinComplete   = "complete"
	JoinIncomplete = "incomplete"
)

// Ack is the record the join writes to TopicAck, keyed by event id.
type Ack struct {
	Version int    `json:"v"`
	EventID string `json:"id"`
	// Status is JoinComplete or JoinIncomplete.
	Status string `json:"status"`
	// Arrivals maps each topic that arrived to the creation time of its row.
	Arrivals map[string]time.Time `json:"arrivals"`
	// Duplicates counts repeated rows recognised before the ack.
	Duplicates int `json:"duplicates"`
	// CreatedAt is when the ack was made, after the joined event was stored.
	CreatedAt time.Time `json:"created_at"`
}

// LatestArrival is the creation time of the event's newest row: ack delay is measured from it.
func (a Ack) LatestArrival() time.Time {
	var t time.Time
	for _, at := range a.Arrivals {
		if at.After(t) {
			t = at
		}
	}
	return t
}

// JoinArrival is one validated join row as the bridge signals it to a workflow, with the
// Kafka coordinates it came from so the workflow can recognise a redelivery.
type JoinArrival struct {
	EventID   string          `json:"id"`
	Topic     string          `json:"t"`
	Partition int32           `json:"p"`
	Offset    int64           `json:"o"`
	CreatedAt time.Time       `json:"c"`
	Fields    json.RawMessage `json:"f"`
}

// JoinSignal is the payload of one join signal: a key's arrivals from one bridge batch, in
// offset order per partition.
type JoinSignal struct {
	Arrivals []JoinArrival `json:"a"`
	// Watermark is the join's input watermark as the bridge knew it (internal/watermark).
	Watermark time.Time `json:"w,omitzero"`
}
