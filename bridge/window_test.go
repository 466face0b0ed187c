package bridge

import (
	"fmt"
	"testing"
	"time"

	"github.com/confluentinc/confluent-kafka-go/v2/kafka"

	"github.com/tributary-dev/tributary/pipelines"
	"github.com/tributary-dev/tributary/schemas"
)

func likeItem(video string, partition int32, offset int64, at time.Time) windowItem {
	topic := "likes"
	return windowItem{
		item: pipelines.Item{Key: video, Value: 1, At: at},
		msg:  &kafka.Message{TopicPartition: kafka.TopicPartition{Topic: &topic, Partition: partition, Offset: kafka.Offset(offset)}},
	}
}

func TestAggregateMakesOnePartialPerKeyAndWindow(t *testing.T) {
	w, err := NewWindow(pipelines.Likes(), nil, nil, WindowOptions{})
	if err != nil {
		t.Fatal(err)
	}
	t0 := time.Date(2026, 1, 1, 10, 0, 30, 0, time.UTC)
	items := []windowItem{
		likeItem("a", 0, 10, t0), likeItem("a", 0, 11, t0.Add(time.Second)), likeItem("b", 1, 5, t0),
		likeItem("a", 1, 6, t0.Add(time.Minute)), // the next 1-minute window, same 5 and 10-minute ones
	}
	b := w.aggregate(items)
	// a: 2 one-minute windows + one 5-minute + one 10-minute; b: three windows.
	if len(b.Partials) != 7 {
		t.Fatalf("%d partials: %+v", len(b.Partials), b.Partials)
	}
	counts := map[string]int64{}
	for i, p := range b.Partials {
		counts[fmt.Sprintf("%s/%d/%s", p.Key, p.SizeSeconds, p.Start.Format("15:04"))] = p.Partial.Count
		// An answer naming this partial late names as many records as it counts.
		if n := len(w.lateItems(schemas.WindowAck{Late: []int{i}}, b, items)); int64(n) != p.Partial.Count {
			t.Errorf("partial %d: %d late records for count %d", i, n, p.Partial.Count)
		}
	}
	want := map[string]int64{"a/60/10:00": 2, "a/60/10:01": 1, "a/300/10:00": 3, "a/600/10:00": 3, "b/60/10:00": 1, "b/300/10:00": 1, "b/600/10:00": 1}
	for k, n := range want {
		if counts[k] != n {
			t.Errorf("%s: count %d, want %d", k, counts[k], n)
		}
	}
	if len(b.Ranges) != 2 || b.Ranges[0].From != 10 || b.Ranges[0].To != 11 || b.Ranges[1].From != 5 || b.Ranges[1].To != 6 {
		t.Errorf("ranges %+v", b.Ranges)
	}
}

func TestPastAppliedRebuildsFromTheWatermark(t *testing.T) {
	w, err := NewWindow(pipelines.Likes(), nil, nil, WindowOptions{})
	if err != nil {
		t.Fatal(err)
	}
	t0 := time.Now()
	items := []windowItem{likeItem("a", 0, 8, t0), likeItem("a", 0, 9, t0), likeItem("a", 0, 10, t0), likeItem("a", 1, 3, t0)}
	left, late := w.pastApplied(items, map[string]int64{"likes/0": 9}, nil)
	if len(left) != 2 || left[0].msg.TopicPartition.Offset != 10 || left[1].msg.TopicPartition.Partition != 1 || len(late) != 0 {
		t.Fatalf("left %d records, %d late", len(left), len(late))
	}
	if left, _ := w.pastApplied(items, map[string]int64{"likes/0": 10, "likes/1": 3}, nil); len(left) != 0 {
		t.Error("records at or below the applied offsets were kept")
	}
}

// A sender that lost the answer naming a batch's late partials leaves its successor only
// the workflow's late spans: the successor's records that a span covers, in one of its
// windows, are late; those in its ranges but other windows, or outside its ranges, are not.
func TestPastAppliedFindsTheRecordsALostAnswerNamedLate(t *testing.T) {
	w, err := NewWindow(pipelines.Likes(), nil, nil, WindowOptions{})
	if err != nil {
		t.Fatal(err)
	}
	t0 := time.Date(2026, 1, 1, 10, 0, 30, 0, time.UTC)
	lost := []windowItem{likeItem("a", 0, 20, t0), likeItem("b", 0, 21, t0), likeItem("a", 0, 22, t0.Add(time.Minute))}
	b := w.aggregate(lost)
	// The workflow found a's 10:00 one-minute window closed, nothing else.
	span := schemas.LateSpan{Ranges: b.Ranges, Windows: []string{schemas.WindowKey("a", 60, t0.Truncate(time.Minute))}, At: t0}
	again := []windowItem{likeItem("a", 0, 19, t0), lost[0], lost[1], lost[2], likeItem("a", 0, 23, t0)}
	left, late := w.pastApplied(again, map[string]int64{"likes/0": 22}, []schemas.LateSpan{span})
	if len(left) != 1 || left[0].msg.TopicPartition.Offset != 23 {
		t.Fatalf("left %d records, want offset 23 only", len(left))
	}
	if len(late) != 1 || late[0].msg.TopicPartition.Offset != 20 {
		t.Fatalf("late %d records, want offset 20 only (19 is outside the span, 21 is b's, 22 is in the next minute)", len(late))
	}
	// The answer's own late partial, a's 10:00 one-minute window, names offset 20 too;
	// recordLate writes each record once.
	if got := w.lateItems(schemas.WindowAck{Late: []int{0}}, b, lost); len(got) != 1 || got[0].msg.TopicPartition.Offset != 20 {
		t.Fatalf("the answer's late partial names %d records, want offset 20 only", len(got))
	}
}
