package watermark_test

import (
	"context"
	"testing"
	"time"

	"github.com/tributary-dev/tributary/internal/watermark"
	"github.com/tributary-dev/tributary/schemas"
)

// TestStageWatermarkWaitsForHeldInput walks the marks through the orders bridges and a
// workflow can meet in: the stage watermark never passes a reading a workflow was given and
// has not flushed, and a mark a dead bridge reserved holds nothing back.
func TestStageWatermarkWaitsForHeldInput(t *testing.T) {
	ctx := context.Background()
	g := openDB(t)
	base := time.Date(2026, 1, 2, 3, 4, 0, 0, time.UTC)
	at := func(d time.Duration) time.Time { return base.Add(d) }
	if err := watermark.Ensure(ctx, g, "p", "in", 1); err != nil {
		t.Fatal(err)
	}
	// The input watermark is at +60 s: every reading up to there was delivered.
	row := schemas.InputProgress{Pipeline: "p", Topic: "in", Partition: 0, EventMs: at(time.Minute).UnixMilli(), Owner: "t"}
	if err := watermark.Record(ctx, g, []schemas.InputProgress{row}); err != nil {
		t.Fatal(err)
	}
	stage := func(want time.Time, why string) {
		t.Helper()
		got, err := watermark.ReadStage(ctx, g, "p")
		if err != nil {
			t.Fatal(err)
		}
		if !got.Equal(want) {
			t.Fatalf("%s: stage watermark %s, want %s", why, got.Format("15:04:05.000"), want.Format("15:04:05.000"))
		}
	}
	reserve := func(wf string) int64 {
		t.Helper()
		m, err := watermark.Reserve(ctx, g, "p", wf)
		if err != nil {
			t.Fatal(err)
		}
		return m
	}
	delivered := func(wf string, mark int64, oldest time.Duration) {
		t.Helper()
		if err := watermark.Delivered(ctx, g, "p", wf, mark, at(oldest)); err != nil {
			t.Fatal(err)
		}
	}
	clear := func(wf string, mark int64, oldest time.Time) bool {
		t.Helper()
		ok, err := watermark.Clear(ctx, g, "p", wf, mark, oldest)
		if err != nil {
			t.Fatal(err)
		}
		return ok
	}
	held := func(d time.Duration) time.Time { return at(d).Add(-time.Millisecond) }

	stage(at(time.Minute), "nothing delivered to a workflow: the input watermark")
	m1 := reserve("a")
	stage(at(time.Minute), "a reserved mark holds nothing back")
	delivered("a", m1, 10*time.Second)
	stage(held(10*time.Second), "a delivery not yet applied holds the stage back")
	m2 := reserve("a")
	delivered("a", m2, 20*time.Second)
	stage(held(10*time.Second), "the oldest delivery holds it")
	if clear("a", m1, at(15*time.Second)) {
		t.Fatal("a workflow that applied mark 1 cleared past delivery 2, not applied yet")
	}
	stage(held(10*time.Second), "a refused clear changes nothing")
	if !clear("a", m2, at(15*time.Second)) {
		t.Fatal("a workflow that applied both deliveries could not clear")
	}
	stage(held(15*time.Second), "the workflow's own oldest held reading holds it now")

	// The workflow clears before the bridge notes its delivery (it applied the signal
	// first): the late note must not hold the stage back again.
	m3 := reserve("a")
	if !clear("a", m3, time.Time{}) {
		t.Fatal("clear after applying mark 3")
	}
	delivered("a", m3, 30*time.Second)
	stage(at(time.Minute), "a delivery already cleared holds nothing")

	// A bridge that reserved and died: nothing held; the next delivery is cleared normally.
	reserve("b")
	stage(at(time.Minute), "a dead bridge's reservation holds nothing")
	m5 := reserve("b")
	delivered("b", m5, 40*time.Second)
	stage(held(40*time.Second), "the next bridge's delivery holds it")
	if !clear("b", m5, time.Time{}) {
		t.Fatal("clear of b")
	}
	stage(at(time.Minute), "everything flushed: the input watermark again")
}
