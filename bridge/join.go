package bridge

import (
	"context"
	"fmt"
	"hash/fnv"
	"strconv"
	"time"

	"github.com/confluentinc/confluent-kafka-go/v2/kafka"
	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/temporal"
	"gorm.io/gorm"
	"gorm.io/gorm/clause"

	"github.com/tributary-dev/tributary/schemas"
	"github.com/tributary-dev/tributary/workflows"
)

// MaxSignalBytes keeps a signal's payload under the SDK's 512 KiB warning and well under
// Temporal's size limit; a larger group is sent as several signals, in order.
const MaxSignalBytes = 384 << 10

// arrivalOverhead is an arrival's encoded size besides its fields and id, rounded up.
const arrivalOverhead = 100

// Join routes join rows to their JoinWorkflow: one per event id, or one of Shards shards.
type Join struct {
	Temporal client.Client
	// DB records rows that reach a per-event workflow after it closed.
	DB       *gorm.DB
	Shards   int
	Deadline time.Duration
	// ShardHistory is JoinParams.MaxHistory of the shards.
	ShardHistory int
}

// Name implements Pipeline.
func (j *Join) Name() string { return schemas.PipelineJoin }

// Topics implements Pipeline.
func (j *Join) Topics() []string { return schemas.JoinTopics }

// WorkflowID names the workflow that joins an event id.
func (j *Join) WorkflowID(eventID string) string {
	if j.Shards <= 0 {
		return workflows.JoinEventIDPrefix + eventID
	}
	return workflows.JoinShardIDPrefix + shardOf(eventID, j.Shards)
}

// Route implements Pipeline.
func (j *Join) Route(m *kafka.Message) (Routed, error) {
	row, err := schemas.DecodeJoinRow(m.Key, m.Value)
	if err != nil {
		return Routed{}, err
	}
	a := schemas.JoinArrival{
		EventID: row.EventID, Topic: *m.TopicPartition.Topic, Partition: m.TopicPartition.Partition,
		Offset: int64(m.TopicPartition.Offset), CreatedAt: row.CreatedAt, Fields: row.Fields,
	}
	return Routed{WorkflowID: j.WorkflowID(row.EventID), Msg: m, Value: a}, nil
}

// Deliver implements Pipeline with SignalWithStart. A per-event workflow rejects its id once
// closed, so a row for a finished event is recognised here and recorded as late, not acked.
func (j *Join) Deliver(ctx context.Context, workflowID string, recs []Routed) error {
	opts := signalStart(workflowID, enumspb.WORKFLOW_ID_REUSE_POLICY_REJECT_DUPLICATE)
	params := workflows.JoinParams{Deadline: j.Deadline}
	if j.Shards > 0 {
		// A shard is meant to run forever; if one was ended, a new run takes over.
		opts.WorkflowIDReusePolicy = enumspb.WORKFLOW_ID_REUSE_POLICY_ALLOW_DUPLICATE
		params = workflows.JoinParams{Sharded: true, Deadline: j.Deadline, RecentDone: 5000, MaxHistory: j.ShardHistory}
	}
	arrivals := make([]schemas.JoinArrival, len(recs))
	for i, r := range recs {
		arrivals[i] = r.Value.(schemas.JoinArrival)
	}
	chunks := splitArrivals(arrivals)
	for i, chunk := range chunks {
		_, err := j.Temporal.SignalWithStartWorkflow(ctx, workflowID, workflows.SignalJoinArrivals,
			schemas.JoinSignal{Arrivals: chunk}, opts, workflows.JoinWorkflow, params)
		if temporal.IsWorkflowExecutionAlreadyStartedError(err) {
			var late []schemas.JoinArrival
			for _, c := range chunks[i:] {
				late = append(late, c...)
			}
			return j.recordLate(ctx, late)
		}
		if err != nil {
			return fmt.Errorf("signal %s: %w", workflowID, err)
		}
	}
	return nil
}

// shardOf hashes a key to one of n shards, as a decimal string.
func shardOf(key string, n int) string {
	h := fnv.New32a()
	_, _ = h.Write([]byte(key))
	return strconv.Itoa(int(h.Sum32() % uint32(n)))
}

// signalStart are the options of a SignalWithStart: the running workflow of the id takes the
// signal; reuse says whether a closed id may start again.
func signalStart(workflowID string, reuse enumspb.WorkflowIdReusePolicy) client.StartWorkflowOptions {
	return client.StartWorkflowOptions{
		ID:                       workflowID,
		TaskQueue:                workflows.TaskQueue,
		WorkflowIDReusePolicy:    reuse,
		WorkflowIDConflictPolicy: enumspb.WORKFLOW_ID_CONFLICT_POLICY_USE_EXISTING,
	}
}

// splitArrivals cuts a workflow's join rows into signals under MaxSignalBytes.
func splitArrivals(arrivals []schemas.JoinArrival) [][]schemas.JoinArrival {
	return chunkBySize(arrivals, func(a schemas.JoinArrival) int { return len(a.Fields) + len(a.EventID) + arrivalOverhead })
}

// chunkBySize cuts a workflow's items into signals of at most MaxSignalBytes, in order.
func chunkBySize[T any](items []T, size func(T) int) [][]T {
	var chunks [][]T
	var cur []T
	total := 0
	for _, it := range items {
		n := size(it)
		if len(cur) > 0 && total+n > MaxSignalBytes {
			chunks = append(chunks, cur)
			cur, total = nil, 0
		}
		cur = append(cur, it)
		total += n
	}
	if len(cur) > 0 {
		chunks = append(chunks, cur)
	}
	return chunks
}

func (j *Join) recordLate(ctx context.Context, arrivals []schemas.JoinArrival) error {
	late := make([]schemas.LateRecord, len(arrivals))
	now := time.Now().UTC()
	for i, a := range arrivals {
		late[i] = schemas.LateRecord{Topic: a.Topic, Partition: a.Partition, Offset: a.Offset, Pipeline: schemas.PipelineJoin, Key: a.EventID, Reason: "duplicate: event already final", At: now}
	}
	err := j.DB.WithContext(ctx).Clauses(clause.OnConflict{DoNothing: true}).CreateInBatches(late, 200).Error
	if err != nil {
		return fmt.Errorf("record %d late join rows: %w", len(late), err)
	}
	return nil
}
