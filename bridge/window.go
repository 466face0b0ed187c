package bridge

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"sync/atomic"
	"time"

	"github.com/confluentinc/confluent-kafka-go/v2/kafka"
	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/sdk/client"
	"gorm.io/gorm"

	"github.com/tributary-dev/tributary/internal/kafkaio"
	"github.com/tributary-dev/tributary/pipelines"
	"github.com/tributary-dev/tributary/schemas"
	"github.com/tributary-dev/tributary/workflows"
)

// Defaults of WindowOptions.
const (
	DefaultWindowIdle       = 2 * time.Minute
	DefaultWindowMaxUpdates = 1000
	// MaxWindowUpdates is the most updates the server takes in one workflow run.
	MaxWindowUpdates = workflows.MaxRunUpdates
)

// WindowOptions configure a window pipeline's router and, through it, its workflows.
type WindowOptions struct {
	// Shards > 0 hashes keys over that many workflows; 0 runs one per key.
	Shards int
	// Idle ends a per-key workflow after this long without records or open windows.
	Idle time.Duration
	// MaxUpdates makes a workflow continue as new after this many batches.
	MaxUpdates int
	// PerRecord sends each record in an update of its own (no pre-aggregation), for comparison.
	PerRecord bool
}

// DefaultWindowOptions are the options a window pipeline runs with unless told otherwise.
func DefaultWindowOptions() WindowOptions {
	return WindowOptions{Idle: DefaultWindowIdle, MaxUpdates: DefaultWindowMaxUpdates}
}

func (o *WindowOptions) setDefaults() {
	if o.Idle == 0 {
		o.Idle = DefaultWindowIdle
	}
	if o.MaxUpdates == 0 {
		o.MaxUpdates = DefaultWindowMaxUpdates
	}
}

// Validate reports options a window pipeline cannot run with.
func (o WindowOptions) Validate() error {
	var errs []error
	if o.Shards < 0 || o.Idle < 0 {
		errs = append(errs, fmt.Errorf("window shards (%d) and idle time (%s) must not be negative", o.Shards, o.Idle))
	}
	if o.MaxUpdates < 0 || o.MaxUpdates > MaxWindowUpdates {
		errs = append(errs, fmt.Errorf("window max updates must be between 1 and %d, got %d", MaxWindowUpdates, o.MaxUpdates))
	}
	return errors.Join(errs...)
}

// Window routes a window pipeline's records to WindowWorkflows, pre-aggregated: a batch
// becomes one update per workflow carrying mergeable partials per (key, window) and the
// offset ranges they cover, so the number of Temporal actions follows the number of
// workflows and batches, not of records.
type Window struct {
	spec     pipelines.Spec
	opts     WindowOptions
	temporal client.Client
	// db records the records of partials a workflow found late (and their late copies).
	db      *gorm.DB
	updates atomic.Int64
}

// NewWindow builds the router of a window pipeline.
func NewWindow(spec pipelines.Spec, temporal client.Client, db *gorm.DB, opts WindowOptions) (*Window, error) {
	if err := errors.Join(spec.Validate(), opts.Validate()); err != nil {
		return nil, fmt.Errorf("window pipeline %s: %w", spec.Name, err)
	}
	opts.setDefaults()
	return &Window{spec: spec, opts: opts, temporal: temporal, db: db}, nil
}

// Updates counts the updates sent: the Temporal actions the pipeline costs.
func (w *Window) Updates() int64 { return w.updates.Load() }

type windowItem struct {
	item pipelines.Item
	msg  *kafka.Message
}

// Name implements Pipeline.
func (w *Window) Name() string { return w.spec.Name }

// Topics implements Pipeline.
func (w *Window) Topics() []string { return []string{w.spec.Topic} }

// workflowID names the workflow that aggregates a key.
func (w *Window) workflowID(key string) string {
	return workflows.WindowWorkflowID(w.spec.Name, key, w.opts.Shards)
}

// Route implements Pipeline.
func (w *Window) Route(m *kafka.Message) (Routed, error) {
	it, err := w.spec.Extract(m.Key, m.Value)
	if errors.Is(err, pipelines.ErrFiltered) {
		return Routed{}, ErrSkip
	}
	if err != nil {
		return Routed{}, err
	}
	return Routed{WorkflowID: w.workflowID(it.Key), Msg: m, At: it.At, Value: windowItem{item: it, msg: m}}, nil
}

// Deliver implements Pipeline with Update-with-Start. When the workflow answers that the
// batch overlaps offsets it already applied (a redelivery after a crash, a rewind, a moved
// partition), the batch is rebuilt from the records past those offsets and sent again: a
// partial is never applied twice, and never split.
func (w *Window) Deliver(ctx context.Context, workflowID string, recs []Routed, watermark time.Time) error {
	items := make([]windowItem, len(recs))
	for i, r := range recs {
		items[i] = r.Value.(windowItem)
	}
	if w.opts.PerRecord {
		var refused []Routed
		var last error
		for i, it := range items {
			err := w.deliver(ctx, workflowID, []windowItem{it}, watermark)
			if _, ok := AsPermanent(err); ok {
				refused, last = append(refused, recs[i]), err
				continue
			}
			if err != nil {
				return err
			}
		}
		return Permanent(last, refused...)
	}
	return w.deliver(ctx, workflowID, items, watermark)
}

func (w *Window) deliver(ctx context.Context, workflowID string, items []windowItem, watermark time.Time) error {
	var b schemas.WindowBatch
	var recovered []windowItem // already applied, and late by an answer another sender lost
	ack, sent, err := w.updatePastApplied(ctx, workflowID, func(applied map[string]int64, late []schemas.LateSpan) (schemas.WindowBatch, bool) {
		if applied != nil {
			var lateAgain []windowItem
			items, lateAgain = w.pastApplied(items, applied, late)
			recovered = append(recovered, lateAgain...)
		}
		b = w.aggregate(items)
		b.Watermark = watermark
		return b, len(items) > 0
	})
	if err != nil {
		return err
	}
	var late []windowItem
	if sent {
		late = w.lateItems(ack, b, items)
	}
	return w.recordLate(ctx, append(late, recovered...))
}

// updatePastApplied sends the batch build makes. When the workflow turns it away for
// overlapping offsets it already applied, build runs again with those offsets (and the
// late spans over them) and makes the batch of what is past them; sent is false once
// nothing is left. The bridge's Kafka batches and the visit pieces share this one
// mechanism.
func (w *Window) updatePastApplied(ctx context.Context, workflowID string, build func(applied map[string]int64, late []schemas.LateSpan) (schemas.WindowBatch, bool)) (ack schemas.WindowAck, sent bool, err error) {
	var applied map[string]int64
	var late []schemas.LateSpan
	for attempt := 0; ; attempt++ {
		b, ok := build(applied, late)
		if !ok {
			return ack, false, nil
		}
		if attempt > 3 {
			return ack, false, fmt.Errorf("batch for %s still overlaps applied offsets after %d rebuilds", workflowID, attempt)
		}
		ack, err = w.update(ctx, workflowID, b)
		overlap, ok, derr := workflows.AsOffsetsAppliedError(err)
		if derr != nil {
			return ack, false, fmt.Errorf("update %s: %w", workflowID, derr)
		}
		if ok {
			applied, late = overlap.Applied, overlap.Late
			continue
		}
		if err != nil {
			return ack, false, fmt.Errorf("update %s: %w", workflowID, err)
		}
		return ack, true, nil
	}
}

// partialKey names one key's window of one size, as schemas.WindowKey does, without
// formatting it: the bridge looks one up for every record and window size.
type partialKey struct {
	key   string
	size  int64 // seconds
	start int64 // Unix nanoseconds
}

// eachWindow calls f with every window the record falls in, one per size for tumbling
// windows; starts is scratch space, returned for reuse.
func (w *Window) eachWindow(it windowItem, starts []time.Time, f func(k partialKey, start time.Time)) []time.Time {
	for _, spec := range w.spec.Windows {
		size := int64(spec.Size / time.Second)
		starts = spec.AppendStarts(starts[:0], it.item.At)
		for _, start := range starts {
			f(partialKey{it.item.Key, size, start.UnixNano()}, start)
		}
	}
	return starts
}

// aggregate builds a batch's partials (one per key and window) and ranges (one per
// partition).
func (w *Window) aggregate(items []windowItem) schemas.WindowBatch {
	var b schemas.WindowBatch
	index := map[partialKey]int{}
	ranges := map[partition]int{}
	var starts []time.Time
	for _, it := range items {
		tp := it.msg.TopicPartition
		off := int64(tp.Offset)
		pk := partition{*tp.Topic, tp.Partition}
		if i, ok := ranges[pk]; ok {
			b.Ranges[i].From = min(b.Ranges[i].From, off)
			b.Ranges[i].To = max(b.Ranges[i].To, off)
		} else {
			ranges[pk] = len(b.Ranges)
			b.Ranges = append(b.Ranges, schemas.OffsetRange{Topic: pk.topic, Partition: pk.part, From: off, To: off})
		}
		starts = w.eachWindow(it, starts, func(k partialKey, start time.Time) {
			i, ok := index[k]
			if !ok {
				i = len(b.Partials)
				index[k] = i
				b.Partials = append(b.Partials, schemas.WindowPartial{Key: k.key, SizeSeconds: k.size, Start: start})
			}
			b.Partials[i].Partial.Add(it.item.Value, it.item.At)
		})
	}
	return b
}

// lateItems is the records of the batch's partials the answer names late: the records
// aggregated into them (a record is in one partial per window size).
func (w *Window) lateItems(ack schemas.WindowAck, b schemas.WindowBatch, items []windowItem) []windowItem {
	if len(ack.Late) == 0 {
		return nil
	}
	late := map[partialKey]bool{}
	for _, i := range ack.Late {
		if i >= 0 && i < len(b.Partials) {
			p := b.Partials[i]
			late[partialKey{p.Key, p.SizeSeconds, p.Start.UnixNano()}] = true
		}
	}
	var out []windowItem
	var starts []time.Time
	for _, it := range items {
		in := false
		starts = w.eachWindow(it, starts, func(k partialKey, _ time.Time) { in = in || late[k] })
		if in {
			out = append(out, it)
		}
	}
	return out
}

// pastApplied splits items into the records past the offsets a workflow applied, and those
// it applied that one of its late spans names late: a sender before this one got that
// answer and may not have recorded them.
func (w *Window) pastApplied(items []windowItem, applied map[string]int64, late []schemas.LateSpan) (rest, lateAgain []windowItem) {
	for _, it := range items {
		tp := it.msg.TopicPartition
		if a, ok := applied[schemas.TopicPartition(*tp.Topic, tp.Partition)]; !ok || int64(tp.Offset) > a {
			rest = append(rest, it)
			continue
		}
		if w.namedLate(it, late) {
			lateAgain = append(lateAgain, it)
		}
	}
	return rest, lateAgain
}

// namedLate reports whether a late span covers the record in one of its windows.
func (w *Window) namedLate(it windowItem, late []schemas.LateSpan) bool {
	if len(late) == 0 {
		return false
	}
	tp := it.msg.TopicPartition
	named := false
	w.eachWindow(it, nil, func(k partialKey, start time.Time) {
		id := schemas.WindowKey(k.key, k.size, start)
		for _, s := range late {
			named = named || s.Covers(*tp.Topic, tp.Partition, int64(tp.Offset), id)
		}
	})
	return named
}

// update sends one batch with Update-with-Start and waits for the workflow's answer.
func (w *Window) update(ctx context.Context, workflowID string, b schemas.WindowBatch) (schemas.WindowAck, error) {
	var ack schemas.WindowAck
	w.updates.Add(1)
	params := workflows.WindowParams{Pipeline: w.spec.Name, Windows: w.spec.Windows, MaxUpdates: w.opts.MaxUpdates, Pins: workflows.CurrentPins}
	if w.opts.Shards <= 0 && workflowID != w.workflowID(pipelines.GlobalKey) {
		params.Idle = w.opts.Idle // a per-key workflow ends when its key goes quiet
	}
	start := w.temporal.NewWithStartWorkflowOperation(client.StartWorkflowOptions{
		ID:                       workflowID,
		TaskQueue:                workflows.TaskQueue,
		WorkflowIDConflictPolicy: enumspb.WORKFLOW_ID_CONFLICT_POLICY_USE_EXISTING,
		WorkflowIDReusePolicy:    enumspb.WORKFLOW_ID_REUSE_POLICY_ALLOW_DUPLICATE,
	}, workflows.WindowWorkflow, params)
	h, err := w.temporal.UpdateWithStartWorkflow(ctx, client.UpdateWithStartWorkflowOptions{
		StartWorkflowOperation: start,
		UpdateOptions: client.UpdateWorkflowOptions{
			UpdateID:     batchUpdateID(b),
			UpdateName:   workflows.UpdateWindowBatch,
			Args:         []any{b},
			WaitForStage: client.WorkflowUpdateStageCompleted,
		},
	})
	if err != nil {
		return ack, err
	}
	return ack, h.Get(ctx, &ack)
}

// batchUpdateID names a batch's update by the offsets it carries. The same records sent
// again (an answer lost with the connection, a server killed after it applied them) are
// the same update, and the server answers with the first outcome, late partials included;
// under an id of its own the repeat would only learn that the offsets were applied.
func batchUpdateID(b schemas.WindowBatch) string {
	h := sha256.New()
	for _, r := range b.Ranges {
		fmt.Fprintf(h, "%s/%d:%d-%d\n", r.Topic, r.Partition, r.From, r.To)
	}
	return "batch-" + hex.EncodeToString(h.Sum(nil))
}

// recordLate records late records, each once (a record is in one partial per window size,
// and may also be named by a late span).
func (w *Window) recordLate(ctx context.Context, late []windowItem) error {
	seen := map[kafka.TopicPartition]bool{}
	var rows []schemas.LateRecord
	var copies []*kafka.Message
	now := time.Now().UTC()
	for _, it := range late {
		tp := it.msg.TopicPartition
		k := kafka.TopicPartition{Partition: tp.Partition, Offset: tp.Offset} // a window pipeline reads one topic
		if seen[k] {
			continue
		}
		seen[k] = true
		rows = append(rows, schemas.LateRecord{Topic: *tp.Topic, Partition: tp.Partition, Offset: int64(tp.Offset), Pipeline: w.spec.Name, Key: it.item.Key, Reason: reasonWindowClosed, At: now})
		c := kafkaio.DeadLetter(it.msg, reasonWindowClosed)
		c.TopicPartition.Topic = ptr(schemas.LateTopic(w.spec.Name))
		copies = append(copies, c)
	}
	return recordLate(ctx, w.db, rows, copies)
}

func ptr[T any](v T) *T { return &v }
