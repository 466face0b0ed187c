package activities_test

import (
	"context"
	"encoding/json"
	"log/slog"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/tributary-dev/tributary/activities"
	"github.com/tributary-dev/tributary/internal/db"
	"github.com/tributary-dev/tributary/schemas"
)

// BenchmarkFinishJoins stores a shard's finished events as one FinishJoins call, the size
// of one update of `starter bench join`'s sharded run (a bridge batch of 20,000 rows over
// four shards), on the results' SQLite file.
func BenchmarkFinishJoins(b *testing.B) {
	const events = 1667
	d, err := db.Open(filepath.Join(b.TempDir(), "results.db"), slog.New(slog.DiscardHandler))
	if err != nil {
		b.Fatal(err)
	}
	a := &activities.Activities{DB: d}
	at := time.Date(2026, 11, 24, 12, 0, 0, 0, time.UTC)
	fields := json.RawMessage(`{"Sensor":"s-17","Value":"0.7123","Unit":"kPa","Site":"north-3"}`)
	b.ReportAllocs()
	for n := 0; b.Loop(); n++ {
		req := activities.FinishJoinsRequest{Writer: "join/shard-0/run-1"}
		for e := range events {
			id := "bench-" + strconv.Itoa(n) + "-" + strconv.Itoa(e)
			ev := activities.FinishedJoin{EventID: id, Status: schemas.JoinComplete}
			for i, topic := range schemas.JoinTopics {
				ev.Rows = append(ev.Rows, schemas.JoinArrival{EventID: id, Topic: topic, Offset: int64(n*events + e), Partition: int32(i),
					CreatedAt: at, Fields: fields})
			}
			req.Events = append(req.Events, ev)
		}
		if _, err := a.FinishJoins(context.Background(), req); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N*events)/b.Elapsed().Seconds(), "events/s")
}
