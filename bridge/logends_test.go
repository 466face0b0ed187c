package bridge

import (
	"maps"
	"testing"

	"github.com/confluentinc/confluent-kafka-go/v2/kafka"
)

// A log end librdkafka could not learn (the broker went away during the request) comes
// back as offset -1001 with no error; it must not count as an end, which every position
// would pass.
func TestLogEndsOfKeepsOnlyRealEnds(t *testing.T) {
	topic := "in"
	at := func(p int32) kafka.TopicPartition { return kafka.TopicPartition{Topic: &topic, Partition: p} }
	got := logEndsOf(map[kafka.TopicPartition]kafka.ListOffsetsResultInfo{
		at(0): {Offset: 42},
		at(1): {Offset: kafka.OffsetInvalid},
		at(2): {Offset: 7, Error: kafka.NewError(kafka.ErrNotLeaderForPartition, "moved", false)},
		at(3): {Offset: 0},
	})
	want := map[partition]int64{{"in", 0}: 42, {"in", 3}: 0}
	if !maps.Equal(got, want) {
		t.Errorf("log ends %v, want %v", got, want)
	}
}
