package bridge

import (
	"context"
	"io"
	"log/slog"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/tributary-dev/tributary/internal/db"
	"github.com/tributary-dev/tributary/schemas"
)

// TestLateRecordsOutliveTheStop: a bridge that stops (its context ends) right after a
// workflow answered which records came late still records them; delivered again, the
// batch would find its offsets applied and the answer would be gone.
func TestLateRecordsOutliveTheStop(t *testing.T) {
	g, err := db.Open(filepath.Join(t.TempDir(), "results.db"), slog.New(slog.NewTextHandler(io.Discard, nil)))
	require.NoError(t, err)
	ctx, stop := context.WithCancel(context.Background())
	stop()
	rows := []schemas.LateRecord{{Topic: schemas.TopicTransactions, Partition: 1, Offset: 7, Pipeline: schemas.PipelineTransactions,
		Key: "all", Reason: reasonWindowClosed}}
	require.NoError(t, recordLate(ctx, g, rows, nil))
	var n int64
	require.NoError(t, g.Model(&schemas.LateRecord{}).Count(&n).Error)
	require.Equal(t, int64(1), n)
}

// TestResentRowsOfAClosedEventAreNotLate: a per-event workflow's rows sent again after a
// bridge crash, behind the last commit, find the workflow closed. Those its event stored
// are its own, not late; a row it never took is.
func TestResentRowsOfAClosedEventAreNotLate(t *testing.T) {
	g, err := db.Open(filepath.Join(t.TempDir(), "results.db"), slog.New(slog.NewTextHandler(io.Discard, nil)))
	require.NoError(t, err)
	require.NoError(t, db.Migrate(g))
	stored := schemas.DataRow{EventID: "e", Fields: "{}", Partition: 2, Offset: 5}
	require.NoError(t, g.Table(schemas.JoinTables[schemas.TopicJoin1]).Create(&stored).Error)
	j, err := NewJoin(nil, g, JoinOptions{})
	require.NoError(t, err)
	resent := schemas.JoinArrival{EventID: "e", Topic: schemas.TopicJoin1, Partition: 2, Offset: 5}
	repeat := schemas.JoinArrival{EventID: "e", Topic: schemas.TopicJoin1, Partition: 2, Offset: 9}
	require.NoError(t, j.recordLate(context.Background(), [][]schemas.JoinArrival{{resent}, {repeat}}))
	var late []schemas.LateRecord
	require.NoError(t, g.Find(&late).Error)
	require.Len(t, late, 1)
	require.Equal(t, int64(9), late[0].Offset)
}
