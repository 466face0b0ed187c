package app_test

import (
	"context"
	"encoding/json"
	"slices"
	"testing"
	"time"

	"github.com/confluentinc/confluent-kafka-go/v2/kafka"
	"github.com/stretchr/testify/require"

	"github.com/tributary-dev/tributary/bridge"
	"github.com/tributary-dev/tributary/internal/testenv"
	"github.com/tributary-dev/tributary/pipelines"
	"github.com/tributary-dev/tributary/schemas"
)

// TestLateAnswerSurvivesARepeatedDelivery delivers records that come late for their window,
// loses the bridge's record of which came late (as when the answer is lost with the
// connection, or the server is killed after applying them), and delivers the same records
// again. The workflow has applied their offsets, so only its first answer knows which were
// late: the repeated delivery must get that answer again and record them. Under an update
// id of its own it learned only that the offsets were applied, and the late records were
// lost (a fault run lost 1,063 of them). Sent again in another batch, by a bridge that took
// the partition over, they are named by the rejection's late spans (a fault run lost 818).
func TestLateAnswerSurvivesARepeatedDelivery(t *testing.T) {
	env := testenv.StartStack(t, testenv.Config(t))
	ctx := context.Background()
	db := env.Deps.DB
	spec := pipelines.Transactions()
	ws := spec.Windows[0]
	start := time.Now().UTC().Add(-10 * time.Minute).Truncate(ws.Size)
	setWatermark := func(at time.Time) { recordCaughtUp(t, db, spec.Name, spec.Topic, at) }
	setWatermark(start)
	w := env.Deps.NewWorker()
	require.NoError(t, w.Start())
	defer w.Stop()
	win, err := bridge.NewWindow(spec, env.Deps.Temporal, db, env.Config.Windows)
	require.NoError(t, err)

	topic := spec.Topic
	record := func(offset int64) bridge.Routed {
		t.Helper()
		v, err := json.Marshal(schemas.Transaction{Version: 1, ID: "lost-answer-" + string(rune('a'+offset)), UserID: "u", Amount: float64(offset + 1),
			Status: schemas.StatusPaid, At: start.Add(time.Second)})
		require.NoError(t, err)
		r, err := win.Route(&kafka.Message{TopicPartition: kafka.TopicPartition{Topic: &topic, Partition: 0, Offset: kafka.Offset(offset)}, Value: v})
		require.NoError(t, err)
		return r
	}
	deliver := func(recs ...bridge.Routed) {
		t.Helper()
		dctx, cancel := context.WithTimeout(ctx, time.Minute)
		defer cancel()
		require.NoError(t, win.Deliver(dctx, recs[0].WorkflowID, recs, start))
	}
	late := func() int64 {
		var n int64
		require.NoError(t, db.Model(&schemas.LateRecord{}).Where("pipeline = ?", spec.Name).Count(&n).Error)
		return n
	}

	deliver(record(0))
	setWatermark(ws.CloseAt(start).Add(time.Second))
	require.Eventually(t, func() bool {
		var n int64
		return db.Model(&schemas.WindowResult{}).Where("pipeline = ? AND window_start = ?", spec.Name, start).Count(&n).Error == nil && n == 1
	}, time.Minute, testenv.Poll, "the window's row")

	again := []bridge.Routed{record(1), record(2)}
	deliver(again...)
	require.Equal(t, int64(2), late(), "both records after the close are late")
	require.NoError(t, db.Where("pipeline = ?", spec.Name).Delete(&schemas.LateRecord{}).Error)
	deliver(again...)
	require.Equal(t, int64(2), late(), "delivered again, the records are recorded late again")

	// The next owner of the partition cuts the records into another batch, with one before
	// them (on time) and one after (late, new): the workflow turns the batch away, naming
	// the late batch it applied, and the two are recorded with the new one.
	require.NoError(t, db.Where("pipeline = ?", spec.Name).Delete(&schemas.LateRecord{}).Error)
	deliver(record(0), record(1), record(2), record(3))
	var rows []schemas.LateRecord
	require.NoError(t, db.Where("pipeline = ?", spec.Name).Find(&rows).Error)
	var offsets []int64
	for _, r := range rows {
		offsets = append(offsets, r.Offset)
	}
	slices.Sort(offsets)
	require.Equal(t, []int64{1, 2, 3}, offsets, "cut into another batch, the late records are recorded, the one in time is not")
}
