package joinsim

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"math"
	"slices"
	"time"

	"github.com/confluentinc/confluent-kafka-go/v2/kafka"

	"github.com/tributary-dev/tributary/internal/kafkaio"
	"github.com/tributary-dev/tributary/schemas"
)

// Offsets maps a topic to the next offset to read of each of its partitions.
type Offsets map[string][]int64

// Report is what a run's output says, read back from the ack and dead-letter topics.
type Report struct {
	Acked        int
	Incomplete   int
	Duplicates   int
	DeadLettered int
	// AckRecords counts every ack of the run, so AckRecords > Acked+Incomplete means an
	// event was acked twice.
	AckRecords int
	Delays     Histogram
	// FirstArrival is the creation time of the oldest row an ack names; LastAck the newest
	// ack's. Between them lies the run's processing time.
	FirstArrival, LastAck time.Time
}

// Resolved is the number of events with an outcome.
func (r Report) Resolved() int { return r.Acked + r.Incomplete }

// Histogram records durations in buckets 2% wide, so quantiles are within 2% of exact with
// a few hundred buckets whatever the count.
type Histogram struct {
	Buckets map[int]int64
	Count   int64
	Max     time.Duration
	Sum     time.Duration
}

const bucketGrowth = 1.02

func bucketOf(d time.Duration) int {
	us := float64(d) / float64(time.Microsecond)
	if us < 1 {
		return 0
	}
	return int(math.Log(us)/math.Log(bucketGrowth)) + 1
}

// BucketUpper is the largest duration bucket k holds.
func BucketUpper(k int) time.Duration {
	if k == 0 {
		return time.Microsecond
	}
	return time.Duration(math.Pow(bucketGrowth, float64(k)) * float64(time.Microsecond))
}

// Add records one duration; negative ones (clock skew across hosts) count as zero.
func (h *Histogram) Add(d time.Duration) {
	d = max(d, 0)
	if h.Buckets == nil {
		h.Buckets = map[int]int64{}
	}
	h.Buckets[bucketOf(d)]++
	h.Count++
	h.Sum += d
	h.Max = max(h.Max, d)
}

// Quantile returns the upper bound of the bucket that holds quantile q (0..1).
func (h Histogram) Quantile(q float64) time.Duration {
	if h.Count == 0 {
		return 0
	}
	keys := slices.Sorted(func(yield func(int) bool) {
		for k := range h.Buckets {
			if !yield(k) {
				return
			}
		}
	})
	rank := int64(math.Ceil(q * float64(h.Count)))
	var seen int64
	for _, k := range keys {
		seen += h.Buckets[k]
		if seen >= max(rank, 1) {
			return min(BucketUpper(k), h.Max)
		}
	}
	return h.Max
}

// ResultTopics are the topics a join run's outcome is read from.
func ResultTopics() []string {
	topics := []string{schemas.TopicAck}
	for _, t := range schemas.JoinTopics {
		topics = append(topics, kafkaio.DLQTopic(t))
	}
	return topics
}

// EndOffsets returns each partition's high watermark: where a run that starts now begins.
func EndOffsets(bootstrap string, topics []string) (Offsets, error) {
	return kafkaio.EndOffsets(bootstrap, topics)
}

func newReader(bootstrap string) (*kafka.Consumer, error) {
	conf := kafkaio.ConsumerConfig(bootstrap, "tributary-reader")
	conf["enable.partition.eof"] = true
	c, err := kafka.NewConsumer(&conf)
	if err != nil {
		return nil, fmt.Errorf("kafka reader for %s: %w", bootstrap, err)
	}
	return c, nil
}

// Collect reads the run's acks and dead letters from the given offsets until it caught up
// with every partition or the budget ran out, adds them to rep and returns where it stopped.
// Records of other runs (keys without the run's prefix) are skipped.
func Collect(ctx context.Context, bootstrap, runID string, from Offsets, budget time.Duration, rep *Report) (Offsets, error) {
	c, err := newReader(bootstrap)
	if err != nil {
		return from, err
	}
	defer c.Close()
	next := Offsets{}
	var assign []kafka.TopicPartition
	for topic, offs := range from {
		next[topic] = slices.Clone(offs)
		for p, off := range offs {
			assign = append(assign, kafka.TopicPartition{Topic: &topic, Partition: int32(p), Offset: kafka.Offset(off)})
		}
	}
	if err := c.Assign(assign); err != nil {
		return from, fmt.Errorf("assign result partitions: %w", err)
	}
	prefix := []byte(runID + "-")
	atEnd := map[string]bool{}
	deadline := time.Now().Add(budget)
	for len(atEnd) < len(assign) && time.Now().Before(deadline) && ctx.Err() == nil {
		switch e := c.Poll(50).(type) {
		case *kafka.Message:
			topic := *e.TopicPartition.Topic
			next[topic][e.TopicPartition.Partition] = int64(e.TopicPartition.Offset) + 1
			delete(atEnd, schemas.TopicPartition(topic, e.TopicPartition.Partition))
			if !bytes.HasPrefix(e.Key, prefix) {
				continue
			}
			if topic != schemas.TopicAck {
				rep.DeadLettered++
				continue
			}
			var ack schemas.Ack
			if err := json.Unmarshal(e.Value, &ack); err != nil {
				return next, fmt.Errorf("ack at %s: %w", e.TopicPartition, err)
			}
			rep.AckRecords++
			rep.Duplicates += ack.Duplicates
			for _, at := range ack.Arrivals {
				if rep.FirstArrival.IsZero() || at.Before(rep.FirstArrival) {
					rep.FirstArrival = at
				}
			}
			if ack.CreatedAt.After(rep.LastAck) {
				rep.LastAck = ack.CreatedAt
			}
			if ack.Status == schemas.JoinComplete {
				rep.Acked++
				rep.Delays.Add(ack.CreatedAt.Sub(ack.LatestArrival()))
			} else {
				rep.Incomplete++
			}
		case kafka.PartitionEOF:
			atEnd[schemas.TopicPartition(*e.Topic, e.Partition)] = true
		case kafka.Error:
			if e.IsFatal() {
				return next, fmt.Errorf("read results: %w", e)
			}
		}
	}
	return next, nil
}
