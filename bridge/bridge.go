// Package bridge moves records from Kafka into Temporal workflows. It is a consumer-group
// member that polls a batch, validates each record (a bad one goes to its topic's
// dead-letter topic with the reason), groups the rest by target workflow, sends one signal
// or update per workflow per batch, and stores offsets only once every one of them was
// accepted. Offsets are committed on a timer, on revoke and on close, so a crash resends at
// most the uncommitted batches, which the workflows recognise by offset.
package bridge

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
	"unicode/utf8"

	"github.com/confluentinc/confluent-kafka-go/v2/kafka"
	"gorm.io/gorm"
	"gorm.io/gorm/clause"

	"github.com/tributary-dev/tributary/internal/kafkaio"
	"github.com/tributary-dev/tributary/internal/metrics"
	"github.com/tributary-dev/tributary/internal/outbox"
	"github.com/tributary-dev/tributary/schemas"
)

// GroupID is the consumer group shared by the bridges of a pipeline.
func GroupID(pipeline string) string { return "tributary-" + pipeline }

// Routed is a valid record on its way to a workflow.
type Routed struct {
	WorkflowID string
	Msg        *kafka.Message
	// At is the record's event time; the bridge dead-letters one too far ahead of its clock.
	At time.Time
	// Value is the pipeline's decoded form of the record.
	Value any
}

// ErrSkip marks a valid record that a pipeline leaves out: its offset advances, and it is
// neither delivered nor dead-lettered.
var ErrSkip = errors.New("skipped")

// Pipeline is what the bridge needs to know of one pipeline.
type Pipeline interface {
	// Name is used in the consumer group id and in logs.
	Name() string
	// Topics are the input topics.
	Topics() []string
	// Route validates a record and names its workflow; an error sends it to the dead-letter topic.
	Route(m *kafka.Message) (Routed, error)
	// Deliver hands one workflow its records of a batch, in offset order per partition,
	// with the pipeline's input watermark as the bridge last read it (zero before the first
	// read). It returns only when the workflow durably accepted them, or with an error: one
	// that can pass is retried; a Permanent one dead-letters the records it names.
	Deliver(ctx context.Context, workflowID string, recs []Routed, watermark time.Time) error
}

// Gatherer is a Pipeline that knows when a batch holds everything its records wait for (a
// join: a row of every event id on every topic), so that the batch goes then instead of at
// the end of its window, which is GatherWindow rather than BatchWindow. An event's rows
// reach the bridge from a fraction of a millisecond to a few apart: a window as short as
// the one other pipelines wait out in full sent many an event's rows in two updates, the
// second waiting for the first to come back.
type Gatherer interface {
	// Gather starts a batch. Its function is given each record the batch gathers, in order,
	// and reports whether the batch may go now.
	Gather() func(m *kafka.Message) bool
}

// A Holder is a pipeline that may want a workflow's records of a batch to wait for the
// next batch and go with what it brings: the join's per-event workflows, whose event's
// rows a batch cut through would otherwise reach them in two or three signals, each a
// workflow task. The bridge holds a workflow's records back once at most, and stores no
// offset past them until they are delivered. Holding suits only pipelines whose
// workflows take a partition's records in any order (one workflow per event id): the
// held records go after later ones of their partition that other workflows took.
type Holder interface {
	// Hold reports whether a workflow's records of a batch should wait for the next;
	// heldBefore says they were held once already, and go now whatever Hold says.
	Hold(recs []Routed, heldBefore bool) bool
}

// gatherCheck is how many records of a batch are shown to its Gatherer: batches wait on
// their window at low rates only, and a busy bridge fills them without waiting.
const gatherCheck = 256

// Defaults of Options.
const (
	DefaultMaxBatch       = 20000
	DefaultConcurrency    = 32
	DefaultBatchWindow    = time.Millisecond
	DefaultGatherWindow   = 5 * time.Millisecond
	DefaultCommitInterval = time.Second
	// DefaultFutureTolerance is how far ahead of the bridge's clock an event time may be.
	DefaultFutureTolerance = time.Minute
)

// Options configure a Bridge.
type Options struct {
	Bootstrap string
	// Group is the consumer group id; bridges of one pipeline share it (default GroupID).
	Group string
	// MaxBatch bounds the records of one poll batch, and so the bridge's memory.
	MaxBatch int
	// Concurrency bounds the deliveries in flight.
	Concurrency int
	// BatchWindow is how long a batch keeps gathering after its first record, so that
	// records of one key that arrive together travel in one signal; 0 takes what was
	// fetched without waiting. Under load batches fill without waiting.
	BatchWindow time.Duration
	// GatherWindow is the batch window of a Gatherer pipeline (the join, whose event's rows
	// on three topics should travel together): its batch goes as soon as it is complete and
	// waits this long at most for what it misses.
	GatherWindow time.Duration
	// CommitInterval is how often stored offsets are committed.
	CommitInterval time.Duration
	// FutureTolerance is how far ahead of Now a record's event time may be; a record dated
	// later is dead-lettered, in every pipeline.
	FutureTolerance time.Duration
	// Now is the clock event times are checked against (time.Now when nil).
	Now func() time.Time
	// DB is where the bridge records how far it delivered each partition, from which
	// every pipeline's input watermark is read (internal/watermark). Required.
	DB *gorm.DB
	// ProgressInterval is how often that progress is recorded.
	ProgressInterval time.Duration
	// Log receives the bridge's warnings (slog.Default when nil).
	Log *slog.Logger
	// Ready, if set, is closed once the first partitions are assigned.
	Ready chan struct{}
	// Metrics, if set, count records, deliveries and dead letters and follow each owned
	// partition's lag.
	Metrics *metrics.Set
}

// DefaultOptions are the options a bridge runs with unless told otherwise.
func DefaultOptions() Options {
	return Options{MaxBatch: DefaultMaxBatch, Concurrency: DefaultConcurrency, BatchWindow: DefaultBatchWindow,
		GatherWindow: DefaultGatherWindow, CommitInterval: DefaultCommitInterval, FutureTolerance: DefaultFutureTolerance}
}

// setDefaults fills what was left zero and has a default.
func (o *Options) setDefaults(pipeline string) {
	if o.Group == "" {
		o.Group = GroupID(pipeline)
	}
	if o.MaxBatch == 0 {
		o.MaxBatch = DefaultMaxBatch
	}
	if o.Concurrency == 0 {
		o.Concurrency = DefaultConcurrency
	}
	if o.CommitInterval == 0 {
		o.CommitInterval = DefaultCommitInterval
	}
	if o.ProgressInterval == 0 {
		o.ProgressInterval = DefaultProgressInterval
	}
	if o.Log == nil {
		o.Log = slog.Default()
	}
	if o.Now == nil {
		o.Now = time.Now
	}
}

// Validate reports options a bridge cannot run with.
func (o Options) Validate() error {
	var errs []error
	if o.MaxBatch < 0 {
		errs = append(errs, fmt.Errorf("bridge max batch must be at least 1, got %d", o.MaxBatch))
	}
	if o.Concurrency < 0 {
		errs = append(errs, fmt.Errorf("bridge signal concurrency must be at least 1, got %d", o.Concurrency))
	}
	if o.BatchWindow < 0 || o.GatherWindow < 0 || o.CommitInterval < 0 || o.FutureTolerance < 0 || o.ProgressInterval < 0 {
		errs = append(errs, fmt.Errorf("bridge batch window (%s), gather window (%s), commit interval (%s), future tolerance (%s) and progress interval (%s) must not be negative",
			o.BatchWindow, o.GatherWindow, o.CommitInterval, o.FutureTolerance, o.ProgressInterval))
	}
	return errors.Join(errs...)
}

// Stats count a bridge's work since it started.
type Stats struct {
	Records, DeadLettered, Signals, Batches, Retries atomic.Int64
	// Pauses counts the batches whose deliveries waited so long that the bridge paused its
	// partitions (Temporal or the database down).
	Pauses atomic.Int64
}

// Bridge is one consumer-group member feeding one pipeline's workflows.
type Bridge struct {
	opts     Options
	pipeline Pipeline
	consumer *kafka.Consumer
	progress *progress
	// carried are what polls returned while the partitions were paused; the next batch
	// starts with them.
	carried     []*kafka.Message
	carriedEnds []kafka.PartitionEOF
	// paused says whether the bridge wants its partitions paused; partitions assigned
	// meanwhile are set the same way (rebalance).
	paused bool
	// rebalances counts revocations, so that a batch polled before one is checked
	// against the assignment before it is delivered.
	rebalances int
	readyOne   sync.Once
	// held are the places of the records last held back (Holder), which are not held
	// again; ahead, per partition, what was delivered past them (settle).
	held  map[place]bool
	ahead map[partition]*ahead
	// Stats are safe to read while the bridge runs.
	Stats Stats
}

// New connects a bridge; Run starts it.
func New(p Pipeline, opts Options) (*Bridge, error) {
	if err := opts.Validate(); err != nil {
		return nil, err
	}
	if opts.DB == nil {
		return nil, fmt.Errorf("bridge %s: no database for its input progress", p.Name())
	}
	opts.setDefaults(p.Name())
	conf := kafkaio.ConsumerConfig(opts.Bootstrap, opts.Group)
	// The end of a partition is where its progress can claim "caught up" (see progress).
	conf["enable.partition.eof"] = true
	// What a bridge fetches ahead of its deliveries stays bounded (see also await).
	conf["queued.max.messages.kbytes"] = 16 * 1024
	c, err := kafka.NewConsumer(&conf)
	if err != nil {
		return nil, fmt.Errorf("bridge %s: consumer: %w", p.Name(), err)
	}
	prog := newProgress(opts.DB, p.Name(), opts.ProgressInterval, opts.Log)
	prog.metrics = opts.Metrics
	if prog.admin, err = kafka.NewAdminClientFromConsumer(c); err != nil {
		_ = c.Close()
		return nil, fmt.Errorf("bridge %s: admin client: %w", p.Name(), err)
	}
	return &Bridge{opts: opts, pipeline: p, consumer: c, progress: prog, ahead: map[partition]*ahead{}}, nil
}

// Pipeline is the pipeline the bridge feeds.
func (b *Bridge) Pipeline() Pipeline { return b.pipeline }

// Run consumes until ctx ends, then commits what was stored and leaves the group.
func (b *Bridge) Run(ctx context.Context) error {
	log := b.opts.Log.With("pipeline", b.pipeline.Name())
	defer func() {
		b.commit(log)
		b.progress.admin.Close()
		if err := b.consumer.Close(); err != nil {
			log.Warn("bridge close", "err", err)
		}
	}()
	if err := b.progress.register(ctx, b.consumer, b.pipeline.Topics()); err != nil {
		return fmt.Errorf("bridge %s: %w", b.pipeline.Name(), err)
	}
	if err := b.consumer.SubscribeTopics(b.pipeline.Topics(), b.rebalance); err != nil {
		return fmt.Errorf("bridge %s: subscribe %v: %w", b.pipeline.Name(), b.pipeline.Topics(), err)
	}
	b.progress.tick(ctx) // the watermark earlier bridges reached, before the first batch
	lastCommit := time.Now()
	// One batch is delivered while the next is polled and decoded: the deliveries wait on
	// the server, the decoding on the CPU. Deliveries themselves stay in batch order, so a
	// workflow gets a partition's records in offset order, as without the overlap.
	var inflight *flight
	defer func() {
		// The batch in flight when the bridge stops is finished, and its offsets stored if
		// its deliveries went through, so that the next owner does not send it again.
		if inflight != nil {
			if err := b.finish(ctx, inflight); err != nil && ctx.Err() == nil {
				log.Warn("bridge: last batch", "err", err)
			}
		}
	}()
	for ctx.Err() == nil {
		batch, ends, err := b.poll(ctx)
		if err != nil {
			return err
		}
		next := b.route(nil, batch, ends)
		if inflight != nil {
			err := b.finish(ctx, inflight)
			inflight = nil
			if err != nil {
				if ctx.Err() != nil {
					return nil
				}
				return err
			}
			// What was fetched while the last batch was delivered goes with this one, not a
			// delivery later: at a low rate a record would otherwise wait for two.
			more, moreEnds, err := b.fetched(b.opts.MaxBatch - len(next.batch))
			if err != nil {
				return err
			}
			b.route(next, more, moreEnds)
		}
		b.holdBack(next)
		if len(next.batch) > 0 {
			inflight = b.start(ctx, next)
		} else {
			b.reachedEnds(next.ends)
		}
		if time.Since(lastCommit) >= b.opts.CommitInterval {
			b.commit(log)
			lastCommit = time.Now()
		}
		b.progress.tick(ctx)
	}
	return nil
}

// poll waits briefly for a first record, then gathers for BatchWindow more, taking what is
// already fetched without waiting once the window has passed, up to MaxBatch records; a
// Gatherer's batch goes as soon as it says so. It also returns the partition ends it met,
// which hold once the batch is delivered.
//
// It gathers into b.carried, where a rebalance (run by the consumer within Poll) drops the
// records of partitions taken away: a partition lost and given back within one batch is
// fetched again from its last commit, and the records gathered before would otherwise be
// in the batch twice, and counted twice.
func (b *Bridge) poll(ctx context.Context) ([]*kafka.Message, []kafka.PartitionEOF, error) {
	defer func() { b.carried, b.carriedEnds = nil, nil }()
	var windowEnd time.Time
	if len(b.carried) > 0 {
		windowEnd = time.Now() // what was carried goes without waiting for more
	}
	window := b.opts.BatchWindow
	var gathered func(*kafka.Message) bool
	if g, ok := b.pipeline.(Gatherer); ok {
		window = b.opts.GatherWindow
		if len(b.carried) == 0 {
			gathered = g.Gather()
		}
	}
	for len(b.carried) < b.opts.MaxBatch && ctx.Err() == nil {
		timeout := 50
		if len(b.carried) > 0 {
			// A long window is waited out in steps, so that a bridge told to stop does.
			timeout = min(int(time.Until(windowEnd).Milliseconds()), 50)
			if timeout < 0 {
				timeout = 0
			}
		}
		ev := b.consumer.Poll(timeout)
		if ev == nil {
			if len(b.carried) == 0 || time.Now().After(windowEnd) {
				break
			}
			continue
		}
		had := len(b.carried)
		if err := b.take(ev); err != nil {
			return b.carried, b.carriedEnds, err
		}
		if had == 0 && len(b.carried) > 0 {
			windowEnd = time.Now().Add(window)
		}
		if gathered != nil && len(b.carried) > had {
			if len(b.carried) > gatherCheck {
				gathered = nil
			} else if gathered(b.carried[had]) {
				break
			}
		}
	}
	return b.carried, b.carriedEnds, nil
}

// fetched takes up to n records the consumer has already fetched, without waiting, with
// the partition ends among them. Like poll, it gathers into b.carried.
func (b *Bridge) fetched(n int) ([]*kafka.Message, []kafka.PartitionEOF, error) {
	defer func() { b.carried, b.carriedEnds = nil, nil }()
	for len(b.carried) < n {
		ev := b.consumer.Poll(0)
		if ev == nil {
			break
		}
		if err := b.take(ev); err != nil {
			return b.carried, b.carriedEnds, err
		}
	}
	return b.carried, b.carriedEnds, nil
}

// take keeps what one poll returned in b.carried: a record or a partition end. A record
// the fetch failed and an error that can pass are logged; a fatal error is returned.
func (b *Bridge) take(ev kafka.Event) error {
	switch e := ev.(type) {
	case *kafka.Message:
		if e.TopicPartition.Error != nil {
			b.opts.Log.Warn("bridge fetch", "topic", *e.TopicPartition.Topic, "err", e.TopicPartition.Error)
			return nil
		}
		b.carried = append(b.carried, e)
	case kafka.PartitionEOF:
		b.carriedEnds = append(b.carriedEnds, e)
	case kafka.Error:
		if e.IsFatal() {
			b.opts.Metrics.FatalError("bridge " + b.pipeline.Name())
			return fmt.Errorf("bridge %s: fatal kafka error: %w", b.pipeline.Name(), e)
		}
		b.opts.Log.Warn("bridge kafka", "err", e, "code", e.Code())
	}
	return nil
}

// routed is a polled batch decoded and grouped by workflow, with the partition ends polled
// with it, which hold once it is delivered.
type routed struct {
	batch  []*kafka.Message
	ends   []kafka.PartitionEOF
	groups map[string][]Routed
	order  []string
	dead   []*kafka.Message // bad at decode, or dated too far ahead
	at     []time.Time      // each record's event time, zero if not delivered
	// rebalances is the bridge's count of revocations when the batch was polled.
	rebalances int
	// seen holds the place of every record in batch.
	seen map[place]bool
	// heldFrom is, per partition with records held back for the next batch (Holder), the
	// first held offset: the batch stores no offset, and notes no progress, past it.
	heldFrom map[partition]kafka.Offset
}

// flight is a routed batch whose deliveries run.
type flight struct {
	*routed
	done chan struct{}
	out  *outcome
}

// route decodes and groups a batch into r, or into a new routed batch when r is nil, and
// returns it. A record already in r is left out: poll drops what it gathered of a
// partition taken away, so one given back is not in a batch twice, and this is the second
// guard, also over a batch topped up after polling. It matters because a pre-aggregated
// partial would count such a record twice, and the workflows' offset checks see only
// ranges.
func (b *Bridge) route(r *routed, batch []*kafka.Message, ends []kafka.PartitionEOF) *routed {
	if r == nil {
		r = &routed{groups: map[string][]Routed{}, seen: map[place]bool{}, rebalances: b.rebalances}
	}
	r.ends = append(r.ends, ends...)
	now := b.opts.Now()
	for _, m := range batch {
		k := placeOf(m)
		if r.seen[k] {
			continue
		}
		r.seen[k] = true
		r.batch = append(r.batch, m)
		r.at = append(r.at, time.Time{})
		rec, err := b.admit(m, now)
		if errors.Is(err, ErrSkip) {
			continue
		}
		if err != nil {
			r.dead = append(r.dead, kafkaio.DeadLetter(m, err.Error()))
			continue
		}
		r.at[len(r.at)-1] = rec.At
		if _, ok := r.groups[rec.WorkflowID]; !ok {
			r.order = append(r.order, rec.WorkflowID)
		}
		r.groups[rec.WorkflowID] = append(r.groups[rec.WorkflowID], rec)
	}
	return r
}

// start delivers a routed batch, with the input watermark as it is now. Partitions taken
// away since the batch was polled are left out: their next owner reads them.
func (b *Bridge) start(ctx context.Context, r *routed) *flight {
	if b.rebalances != r.rebalances {
		b.keepAssigned(r)
	}
	f := &flight{routed: r, done: make(chan struct{}), out: &outcome{dead: r.dead}}
	wm := b.progress.watermark()
	go func() {
		defer close(f.done)
		b.deliverAll(ctx, r.order, r.groups, wm, f.out)
	}()
	return f
}

// holdBack takes out of a routed batch the records of workflows a Holder pipeline calls
// incomplete, unless some of them were held back before, and carries them into the next
// batch, with the partition ends polled after them.
func (b *Bridge) holdBack(r *routed) {
	h, ok := b.pipeline.(Holder)
	if !ok {
		return
	}
	before := b.held
	b.held = map[place]bool{}
	r.order = slices.DeleteFunc(r.order, func(id string) bool {
		recs := r.groups[id]
		heldBefore := slices.ContainsFunc(recs, func(rec Routed) bool { return before[placeOf(rec.Msg)] })
		if !h.Hold(recs, heldBefore) || heldBefore {
			return false
		}
		for _, rec := range recs {
			b.held[placeOf(rec.Msg)] = true
		}
		delete(r.groups, id)
		return true
	})
	if len(b.held) == 0 {
		return
	}
	r.heldFrom = map[partition]kafka.Offset{}
	var held []*kafka.Message
	keep, at := r.batch[:0:0], []time.Time(nil)
	for i, m := range r.batch {
		if !b.held[placeOf(m)] {
			keep, at = append(keep, m), append(at, r.at[i])
			continue
		}
		held = append(held, m)
		if _, ok := r.heldFrom[partitionOf(m)]; !ok {
			r.heldFrom[partitionOf(m)] = m.TopicPartition.Offset // a partition's records come in offset order
		}
	}
	r.batch, r.at = keep, at
	// Held records precede what the next poll fetches, so they go first, in the order
	// they came; an end polled after them holds once they are delivered.
	b.carried = append(held, b.carried...)
	r.ends = slices.DeleteFunc(r.ends, func(e kafka.PartitionEOF) bool {
		if _, ok := r.heldFrom[partition{*e.Topic, e.Partition}]; ok {
			b.carriedEnds = append(b.carriedEnds, e)
			return true
		}
		return false
	})
}

// ahead is what a partition delivered past a record held back (Holder): the offset after
// it, and its records with their event times. It is stored and noted once no record
// before it is held.
type ahead struct {
	next kafka.Offset
	recs []*kafka.Message
	at   []time.Time
}

// settle notes the input progress of a delivered batch and returns the offsets it stores:
// per partition, the one after its records, or after the records delivered past a held
// one once that is delivered too; with a record held back, the first held one.
func (b *Bridge) settle(f *flight) []kafka.TopicPartition {
	for i, m := range f.batch {
		k := partitionOf(m)
		if from, held := f.heldFrom[k]; held && m.TopicPartition.Offset > from {
			a := b.aheadOf(k)
			a.recs, a.at = append(a.recs, m), append(a.at, f.at[i])
			continue
		}
		b.progress.delivered(m, f.at[i])
	}
	next := map[partition]kafka.Offset{}
	for _, tp := range nextOffsets(f.batch) {
		next[partition{*tp.Topic, tp.Partition}] = tp.Offset
	}
	for k, a := range b.ahead {
		next[k] = max(next[k], a.next)
	}
	offsets := make([]kafka.TopicPartition, 0, len(next))
	for k, off := range next {
		if from, held := f.heldFrom[k]; held {
			if off > from {
				b.aheadOf(k).next = max(b.ahead[k].next, off)
				off = from
			}
		} else if a, ok := b.ahead[k]; ok {
			for i, m := range a.recs {
				b.progress.delivered(m, a.at[i])
			}
			delete(b.ahead, k)
		}
		topic := k.topic
		offsets = append(offsets, kafka.TopicPartition{Topic: &topic, Partition: k.part, Offset: off})
	}
	return offsets
}

// aheadOf returns the partition's ahead, made if it has none.
func (b *Bridge) aheadOf(k partition) *ahead {
	if b.ahead[k] == nil {
		b.ahead[k] = &ahead{}
	}
	return b.ahead[k]
}

// keepAssigned drops from a routed batch the records of partitions the bridge no longer
// owns.
func (b *Bridge) keepAssigned(r *routed) {
	parts, err := b.consumer.Assignment()
	if err != nil {
		return // the workflows' offset checks recognise records another owner sends too
	}
	owned := map[partition]bool{}
	for _, tp := range parts {
		owned[partition{*tp.Topic, tp.Partition}] = true
	}
	gone := func(m *kafka.Message) bool {
		return !owned[partition{*m.TopicPartition.Topic, m.TopicPartition.Partition}]
	}
	keep := r.batch[:0:0]
	var at []time.Time
	for i, m := range r.batch {
		if !gone(m) {
			keep, at = append(keep, m), append(at, r.at[i])
		}
	}
	r.batch, r.at = keep, at
	r.dead = slices.DeleteFunc(r.dead, gone)
	for id, recs := range r.groups {
		if recs = slices.DeleteFunc(recs, func(rec Routed) bool { return gone(rec.Msg) }); len(recs) > 0 {
			r.groups[id] = recs
		} else {
			delete(r.groups, id)
		}
	}
	r.order = slices.DeleteFunc(r.order, func(id string) bool { _, ok := r.groups[id]; return !ok })
	r.ends = slices.DeleteFunc(r.ends, func(e kafka.PartitionEOF) bool { return !owned[partition{*e.Topic, e.Partition}] })
}

// finish waits for a batch's deliveries, dead-letters the records that cannot be used (bad
// at decode, dated too far ahead, or refused for good on delivery), stores offsets, and
// notes the progress.
func (b *Bridge) finish(ctx context.Context, f *flight) error {
	b.await(f.done)
	out := f.out
	if err := errors.Join(out.errs...); err != nil {
		return err
	}
	if err := b.retry(ctx, "dead-letter", func() error { return b.deadLetter(ctx, out.dead) }); err != nil {
		return err
	}
	b.Stats.Records.Add(int64(len(f.batch)))
	b.Stats.DeadLettered.Add(int64(len(out.dead)))
	b.opts.Metrics.Batch(b.pipeline.Name(), len(f.batch), len(f.order))
	for _, m := range out.dead {
		b.opts.Metrics.DeadLettered(b.pipeline.Name(), kafkaio.Header(m, kafkaio.HeaderReason))
	}
	b.Stats.Signals.Add(int64(len(f.order)))
	b.Stats.Batches.Add(1)
	if offsets := b.settle(f); len(offsets) > 0 {
		if _, err := b.consumer.StoreOffsets(offsets); err != nil {
			var ke kafka.Error
			if !errors.As(err, &ke) || (ke.Code() != kafka.ErrState && ke.Code() != kafka.ErrUnknownPartition) {
				return fmt.Errorf("bridge %s: store offsets: %w", b.pipeline.Name(), err)
			}
			// The partitions moved while the batch waited: their next owner delivers from the
			// last commit again, and the workflows recognise what they applied.
			b.opts.Log.Info("bridge: partitions moved during a batch", "pipeline", b.pipeline.Name())
		}
	}
	b.reachedEnds(f.ends)
	return nil
}

// reachedEnds applies the partition ends polled with a batch once it is delivered.
func (b *Bridge) reachedEnds(ends []kafka.PartitionEOF) {
	for _, e := range ends {
		b.progress.reachedEnd(e)
	}
}

// outcome gathers what a batch's deliveries report.
type outcome struct {
	mu   sync.Mutex
	errs []error
	// dead are the batch's dead letters: bad at decode, and refused for good on delivery.
	dead []*kafka.Message
}

// deliverAll hands each workflow its records, at most Concurrency at a time, and returns
// once every delivery has ended.
func (b *Bridge) deliverAll(ctx context.Context, order []string, groups map[string][]Routed, wm time.Time, out *outcome) {
	sem := make(chan struct{}, b.opts.Concurrency)
	var wg sync.WaitGroup
	for _, id := range order {
		sem <- struct{}{}
		wg.Add(1)
		go func(id string, recs []Routed) {
			defer func() { <-sem; wg.Done() }()
			err := b.retry(ctx, "deliver "+id, func() error {
				actx, cancel := context.WithTimeout(ctx, attemptTimeout)
				defer cancel()
				return b.pipeline.Deliver(actx, id, recs, wm)
			})
			out.mu.Lock()
			defer out.mu.Unlock()
			if p, ok := AsPermanent(err); ok {
				b.opts.Log.Error("bridge: records refused for good are dead-lettered", "pipeline", b.pipeline.Name(), "workflow", id, "err", p.Err)
				for _, r := range p.records(recs) {
					out.dead = append(out.dead, kafkaio.DeadLetter(r.Msg, "undeliverable: "+p.Err.Error()))
				}
				return
			}
			if err != nil {
				out.errs = append(out.errs, err)
			}
		}(id, groups[id])
	}
	wg.Wait()
}

// pauseAfter is how long a batch's deliveries may wait before the bridge pauses its
// partitions.
const pauseAfter = 2 * time.Second

// attemptTimeout bounds one delivery attempt. A call can outlive its server (an update
// admitted but never accepted before a restart, a connection that died under a stopped
// process) and would then wait forever; the attempt is dropped and made again, which the
// workflows recognise by offsets, as they do any redelivery.
const attemptTimeout = time.Minute

// await waits for a batch's deliveries. Should they wait longer than pauseAfter (Temporal
// or the database down), the bridge pauses its partitions, so that it fetches nothing more
// while it cannot deliver, and polls twice a second, so that it stays in its group; what
// those polls still return is carried into the next batch.
func (b *Bridge) await(delivered <-chan struct{}) {
	wait := time.NewTimer(pauseAfter)
	defer wait.Stop()
	select {
	case <-delivered:
		return
	case <-wait.C:
	}
	b.Stats.Pauses.Add(1)
	b.setPaused(true)
	defer b.setPaused(false)
	tick := time.NewTicker(500 * time.Millisecond)
	defer tick.Stop()
	for {
		select {
		case <-delivered:
			return
		case <-tick.C:
			b.keepAlive()
		}
	}
}

// setPaused pauses or resumes every partition the bridge owns.
func (b *Bridge) setPaused(paused bool) {
	b.paused = paused
	parts, err := b.consumer.Assignment()
	if err == nil {
		err = b.applyPause(b.consumer, parts)
	}
	if err != nil {
		b.opts.Log.Warn("bridge: pause or resume", "pipeline", b.pipeline.Name(), "paused", paused, "err", err)
		return
	}
	if paused {
		b.opts.Log.Warn("bridge: deliveries wait; partitions paused until they are through", "pipeline", b.pipeline.Name(), "partitions", len(parts))
	} else {
		b.opts.Log.Info("bridge: partitions resumed", "pipeline", b.pipeline.Name(), "partitions", len(parts))
	}
}

// keepAlive polls without waiting, which serves the group (heartbeats run on their own;
// rebalances are handed over here), and carries what it returns into the next batch.
func (b *Bridge) keepAlive() {
	for ev := b.consumer.Poll(0); ev != nil; ev = b.consumer.Poll(0) {
		switch e := ev.(type) {
		case *kafka.Message:
			if e.TopicPartition.Error == nil {
				b.carried = append(b.carried, e)
			}
		case kafka.PartitionEOF:
			b.carriedEnds = append(b.carriedEnds, e)
		case kafka.Error:
			b.opts.Log.Warn("bridge kafka", "err", e, "code", e.Code())
		}
	}
}

// dropCarried forgets what was carried of partitions taken away: their next owner reads it.
func (b *Bridge) dropCarried(tps []kafka.TopicPartition) {
	gone := map[partition]bool{}
	for _, tp := range tps {
		gone[partition{*tp.Topic, tp.Partition}] = true
	}
	b.carried = slices.DeleteFunc(b.carried, func(m *kafka.Message) bool {
		return gone[partition{*m.TopicPartition.Topic, m.TopicPartition.Partition}]
	})
	b.carriedEnds = slices.DeleteFunc(b.carriedEnds, func(e kafka.PartitionEOF) bool { return gone[partition{*e.Topic, e.Partition}] })
}

// storable is s as a text column of any database takes it (PostgreSQL refuses NUL and
// invalid UTF-8, which a malformed record's key may hold), cut to at most n bytes at a
// character boundary.
func storable(s string, n int) string {
	s = strings.ReplaceAll(strings.ToValidUTF8(s, "\uFFFD"), "\x00", "\uFFFD")
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n]
}

// deadLetter writes dead letters to the outbox (internal/outbox), named by their source
// records: a batch delivered again after a crash before its offsets were stored writes
// none twice, and the relay sends each once.
func (b *Bridge) deadLetter(ctx context.Context, dead []*kafka.Message) error {
	if len(dead) == 0 {
		return nil
	}
	now := b.opts.Now().UTC()
	rows := make([]schemas.DeadLetter, 0, len(dead))
	for _, m := range dead {
		part, _ := strconv.ParseInt(kafkaio.Header(m, kafkaio.HeaderSourcePartition), 10, 32)
		off, _ := strconv.ParseInt(kafkaio.Header(m, kafkaio.HeaderSourceOffset), 10, 64)
		rows = append(rows, schemas.DeadLetter{Topic: kafkaio.Header(m, kafkaio.HeaderSourceTopic), Partition: int32(part), Offset: off,
			Pipeline: b.pipeline.Name(), Key: storable(string(m.Key), 200), Reason: storable(kafkaio.Header(m, kafkaio.HeaderReason), 500), At: now})
	}
	return b.opts.DB.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		if err := outbox.Add(tx, outbox.BySource, dead...); err != nil {
			return fmt.Errorf("bridge %s: dead-letter %d records: %w", b.pipeline.Name(), len(dead), err)
		}
		if err := tx.Clauses(clause.OnConflict{DoNothing: true}).CreateInBatches(rows, 200).Error; err != nil {
			return fmt.Errorf("bridge %s: record %d dead letters: %w", b.pipeline.Name(), len(rows), err)
		}
		return nil
	})
}

// admit routes a record and checks its event time against the clock; an error other than
// ErrSkip is the reason the record is dead-lettered.
func (b *Bridge) admit(m *kafka.Message, now time.Time) (Routed, error) {
	r, err := b.pipeline.Route(m)
	if err != nil {
		return r, err
	}
	if err := schemas.CheckEventTime(r.At, now, b.opts.FutureTolerance); err != nil {
		return r, err
	}
	return r, nil
}

// place is where a record sits in Kafka.
type place struct {
	topic     string
	partition int32
	offset    kafka.Offset
}

func partitionOf(m *kafka.Message) partition {
	return partition{*m.TopicPartition.Topic, m.TopicPartition.Partition}
}

func placeOf(m *kafka.Message) place {
	return place{*m.TopicPartition.Topic, m.TopicPartition.Partition, m.TopicPartition.Offset}
}

// nextOffsets is, per partition of the batch, the offset after its last record.
func nextOffsets(batch []*kafka.Message) []kafka.TopicPartition {
	type tp struct {
		topic     string
		partition int32
	}
	high := map[tp]kafka.Offset{}
	var order []tp
	for _, m := range batch {
		k := tp{*m.TopicPartition.Topic, m.TopicPartition.Partition}
		if cur, ok := high[k]; !ok {
			order = append(order, k)
			high[k] = m.TopicPartition.Offset
		} else if m.TopicPartition.Offset > cur {
			high[k] = m.TopicPartition.Offset
		}
	}
	out := make([]kafka.TopicPartition, 0, len(order))
	for _, k := range order {
		out = append(out, kafka.TopicPartition{Topic: &k.topic, Partition: k.partition, Offset: high[k] + 1})
	}
	return out
}

// retry runs fn until it succeeds, fails for good, or ctx ends, backing off up to five
// seconds. A record is never skipped for a failure that can pass: the bridge waits for
// Temporal (or the broker) to come back.
func (b *Bridge) retry(ctx context.Context, what string, fn func() error) error {
	wait := 50 * time.Millisecond
	for {
		err := fn()
		if err == nil {
			return nil
		}
		if _, ok := AsPermanent(err); ok {
			return err
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		b.Stats.Retries.Add(1)
		b.opts.Log.Warn("bridge retry", "what", what, "err", err, "wait", wait)
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(wait):
		}
		wait = min(2*wait, 5*time.Second)
	}
}

// rebalance commits stored offsets before partitions are taken away, so the next owner
// starts right after what this bridge delivered. librdkafka then applies the change itself.
func (b *Bridge) rebalance(c *kafka.Consumer, ev kafka.Event) error {
	switch e := ev.(type) {
	case kafka.AssignedPartitions:
		b.opts.Log.Info("bridge assigned", "pipeline", b.pipeline.Name(), "partitions", partitionList(e.Partitions))
		if err := b.assign(c, e.Partitions); err != nil {
			b.opts.Log.Error("bridge rebalance", "err", err)
		}
		b.progress.assigned(e.Partitions)
		if b.opts.Ready != nil && len(e.Partitions) > 0 {
			b.readyOne.Do(func() { close(b.opts.Ready) })
		}
	case kafka.RevokedPartitions:
		b.opts.Log.Info("bridge revoked", "pipeline", b.pipeline.Name(), "partitions", partitionList(e.Partitions), "lost", c.AssignmentLost())
		b.commit(b.opts.Log)
		b.progress.revoked(e.Partitions)
		b.dropCarried(e.Partitions)
		for _, tp := range e.Partitions {
			delete(b.ahead, partition{*tp.Topic, tp.Partition})
		}
		b.rebalances++
	}
	return nil
}

// partitionList names partitions for a log line: topic/partition, ...
func partitionList(tps []kafka.TopicPartition) string {
	names := make([]string, len(tps))
	for i, tp := range tps {
		names[i] = schemas.TopicPartition(*tp.Topic, tp.Partition)
	}
	return strings.Join(names, ",")
}

// assign takes partitions the group gave this bridge, paused or not as the bridge is.
// librdkafka keeps a partition's pause across rebalances: one paused under an earlier
// assignment, taken away before the bridge resumed what it then owned, would otherwise
// come back paused for good (the fault suite saw a bridge own two partitions and read
// nothing from them after it was stopped past its session timeout).
func (b *Bridge) assign(c *kafka.Consumer, parts []kafka.TopicPartition) error {
	var err error
	if c.GetRebalanceProtocol() == "COOPERATIVE" {
		err = c.IncrementalAssign(parts)
	} else {
		err = c.Assign(parts)
	}
	if err != nil {
		return fmt.Errorf("bridge %s: assign %d partitions: %w", b.pipeline.Name(), len(parts), err)
	}
	if err := b.applyPause(c, parts); err != nil {
		b.opts.Log.Warn("bridge: pause or resume assigned partitions", "pipeline", b.pipeline.Name(), "paused", b.paused, "err", err)
	}
	return nil
}

// applyPause pauses the partitions if the bridge is paused, and resumes them otherwise.
func (b *Bridge) applyPause(c *kafka.Consumer, parts []kafka.TopicPartition) error {
	if b.paused {
		return c.Pause(parts)
	}
	return c.Resume(parts)
}

func (b *Bridge) commit(log *slog.Logger) {
	if _, err := b.consumer.Commit(); err != nil {
		var ke kafka.Error
		if errors.As(err, &ke) && ke.Code() == kafka.ErrNoOffset {
			return
		}
		log.Warn("bridge commit", "err", err)
	}
}
