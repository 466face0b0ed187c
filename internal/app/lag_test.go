package app_test

import (
	"context"
	"encoding/json"
	"fmt"
	"testing"
	"time"

	"github.com/confluentinc/confluent-kafka-go/v2/kafka"
	"github.com/stretchr/testify/require"

	"github.com/tributary-dev/tributary/internal/app"
	"github.com/tributary-dev/tributary/internal/joinsim"
	"github.com/tributary-dev/tributary/internal/kafkaio"
	"github.com/tributary-dev/tributary/internal/testenv"
	"github.com/tributary-dev/tributary/internal/txsim"
	"github.com/tributary-dev/tributary/internal/watermark"
	"github.com/tributary-dev/tributary/schemas"
	"github.com/tributary-dev/tributary/travel"
)

// TestLagIsNotLateness stops the bridges while records keep arriving in Kafka and lets the
// clock pass every window's close and every join deadline they belong to, with the worker
// running: nothing may close or give up while its records wait. Once the bridges are back,
// every transactions window equals the recomputation with no record late, and every event
// whose rows waited is complete. Records that reach Kafka after their window's close are
// still late.
func TestLagIsNotLateness(t *testing.T) {
	cfg := testenv.Config(t)
	cfg.Join.Shards = 4
	cfg.Join.Deadline = 3 * time.Second
	env := testenv.Start(t, cfg)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()

	// Warm up: the pipelines run and their watermarks follow the clock.
	if err := txsim.Produce(ctx, env.Deps.Producer, "warm", 3, 500, 5000, nil); err != nil {
		t.Fatal(err)
	}
	waitVerified(t, env, 500, true)
	const events = 50
	sendJoinRows(t, env, schemas.TopicJoin1, events, time.Now())
	waitWatermark(t, env, schemas.PipelineJoin, time.Now())

	// The bridges go down; the worker stays, and its timers fire.
	env.StopRoles(t)
	env.RunRoles(t, app.Roles{Worker: true})
	sent := time.Now()
	if err := txsim.Produce(ctx, env.Deps.Producer, "lag", 5, 3000, 1000, nil); err != nil {
		t.Fatal(err)
	}
	sendJoinRows(t, env, schemas.TopicJoin2, events, sent)
	sendJoinRows(t, env, schemas.TopicJoin3, events, sent)
	last := time.Now()
	// By the clock, every window of these records is closed (3 s + 1 s grace) and every
	// event's deadline (3 s) has passed, twice over.
	require.Eventually(t, func() bool { return time.Since(last) > 8*time.Second }, time.Minute, testenv.Poll)
	for _, p := range []string{schemas.PipelineTransactions, schemas.PipelineJoin} {
		w, err := watermark.Read(ctx, env.Deps.DB, p)
		require.NoError(t, err)
		require.True(t, w.Before(sent), "%s: the watermark %s stood still while its bridge was down", p, w)
	}
	var finished int64
	require.NoError(t, env.Deps.DB.Model(&schemas.JoinedEvent{}).Where("event_id LIKE ?", "lag-%").Count(&finished).Error)
	require.Zero(t, finished, "no event was given up while its rows waited in Kafka")

	env.StopRoles(t)
	env.RunRoles(t, app.Roles{Worker: true, Bridge: true})
	v := waitVerified(t, env, 3500, false)
	require.Zero(t, v.Late, "a record that waited in Kafka behind a stopped bridge is not late")
	require.Eventually(t, func() bool {
		var complete int64
		env.Deps.DB.Model(&schemas.JoinedEvent{}).Where("event_id LIKE ? AND status = ?", "lag-%", schemas.JoinComplete).Count(&complete)
		return complete == events
	}, 2*time.Minute, testenv.Poll, "every event whose rows waited is complete")
	var incomplete int64
	require.NoError(t, env.Deps.DB.Model(&schemas.JoinedEvent{}).Where("event_id LIKE ? AND status <> ?", "lag-%", schemas.JoinComplete).Count(&incomplete).Error)
	require.Zero(t, incomplete)

	// A record that reaches Kafka after its window's close is late, and counted.
	var old []*kafka.Message
	for i := 0; len(old) < 20; i++ {
		tx := txsim.Generate("old", 9, i, time.Now().Add(-30*time.Second))
		if tx.Status != schemas.StatusPaid {
			continue // only paid transactions are counted
		}
		b, _ := json.Marshal(tx)
		old = append(old, kafkaio.Message(schemas.TopicTransactions, []byte(tx.ID), b))
	}
	require.NoError(t, env.Deps.Producer.Send(ctx, old...))
	require.Eventually(t, func() bool {
		var late int64
		env.Deps.DB.Model(&schemas.LateRecord{}).Where("pipeline = ?", schemas.PipelineTransactions).Count(&late)
		return late == int64(len(old))
	}, time.Minute, testenv.Poll, "the records dated 30 s back are late")
}

// sendJoinRows sends one row on topic for each of n events lag-0..lag-(n-1).
func sendJoinRows(t *testing.T, env *testenv.Env, topic string, n int, created time.Time) {
	t.Helper()
	msgs := make([]*kafka.Message, n)
	for i := range msgs {
		id := fmt.Sprintf("lag-%d", i)
		msgs[i] = kafkaio.Message(topic, []byte(id), joinsim.Row(id, json.RawMessage(`{"feature1":1}`), created))
	}
	require.NoError(t, env.Deps.Producer.Send(context.Background(), msgs...))
}

// waitWatermark waits until a pipeline's input watermark has passed t.
func waitWatermark(t *testing.T, env *testenv.Env, pipeline string, at time.Time) {
	t.Helper()
	require.Eventually(t, func() bool {
		w, err := watermark.Read(context.Background(), env.Deps.DB, pipeline)
		return err == nil && w.After(at)
	}, time.Minute, testenv.Poll, pipeline+" watermark to pass "+at.Format(time.RFC3339Nano))
}

// TestWorkersDownIsNotLatenessForSensorMinutes stops the worker while a traveler's readings
// arrive: the bridge delivers them (the server takes signals without a worker) and the input
// watermark moves past their sensor minute's close, but the stage watermark the minutes
// close by stays before the readings the traveler workflow has not flushed. Once the worker
// is back, the minute holds both visits and nothing is late.
func TestWorkersDownIsNotLatenessForSensorMinutes(t *testing.T) {
	cfg := testenv.Config(t)
	cfg.Sensors.Disorder = 200 * time.Millisecond
	cfg.Sensors.IdleGap = time.Second
	cfg.SensorGrace = 2 * time.Second
	env := testenv.Start(t, cfg)
	ctx := context.Background()
	// Both visits fall in one minute, which closes a minute and 2 s after it starts; the
	// first is sent with 20 s or more of the minute left.
	require.Eventually(t, func() bool { s := time.Now().Second(); return s >= 5 && s < 40 }, time.Minute, testenv.Poll)
	minute := time.Now().Truncate(time.Minute)
	trip := func(traveler string, start time.Time) []travel.Reading {
		var rs []travel.Reading
		for i := range 10 {
			rs = append(rs, travel.Reading{SensorID: "wd-sensor", TravelerID: traveler, Type: "car", X: 2.4 * float64(i), Y: 1,
				At: start.Add(time.Duration(i) * 200 * time.Millisecond).UTC().Truncate(time.Millisecond)})
		}
		return rs
	}
	sendReadings(t, env, trip("wd-a", minute.Add(time.Second))...)
	require.Eventually(t, func() bool {
		var n int64
		env.Deps.DB.Model(&schemas.Visit{}).Where("traveler_id = ?", "wd-a").Count(&n)
		return n == 1
	}, time.Minute, testenv.Poll, "the first visit is stored while the worker runs")

	env.StopRoles(t)
	env.RunRoles(t, app.Roles{Bridge: true})
	b := trip("wd-b", minute.Add(3*time.Second))
	sendReadings(t, env, b...)
	waitWatermark(t, env, schemas.PipelineSensors, minute.Add(time.Minute+cfg.SensorGrace))
	stage, err := watermark.ReadStage(ctx, env.Deps.DB, schemas.PipelineSensors)
	require.NoError(t, err)
	require.True(t, stage.Before(b[0].At), "the stage watermark %s waits for the readings from %s the stopped worker holds", stage, b[0].At)

	env.StopRoles(t)
	env.RunRoles(t, app.Roles{Worker: true, Bridge: true})
	var row schemas.WindowResult
	require.Eventually(t, func() bool {
		return env.Deps.DB.Where(&schemas.WindowResult{Pipeline: schemas.PipelineSensors, Key: "wd-sensor|car", WindowStart: minute.UTC()}).
			Take(&row).Error == nil
	}, 2*time.Minute, testenv.Poll, "the sensor minute is written")
	require.EqualValues(t, 2, row.Count, "the minute holds both visits")
	var late int64
	require.NoError(t, env.Deps.DB.Model(&schemas.LateRecord{}).Where("pipeline = ?", schemas.PipelineSensors).Count(&late).Error)
	require.Zero(t, late, "no visit of a stopped worker's traveler is late")
}
