package bridge

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"strings"
	"testing"
	"time"

	"github.com/confluentinc/confluent-kafka-go/v2/kafka"
	"go.temporal.io/api/serviceerror"
	"go.temporal.io/sdk/converter"
	"go.temporal.io/sdk/temporal"

	"github.com/tributary-dev/tributary/pipelines"
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

// byTopic routes every record to a workflow named by its topic.
type byTopic struct{}

func (byTopic) Name() string     { return "by-topic" }
func (byTopic) Topics() []string { return nil }
func (byTopic) Route(m *kafka.Message) (Routed, error) {
	return Routed{WorkflowID: *m.TopicPartition.Topic, Msg: m, At: time.Unix(1e9, 0)}, nil
}
func (byTopic) Deliver(context.Context, string, []Routed, time.Time) error { return nil }

// A batch holds each place once, also when it is topped up with what was fetched while the
// batch before was delivered: a partition lost and given back is fetched again from its
// last commit, and a pre-aggregated partial would count a record there twice.
func TestRouteKeepsEachPlaceOnce(t *testing.T) {
	b := &Bridge{pipeline: byTopic{}, opts: Options{FutureTolerance: time.Minute, Now: time.Now}}
	first := []*kafka.Message{msg("a", 0, 5), msg("a", 0, 6), msg("a", 1, 5), msg("a", 0, 5)}
	more := []*kafka.Message{msg("b", 0, 5), msg("a", 0, 6), msg("a", 0, 7)}
	r := b.route(b.route(nil, first, nil), more, nil)
	var got []string
	for _, m := range r.batch {
		got = append(got, fmt.Sprintf("%s/%d@%d", *m.TopicPartition.Topic, m.TopicPartition.Partition, m.TopicPartition.Offset))
	}
	want := "a/0@5 a/0@6 a/1@5 b/0@5 a/0@7"
	if strings.Join(got, " ") != want {
		t.Errorf("kept %v, want %s", got, want)
	}
	if len(r.groups["a"]) != 4 || len(r.groups["b"]) != 1 || strings.Join(r.order, " ") != "a b" || len(r.at) != len(r.batch) {
		t.Errorf("groups %d and %d records, order %v, %d times for %d records", len(r.groups["a"]), len(r.groups["b"]), r.order, len(r.at), len(r.batch))
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

// TestJoinBatchGoesOnceEveryEventHasAllTopics: a join's batch may go before its window ends
// once each event id in it has a row on every topic, counting rows an earlier batch took; a
// missing topic holds it, a record that does not decode holds nothing, and a repeated topic
// does not complete an event.
func TestJoinBatchGoesOnceEveryEventHasAllTopics(t *testing.T) {
	row := func(topic, id string) *kafka.Message {
		m := msg(topic, 0, 1)
		m.Value = []byte(`{"v":1,"id":"` + id + `","created_at":"2026-01-01T00:00:00Z","fields":{"feature1":2}}`)
		return m
	}
	t1, t2, t3 := schemas.JoinTopics[0], schemas.JoinTopics[1], schemas.JoinTopics[2]
	bad := msg(t1, 0, 1)
	bad.Value = []byte("not json")
	cases := []struct {
		name    string
		batches [][]*kafka.Message
		want    [][]bool // after each record
	}{
		{"one event", [][]*kafka.Message{{row(t1, "a"), row(t2, "a"), row(t3, "a")}}, [][]bool{{false, false, true}}},
		{"a repeated topic", [][]*kafka.Message{{row(t1, "a"), row(t1, "a"), row(t2, "a"), row(t3, "a")}}, [][]bool{{false, false, false, true}}},
		{"two events interleaved", [][]*kafka.Message{{row(t1, "a"), row(t1, "b"), row(t2, "a"), row(t3, "a"), row(t2, "b"), row(t3, "b")}},
			[][]bool{{false, false, false, false, false, true}}},
		{"an event over two batches", [][]*kafka.Message{{row(t1, "a"), row(t1, "b")}, {row(t2, "a"), row(t3, "a")}},
			[][]bool{{false, false}, {false, true}}},
		{"a row of an event already complete", [][]*kafka.Message{{row(t1, "a"), row(t2, "a"), row(t3, "a")}, {row(t3, "a")}},
			[][]bool{{false, false, true}, {false}}},
		{"a bad record", [][]*kafka.Message{{bad, row(t1, "a"), bad}}, [][]bool{{true, false, false}}},
	}
	for _, c := range cases {
		j, err := NewJoin(nil, nil, JoinOptions{})
		if err != nil {
			t.Fatal(err)
		}
		for b, batch := range c.batches {
			gathered := j.Gather()
			for i, m := range batch {
				if got := gathered(m); got != c.want[b][i] {
					t.Errorf("%s: after record %d of batch %d the batch may go: %v, want %v", c.name, i, b, got, c.want[b][i])
				}
			}
		}
	}
}

// TestJoinHoldsAnEventMissingATopicOnce: with one workflow per event id, an event's rows
// that miss a topic wait for the next batch, once; rows of an event that went without all
// its topics go at once (they may complete it); shards hold nothing.
func TestJoinHoldsAnEventMissingATopicOnce(t *testing.T) {
	rows := func(id string, topics ...string) []Routed {
		var recs []Routed
		for _, topic := range topics {
			recs = append(recs, Routed{WorkflowID: id, Value: schemas.JoinArrival{EventID: id, Topic: topic}})
		}
		return recs
	}
	t1, t2, t3 := schemas.JoinTopics[0], schemas.JoinTopics[1], schemas.JoinTopics[2]
	j, err := NewJoin(nil, nil, JoinOptions{})
	if err != nil {
		t.Fatal(err)
	}
	steps := []struct {
		name       string
		recs       []Routed
		heldBefore bool
		want       bool
	}{
		{"a complete event", rows("a", t1, t2, t3), false, false},
		{"an event missing a topic", rows("b", t1, t2), false, true},
		{"its rows held once", rows("b", t1, t2), true, false},
		{"its last row, after they went", rows("b", t3), false, false},
		{"a repeat once the event had every topic", rows("b", t3), false, true},
		{"another event's first row", rows("c", t2), false, true},
	}
	for _, s := range steps {
		if got := j.Hold(s.recs, s.heldBefore); got != s.want {
			t.Errorf("%s: hold %v, want %v", s.name, got, s.want)
		}
	}
	sharded, err := NewJoin(nil, nil, JoinOptions{Shards: 4})
	if err != nil {
		t.Fatal(err)
	}
	if sharded.Hold(rows("b", t1), false) {
		t.Error("a shard's rows held: a shard takes a partition's rows in offset order")
	}
}

// TestGatheredTopicsStayBounded: the ids remembered with some of their topics are the most
// recent ones, at most recentGathered of them.
func TestGatheredTopicsStayBounded(t *testing.T) {
	var g gatheredTopics
	for i := range 10 * recentGathered {
		g.add(fmt.Sprint(i), schemas.JoinTopics[0])
	}
	if len(g.seen) != recentGathered || len(g.order) > 2*recentGathered {
		t.Fatalf("%d ids remembered in an order of %d, want %d", len(g.seen), len(g.order), recentGathered)
	}
	last := fmt.Sprint(10*recentGathered - 1)
	if g.seen[last] == 0 || g.seen["0"] != 0 {
		t.Errorf("the newest id is forgotten (%v) or the oldest kept (%v)", g.seen[last], g.seen["0"])
	}
	g.add(last, schemas.JoinTopics[1])
	if !g.add(last, schemas.JoinTopics[2]) {
		t.Error("a recent id with all topics is not complete")
	}
}

// Rows are cut into calls that stay under their budget as encoded, in order, even when
// the encoder makes them larger than they came: escaped characters in ids and field names.
func TestJoinCallsStayUnderTheirBudget(t *testing.T) {
	shapes := map[string]func(i int) schemas.JoinArrival{
		"plain": func(i int) schemas.JoinArrival {
			return schemas.JoinArrival{EventID: fmt.Sprint(i), Fields: json.RawMessage(`{"feature1":` + strings.Repeat("1", 900) + `}`)}
		},
		"escaped": func(i int) schemas.JoinArrival {
			id := fmt.Sprint(i) + strings.Repeat("<\x01&\u2028", 40)
			name := strings.Repeat("<>&\u2029", 60)
			return schemas.JoinArrival{EventID: id, CreatedAt: time.Date(2026, 11, 24, 12, 0, 0, 123456789, time.UTC), Partition: 1 << 30,
				Fields: json.RawMessage(fmt.Sprintf(`{%q:null,"b":-1.5e-300}`, name))}
		},
	}
	for name, shape := range shapes {
		for _, limit := range []int{MaxSignalBytes, MaxSignalBytes / 3} {
			t.Run(fmt.Sprintf("%s/%d", name, limit), func(t *testing.T) {
				var recs []schemas.JoinArrival
				for i := range 3000 {
					a := shape(i)
					a.Topic, a.Offset = "topic1", int64(i)
					recs = append(recs, a)
				}
				chunks := splitArrivals(recs, limit)
				total, largest := 0, 0
				for _, c := range chunks {
					b, err := json.Marshal(schemas.JoinSignal{Arrivals: c, Watermark: time.Now()})
					if err != nil {
						t.Fatal(err)
					}
					if len(b) > limit {
						t.Errorf("a call of %d bytes, over %d", len(b), limit)
					}
					largest = max(largest, len(b))
					for i, a := range c {
						if a.Offset != int64(total+i) {
							t.Fatalf("arrival %d out of order", total+i)
						}
					}
					total += len(c)
				}
				if total != len(recs) || len(chunks) < 2 || largest < limit/2 {
					t.Errorf("%d arrivals in %d calls, the largest %d bytes", total, len(chunks), largest)
				}
			})
		}
	}
}

// A shard's rows of a batch go in as few packed updates as fit under MaxUpdateBytes, in
// order, each named by its rows: rows that compress go many to an update, rows that do not
// are cut until they fit.
func TestJoinUpdatesArePackedUnderTheirBudget(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	noise := func(n int) string {
		b := make([]byte, n)
		for i := range b {
			b[i] = byte('a' + rng.IntN(26))
		}
		return string(b)
	}
	shapes := map[string]struct {
		rows       int
		fields     func(i int) string
		minN, maxN int
	}{
		// 12,000 rows of 900 repeated digits: 11 MB in JSON, four updates by their JSON size.
		"compressible": {12000, func(int) string { return `{"feature1":` + strings.Repeat("1", 900) + `}` }, 3, 4},
		// 3,000 rows of 900 random letters: one update by their JSON size, over 1 MiB packed.
		"random": {3000, func(int) string { return `{"pad":"` + noise(900) + `"}` }, 2, 4},
	}
	for name, shape := range shapes {
		t.Run(name, func(t *testing.T) {
			var rows []schemas.JoinArrival
			for i := range shape.rows {
				rows = append(rows, schemas.JoinArrival{EventID: fmt.Sprint(i), Topic: "topic1", Offset: int64(i), Fields: json.RawMessage(shape.fields(i))})
			}
			wm := time.Date(2026, 11, 24, 12, 0, 0, 0, time.UTC)
			updates, err := packUpdates(rows, wm)
			if err != nil {
				t.Fatal(err)
			}
			if len(updates) < shape.minN || len(updates) > shape.maxN {
				t.Errorf("%d updates, want %d to %d", len(updates), shape.minN, shape.maxN)
			}
			next, ids := 0, map[string]bool{}
			for _, u := range updates {
				if len(u.packed) > MaxUpdateBytes {
					t.Errorf("an update of %d bytes, over %d", len(u.packed), MaxUpdateBytes)
				}
				s, err := schemas.UnpackJoinSignal(u.packed)
				if err != nil {
					t.Fatal(err)
				}
				if !s.Watermark.Equal(wm) || u.id != arrivalsUpdateID(s.Arrivals) || ids[u.id] {
					t.Errorf("update %s: watermark %v, id of its rows %s", u.id, s.Watermark, arrivalsUpdateID(s.Arrivals))
				}
				ids[u.id] = true
				for _, a := range s.Arrivals {
					if a.Offset != int64(next) || string(a.Fields) != string(rows[next].Fields) {
						t.Fatalf("row %d out of order or changed: offset %d", next, a.Offset)
					}
					next++
				}
			}
			if next != len(rows) {
				t.Errorf("%d of %d rows in the updates", next, len(rows))
			}
		})
	}
}

func TestSensorsRouteChecksReadings(t *testing.T) {
	now := time.Date(2026, 11, 22, 8, 0, 0, 0, time.UTC)
	s, err := NewSensors(nil, nil, SensorsOptions{})
	if err != nil {
		t.Fatal(err)
	}
	b := &Bridge{pipeline: s, opts: Options{FutureTolerance: time.Minute}}
	record := func(key, value string) *kafka.Message {
		m := msg(schemas.TopicSensorReadings, 2, 40)
		m.Key, m.Value = []byte(key), []byte(value)
		return m
	}
	route := func(key, value string) (Routed, error) { return b.admit(record(key, value), now) }
	ok := `{"v":1,"sensor_id":"s1","traveler_id":"t1","traveler_type":"bike","x":1.5,"y":-2,"t":"2026-11-22T08:00:30Z"}`
	r, err := route("t1", ok)
	if err != nil || r.WorkflowID != "traveler/t1" {
		t.Fatalf("routed %+v, %v", r, err)
	}
	if rd := r.Value.(travel.Reading); rd.X != 1.5 || rd.Ref.Partition != 2 || rd.Ref.Offset != 40 || rd.Ref.Topic != schemas.TopicSensorReadings {
		t.Errorf("reading %+v", rd)
	}
	for reason, value := range map[string]string{
		"out of range":   strings.Replace(ok, `"x":1.5`, `"x":"NaN"`, 1),
		"in the future":  strings.Replace(ok, "08:00:30", "08:01:31", 1),
		"traveler type":  strings.Replace(ok, "bike", "boat", 1),
		"not a number":   strings.Replace(ok, `"x":1.5`, `"x":"east"`, 1),
		"schema version": strings.Replace(ok, `"v":1`, `"v":2`, 1),
		"differs":        ok, // keyed by another traveler
		"unknown field":  strings.Replace(ok, `"y":-2`, `"y":-2,"z":1`, 1),
	} {
		key := "t1"
		if reason == "differs" {
			key = "t2"
		}
		if _, err := route(key, value); err == nil || !strings.Contains(err.Error(), reason) {
			t.Errorf("%s: error %v", reason, err)
		}
	}
	sharded, err := NewSensors(nil, nil, SensorsOptions{Shards: 4})
	if err != nil {
		t.Fatal(err)
	}
	if r, err := sharded.Route(record("t1", ok)); err != nil || r.WorkflowID != workflows.TravelerWorkflowID("t1", 4) {
		t.Errorf("sharded: routed to %q, %v", r.WorkflowID, err)
	}
}

// TestEveryPipelineRefusesFarFutureTimes: a record dated decades ahead would open a window
// (and keep its workflow) for decades; each pipeline's records go through one check.
func TestEveryPipelineRefusesFarFutureTimes(t *testing.T) {
	now := time.Date(2026, 11, 22, 8, 0, 0, 0, time.UTC)
	join, err := NewJoin(nil, nil, JoinOptions{})
	if err != nil {
		t.Fatal(err)
	}
	tx, err := NewWindow(pipelines.Transactions(), nil, nil, WindowOptions{})
	if err != nil {
		t.Fatal(err)
	}
	likes, err := NewWindow(pipelines.Likes(), nil, nil, WindowOptions{})
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		p           Pipeline
		topic, late string
		ok          string
	}{
		{join, schemas.TopicJoin1, "2099-01-01T00:00:00Z", `{"v":1,"id":"e1","created_at":"2026-11-22T08:00:30Z","fields":{}}`},
		{tx, schemas.TopicTransactions, "9999-12-31T23:59:59Z", `{"v":1,"id":"e1","user_id":"1a","amount":10,"status":"paid","at":"2026-11-22T08:00:30Z"}`},
		{likes, schemas.TopicLikes, "2026-11-22T08:01:01Z", `{"v":1,"video_id":"e1","at":"2026-11-22T08:00:30Z"}`},
	} {
		b := &Bridge{pipeline: c.p, opts: Options{FutureTolerance: time.Minute}}
		m := msg(c.topic, 0, 1)
		m.Key, m.Value = []byte("e1"), []byte(c.ok)
		if r, err := b.admit(m, now); err != nil || r.At.IsZero() {
			t.Errorf("%s: a record within the tolerance: %+v, %v", c.p.Name(), r, err)
		}
		m.Value = []byte(strings.Replace(c.ok, "2026-11-22T08:00:30Z", c.late, 1))
		if _, err := b.admit(m, now); err == nil || !strings.Contains(err.Error(), "in the future") {
			t.Errorf("%s: a record dated %s: %v", c.p.Name(), c.late, err)
		}
	}
}

// TestPermanentFailures: what would fail again the same way is told apart from what can pass.
func TestPermanentFailures(t *testing.T) {
	_, encodeErr := json.Marshal(math.Inf(1))
	r1, r2 := Routed{WorkflowID: "a"}, Routed{WorkflowID: "b"}
	for _, c := range []struct {
		name      string
		err       error
		permanent bool
	}{
		{"marked", Permanent(errors.New("no")), true},
		{"wrapped mark", fmt.Errorf("deliver: %w", Permanent(errors.New("no"))), true},
		{"cannot encode", fmt.Errorf("update: %w", fmt.Errorf("%w: %v", converter.ErrUnableToEncode, encodeErr)), true},
		{"json value", fmt.Errorf("update: %w", encodeErr), true},
		{"invalid argument", serviceerror.NewInvalidArgument("blob size exceeds limit"), true},
		{"validator says no", temporal.NewNonRetryableApplicationError("no 7s windows", workflows.ErrorTypeUnknownWindow, nil), true},
		{"overlap", temporal.NewNonRetryableApplicationError("overlap", workflows.ErrorTypeOffsetsApplied, nil), false},
		{"unavailable", serviceerror.NewUnavailable("connection refused"), false},
		{"deadline", context.DeadlineExceeded, false},
		{"retryable application error", temporal.NewApplicationError("busy", "Busy"), false},
		{"nil", nil, false},
	} {
		if _, ok := AsPermanent(c.err); ok != c.permanent {
			t.Errorf("%s: permanent %v, want %v", c.name, ok, c.permanent)
		}
	}
	p, _ := AsPermanent(Permanent(errors.New("no"), r2))
	if got := p.records([]Routed{r1, r2}); len(got) != 1 || got[0].WorkflowID != "b" {
		t.Errorf("records to blame %+v", got)
	}
	p, _ = AsPermanent(Permanent(errors.New("no")))
	if got := p.records([]Routed{r1, r2}); len(got) != 2 {
		t.Errorf("records to blame %+v", got)
	}
}

// A dead letter's key and reason are stored as any database's text column takes them.
func TestStorableText(t *testing.T) {
	for in, want := range map[string]string{
		"plain":                       "plain",
		"nul\x00inside":               "nul\uFFFDinside",
		"bad\xffutf8":                 "bad\uFFFDutf8",
		"é" + strings.Repeat("x", 12): "é" + strings.Repeat("x", 10),
	} {
		if got := storable(in, 12); got != want {
			t.Errorf("storable(%q) = %q, want %q", in, got, want)
		}
	}
	if got := storable("ééééé", 5); got != "éé" {
		t.Errorf("cut inside a character: %q", got)
	}
}
