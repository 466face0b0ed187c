package bridge

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/confluentinc/confluent-kafka-go/v2/kafka"
	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/api/serviceerror"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/temporal"
	"gorm.io/gorm"

	"github.com/tributary-dev/tributary/activities"
	"github.com/tributary-dev/tributary/schemas"
	"github.com/tributary-dev/tributary/workflows"
)

// Defaults of JoinOptions.
const (
	DefaultJoinDeadline = 30 * time.Second
	DefaultRecentDone   = 5000
)

// JoinOptions configure the join's router and, through it, its workflows.
type JoinOptions struct {
	// Shards > 0 hashes event ids over that many shard workflows; 0 runs one per event id.
	Shards int
	// Deadline is how long an event id waits, from its first row, for the other topics.
	Deadline time.Duration
	// RecentDone is how many finished event ids a shard remembers to recognise a late
	// duplicate at once.
	RecentDone int
	// ShardHistory makes a shard continue as new after this many history events; 0 waits
	// for the server's suggestion.
	ShardHistory int
}

// DefaultJoinOptions are the options the join runs with unless told otherwise.
func DefaultJoinOptions() JoinOptions {
	return JoinOptions{Deadline: DefaultJoinDeadline, RecentDone: DefaultRecentDone}
}

func (o *JoinOptions) setDefaults() {
	if o.Deadline == 0 {
		o.Deadline = DefaultJoinDeadline
	}
	if o.RecentDone == 0 {
		o.RecentDone = DefaultRecentDone
	}
}

// Validate reports options the join cannot run with.
func (o JoinOptions) Validate() error {
	if o.Shards < 0 || o.Deadline < 0 || o.RecentDone < 0 || o.ShardHistory < 0 {
		return fmt.Errorf("join shards (%d), deadline (%s), recent done (%d) and shard history (%d) must not be negative",
			o.Shards, o.Deadline, o.RecentDone, o.ShardHistory)
	}
	return nil
}

// arrivalOverhead bounds an arrival's encoded size besides its fields, id and topic: the
// member names, the creation time, partition and offset, and the punctuation.
const arrivalOverhead = 100

// Join routes join rows to their JoinWorkflow: one per event id, or one of the shards.
type Join struct {
	opts     JoinOptions
	temporal client.Client
	// db records rows that reach a per-event workflow after it closed.
	db *gorm.DB
	// gathered are the topics of recent event ids the bridge has gathered, for Gather.
	gathered gatheredTopics
	// sent are the topics of recent event ids that went to their workflow without all
	// of them, for Hold.
	sent gatheredTopics
}

// NewJoin builds the join's router.
func NewJoin(temporal client.Client, db *gorm.DB, opts JoinOptions) (*Join, error) {
	if err := opts.Validate(); err != nil {
		return nil, err
	}
	opts.setDefaults()
	return &Join{opts: opts, temporal: temporal, db: db}, nil
}

// Name implements Pipeline.
func (j *Join) Name() string { return schemas.PipelineJoin }

// Topics implements Pipeline.
func (j *Join) Topics() []string { return schemas.JoinTopics }

// Route implements Pipeline.
func (j *Join) Route(m *kafka.Message) (Routed, error) {
	var recordTime time.Time
	if m.TimestampType != kafka.TimestampNotAvailable {
		recordTime = m.Timestamp
	}
	row, err := schemas.DecodeJoinRow(m.Key, m.Value, recordTime)
	if err != nil {
		return Routed{}, err
	}
	a := schemas.JoinArrival{
		EventID: row.EventID, Topic: *m.TopicPartition.Topic, Partition: m.TopicPartition.Partition,
		Offset: int64(m.TopicPartition.Offset), CreatedAt: row.CreatedAt, Fields: row.Fields,
	}
	return Routed{WorkflowID: workflows.JoinWorkflowID(row.EventID, j.opts.Shards), Msg: m, At: row.CreatedAt, Value: a}, nil
}

// Gather implements Gatherer: a batch may go once every event id in it has a row on every
// topic, in this batch or an earlier one the bridge gathered (Join remembers the topics of
// the last recentGathered ids it saw without all of them). A record that does not decode
// waits for nothing (it is dead-lettered with the batch); an event id still missing a topic
// keeps the batch to its window.
func (j *Join) Gather() func(m *kafka.Message) bool {
	waiting := map[string]bool{}
	return func(m *kafka.Message) bool {
		r, err := j.Route(m)
		if err != nil {
			return len(waiting) == 0
		}
		a := r.Value.(schemas.JoinArrival)
		if j.gathered.add(a.EventID, a.Topic) {
			delete(waiting, a.EventID)
		} else {
			waiting[a.EventID] = true
		}
		return len(waiting) == 0
	}
}

// Hold implements Holder: with one workflow per event id, an event's rows of a batch that
// miss a topic wait for the next batch, unless rows of the event went without all topics
// before (these may be the ones it misses). Shards take a partition's rows in offset
// order, and hold nothing.
func (j *Join) Hold(recs []Routed, heldBefore bool) bool {
	if j.opts.Shards > 0 {
		return false
	}
	id := recs[0].Value.(schemas.JoinArrival).EventID
	var topics uint8
	for _, r := range recs {
		topics |= topicBit(r.Value.(schemas.JoinArrival).Topic)
	}
	partial := j.sent.has(id)
	if !heldBefore && !partial && topics != allTopics {
		return true
	}
	if heldBefore || partial {
		for _, r := range recs {
			j.sent.add(id, r.Value.(schemas.JoinArrival).Topic) // forgets the id once it has every topic
		}
	}
	return false
}

// recentGathered bounds the event ids Join remembers seeing some topics of.
const recentGathered = 4096

// gatheredTopics remembers which topics the bridge gathered of the event ids it has not
// seen all topics of yet, the most recent ones.
type gatheredTopics struct {
	mu    sync.Mutex
	seen  map[string]uint8
	order []string // ids in seen, oldest first; some may have left it
}

// has reports whether id is remembered with some of its topics.
func (g *gatheredTopics) has(id string) bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	_, ok := g.seen[id]
	return ok
}

// allTopics is the topicBit of every join topic together.
var allTopics = uint8(1)<<len(schemas.JoinTopics) - 1

// topicBit is a join topic's bit in a set of topics; 0 for a topic that is none.
func topicBit(topic string) uint8 {
	if i := slices.Index(schemas.JoinTopics, topic); i >= 0 {
		return 1 << i
	}
	return 0
}

// add notes a row of id on topic and reports whether id has all topics now; an id that
// has is forgotten, so its next row starts it again (a repeat, or a late row).
func (g *gatheredTopics) add(id, topic string) bool {
	bit := topicBit(topic)
	if bit == 0 {
		return true
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.seen == nil {
		g.seen = map[string]uint8{}
	}
	had, known := g.seen[id]
	if had|bit == allTopics {
		delete(g.seen, id)
		return true
	}
	g.seen[id] = had | bit
	if !known {
		g.order = append(g.order, id)
	}
	for len(g.seen) > recentGathered || len(g.order) > 2*recentGathered {
		delete(g.seen, g.order[0])
		g.order = g.order[1:]
	}
	return false
}

// Deliver implements Pipeline. A shard takes its rows as Update-with-Start: the server
// keeps an update's workflow task in memory until the worker answers it and stores the
// update, the rows' finish and the task in one write, where a signal costs three (the
// signal, the task's start, its completion), so the rows reach their ack sooner and the
// server's one SQLite connection does less. A per-event workflow is started with its
// event's rows in its input (JoinParams.First), and rejects its id once closed, so a row
// for a finished event is recognised here and recorded as late, not acked. The start asks
// for eager execution: where the bridge's client also runs a worker on the task queue (the
// embedded stack), the server hands the run's first task back with the start and writes it
// as started in the start's own transaction, where SignalWithStart took three writes (the
// start and signal, the task's start, its completion) and a pass through matching. Rows
// for an event whose run is already going are signalled to it.
func (j *Join) Deliver(ctx context.Context, workflowID string, recs []Routed, watermark time.Time) error {
	arrivals := make([]schemas.JoinArrival, len(recs))
	for i, r := range recs {
		arrivals[i] = r.Value.(schemas.JoinArrival)
	}
	if j.opts.Shards > 0 {
		updates, err := packUpdates(arrivals, watermark)
		if err != nil {
			return Permanent(fmt.Errorf("update %s: %w", workflowID, err))
		}
		for _, u := range updates {
			if err := j.update(ctx, workflowID, u); err != nil {
				return fmt.Errorf("update %s: %w", workflowID, err)
			}
		}
		return nil
	}
	chunks := splitArrivals(arrivals, MaxSignalBytes)
	first := schemas.JoinSignal{Arrivals: chunks[0], Watermark: watermark}
	params := workflows.JoinParams{Deadline: j.opts.Deadline, Pins: workflows.CurrentPins, First: &first}
	opts := client.StartWorkflowOptions{
		ID:                       workflowID,
		TaskQueue:                workflows.TaskQueue,
		WorkflowIDReusePolicy:    enumspb.WORKFLOW_ID_REUSE_POLICY_REJECT_DUPLICATE,
		WorkflowIDConflictPolicy: enumspb.WORKFLOW_ID_CONFLICT_POLICY_FAIL,
		EnableEagerStart:         true,
		// Without it the client answers an id already taken with that run, not an error.
		WorkflowExecutionErrorWhenAlreadyStarted: true,
	}
	_, err := j.temporal.ExecuteWorkflow(ctx, opts, workflows.JoinWorkflow, params)
	switch {
	case err == nil:
		chunks = chunks[1:]
	case temporal.IsWorkflowExecutionAlreadyStartedError(err):
		// Running (its rows go as signals) or closed (they are late, below).
	default:
		return fmt.Errorf("start %s: %w", workflowID, err)
	}
	for i, chunk := range chunks {
		err := j.temporal.SignalWorkflow(ctx, workflowID, "", workflows.SignalJoinArrivals,
			schemas.JoinSignal{Arrivals: chunk, Watermark: watermark})
		var closed *serviceerror.NotFound
		if errors.As(err, &closed) {
			return j.recordLate(ctx, chunks[i:])
		}
		if err != nil {
			return fmt.Errorf("signal %s: %w", workflowID, err)
		}
	}
	return nil
}

// packedUpdate is one update's rows, packed, and the update's id.
type packedUpdate struct {
	id     string
	packed []byte
}

// packUpdates packs a shard's rows of a batch into as few updates as fit: chunks of at most
// MaxUpdateUnpacked bytes before packing, each cut in half again while its packed form is
// over MaxUpdateBytes (rows that hardly compress).
func packUpdates(arrivals []schemas.JoinArrival, watermark time.Time) ([]packedUpdate, error) {
	var out []packedUpdate
	var pack func(chunk []schemas.JoinArrival) error
	pack = func(chunk []schemas.JoinArrival) error {
		b, err := schemas.PackJoinSignal(schemas.JoinSignal{Arrivals: chunk, Watermark: watermark})
		if err != nil {
			return err
		}
		if len(b) > MaxUpdateBytes && len(chunk) > 1 {
			if err := pack(chunk[:len(chunk)/2]); err != nil {
				return err
			}
			return pack(chunk[len(chunk)/2:])
		}
		out = append(out, packedUpdate{id: arrivalsUpdateID(chunk), packed: b})
		return nil
	}
	for _, chunk := range splitArrivals(arrivals, MaxUpdateUnpacked) {
		if err := pack(chunk); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// update hands a shard one batch of rows and returns once the workflow task that took them
// is stored. A shard is meant to run forever; if one was ended, a new run takes over.
func (j *Join) update(ctx context.Context, workflowID string, u packedUpdate) error {
	opts := signalStart(workflowID, enumspb.WORKFLOW_ID_REUSE_POLICY_ALLOW_DUPLICATE)
	params := workflows.JoinParams{Sharded: true, Deadline: j.opts.Deadline, RecentDone: j.opts.RecentDone, MaxHistory: j.opts.ShardHistory,
		Pins: workflows.CurrentPins}
	h, err := j.temporal.UpdateWithStartWorkflow(ctx, client.UpdateWithStartWorkflowOptions{
		StartWorkflowOperation: j.temporal.NewWithStartWorkflowOperation(opts, workflows.JoinWorkflow, params),
		UpdateOptions: client.UpdateWorkflowOptions{
			UpdateID:     u.id,
			UpdateName:   workflows.UpdateJoinRows,
			Args:         []any{u.packed},
			WaitForStage: client.WorkflowUpdateStageCompleted,
		},
	})
	if err != nil {
		return err
	}
	return h.Get(ctx, nil)
}

// arrivalsUpdateID names an update by the rows it carries, so that the same rows sent again
// (an answer lost with its connection) are the same update to the run that took them.
func arrivalsUpdateID(arrivals []schemas.JoinArrival) string {
	h := sha256.New()
	for _, a := range arrivals {
		fmt.Fprintf(h, "%s/%d:%d\n", a.Topic, a.Partition, a.Offset)
	}
	return "rows-" + hex.EncodeToString(h.Sum(nil))
}

// splitArrivals cuts a workflow's join rows into calls of at most limit bytes each.
func splitArrivals(arrivals []schemas.JoinArrival, limit int) [][]schemas.JoinArrival {
	return chunkBySize(arrivals, limit, encodedArrivalSize)
}

// encodedArrivalSize bounds an arrival's size in JSON. The fields are sent as they came
// but for the characters the encoder escapes (<, > and &, six bytes each; U+2028 and
// U+2029, six for three), and so is the id, where control characters take six bytes too;
// a byte of the id outside ASCII is counted at six, the most the encoder makes of one.
func encodedArrivalSize(a schemas.JoinArrival) int {
	n := len(a.Fields) + len(a.Topic) + arrivalOverhead // topic names are [a-zA-Z0-9._-]
	for _, c := range []string{"<", ">", "&"} {
		n += 5 * bytes.Count(a.Fields, []byte(c))
	}
	n += 3 * (bytes.Count(a.Fields, []byte("\u2028")) + bytes.Count(a.Fields, []byte("\u2029")))
	for i := 0; i < len(a.EventID); i++ {
		if c := a.EventID[i]; c < 0x20 || c == '"' || c == '\\' || c == '<' || c == '>' || c == '&' || c >= 0x80 {
			n += 6
		} else {
			n++
		}
	}
	return n
}

// recordLate records the rows of an event already final in late_records, but for the
// event's own rows sent again after a crash, behind the last commit.
func (j *Join) recordLate(ctx context.Context, chunks [][]schemas.JoinArrival) error {
	late, err := activities.NotStored(j.db.WithContext(ctx), slices.Concat(chunks...))
	if err != nil {
		return err
	}
	var rows []schemas.LateRecord
	now := time.Now().UTC()
	for _, a := range late {
		rows = append(rows, schemas.LateRecord{Topic: a.Topic, Partition: a.Partition, Offset: a.Offset, Pipeline: schemas.PipelineJoin, Key: a.EventID, Reason: reasonEventFinal, At: now})
	}
	return recordLate(ctx, j.db, rows, nil)
}
