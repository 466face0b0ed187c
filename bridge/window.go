package bridge

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/confluentinc/confluent-kafka-go/v2/kafka"
	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/temporal"
	"gorm.io/gorm"
	"gorm.io/gorm/clause"

	"github.com/tributary-dev/tributary/internal/kafkaio"
	"github.com/tributary-dev/tributary/pipelines"
	"github.com/tributary-dev/tributary/schemas"
	"github.com/tributary-dev/tributary/workflows"
)

// ErrSkip marks a valid record that a pipeline leaves out: its offset advances, and it is
// neither delivered nor dead-lettered.
var ErrSkip = errors.New("skipped")

// Window routes a window pipeline's records to WindowWorkflows, pre-aggregated: a batch
// becomes one update per workflow carrying mergeable partials per (key, window) and the
// offset ranges they cover, so the number of Temporal actions follows the number of
// workflows and batches, not of records.
type Window struct {
	Spec     pipelines.Spec
	Temporal client.Client
	// DB and Late record the records of partials a workflow found late.
	DB   *gorm.DB
	Late *kafkaio.Producer
	// Shards > 0 hashes keys over that many workflows; 0 runs one per key.
	Shards int
	// Idle ends a per-key workflow after this long without records or open windows.
	Idle time.Duration
	// MaxUpdates is WindowParams.MaxUpdates of the workflows.
	MaxUpdates int
	// PerRecord sends each record in an update of its own (no pre-aggregation), for comparison.
	PerRecord bool
	// Updates counts the updates sent: the Temporal actions the pipeline costs.
	Updates atomic.Int64

	queue pieceQueue
}

type windowItem struct {
	item pipelines.Item
	msg  *kafka.Message
}

// Name implements Pipeline.
func (w *Window) Name() string { return w.Spec.Name }

// Topics implements Pipeline.
func (w *Window) Topics() []string { return []string{w.Spec.Topic} }

// WorkflowID names the workflow that aggregates a key.
func (w *Window) WorkflowID(key string) string {
	prefix := workflows.WindowIDPrefix + w.Spec.Name + "/"
	if w.Shards <= 0 || key == pipelines.GlobalKey {
		return prefix + key
	}
	return prefix + "shard-" + shardOf(key, w.Shards)
}

// Route implements Pipeline.
func (w *Window) Route(m *kafka.Message) (Routed, error) {
	it, err := w.Spec.Extract(m.Value)
	if errors.Is(err, pipelines.ErrFiltered) {
		return Routed{}, ErrSkip
	}
	if err != nil {
		return Routed{}, err
	}
	return Routed{WorkflowID: w.WorkflowID(it.Key), Msg: m, Value: windowItem{item: it, msg: m}}, nil
}

// Deliver implements Pipeline with Update-with-Start. When the workflow answers that the
// batch overlaps offsets it already applied (a redelivery after a crash, a rewind, a moved
// partition), the batch is rebuilt from the records past those offsets and sent again: a
// partial is never applied twice, and never split.
func (w *Window) Deliver(ctx context.Context, workflowID string, recs []Routed) error {
	items := make([]windowItem, len(recs))
	for i, r := range recs {
		items[i] = r.Value.(windowItem)
	}
	if w.PerRecord {
		for _, it := range items {
			if err := w.deliver(ctx, workflowID, []windowItem{it}); err != nil {
				return err
			}
		}
		return nil
	}
	return w.deliver(ctx, workflowID, items)
}

func (w *Window) deliver(ctx context.Context, workflowID string, items []windowItem) error {
	var members [][]windowItem
	ack, sent, err := w.updatePastApplied(ctx, workflowID, func(applied map[string]int64) (schemas.WindowBatch, bool) {
		if applied != nil {
			items = pastApplied(items, applied)
		}
		var b schemas.WindowBatch
		b, members = w.aggregate(items)
		return b, len(items) > 0
	})
	if err != nil || !sent {
		return err
	}
	return w.recordLate(ctx, ack, members)
}

// updatePastApplied sends the batch build makes. When the workflow turns it away for
// overlapping offsets it already applied, build runs again with those offsets and makes
// the batch of what is past them; sent is false once nothing is left. The bridge's Kafka
// batches and the visit pieces share this one mechanism.
func (w *Window) updatePastApplied(ctx context.Context, workflowID string, build func(applied map[string]int64) (schemas.WindowBatch, bool)) (ack schemas.WindowAck, sent bool, err error) {
	var applied map[string]int64
	for attempt := 0; ; attempt++ {
		b, ok := build(applied)
		if !ok {
			return ack, false, nil
		}
		if attempt > 3 {
			return ack, false, fmt.Errorf("batch for %s still overlaps applied offsets after %d rebuilds", workflowID, attempt)
		}
		ack, err = w.update(ctx, workflowID, b)
		var appErr *temporal.ApplicationError
		if errors.As(err, &appErr) && appErr.Type() == workflows.ErrStraddle {
			applied = nil
			if derr := appErr.Details(&applied); derr != nil {
				return ack, false, fmt.Errorf("decode applied offsets of %s: %w", workflowID, derr)
			}
			continue
		}
		if err != nil {
			return ack, false, fmt.Errorf("update %s: %w", workflowID, err)
		}
		return ack, true, nil
	}
}

// aggregate builds a batch's partials and ranges; members[i] lists the records of partial i.
func (w *Window) aggregate(items []windowItem) (schemas.WindowBatch, [][]windowItem) {
	var b schemas.WindowBatch
	var members [][]windowItem
	index := map[string]int{}
	ranges := map[string]int{}
	for _, it := range items {
		tp := it.msg.TopicPartition
		r := schemas.OffsetRange{Topic: *tp.Topic, Partition: tp.Partition, From: int64(tp.Offset), To: int64(tp.Offset)}
		if i, ok := ranges[r.TopicPartition()]; ok {
			b.Ranges[i].From = min(b.Ranges[i].From, r.From)
			b.Ranges[i].To = max(b.Ranges[i].To, r.To)
		} else {
			ranges[r.TopicPartition()] = len(b.Ranges)
			b.Ranges = append(b.Ranges, r)
		}
		for _, spec := range w.Spec.Windows {
			for _, start := range spec.Starts(it.item.At) {
				size := int64(spec.Size / time.Second)
				id := schemas.WindowKey(it.item.Key, size, start)
				i, ok := index[id]
				if !ok {
					i = len(b.Partials)
					index[id] = i
					b.Partials = append(b.Partials, schemas.WindowPartial{Key: it.item.Key, SizeSeconds: size, Start: start})
					members = append(members, nil)
				}
				b.Partials[i].Partial.Add(it.item.Value, it.item.At)
				members[i] = append(members[i], it)
			}
		}
	}
	return b, members
}

func pastApplied(items []windowItem, applied map[string]int64) []windowItem {
	var out []windowItem
	for _, it := range items {
		tp := it.msg.TopicPartition
		if a, ok := applied[fmt.Sprintf("%s/%d", *tp.Topic, tp.Partition)]; ok && int64(tp.Offset) <= a {
			continue
		}
		out = append(out, it)
	}
	return out
}

func (w *Window) update(ctx context.Context, workflowID string, b schemas.WindowBatch) (schemas.WindowAck, error) {
	var ack schemas.WindowAck
	w.Updates.Add(1)
	params := workflows.WindowParams{Pipeline: w.Spec.Name, Windows: w.Spec.Windows, MaxUpdates: w.MaxUpdates}
	if w.Shards <= 0 && !w.isGlobal(workflowID) {
		params.Idle = w.Idle
	}
	start := w.Temporal.NewWithStartWorkflowOperation(client.StartWorkflowOptions{
		ID:                       workflowID,
		TaskQueue:                workflows.TaskQueue,
		WorkflowIDConflictPolicy: enumspb.WORKFLOW_ID_CONFLICT_POLICY_USE_EXISTING,
		WorkflowIDReusePolicy:    enumspb.WORKFLOW_ID_REUSE_POLICY_ALLOW_DUPLICATE,
	}, workflows.WindowWorkflow, params)
	h, err := w.Temporal.UpdateWithStartWorkflow(ctx, client.UpdateWithStartWorkflowOptions{
		StartWorkflowOperation: start,
		UpdateOptions: client.UpdateWorkflowOptions{
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

func (w *Window) isGlobal(workflowID string) bool {
	return workflowID == workflows.WindowIDPrefix+w.Spec.Name+"/"+pipelines.GlobalKey
}

// recordLate writes the records of late partials to late_records (once each, keyed by
// offset) and copies them to the pipeline's late topic.
func (w *Window) recordLate(ctx context.Context, ack schemas.WindowAck, members [][]windowItem) error {
	if len(ack.Late) == 0 {
		return nil
	}
	seen := map[kafka.TopicPartition]bool{}
	var rows []schemas.LateRecord
	var msgs []*kafka.Message
	now := time.Now().UTC()
	for _, i := range ack.Late {
		for _, it := range members[i] {
			tp := it.msg.TopicPartition
			k := kafka.TopicPartition{Partition: tp.Partition, Offset: tp.Offset}
			if seen[k] {
				continue // a record is in one partial per window size
			}
			seen[k] = true
			rows = append(rows, schemas.LateRecord{Topic: *tp.Topic, Partition: tp.Partition, Offset: int64(tp.Offset), Pipeline: w.Spec.Name, Key: it.item.Key, Reason: "late: window already closed", At: now})
			lm := kafkaio.DeadLetter(it.msg, "late: window already closed")
			lm.TopicPartition.Topic = ptr(schemas.LateTopic(w.Spec.Name))
			msgs = append(msgs, lm)
		}
	}
	if err := w.DB.WithContext(ctx).Clauses(clause.OnConflict{DoNothing: true}).CreateInBatches(rows, 200).Error; err != nil {
		return fmt.Errorf("record %d late %s records: %w", len(rows), w.Spec.Name, err)
	}
	return w.Late.Send(ctx, msgs...)
}

func ptr[T any](v T) *T { return &v }

// SendPieces hands a key's window pieces (partials built elsewhere, each from one source
// range) to its window workflow, implementing activities.WindowSender, and returns how many
// of its partials came for windows already closed (their pieces are recorded as late).
//
// Callers for the same workflow are grouped: while one update is in flight, the pieces of
// every caller that arrives meanwhile wait and go together in the next one, so one process
// sends one update at a time per workflow however many travelers flush at once. A piece is
// applied once: a repeat within a group is merged with the first, and one the workflow
// already applied is dropped when the workflow turns the batch away.
func (w *Window) SendPieces(ctx context.Context, key string, pieces []schemas.WindowPiece) (int, error) {
	workflowID := w.WorkflowID(key)
	w.queue.mu.Lock()
	if w.queue.waiting == nil {
		w.queue.waiting, w.queue.sending = map[string]*pieceGroup{}, map[string]bool{}
	}
	g := w.queue.waiting[workflowID]
	if g == nil {
		g = &pieceGroup{key: key, index: map[string]int{}, done: make(chan struct{})}
		w.queue.waiting[workflowID] = g
	}
	mine := make([]int, 0, len(pieces))
	for _, p := range pieces {
		id := p.Range.TopicPartition() + "@" + strconv.FormatInt(p.Range.From, 10)
		i, ok := g.index[id]
		if !ok {
			i = len(g.pieces)
			g.index[id] = i
			g.pieces = append(g.pieces, p)
		}
		mine = append(mine, i)
	}
	if !w.queue.sending[workflowID] {
		w.queue.sending[workflowID] = true
		go w.drainPieces(workflowID)
	}
	w.queue.mu.Unlock()
	select {
	case <-g.done:
	case <-ctx.Done():
		return 0, ctx.Err()
	}
	if g.err != nil {
		return 0, g.err
	}
	late := 0
	for _, i := range mine {
		late += g.late[i]
	}
	return late, nil
}

// maxGroup bounds the pieces of one update.
const maxGroup = 500

// pieceQueue holds, per workflow, the pieces waiting for the update in flight to finish.
type pieceQueue struct {
	mu      sync.Mutex
	waiting map[string]*pieceGroup
	sending map[string]bool
}

// pieceGroup is the pieces of one update and, once done is closed, its outcome.
type pieceGroup struct {
	key    string
	pieces []schemas.WindowPiece
	index  map[string]int
	done   chan struct{}
	late   []int // late partials per piece
	err    error
}

// drainPieces sends a workflow's waiting groups one after another until none is left.
func (w *Window) drainPieces(workflowID string) {
	for {
		w.queue.mu.Lock()
		g := w.queue.waiting[workflowID]
		if g == nil {
			delete(w.queue.sending, workflowID)
			w.queue.mu.Unlock()
			return
		}
		delete(w.queue.waiting, workflowID)
		w.queue.mu.Unlock()
		// An update carries at most maxGroup pieces, well under Temporal's payload limit.
		g.late = make([]int, 0, len(g.pieces))
		for chunk := range slices.Chunk(g.pieces, maxGroup) {
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			late, err := w.sendGroup(ctx, workflowID, g.key, chunk)
			cancel()
			if err != nil {
				g.err = err
				break
			}
			g.late = append(g.late, late...)
		}
		close(g.done)
	}
}

// sendGroup sends pieces in one update, rebuilt without the pieces the workflow says it
// applied when it turns the batch away, and returns the late partials of each piece.
func (w *Window) sendGroup(ctx context.Context, workflowID, key string, pieces []schemas.WindowPiece) ([]int, error) {
	left := make([]int, len(pieces)) // indices of the pieces still to send
	for i := range pieces {
		left[i] = i
	}
	var owner []int // the piece of each partial of the batch sent
	ack, sent, err := w.updatePastApplied(ctx, workflowID, func(applied map[string]int64) (schemas.WindowBatch, bool) {
		if applied != nil {
			rest := left[:0:0]
			for _, i := range left {
				if a, ok := applied[pieces[i].Range.TopicPartition()]; !ok || pieces[i].Range.From > a {
					rest = append(rest, i)
				}
			}
			left = rest
		}
		var b schemas.WindowBatch
		owner = owner[:0]
		for _, i := range left {
			b.Ranges = append(b.Ranges, pieces[i].Range)
			b.Partials = append(b.Partials, pieces[i].Partials...)
			for range pieces[i].Partials {
				owner = append(owner, i)
			}
		}
		return b, len(left) > 0
	})
	if err != nil {
		return nil, err
	}
	late := make([]int, len(pieces))
	if !sent {
		return late, nil
	}
	for _, p := range ack.Late {
		late[owner[p]]++
	}
	return late, w.recordLatePieces(ctx, key, pieces, late)
}

// recordLatePieces records each piece with a late partial once in late_records, keyed by
// its range, and copies it to the pipeline's late topic.
func (w *Window) recordLatePieces(ctx context.Context, key string, pieces []schemas.WindowPiece, late []int) error {
	var rows []schemas.LateRecord
	var msgs []*kafka.Message
	now := time.Now().UTC()
	for i, n := range late {
		if n == 0 {
			continue
		}
		r := pieces[i].Range
		if len(pieces[i].Partials) > 0 {
			key = pieces[i].Partials[0].Key // a sharded workflow's group mixes keys
		}
		rows = append(rows, schemas.LateRecord{Topic: r.Topic, Partition: r.Partition, Offset: r.From, Pipeline: w.Spec.Name, Key: key, Reason: "late: window already closed", At: now})
		b, err := json.Marshal(pieces[i])
		if err != nil {
			return err
		}
		msgs = append(msgs, kafkaio.Message(schemas.LateTopic(w.Spec.Name), []byte(key), b,
			kafka.Header{Key: kafkaio.HeaderReason, Value: []byte("late: window already closed")}))
	}
	if len(rows) == 0 {
		return nil
	}
	if err := w.DB.WithContext(ctx).Clauses(clause.OnConflict{DoNothing: true}).CreateInBatches(rows, 200).Error; err != nil {
		return fmt.Errorf("record %d late %s pieces: %w", len(rows), w.Spec.Name, err)
	}
	return w.Late.Send(ctx, msgs...)
}
