package bridge

import (
	"encoding/json"
	"fmt"
	"testing"
	"time"

	"github.com/confluentinc/confluent-kafka-go/v2/kafka"

	"github.com/tributary-dev/tributary/pipelines"
	"github.com/tributary-dev/tributary/schemas"
)

// benchRecords are n records of a window pipeline's topic over 8 partitions, as the
// window benches send them: transactions of 50 users, likes of 200 videos.
func benchRecords(b *testing.B, spec pipelines.Spec, n int) []*kafka.Message {
	b.Helper()
	topic := spec.Topic
	t0 := time.Date(2026, 11, 24, 10, 0, 0, 0, time.UTC)
	msgs := make([]*kafka.Message, n)
	for i := range msgs {
		at := t0.Add(time.Duration(i) * time.Millisecond)
		var v []byte
		var key []byte
		var err error
		switch spec.Name {
		case schemas.PipelineTransactions:
			id := fmt.Sprintf("tx-%d", i)
			key = []byte(id)
			v, err = json.Marshal(schemas.Transaction{Version: schemas.RecordVersion, ID: id, UserID: fmt.Sprintf("u%d", i%50), Amount: float64(i%100) + 0.5, Status: schemas.StatusPaid, At: at})
		default:
			video := fmt.Sprintf("video-%d", i%200)
			key = []byte(video)
			v, err = json.Marshal(schemas.Like{Version: schemas.RecordVersion, VideoID: video, At: at})
		}
		if err != nil {
			b.Fatal(err)
		}
		msgs[i] = &kafka.Message{TopicPartition: kafka.TopicPartition{Topic: &topic, Partition: int32(i % 8), Offset: kafka.Offset(i / 8)}, Key: key, Value: v}
	}
	return msgs
}

// routeAll decodes and routes msgs as the bridge does, into the window's items.
func routeAll(b *testing.B, w *Window, msgs []*kafka.Message) []windowItem {
	items := make([]windowItem, 0, len(msgs))
	for _, m := range msgs {
		r, err := w.Route(m)
		if err != nil {
			b.Fatal(err)
		}
		items = append(items, r.Value.(windowItem))
	}
	return items
}

// BenchmarkWindowBatch measures what a bridge does per record of a window pipeline before
// the update goes out: decode and route each record, then build the batch's partials and
// ranges. go test -bench WindowBatch -benchmem ./bridge
func BenchmarkWindowBatch(b *testing.B) {
	for _, spec := range []pipelines.Spec{pipelines.Transactions(), pipelines.Likes()} {
		b.Run(spec.Name, func(b *testing.B) {
			w, err := NewWindow(spec, nil, nil, WindowOptions{})
			if err != nil {
				b.Fatal(err)
			}
			msgs := benchRecords(b, spec, 10_000)
			b.ResetTimer()
			for range b.N {
				w.aggregate(routeAll(b, w, msgs))
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*len(msgs)), "ns/record")
		})
	}
}

// BenchmarkWindowAggregate is the batch-building step alone.
func BenchmarkWindowAggregate(b *testing.B) {
	for _, spec := range []pipelines.Spec{pipelines.Transactions(), pipelines.Likes()} {
		b.Run(spec.Name, func(b *testing.B) {
			w, err := NewWindow(spec, nil, nil, WindowOptions{})
			if err != nil {
				b.Fatal(err)
			}
			items := routeAll(b, w, benchRecords(b, spec, 10_000))
			b.ResetTimer()
			for range b.N {
				w.aggregate(items)
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*len(items)), "ns/record")
		})
	}
}
