package bridge_test

import (
	"context"
	"fmt"
	"log/slog"
	"path/filepath"
	"slices"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/confluentinc/confluent-kafka-go/v2/kafka"
	"gorm.io/gorm"

	"github.com/tributary-dev/tributary/bridge"
	"github.com/tributary-dev/tributary/internal/db"
	"github.com/tributary-dev/tributary/internal/embedded"
	"github.com/tributary-dev/tributary/internal/kafkaio"
)

// recorder is a pipeline that routes each partition to a workflow of its own and keeps
// what each delivery carried. Its first delivery holds until the bridge decodes a record
// of a later batch: the proof that decoding overlaps delivering.
type recorder struct {
	topic string

	mu        sync.Mutex
	delivered map[string][]int64 // workflow -> offsets, in delivery order
	busy      map[string]bool    // workflow -> a delivery runs
	overlaps  []string           // what went wrong: two deliveries of one workflow at once
	routed    map[int64]bool     // partition<<32|offset of every record routed
	firstDone bool
	later     chan struct{} // closed once a record past the first batch is routed
	first     map[int64]bool
}

func (r *recorder) Name() string     { return "pipelined" }
func (r *recorder) Topics() []string { return []string{r.topic} }

func (r *recorder) Route(m *kafka.Message) (bridge.Routed, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	k := int64(m.TopicPartition.Partition)<<32 | int64(m.TopicPartition.Offset)
	r.routed[k] = true
	if r.first != nil && !r.first[k] {
		select {
		case <-r.later:
		default:
			close(r.later)
		}
	}
	return bridge.Routed{WorkflowID: "p" + strconv.Itoa(int(m.TopicPartition.Partition)), Msg: m, At: m.Timestamp}, nil
}

func (r *recorder) Deliver(ctx context.Context, id string, recs []bridge.Routed, _ time.Time) error {
	r.mu.Lock()
	if r.busy[id] {
		r.overlaps = append(r.overlaps, id)
	}
	r.busy[id] = true
	waitForLater := !r.firstDone
	if waitForLater {
		r.firstDone = true
		r.first = map[int64]bool{}
		for k := range r.routed {
			r.first[k] = true
		}
	}
	r.mu.Unlock()
	if waitForLater {
		select {
		case <-r.later:
		case <-time.After(20 * time.Second): // checked below: the overlap never came
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, rec := range recs {
		r.delivered[id] = append(r.delivered[id], int64(rec.Msg.TopicPartition.Offset))
	}
	r.busy[id] = false
	return nil
}

func (r *recorder) count() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	n := 0
	for _, offs := range r.delivered {
		n += len(offs)
	}
	return n
}

// bridgeTestbed starts a broker of the test's own with topic over partitions, and a results
// database for the bridge's input progress; the broker stops when the test ends.
func bridgeTestbed(ctx context.Context, t *testing.T, topic string, partitions int) (*embedded.Broker, *gorm.DB, *slog.Logger) {
	t.Helper()
	broker, err := embedded.StartLoopbackBroker(partitions)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(broker.Close)
	if err := kafkaio.EnsureTopics(ctx, broker.Address, partitions, topic); err != nil {
		t.Fatal(err)
	}
	log := slog.New(slog.DiscardHandler)
	g, err := db.Open(filepath.Join(t.TempDir(), "results.db"), log)
	if err != nil {
		t.Fatal(err)
	}
	if err := db.Migrate(g); err != nil {
		t.Fatal(err)
	}
	return broker, g, log
}

// sendValues produces one record per value to partition 0 of topic, in order.
func sendValues(ctx context.Context, t *testing.T, pr *kafkaio.Producer, topic string, values ...string) {
	t.Helper()
	msgs := make([]*kafka.Message, len(values))
	for i, v := range values {
		msgs[i] = &kafka.Message{TopicPartition: kafka.TopicPartition{Topic: &topic, Partition: 0}, Value: []byte(v)}
	}
	if err := pr.Send(ctx, msgs...); err != nil {
		t.Fatal(err)
	}
}

// runBridgeUntil runs a bridge of p until until says so, polling, for a minute at most,
// and stops it; what names what until waits for, for the failure.
func runBridgeUntil(ctx context.Context, t *testing.T, p bridge.Pipeline, opts bridge.Options, what string, until func() bool) {
	t.Helper()
	b, err := bridge.New(p, opts)
	if err != nil {
		t.Fatal(err)
	}
	runCtx, stop := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- b.Run(runCtx) }()
	deadline := time.Now().Add(time.Minute)
	for !until() {
		if time.Now().After(deadline) {
			stop()
			<-done
			t.Fatalf("after a minute the bridge had not %s", what)
		}
		select {
		case err := <-done:
			t.Fatalf("bridge ended early: %v", err)
		case <-time.After(20 * time.Millisecond):
		}
	}
	stop()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}

// TestBridgeDecodesTheNextBatchWhileDeliveringAndKeepsOrder runs a bridge on a real broker
// over 4 partitions with small batches. It must decode a batch while the one before is
// being delivered, never deliver to one workflow twice at once, hand each workflow its
// partition in offset order, deliver every record once, and commit the end of the topic.
func TestBridgeDecodesTheNextBatchWhileDeliveringAndKeepsOrder(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	const topic, n = "pipelined", 8000
	broker, g, log := bridgeTestbed(ctx, t, topic, 4)
	p, err := kafkaio.NewProducer(broker.Address, log, nil)
	if err != nil {
		t.Fatal(err)
	}
	msgs := make([]*kafka.Message, n)
	for i := range msgs {
		tp := topic
		msgs[i] = &kafka.Message{TopicPartition: kafka.TopicPartition{Topic: &tp, Partition: int32(i % 4)}, Value: []byte(fmt.Sprint(i))}
	}
	if err := p.Send(ctx, msgs...); err != nil {
		t.Fatal(err)
	}
	p.Close()

	rec := &recorder{topic: topic, delivered: map[string][]int64{}, busy: map[string]bool{}, routed: map[int64]bool{}, later: make(chan struct{})}
	opts := bridge.DefaultOptions()
	opts.Bootstrap, opts.DB, opts.Log, opts.MaxBatch = broker.Address, g, log, 500
	runBridgeUntil(ctx, t, rec, opts, "delivered every record", func() bool { return rec.count() >= n })

	select {
	case <-rec.later:
	default:
		t.Error("the first delivery ended before any record of a later batch was decoded: no overlap")
	}
	if len(rec.overlaps) > 0 {
		t.Errorf("deliveries to one workflow ran at once: %v", rec.overlaps)
	}
	total := 0
	for id, offs := range rec.delivered {
		for i, o := range offs {
			if o != int64(i) {
				t.Fatalf("%s: delivery %d has offset %d, want %d (every record once, in order)", id, i, o, i)
			}
		}
		total += len(offs)
	}
	if total != n {
		t.Fatalf("%d records delivered, want %d", total, n)
	}
	parts, err := kafkaio.GroupOffsets(ctx, broker.Address, bridge.GroupID(rec.Name()), topic)
	if err != nil {
		t.Fatal(err)
	}
	for _, tp := range parts {
		if tp.Offset != n/4 {
			t.Errorf("partition %d committed at %v, want %d: the last batch's offsets are stored on stop", tp.Partition, tp.Offset, n/4)
		}
	}
}

// threes is a pipeline whose batch is complete with three records: a Gatherer.
type threes struct {
	topic   string
	mu      sync.Mutex
	batches [][]int64
}

func (p *threes) Name() string     { return "threes" }
func (p *threes) Topics() []string { return []string{p.topic} }
func (p *threes) Route(m *kafka.Message) (bridge.Routed, error) {
	return bridge.Routed{WorkflowID: "w", Msg: m, At: m.Timestamp}, nil
}

func (p *threes) Deliver(_ context.Context, _ string, recs []bridge.Routed, _ time.Time) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	var offs []int64
	for _, r := range recs {
		offs = append(offs, int64(r.Msg.TopicPartition.Offset))
	}
	p.batches = append(p.batches, offs)
	return nil
}

func (p *threes) Gather() func(*kafka.Message) bool {
	n := 0
	return func(*kafka.Message) bool { n++; return n%3 == 0 }
}

func (p *threes) delivered() [][]int64 {
	p.mu.Lock()
	defer p.mu.Unlock()
	return slices.Clone(p.batches)
}

// TestGatheredBatchGoesBeforeItsWindow: with a gather window of ten minutes, a batch the
// pipeline calls complete is delivered at once, whole.
func TestGatheredBatchGoesBeforeItsWindow(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	const topic = "gathered"
	broker, g, log := bridgeTestbed(ctx, t, topic, 1)
	pr, err := kafkaio.NewProducer(broker.Address, log, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer pr.Close()
	sendValues(ctx, t, pr, topic, "0", "1", "2")
	p := &threes{topic: topic}
	opts := bridge.DefaultOptions()
	// Both windows long: only the Gatherer can send the batch within the test's minute.
	opts.Bootstrap, opts.DB, opts.Log, opts.GatherWindow, opts.BatchWindow = broker.Address, g, log, 10*time.Minute, 10*time.Minute
	runBridgeUntil(ctx, t, p, opts, "delivered its three records: the batch waited for its window", func() bool {
		n := 0
		for _, batch := range p.delivered() {
			n += len(batch)
		}
		return n >= 3
	})
	if got := p.delivered(); len(got) != 1 || !slices.Equal(got[0], []int64{0, 1, 2}) {
		t.Errorf("delivered %v, want one batch of offsets 0, 1 and 2", got)
	}
}

// pairs is a Holder pipeline: a record's value names its workflow, which is complete with
// two records. A delivery to block waits until the bridge stops.
type pairs struct {
	topic     string
	block     string
	blocked   chan struct{}
	mu        sync.Mutex
	delivered map[string][][]int64
}

func newPairs(topic, block string) *pairs {
	return &pairs{topic: topic, block: block, blocked: make(chan struct{}), delivered: map[string][][]int64{}}
}

func (p *pairs) Name() string     { return "pairs" }
func (p *pairs) Topics() []string { return []string{p.topic} }
func (p *pairs) Route(m *kafka.Message) (bridge.Routed, error) {
	return bridge.Routed{WorkflowID: string(m.Value), Msg: m, At: m.Timestamp}, nil
}
func (p *pairs) Hold(recs []bridge.Routed, _ bool) bool { return len(recs) < 2 }

func (p *pairs) Deliver(ctx context.Context, id string, recs []bridge.Routed, _ time.Time) error {
	var offs []int64
	for _, r := range recs {
		offs = append(offs, int64(r.Msg.TopicPartition.Offset))
	}
	p.mu.Lock()
	p.delivered[id] = append(p.delivered[id], offs)
	p.mu.Unlock()
	if id == p.block {
		close(p.blocked)
		<-ctx.Done()
		return ctx.Err()
	}
	return nil
}

func (p *pairs) deliveries(id string) [][]int64 {
	p.mu.Lock()
	defer p.mu.Unlock()
	return slices.Clone(p.delivered[id])
}

// TestHeldRecordsGoWholeAndHoldTheOffsets: batches of three records cut through workflows
// of two (a b a | b c c), and the bridge holds an incomplete workflow's records for the
// next batch, which delivers both at once. While a held record is undelivered, no stored
// offset passes it, though a later record of its partition (a's second) is delivered: a
// bridge stopped with the held workflow's delivery unfinished commits the offset of that
// workflow's first record, and the next bridge of the group delivers it.
func TestHeldRecordsGoWholeAndHoldTheOffsets(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	const topic = "held"
	broker, g, log := bridgeTestbed(ctx, t, topic, 1)
	pr, err := kafkaio.NewProducer(broker.Address, log, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer pr.Close()
	sendValues(ctx, t, pr, topic, "a", "b", "a", "b", "c", "c")
	run := func(p *pairs, until func() bool) {
		t.Helper()
		opts := bridge.DefaultOptions()
		opts.Bootstrap, opts.DB, opts.Log, opts.MaxBatch = broker.Address, g, log, 3
		runBridgeUntil(ctx, t, p, opts, "delivered what the test waits for", until)
	}

	first := newPairs(topic, "b")
	run(first, func() bool {
		select {
		case <-first.blocked:
			return true
		default:
			return false
		}
	})
	if got := first.deliveries("a"); len(got) != 1 || !slices.Equal(got[0], []int64{0, 2}) {
		t.Errorf("a got %v, want one delivery of offsets 0 and 2", got)
	}
	if got := first.deliveries("b"); len(got) != 1 || !slices.Equal(got[0], []int64{1, 3}) {
		t.Errorf("b got %v, want one delivery of offsets 1 and 3: held records go with the rest", got)
	}
	parts, err := kafkaio.GroupOffsets(ctx, broker.Address, bridge.GroupID("pairs"), topic)
	if err != nil {
		t.Fatal(err)
	}
	if len(parts) != 1 || parts[0].Offset != 1 {
		t.Fatalf("committed %v, want offset 1: the first record b's unfinished delivery holds", parts)
	}

	second := newPairs(topic, "")
	run(second, func() bool { return len(second.deliveries("c")) > 0 })
	if got := second.deliveries("b"); len(got) != 1 || !slices.Equal(got[0], []int64{1, 3}) {
		t.Errorf("the next bridge gave b %v, want offsets 1 and 3", got)
	}
	if got := second.deliveries("c"); len(got) != 1 || !slices.Equal(got[0], []int64{4, 5}) {
		t.Errorf("the next bridge gave c %v, want offsets 4 and 5", got)
	}
	committed := func(want kafka.Offset, why string) {
		t.Helper()
		parts, err := kafkaio.GroupOffsets(ctx, broker.Address, bridge.GroupID("pairs"), topic)
		if err != nil {
			t.Fatal(err)
		}
		if len(parts) != 1 || parts[0].Offset != want {
			t.Fatalf("committed %v, want offset %d: %s", parts, want, why)
		}
	}
	committed(6, "the end")

	// x y x: y is held, x delivered past it; y's pair never comes, and y goes alone in
	// the next batch, which holds nothing past it: the commit then reaches past x too.
	sendValues(ctx, t, pr, topic, "x", "y", "x")
	third := newPairs(topic, "")
	run(third, func() bool { return len(third.deliveries("y")) > 0 })
	if got := third.deliveries("y"); len(got) != 1 || !slices.Equal(got[0], []int64{7}) {
		t.Errorf("y got %v, want offset 7 once", got)
	}
	committed(9, "the end, past what was delivered beside the held record")
}
