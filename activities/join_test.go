package activities_test

import (
	"context"
	"encoding/json"
	"log/slog"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/tributary-dev/tributary/activities"
	"github.com/tributary-dev/tributary/internal/db"
	"github.com/tributary-dev/tributary/internal/pgtest"
	"github.com/tributary-dev/tributary/schemas"
)

// TestRetriedTaskKeepsTheStoredEvent: a join finished by a local activity in a workflow
// task that then failed is finished again by the retried task, which may have applied rows
// that came meanwhile. The event stored first stands, as acked; the rows it lacks are
// recorded late, so each row is in its event or late, and the event is acked once. A retry
// of the same attempt changes nothing.
func TestRetriedTaskKeepsTheStoredEvent(t *testing.T) {
	d, err := db.Open(filepath.Join(t.TempDir(), "results.db"), slog.New(slog.DiscardHandler))
	require.NoError(t, err)
	a := &activities.Activities{DB: d}
	ctx := context.Background()
	at := time.Date(2026, 11, 23, 12, 0, 0, 0, time.UTC)
	row := func(i int) schemas.JoinArrival {
		return schemas.JoinArrival{EventID: "e1", Topic: schemas.JoinTopics[i], Offset: int64(i), CreatedAt: at, Fields: json.RawMessage(`{}`)}
	}
	first := activities.FinishJoinsRequest{Writer: "join/shard-0/run-1",
		Events: []activities.FinishedJoin{{EventID: "e1", Status: schemas.JoinIncomplete, Rows: []schemas.JoinArrival{row(0)}}}}
	res, err := a.FinishJoins(ctx, first)
	require.NoError(t, err)
	require.Empty(t, res.Kept)

	retried := activities.FinishJoinsRequest{Writer: first.Writer,
		Events: []activities.FinishedJoin{{EventID: "e1", Status: schemas.JoinComplete, Rows: []schemas.JoinArrival{row(0), row(1), row(2)}}}}
	res, err = a.FinishJoins(ctx, retried)
	require.NoError(t, err)
	require.Equal(t, map[string]activities.KeptJoin{"e1": {Status: schemas.JoinIncomplete, LateRows: 2}}, res.Kept)

	var ev schemas.JoinedEvent
	require.NoError(t, d.First(&ev, "event_id = ?", "e1").Error)
	require.Equal(t, schemas.JoinIncomplete, ev.Status, "the event as stored and acked first")
	require.Equal(t, schemas.TopicJoin1, ev.Topics)
	var late []schemas.LateRecord
	require.NoError(t, d.Order("topic").Find(&late, "pipeline = ?", schemas.PipelineJoin).Error)
	require.Len(t, late, 2)
	require.Equal(t, []string{schemas.TopicJoin2, schemas.TopicJoin3}, []string{late[0].Topic, late[1].Topic})
	var acks int64
	require.NoError(t, d.Model(&schemas.OutboxRecord{}).Where("topic = ?", schemas.TopicAck).Count(&acks).Error)
	require.Equal(t, int64(1), acks, "acked once")

	res, err = a.FinishJoins(ctx, first)
	require.NoError(t, err)
	require.Empty(t, res.Kept, "a retry of the first attempt itself")
}

// TestARowOfTheStoredEventIsNotLate: a record that reaches an event already stored with it
// (an update lost with the server and sent again after the event was finished) is the same
// record, not a late one; another row for the same topic is late. Each record is counted
// in its event or late, never both.
func TestARowOfTheStoredEventIsNotLate(t *testing.T) {
	for name, url := range map[string]func() string{
		"sqlite":   func() string { return filepath.Join(t.TempDir(), "results.db") },
		"postgres": func() string { return pgtest.Start(t) },
	} {
		t.Run(name, func(t *testing.T) { storedRowIsNotLate(t, url()) })
	}
}

func storedRowIsNotLate(t *testing.T, url string) {
	d, err := db.Open(url, slog.New(slog.DiscardHandler))
	require.NoError(t, err)
	a := &activities.Activities{DB: d}
	ctx := context.Background()
	at := time.Date(2026, 11, 24, 12, 0, 0, 0, time.UTC)
	row := func(i int, offset int64) schemas.JoinArrival {
		return schemas.JoinArrival{EventID: "e1", Topic: schemas.JoinTopics[i], Partition: 2, Offset: offset, CreatedAt: at, Fields: json.RawMessage(`{}`)}
	}
	_, err = a.FinishJoins(ctx, activities.FinishJoinsRequest{Writer: "join-shard/0/run-1",
		Events: []activities.FinishedJoin{{EventID: "e1", Status: schemas.JoinComplete, Rows: []schemas.JoinArrival{row(0, 10), row(1, 11), row(2, 12)}}}})
	require.NoError(t, err)

	_, err = a.FinishJoins(ctx, activities.FinishJoinsRequest{Writer: "join-shard/0/run-1",
		Late: []schemas.JoinArrival{row(1, 11), row(1, 40)}})
	require.NoError(t, err)
	var late []schemas.LateRecord
	require.NoError(t, d.Find(&late, "pipeline = ?", schemas.PipelineJoin).Error)
	require.Len(t, late, 1, "only the record the event does not hold is late")
	require.Equal(t, int64(40), late[0].Offset)
}
