package workflows

import (
	"testing"
	"time"

	"github.com/tributary-dev/tributary/internal/joinsim"
	"github.com/tributary-dev/tributary/schemas"
)

// benchState is a shard's state as `starter bench join`'s sharded run leaves it at a
// continue-as-new: events waiting for their third row, and the ids finished last.
func benchState(pending, done int) *JoinState {
	plan := joinsim.Plan{RunID: "sh", Events: pending + done, Seed: 1}
	at := time.Date(2026, 11, 25, 3, 0, 0, 0, time.UTC)
	s := &JoinState{Pending: map[string]*PendingJoin{}, Applied: map[string]int64{}}
	for n := range pending {
		ev := plan.Generate(n)
		pj := &PendingJoin{Rows: map[string]schemas.JoinArrival{}, Deadline: at.Add(time.Minute)}
		for i, topic := range schemas.JoinTopics[:2] {
			pj.Rows[topic] = schemas.JoinArrival{EventID: ev.ID, Topic: topic, Partition: int32(n % 4), Offset: int64(3*n + i),
				CreatedAt: at.Add(time.Duration(n) * time.Microsecond), Fields: ev.Rows[topic]}
		}
		s.Pending[ev.ID] = pj
		s.Queue = append(s.Queue, ev.ID)
	}
	for n := range done {
		s.Done = append(s.Done, joinsim.EventID("sh", pending+n))
	}
	for _, t := range schemas.JoinTopics {
		for p := range 4 {
			s.Applied[schemas.TopicPartition(t, int32(p))] = int64(1000000 + p)
		}
	}
	return s
}

// BenchmarkPackState packs and unpacks a shard's state of 5,000 pending events and 5,000
// finished ids, as one continue-as-new does, in either form.
func BenchmarkPackState(b *testing.B) {
	s := benchState(5000, 5000)
	for _, form := range []struct {
		name     string
		asBinary bool
	}{{"json", false}, {"binary", true}} {
		b.Run(form.name, func(b *testing.B) {
			var size int
			for b.Loop() {
				packed, err := packState(s, form.asBinary)
				if err != nil {
					b.Fatal(err)
				}
				if _, err := unpackState(packed); err != nil {
					b.Fatal(err)
				}
				size = len(packed)
			}
			b.ReportMetric(float64(size), "packed-bytes")
		})
	}
}
