package watermark_test

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	"gorm.io/gorm"

	"github.com/tributary-dev/tributary/internal/db"
	"github.com/tributary-dev/tributary/internal/watermark"
	"github.com/tributary-dev/tributary/schemas"
)

func TestWatermarkIsTheSlowestPartitionAndNeverFalls(t *testing.T) {
	ctx := context.Background()
	g := openDB(t)
	read := func() time.Time {
		t.Helper()
		w, err := watermark.Read(ctx, g, "p")
		if err != nil {
			t.Fatal(err)
		}
		return w
	}
	if w := read(); !w.IsZero() {
		t.Fatalf("no partitions known: watermark %s, want zero", w)
	}
	if err := watermark.Ensure(ctx, g, "p", "in", 3); err != nil {
		t.Fatal(err)
	}
	base := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	ms := func(d time.Duration) int64 { return base.Add(d).UnixMilli() }
	rec := func(part int32, event, caught time.Duration) {
		t.Helper()
		row := schemas.InputProgress{Pipeline: "p", Topic: "in", Partition: part, EventMs: ms(event), CaughtUpMs: ms(caught), Owner: "t"}
		if err := watermark.Record(ctx, g, []schemas.InputProgress{row}); err != nil {
			t.Fatal(err)
		}
	}
	rec(0, 10*time.Second, 0)
	rec(1, 0, 20*time.Second)
	if w := read(); !w.IsZero() {
		t.Fatalf("partition 2 never read: watermark %s, want zero", w)
	}
	rec(2, 5*time.Second, 0)
	if w, want := read(), base.Add(5*time.Second); !w.Equal(want) {
		t.Fatalf("watermark %s, want the slowest partition's %s", w, want)
	}
	// A new owner that resumes behind what was delivered cannot pull the watermark back.
	rec(2, time.Second, time.Second)
	if w, want := read(), base.Add(5*time.Second); !w.Equal(want) {
		t.Fatalf("after a lower report: watermark %s, want %s", w, want)
	}
	rec(2, 30*time.Second, 0)
	if w, want := read(), base.Add(10*time.Second); !w.Equal(want) {
		t.Fatalf("watermark %s, want partition 0's %s", w, want)
	}
	// Registering the partitions again keeps what they hold.
	if err := watermark.Ensure(ctx, g, "p", "in", 3); err != nil {
		t.Fatal(err)
	}
	if w, want := read(), base.Add(10*time.Second); !w.Equal(want) {
		t.Fatalf("after Ensure: watermark %s, want %s", w, want)
	}
	if w, err := watermark.Read(ctx, g, "other"); err != nil || !w.IsZero() {
		t.Fatalf("another pipeline: %s, %v", w, err)
	}
}

// openDB opens a fresh results database (SQLite) with every table.
func openDB(t *testing.T) *gorm.DB {
	t.Helper()
	g, err := db.Open(filepath.Join(t.TempDir(), "w.db"), nil)
	if err != nil {
		t.Fatal(err)
	}
	return g
}
