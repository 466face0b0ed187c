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
