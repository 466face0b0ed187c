package bridge

import (
	"testing"
	"time"

	"github.com/confluentinc/confluent-kafka-go/v2/kafka"

	"github.com/tributary-dev/tributary/internal/joinsim"
	"github.com/tributary-dev/tributary/schemas"
)

// joinBenchRecords are the rows of n generated events, the bench's own shape, spread over
// the three topics' partitions as the producer keys them.
func joinBenchRecords(b *testing.B, n int) []*kafka.Message {
	b.Helper()
	plan := joinsim.Plan{RunID: "bench", Events: n, Seed: 1, NAFraction: 0.05}
	created := time.Date(2026, 11, 24, 10, 0, 0, 0, time.UTC)
	var msgs []*kafka.Message
	for i := range n {
		ev := plan.Generate(i)
		for _, topic := range schemas.JoinTopics {
			fields, ok := ev.Rows[topic]
			if !ok {
				continue
			}
			msgs = append(msgs, &kafka.Message{
				TopicPartition: kafka.TopicPartition{Topic: &topic, Partition: int32(i % 3), Offset: kafka.Offset(i)},
				Key:            []byte(ev.ID),
				Value:          joinsim.Row(ev.ID, fields, created.Add(time.Duration(i)*time.Millisecond)),
			})
		}
	}
	return msgs
}

// BenchmarkJoinRoute measures what the bridge does per join row before the update goes
// out: validate and decode the row, and name its shard.
// go test -run '^$' -bench JoinRoute -benchmem ./bridge
func BenchmarkJoinRoute(b *testing.B) {
	msgs := joinBenchRecords(b, 1000)
	j := &Join{opts: JoinOptions{Shards: 4}}
	var size int
	for _, m := range msgs {
		size += len(m.Value)
	}
	b.SetBytes(int64(size / len(msgs)))
	b.ResetTimer()
	for i := 0; b.Loop(); i++ {
		if _, err := j.Route(msgs[i%len(msgs)]); err != nil {
			b.Fatal(err)
		}
	}
}
