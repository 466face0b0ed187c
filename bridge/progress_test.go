package bridge_test

import (
	"context"
	"io"
	"log/slog"
	"path/filepath"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/confluentinc/confluent-kafka-go/v2/kafka"
	"github.com/stretchr/testify/require"
	"gorm.io/gorm"

	"github.com/tributary-dev/tributary/bridge"
	"github.com/tributary-dev/tributary/internal/db"
	"github.com/tributary-dev/tributary/internal/embedded"
	"github.com/tributary-dev/tributary/internal/kafkaio"
	"github.com/tributary-dev/tributary/internal/watermark"
)

// gate is a pipeline whose records carry their event time (Unix ms) as the value, and
// whose deliveries wait while the gate is shut, as they wait on a Temporal that is down.
type gate struct {
	mu        sync.Mutex
	open      chan struct{}
	delivered int
	keys      map[string]bool // the keys of the records let through
}

func (g *gate) Name() string     { return "gated" }
func (g *gate) Topics() []string { return []string{"in"} }
func (g *gate) Route(m *kafka.Message) (bridge.Routed, error) {
	ms, err := strconv.ParseInt(string(m.Value), 10, 64)
	if err != nil {
		return bridge.Routed{}, err
	}
	return bridge.Routed{WorkflowID: "w", Msg: m, At: time.UnixMilli(ms)}, nil
}
func (g *gate) Deliver(ctx context.Context, _ string, recs []bridge.Routed, _ time.Time) error {
	g.mu.Lock()
	open := g.open
	g.mu.Unlock()
	select {
	case <-open:
	case <-ctx.Done():
		return ctx.Err()
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	g.delivered += len(recs)
	if g.keys == nil {
		g.keys = map[string]bool{}
	}
	for _, r := range recs {
		g.keys[string(r.Msg.Key)] = true
	}
	return nil
}

// let reports whether the gate let through a record of this key.
func (g *gate) let(key string) bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.keys[key]
}
func (g *gate) shut() {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.open = make(chan struct{})
}
func (g *gate) release() {
	g.mu.Lock()
	defer g.mu.Unlock()
	close(g.open)
}

// count is how many records the gate let through.
func (g *gate) count() int {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.delivered
}

// gatedEnv is a loopback broker with a two-partition topic "in" and a results database,
// for bridges over gates.
type gatedEnv struct {
	ctx       context.Context
	bootstrap string
	db        *gorm.DB
	log       *slog.Logger
}

func newGatedEnv(t *testing.T) gatedEnv {
	t.Helper()
	b, err := embedded.StartLoopbackBroker(2)
	require.NoError(t, err)
	t.Cleanup(b.Close)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	t.Cleanup(cancel)
	require.NoError(t, kafkaio.EnsureTopics(ctx, b.Address, 2, "in"))
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	g, err := db.Open(filepath.Join(t.TempDir(), "results.db"), log)
	require.NoError(t, err)
	return gatedEnv{ctx: ctx, bootstrap: b.Address, db: g, log: log}
}

// run starts a bridge over the gate; the returned func stops it and checks it ended well.
func (e gatedEnv) run(t *testing.T, p *gate) (*bridge.Bridge, func()) {
	t.Helper()
	opts := bridge.DefaultOptions()
	opts.Bootstrap, opts.DB, opts.Log, opts.ProgressInterval = e.bootstrap, e.db, e.log, 50*time.Millisecond
	br, err := bridge.New(p, opts)
	require.NoError(t, err)
	ctx, stop := context.WithCancel(e.ctx)
	done := make(chan error, 1)
	go func() { done <- br.Run(ctx) }()
	return br, func() { stop(); require.NoError(t, <-done) }
}

// A partition counts as caught up only once what it holds was delivered: past a
// transaction's commit marker, and never while a delivery waits. While deliveries wait the
// bridge pauses, and what arrived meanwhile is delivered once after.
func TestProgressClaimsOnlyWhatWasDelivered(t *testing.T) {
	env := newGatedEnv(t)
	ctx, bootstrap, g, log := env.ctx, env.bootstrap, env.db, env.log

	// Partition 0 gets records through a committed transaction (its log ends past the
	// commit marker); partition 1 through a plain producer.
	early := time.Now().Add(-time.Hour)
	value := func(at time.Time) []byte { return strconv.AppendInt(nil, at.UnixMilli(), 10) }
	topic := "in"
	conf := kafka.ConfigMap{"bootstrap.servers": bootstrap, "transactional.id": "progress-test", "enable.metrics.push": false}
	tp, err := kafka.NewProducer(&conf)
	require.NoError(t, err)
	defer tp.Close()
	require.NoError(t, tp.InitTransactions(ctx))
	require.NoError(t, tp.BeginTransaction())
	for range 5 {
		require.NoError(t, tp.Produce(&kafka.Message{TopicPartition: kafka.TopicPartition{Topic: &topic, Partition: 0}, Value: value(early)}, nil))
	}
	require.NoError(t, tp.CommitTransaction(ctx))
	plain, err := kafkaio.NewProducer(bootstrap, log, nil)
	require.NoError(t, err)
	defer plain.Close()
	send := func(at time.Time) {
		m := kafkaio.Message(topic, nil, value(at))
		m.TopicPartition.Partition = 1
		require.NoError(t, plain.Send(ctx, m))
	}
	send(early)

	pipe := &gate{open: make(chan struct{})}
	close(pipe.open)
	br, stopBridge := env.run(t, pipe)
	defer stopBridge()

	// Both partitions are read to their ends: the watermark follows the clock.
	started := time.Now()
	require.Eventually(t, func() bool {
		w, err := watermark.Read(ctx, g, "gated")
		return err == nil && w.After(started)
	}, time.Minute, 20*time.Millisecond, "the watermark of an input read to its end passes the clock")
	rows, err := watermark.Partitions(ctx, g, "gated")
	require.NoError(t, err)
	require.Len(t, rows, 2)
	require.Equal(t, int64(6), rows[0].NextOffset, "partition 0 ends past its commit marker")
	require.Equal(t, int64(1), rows[1].NextOffset)
	require.Equal(t, early.UnixMilli(), rows[0].EventMs)

	// Deliveries now wait, as on a Temporal that is down. A record produced meanwhile holds
	// the watermark back for as long as its delivery waits, however long the partition's
	// end has been read; the bridge pauses its partitions and takes the records sent while
	// it waits, once, after.
	pipe.shut()
	held := time.Now()
	send(held)
	require.Eventually(t, func() bool { return br.Stats.Pauses.Load() == 1 }, time.Minute, 20*time.Millisecond, "the bridge pauses")
	for range 20 {
		send(time.Now())
	}
	w, err := watermark.Read(ctx, g, "gated")
	require.NoError(t, err)
	require.True(t, w.Before(held), "the watermark %s passed a record still waiting (sent %s)", w, held)
	pipe.release()
	require.Eventually(t, func() bool {
		w, err := watermark.Read(ctx, g, "gated")
		return err == nil && w.After(held)
	}, time.Minute, 20*time.Millisecond, "once delivered, the watermark passes it")
	require.Eventually(t, func() bool { return pipe.count() >= 27 }, time.Minute, 20*time.Millisecond, "the records sent while paused are delivered")
	pipe.mu.Lock()
	defer pipe.mu.Unlock()
	require.Equal(t, 27, pipe.delivered, "every record once")
	require.Equal(t, int64(1), br.Stats.Pauses.Load())
}

// A partition paused while its deliveries waited, taken away by a rebalance before the
// bridge resumed, and given back later must come back readable: librdkafka keeps its pause.
func TestPartitionsComeBackUnpaused(t *testing.T) {
	env := newGatedEnv(t)
	ctx := env.ctx
	plain, err := kafkaio.NewProducer(env.bootstrap, env.log, nil)
	require.NoError(t, err)
	defer plain.Close()
	sent := 0
	// sendEach sends a record to each partition and returns their keys.
	sendEach := func() []string {
		var keys []string
		for p := range int32(2) {
			sent++
			key := strconv.Itoa(sent)
			m := kafkaio.Message("in", []byte(key), strconv.AppendInt(nil, time.Now().UnixMilli(), 10))
			m.TopicPartition.Partition = p
			require.NoError(t, plain.Send(ctx, m))
			keys = append(keys, key)
		}
		return keys
	}

	first := &gate{open: make(chan struct{})}
	close(first.open)
	br, stopFirst := env.run(t, first)
	defer stopFirst()
	sendEach()
	require.Eventually(t, func() bool { return first.count() == 2 }, time.Minute, 20*time.Millisecond, "the first bridge reads both partitions")

	// Its deliveries wait: it pauses both partitions. A second bridge joins and takes one.
	first.shut()
	sendEach()
	require.Eventually(t, func() bool { return br.Stats.Pauses.Load() == 1 }, time.Minute, 20*time.Millisecond, "the first bridge pauses")
	second := &gate{open: make(chan struct{})}
	close(second.open)
	_, stopSecond := env.run(t, second)
	require.Eventually(t, func() bool { return second.count() >= 1 }, time.Minute, 20*time.Millisecond, "the second bridge takes a partition")
	// The first resumes what it owns now, then the second leaves: its partition returns.
	first.release()
	stopSecond()
	// The first bridge, alone again, reads both partitions: it lets each new record through.
	// (Counting what passed instead failed once: the records released above may still be
	// landing, and a partition that moved is read again from its last commit.)
	last := sendEach()
	require.Eventually(t, func() bool { return first.let(last[0]) && first.let(last[1]) }, 30*time.Second, 20*time.Millisecond,
		"the partition given back is read")
}
