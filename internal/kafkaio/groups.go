package kafkaio

import (
	"context"
	"fmt"

	"github.com/confluentinc/confluent-kafka-go/v2/kafka"
)

// GroupOffsets returns a consumer group's committed offsets for every partition of the
// topics (kafka.OffsetInvalid where it committed none).
func GroupOffsets(ctx context.Context, bootstrap, group string, topics ...string) ([]kafka.TopicPartition, error) {
	conf := baseConfig(bootstrap)
	admin, err := kafka.NewAdminClient(&conf)
	if err != nil {
		return nil, fmt.Errorf("kafka admin client for %s: %w", bootstrap, err)
	}
	defer admin.Close()
	var parts []kafka.TopicPartition
	for _, t := range topics {
		md, err := admin.GetMetadata(&t, false, 10000)
		if err != nil {
			return nil, fmt.Errorf("metadata of %s: %w", t, err)
		}
		for _, p := range md.Topics[t].Partitions {
			parts = append(parts, kafka.TopicPartition{Topic: &t, Partition: p.ID})
		}
	}
	res, err := admin.ListConsumerGroupOffsets(ctx, []kafka.ConsumerGroupTopicPartitions{{Group: group, Partitions: parts}})
	if err != nil {
		return nil, fmt.Errorf("offsets of group %s: %w", group, err)
	}
	return res.ConsumerGroupsTopicPartitions[0].Partitions, nil
}

// SetGroupOffsets moves a consumer group's committed offsets, as an operator rewinding a
// pipeline would. The group must have no running members.
func SetGroupOffsets(ctx context.Context, bootstrap, group string, parts []kafka.TopicPartition) error {
	conf := baseConfig(bootstrap)
	admin, err := kafka.NewAdminClient(&conf)
	if err != nil {
		return fmt.Errorf("kafka admin client for %s: %w", bootstrap, err)
	}
	defer admin.Close()
	res, err := admin.AlterConsumerGroupOffsets(ctx, []kafka.ConsumerGroupTopicPartitions{{Group: group, Partitions: parts}})
	if err != nil {
		return fmt.Errorf("set offsets of group %s: %w", group, err)
	}
	for _, p := range res.ConsumerGroupsTopicPartitions[0].Partitions {
		if p.Error != nil {
			return fmt.Errorf("set offset of group %s on %s: %w", group, p, p.Error)
		}
	}
	return nil
}
