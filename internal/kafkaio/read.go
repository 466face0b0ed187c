package kafkaio

import (
	"context"
	"fmt"

	"github.com/confluentinc/confluent-kafka-go/v2/kafka"
)

// EndOffsets returns each partition's high watermark, by topic: where a reader that starts
// now begins, or where one that reads "everything so far" stops.
func EndOffsets(bootstrap string, topics []string) (map[string][]int64, error) {
	conf := ConsumerConfig(bootstrap, "tributary-reader")
	c, err := kafka.NewConsumer(&conf)
	if err != nil {
		return nil, fmt.Errorf("kafka reader for %s: %w", bootstrap, err)
	}
	defer c.Close()
	out := map[string][]int64{}
	for _, topic := range topics {
		md, err := c.GetMetadata(&topic, false, 10000)
		if err != nil {
			return nil, fmt.Errorf("metadata of %s: %w", topic, err)
		}
		parts := md.Topics[topic].Partitions
		offs := make([]int64, len(parts))
		for _, p := range parts {
			_, high, err := c.QueryWatermarkOffsets(topic, p.ID, 10000)
			if err != nil {
				return nil, fmt.Errorf("watermarks of %s/%d: %w", topic, p.ID, err)
			}
			offs[p.ID] = high
		}
		out[topic] = offs
	}
	return out, nil
}

// ReadTopic reads a topic from its beginning up to the end it has when the call starts,
// handing each record to fn in order per partition, with a consumer of its own that
// commits nothing. It stops at the first error fn returns, or when ctx ends.
func ReadTopic(ctx context.Context, bootstrap, topic string, fn func(*kafka.Message) error) error {
	ends, err := EndOffsets(bootstrap, []string{topic})
	if err != nil {
		return err
	}
	end := ends[topic]
	conf := ConsumerConfig(bootstrap, "tributary-topic-reader")
	// A transactional topic ends in commit markers, which take offsets but are never
	// delivered: the end is known from the partition-EOF event, not from the last record.
	conf["enable.partition.eof"] = true
	c, err := kafka.NewConsumer(&conf)
	if err != nil {
		return fmt.Errorf("kafka reader for %s: %w", bootstrap, err)
	}
	defer c.Close()
	parts := make([]kafka.TopicPartition, 0, len(end))
	for p := range end {
		parts = append(parts, kafka.TopicPartition{Topic: &topic, Partition: int32(p), Offset: kafka.OffsetBeginning})
	}
	if err := c.Assign(parts); err != nil {
		return fmt.Errorf("assign %s: %w", topic, err)
	}
	next := make([]int64, len(end))
	atEnd := func() bool {
		for p := range end {
			if next[p] < end[p] {
				return false
			}
		}
		return true
	}
	for !atEnd() {
		if err := ctx.Err(); err != nil {
			return fmt.Errorf("read %s to its end: %w", topic, err)
		}
		switch e := c.Poll(200).(type) {
		case *kafka.Message:
			if e.TopicPartition.Error != nil {
				return fmt.Errorf("read %s: %w", topic, e.TopicPartition.Error)
			}
			next[e.TopicPartition.Partition] = int64(e.TopicPartition.Offset) + 1
			if err := fn(e); err != nil {
				return err
			}
		case kafka.PartitionEOF:
			if int64(e.Offset) > next[e.Partition] {
				next[e.Partition] = int64(e.Offset)
			}
		case kafka.Error:
			if e.IsFatal() {
				return fmt.Errorf("read %s: %w", topic, e)
			}
		}
	}
	return nil
}
