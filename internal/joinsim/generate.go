// Package joinsim makes the join pipeline's input, generated or read from files shaped like
// the original simulator's sim_file1..3, and measures its output from the ack topic.
package joinsim

import (
	"encoding/json"
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/tributary-dev/tributary/schemas"
)

// Columns is the number of feature columns of each topic's rows in the original data:
// sim_file1 has feature1..29, sim_file2 feature1..9, sim_file3 feature1..25.
var Columns = map[string]int{schemas.TopicJoin1: 29, schemas.TopicJoin2: 9, schemas.TopicJoin3: 25}

// decimalColumns are the columns of a topic that hold decimals rather than integers.
var decimalColumns = map[string]map[int]bool{schemas.TopicJoin2: {5: true, 6: true}}

// Plan says what a generated run sends.
type Plan struct {
	RunID  string
	Events int
	Seed   uint64
	// MissingFraction of events lack one topic's row, so they end incomplete.
	MissingFraction float64
	// DuplicateFraction of rows are sent twice.
	DuplicateFraction float64
	// MalformedFraction of events get one extra record that fails validation.
	MalformedFraction float64
	// NAFraction of feature values are missing.
	NAFraction float64
}

// Event is one event id's rows as generated, with what the pipeline should make of it.
type Event struct {
	ID string
	// Rows maps topic to the row's fields; a missing topic has no entry.
	Rows       map[string]json.RawMessage
	Duplicated []string // topics whose row is sent twice
	Malformed  string   // topic that gets a malformed record, or ""
}

// Complete reports whether every topic has a row.
func (e Event) Complete() bool { return len(e.Rows) == len(schemas.JoinTopics) }

// EventID names event n of a run.
func EventID(runID string, n int) string { return runID + "-" + strconv.Itoa(n) }

// Generate returns event n of the plan; the same plan and n always give the same event.
func (p Plan) Generate(n int) Event {
	rng := rand.New(rand.NewPCG(p.Seed, uint64(n)))
	ev := Event{ID: EventID(p.RunID, n), Rows: map[string]json.RawMessage{}}
	missing := ""
	if rng.Float64() < p.MissingFraction {
		missing = schemas.JoinTopics[rng.IntN(len(schemas.JoinTopics))]
	}
	for _, topic := range schemas.JoinTopics {
		// Drawn in column order, written in the JSON encoder's order for a map: by name.
		values := make([]any, Columns[topic]+1)
		for c := 1; c <= Columns[topic]; c++ {
			switch {
			case rng.Float64() < p.NAFraction:
				values[c] = nil
			case decimalColumns[topic][c]:
				values[c] = math.Round(rng.Float64()*10000) / 100
			default:
				values[c] = rng.IntN(1000)
			}
		}
		if topic == missing {
			continue
		}
		ev.Rows[topic] = encodeFields(topic, values)
		if rng.Float64() < p.DuplicateFraction {
			ev.Duplicated = append(ev.Duplicated, topic)
		}
	}
	if rng.Float64() < p.MalformedFraction {
		ev.Malformed = schemas.JoinTopics[rng.IntN(len(schemas.JoinTopics))]
	}
	return ev
}

// columnOrder lists a topic's columns by name, feature1, feature10, feature11, ...: the
// order json.Marshal writes a map's keys in, which the generated rows have always had.
var columnOrder = func() map[string][]int {
	order := map[string][]int{}
	for topic, n := range Columns {
		cols := make([]int, n)
		for i := range cols {
			cols[i] = i + 1
		}
		slices.SortFunc(cols, func(a, b int) int { return strings.Compare(strconv.Itoa(a), strconv.Itoa(b)) })
		order[topic] = cols
	}
	return order
}()

// encodeFields writes a row's fields as json.Marshal writes them from a map, without the
// map: the bench's producer makes tens of thousands of rows a second beside the pipeline
// it measures, and the map's encoding took a tenth of the process's CPU.
func encodeFields(topic string, values []any) json.RawMessage {
	b := make([]byte, 0, 16*len(values))
	b = append(b, '{')
	for i, c := range columnOrder[topic] {
		if i > 0 {
			b = append(b, ',')
		}
		b = append(b, `"feature`...)
		b = strconv.AppendInt(b, int64(c), 10)
		b = append(b, `":`...)
		switch v := values[c].(type) {
		case int:
			b = strconv.AppendInt(b, int64(v), 10)
		case float64:
			b = strconv.AppendFloat(b, v, 'f', -1, 64) // 0 to 100: the encoder's form too
		default:
			b = append(b, "null"...)
		}
	}
	return append(b, '}')
}

// Expect counts what a correct pipeline makes of events [0, n) of the plan.
type Expect struct {
	Complete, Incomplete, Duplicates, Malformed int
}

// Expected computes Expect for the plan's events.
func (p Plan) Expected() Expect {
	var e Expect
	for n := range p.Events {
		ev := p.Generate(n)
		if ev.Complete() {
			e.Complete++
		} else {
			e.Incomplete++
		}
		e.Duplicates += len(ev.Duplicated)
		if ev.Malformed != "" {
			e.Malformed++
		}
	}
	return e
}

// Row encodes a topic's row of an event as a record value, created now: what json.Marshal
// makes of the schemas.JoinRow, written directly, since the bench makes three per event
// beside the pipeline it measures, and the encoder re-checks and compacts the fields byte
// by byte (8 µs a row). fields must be compact JSON, as encodeFields writes them.
func Row(eventID string, fields json.RawMessage, created time.Time) []byte {
	id, _ := json.Marshal(eventID) // escapes as the encoder does
	b := make([]byte, 0, 64+len(id)+len(fields))
	b = fmt.Appendf(b, `{"v":%d,"id":`, schemas.RecordVersion)
	b = append(b, id...)
	b = append(b, `,"created_at":`...)
	b, _ = created.AppendText(append(b, '"'))
	b = append(b, `","fields":`...)
	if fields == nil {
		return append(b, "null}"...)
	}
	return append(append(b, fields...), '}')
}

// MalformedRow is a record that fails validation the way real bad input does: a known shape
// with a wrong type in it.
func MalformedRow(eventID string, created time.Time) []byte {
	return fmt.Appendf(nil, `{"v":1,"id":%q,"created_at":%q,"fields":{"feature1":"not a number"}}`, eventID, created.Format(time.RFC3339Nano))
}
