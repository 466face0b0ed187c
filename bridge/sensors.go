package bridge

import (
	"context"
	"fmt"
	"time"

	"github.com/confluentinc/confluent-kafka-go/v2/kafka"
	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/sdk/client"

	"github.com/tributary-dev/tributary/schemas"
	"github.com/tributary-dev/tributary/travel"
	"github.com/tributary-dev/tributary/workflows"
)

// readingOverhead is a reading's encoded size in a signal besides its ids, rounded up.
const readingOverhead = 260

// Sensors routes sensor readings to TravelerWorkflows: one per traveler id, or one of
// Shards shards. Readings that no sensor could have made (NaN positions, unknown types,
// times too far in the future) are dead-lettered here; impossible jumps, which need the
// traveler's previous reading, are dead-lettered by the workflow.
type Sensors struct {
	Temporal client.Client
	Shards   int
	// Disorder, IdleGap and ShardHistory are TravelerParams of the workflows, and
	// FlushDelay that of the shards.
	Disorder, IdleGap, FlushDelay time.Duration
	ShardHistory                  int
	// FutureTolerance is how far ahead of this clock a reading's time may be.
	FutureTolerance time.Duration
	// Now is the clock readings are checked against (time.Now when nil).
	Now func() time.Time
}

// Name implements Pipeline.
func (s *Sensors) Name() string { return schemas.PipelineSensors }

// Topics implements Pipeline.
func (s *Sensors) Topics() []string { return []string{schemas.TopicSensorReadings} }

// WorkflowID names the workflow that follows a traveler.
func (s *Sensors) WorkflowID(travelerID string) string {
	if s.Shards <= 0 {
		return workflows.TravelerIDPrefix + travelerID
	}
	return workflows.TravelerShardIDPrefix + shardOf(travelerID, s.Shards)
}

// Route implements Pipeline.
func (s *Sensors) Route(m *kafka.Message) (Routed, error) {
	now := time.Now
	if s.Now != nil {
		now = s.Now
	}
	r, err := schemas.DecodeSensorReading(m.Key, m.Value, now(), s.FutureTolerance)
	if err != nil {
		return Routed{}, err
	}
	r.Ref = travel.Ref{Topic: *m.TopicPartition.Topic, Partition: m.TopicPartition.Partition, Offset: int64(m.TopicPartition.Offset)}
	return Routed{WorkflowID: s.WorkflowID(r.TravelerID), Msg: m, Value: r}, nil
}

// Deliver implements Pipeline with SignalWithStart. A traveler's workflow may have ended
// (its traveler went quiet); a new run starts and learns from the database where the
// traveler's stored visits end.
func (s *Sensors) Deliver(ctx context.Context, workflowID string, recs []Routed) error {
	opts := signalStart(workflowID, enumspb.WORKFLOW_ID_REUSE_POLICY_ALLOW_DUPLICATE)
	params := workflows.TravelerParams{Disorder: s.Disorder, IdleGap: s.IdleGap}
	if s.Shards > 0 {
		params.Sharded, params.MaxHistory, params.FlushDelay = true, s.ShardHistory, s.FlushDelay
	}
	readings := make([]travel.Reading, len(recs))
	for i, r := range recs {
		readings[i] = r.Value.(travel.Reading)
	}
	for _, chunk := range chunkBySize(readings, func(r travel.Reading) int {
		return len(r.SensorID) + 2*len(r.TravelerID) + len(r.Ref.Topic) + readingOverhead
	}) {
		_, err := s.Temporal.SignalWithStartWorkflow(ctx, workflowID, workflows.SignalTravelerReadings,
			schemas.TravelerSignal{Readings: chunk}, opts, workflows.TravelerWorkflow, params)
		if err != nil {
			return fmt.Errorf("signal %s: %w", workflowID, err)
		}
	}
	return nil
}
