package bridge

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/confluentinc/confluent-kafka-go/v2/kafka"
	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/sdk/client"
	"gorm.io/gorm"

	"github.com/tributary-dev/tributary/internal/watermark"
	"github.com/tributary-dev/tributary/schemas"
	"github.com/tributary-dev/tributary/travel"
	"github.com/tributary-dev/tributary/workflows"
)

// Defaults of SensorsOptions.
const (
	DefaultSensorDisorder   = 2 * time.Second
	DefaultSensorIdleGap    = 10 * time.Second
	DefaultSensorFlushDelay = time.Second
)

// SensorsOptions configure the sensors pipeline's router and, through it, its workflows.
type SensorsOptions struct {
	// Shards > 0 hashes traveler ids over that many shard workflows; 0 runs one per traveler.
	Shards int
	// Disorder is how far out of event-time order a traveler's readings may arrive.
	Disorder time.Duration
	// IdleGap ends a visit when its traveler sent no reading of it for this long.
	IdleGap time.Duration
	// FlushDelay is how long a shard holds ended visits to flush them together.
	FlushDelay time.Duration
	// ShardHistory makes a shard continue as new after this many history events; 0 waits
	// for the server's suggestion.
	ShardHistory int
}

// DefaultSensorsOptions are the options the sensors pipeline runs with unless told otherwise.
func DefaultSensorsOptions() SensorsOptions {
	return SensorsOptions{Disorder: DefaultSensorDisorder, IdleGap: DefaultSensorIdleGap, FlushDelay: DefaultSensorFlushDelay}
}

func (o *SensorsOptions) setDefaults() {
	if o.IdleGap == 0 {
		o.IdleGap = DefaultSensorIdleGap
	}
}

// Validate reports options the sensors pipeline cannot run with.
func (o SensorsOptions) Validate() error {
	if o.Shards < 0 || o.ShardHistory < 0 || o.Disorder < 0 || o.IdleGap < 0 || o.FlushDelay < 0 {
		return errors.New("sensors: traveler shards, shard history, disorder, idle gap and flush delay must not be negative")
	}
	return nil
}

// readingOverhead is a reading's encoded size in a signal besides its ids, rounded up.
const readingOverhead = 260

// Sensors routes sensor readings to TravelerWorkflows: one per traveler id, or one of the
// shards. Readings that no sensor could have made (positions not finite, unknown types) are
// dead-lettered here, like every record dated too far ahead; impossible jumps, which need the traveler's
// previous reading, are dead-lettered by the workflow.
type Sensors struct {
	opts     SensorsOptions
	temporal client.Client
	// stage keeps the stage marks of the deliveries (internal/watermark, stage.go), so that
	// the sensor minutes wait for readings the traveler workflows hold; nil keeps none.
	stage *gorm.DB
}

// NewSensors builds the sensors pipeline's router; stage is the database of the stage
// marks (nil: none are kept, as in tests of routing alone).
func NewSensors(temporal client.Client, stage *gorm.DB, opts SensorsOptions) (*Sensors, error) {
	if err := opts.Validate(); err != nil {
		return nil, err
	}
	opts.setDefaults()
	return &Sensors{opts: opts, temporal: temporal, stage: stage}, nil
}

// Name implements Pipeline.
func (s *Sensors) Name() string { return schemas.PipelineSensors }

// Topics implements Pipeline.
func (s *Sensors) Topics() []string { return []string{schemas.TopicSensorReadings} }

// Route implements Pipeline.
func (s *Sensors) Route(m *kafka.Message) (Routed, error) {
	r, err := schemas.DecodeSensorReading(m.Key, m.Value)
	if err != nil {
		return Routed{}, err
	}
	r.Ref = travel.Ref{Topic: *m.TopicPartition.Topic, Partition: m.TopicPartition.Partition, Offset: int64(m.TopicPartition.Offset)}
	return Routed{WorkflowID: workflows.TravelerWorkflowID(r.TravelerID, s.opts.Shards), Msg: m, At: r.At, Value: r}, nil
}

// Deliver implements Pipeline with SignalWithStart. A traveler's workflow may have ended
// (its traveler went quiet); a new run starts and learns from the database where the
// traveler's stored visits end.
func (s *Sensors) Deliver(ctx context.Context, workflowID string, recs []Routed, wm time.Time) error {
	opts := signalStart(workflowID, enumspb.WORKFLOW_ID_REUSE_POLICY_ALLOW_DUPLICATE)
	params := workflows.TravelerParams{Disorder: s.opts.Disorder, IdleGap: s.opts.IdleGap, Pins: workflows.CurrentPins}
	if s.opts.Shards > 0 {
		params.Sharded, params.MaxHistory, params.FlushDelay = true, s.opts.ShardHistory, s.opts.FlushDelay
	}
	readings := make([]travel.Reading, len(recs))
	for i, r := range recs {
		readings[i] = r.Value.(travel.Reading)
	}
	for _, chunk := range chunkBySize(readings, MaxSignalBytes, func(r travel.Reading) int {
		return len(r.SensorID) + 2*len(r.TravelerID) + len(r.Ref.Topic) + readingOverhead
	}) {
		sig := schemas.TravelerSignal{Readings: chunk, Watermark: wm}
		if s.stage != nil {
			mark, err := watermark.Reserve(ctx, s.stage, schemas.PipelineSensors, workflowID)
			if err != nil {
				return err
			}
			sig.Mark = mark
		}
		_, err := s.temporal.SignalWithStartWorkflow(ctx, workflowID, workflows.SignalTravelerReadings, sig, opts, workflows.TravelerWorkflow, params)
		if err != nil {
			return fmt.Errorf("signal %s: %w", workflowID, err)
		}
		if s.stage != nil {
			// Before the bridge records the readings' progress, which moves the input
			// watermark past them.
			if err := watermark.Delivered(ctx, s.stage, schemas.PipelineSensors, workflowID, sig.Mark, oldestReading(chunk)); err != nil {
				return err
			}
		}
	}
	return nil
}

// oldestReading is the earliest event time of readings.
func oldestReading(readings []travel.Reading) time.Time {
	oldest := readings[0].At
	for _, r := range readings[1:] {
		if r.At.Before(oldest) {
			oldest = r.At
		}
	}
	return oldest
}
