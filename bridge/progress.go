package bridge

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"sync/atomic"
	"time"

	"github.com/confluentinc/confluent-kafka-go/v2/kafka"
	"gorm.io/gorm"

	"github.com/tributary-dev/tributary/internal/metrics"
	"github.com/tributary-dev/tributary/internal/watermark"
	"github.com/tributary-dev/tributary/schemas"
)

// DefaultProgressInterval is how often a bridge reports its progress and reads its
// pipeline's input watermark back.
const DefaultProgressInterval = 250 * time.Millisecond

// partition names a partition as a map key (kafka.TopicPartition holds its topic by pointer).
type partition struct {
	topic string
	part  int32
}

// partProgress is what this bridge delivered of one partition it owns.
type partProgress struct {
	next    int64 // the offset after the last record delivered, or the log end last reached
	eventMs int64 // the newest event time delivered
	caught  int64 // the last time (Unix ms) everything the partition held was delivered
}

// progress follows how far the bridge delivered each partition it owns, reports it to
// the database (internal/watermark), and reads back the pipeline's input watermark, which
// every delivery carries to its workflow. Only the bridge's Run goroutine touches it, but
// for the watermark, which deliveries read.
type progress struct {
	db       *gorm.DB
	pipeline string
	owner    string
	interval time.Duration
	log      *slog.Logger
	admin    *kafka.AdminClient
	parts    map[partition]*partProgress
	last     time.Time
	// wm is the pipeline's input watermark (Unix ms) as last read.
	wm atomic.Int64
	// metrics, if set, follow each owned partition's lag.
	metrics *metrics.Set
}

func newProgress(db *gorm.DB, pipeline string, interval time.Duration, log *slog.Logger) *progress {
	host, _ := os.Hostname()
	return &progress{db: db, pipeline: pipeline, owner: fmt.Sprintf("%s/%d", host, os.Getpid()), interval: interval, log: log, parts: map[partition]*partProgress{}}
}

// watermark is the pipeline's input watermark as last read; zero before the first read.
func (p *progress) watermark() time.Time {
	ms := p.wm.Load()
	if ms <= 0 {
		return time.Time{}
	}
	return time.UnixMilli(ms).UTC()
}

// register adds a row for every partition of the pipeline's topics, so that a partition
// no bridge has read yet holds the watermark back.
func (p *progress) register(ctx context.Context, c *kafka.Consumer, topics []string) error {
	for _, t := range topics {
		md, err := c.GetMetadata(&t, false, 10000)
		if err != nil {
			return fmt.Errorf("metadata of %s: %w", t, err)
		}
		if err := watermark.Ensure(ctx, p.db, p.pipeline, t, len(md.Topics[t].Partitions)); err != nil {
			return err
		}
	}
	return nil
}

// assigned starts following partitions this bridge now owns.
func (p *progress) assigned(tps []kafka.TopicPartition) {
	for _, tp := range tps {
		k := partition{*tp.Topic, tp.Partition}
		if p.parts[k] == nil {
			p.parts[k] = &partProgress{}
		}
	}
}

// revoked stops following partitions taken away; what was recorded of them stays true.
func (p *progress) revoked(tps []kafka.TopicPartition) {
	for _, tp := range tps {
		delete(p.parts, partition{*tp.Topic, tp.Partition})
		p.metrics.LagGone(p.pipeline, *tp.Topic, tp.Partition)
	}
}

// delivered notes a record handled for good (delivered, skipped or dead-lettered), with
// its event time when it was delivered (zero otherwise).
func (p *progress) delivered(m *kafka.Message, at time.Time) {
	pp := p.parts[partition{*m.TopicPartition.Topic, m.TopicPartition.Partition}]
	if pp == nil {
		return
	}
	pp.next = max(pp.next, int64(m.TopicPartition.Offset)+1)
	if !at.IsZero() {
		pp.eventMs = max(pp.eventMs, at.UnixMilli())
	}
}

// reachedEnd notes that every record before e's offset was handled: the bridge applies
// a partition's EOF only after the batch it was polled with (whose records precede it).
func (p *progress) reachedEnd(e kafka.PartitionEOF) {
	if pp := p.parts[partition{*e.Topic, e.Partition}]; pp != nil && e.Offset >= 0 {
		pp.next = max(pp.next, int64(e.Offset))
	}
}

// tick reports progress once per interval: a partition whose log ends where this bridge
// has delivered up to is caught up as of the moment just before its end was asked for.
func (p *progress) tick(ctx context.Context) {
	if time.Since(p.last) < p.interval || ctx.Err() != nil {
		return
	}
	p.last = time.Now()
	asked := time.Now()
	ends, err := p.logEnds(ctx)
	if err != nil {
		p.warn(ctx, "bridge: log ends", err)
	}
	rows := make([]schemas.InputProgress, 0, len(p.parts))
	for k, pp := range p.parts {
		if end, ok := ends[k]; ok {
			if pp.next >= end {
				pp.caught = max(pp.caught, asked.UnixMilli())
			}
			p.metrics.Lag(p.pipeline, k.topic, k.part, max(0, end-pp.next))
		}
		rows = append(rows, schemas.InputProgress{Pipeline: p.pipeline, Topic: k.topic, Partition: k.part,
			NextOffset: pp.next, EventMs: pp.eventMs, CaughtUpMs: pp.caught, Owner: p.owner})
	}
	if err := watermark.Record(ctx, p.db, rows); err != nil {
		p.warn(ctx, "bridge: record progress", err)
		return
	}
	wm, err := watermark.Read(ctx, p.db, p.pipeline)
	if err != nil {
		p.warn(ctx, "bridge: read watermark", err)
		return
	}
	if !wm.IsZero() {
		p.wm.Store(max(p.wm.Load(), wm.UnixMilli()))
	}
}

// logEnds asks the broker where the owned partitions' logs end, for a read-committed
// reader: past the last committed record and its commit marker.
func (p *progress) logEnds(ctx context.Context) (map[partition]int64, error) {
	if len(p.parts) == 0 || p.admin == nil {
		return nil, nil
	}
	req := make(map[kafka.TopicPartition]kafka.OffsetSpec, len(p.parts))
	for k := range p.parts {
		topic := k.topic
		req[kafka.TopicPartition{Topic: &topic, Partition: k.part}] = kafka.LatestOffsetSpec
	}
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	res, err := p.admin.ListOffsets(ctx, req, kafka.SetAdminIsolationLevel(kafka.IsolationLevelReadCommitted))
	if err != nil {
		return nil, err
	}
	return logEndsOf(res.ResultInfos), nil
}

// logEndsOf keeps the answers that name a log end. librdkafka answers a partition it could
// not ask about (the broker went away during the request) with no error and the offset
// OffsetInvalid (-1001): taken for an end, every offset is past it, and a partition whose
// backlog nobody had read counted as caught up, the input watermark jumped to the clock,
// and windows closed before their records came (the fault suite saw whole windows of
// transactions recorded late after the stack was killed).
func logEndsOf(infos map[kafka.TopicPartition]kafka.ListOffsetsResultInfo) map[partition]int64 {
	out := make(map[partition]int64, len(infos))
	for tp, info := range infos {
		if info.Error.Code() == kafka.ErrNoError && info.Offset >= 0 {
			out[partition{*tp.Topic, tp.Partition}] = int64(info.Offset)
		}
	}
	return out
}

// warn logs a failed step, unless it failed because the bridge is stopping.
func (p *progress) warn(ctx context.Context, what string, err error) {
	if ctx.Err() == nil {
		p.log.Warn(what, "pipeline", p.pipeline, "err", err)
	}
}
