package outbox_test

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"log/slog"
	"path/filepath"
	"testing"
	"time"

	"github.com/confluentinc/confluent-kafka-go/v2/kafka"
	"github.com/stretchr/testify/require"
	"gorm.io/gorm"

	"github.com/tributary-dev/tributary/internal/db"
	"github.com/tributary-dev/tributary/internal/embedded"
	"github.com/tributary-dev/tributary/internal/kafkaio"
	"github.com/tributary-dev/tributary/internal/outbox"
	"github.com/tributary-dev/tributary/internal/pgtest"
	"github.com/tributary-dev/tributary/schemas"
)

const out = "outputs"

type fixture struct {
	bootstrap string
	db        *gorm.DB
	log       *slog.Logger
}

func newFixture(t *testing.T) *fixture {
	return newFixtureOn(t, "sqlite")
}

// newFixtureOn is a broker and a results database, SQLite or PostgreSQL (a server of the
// test's own).
func newFixtureOn(t *testing.T, database string) *fixture {
	t.Helper()
	b, err := embedded.StartLoopbackBroker(2)
	require.NoError(t, err)
	t.Cleanup(b.Close)
	f := &fixture{bootstrap: b.Address, log: slog.New(slog.NewTextHandler(io.Discard, nil))}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	require.NoError(t, kafkaio.EnsureTopics(ctx, f.bootstrap, 2, out))
	require.NoError(t, kafkaio.EnsureTopics(ctx, f.bootstrap, 1, schemas.TopicOutboxPosition))
	url := filepath.Join(t.TempDir(), "results.db")
	if database == "postgres" {
		url = pgtest.Start(t)
	}
	f.db, err = db.Open(url, f.log)
	require.NoError(t, err)
	return f
}

// write adds records key-from..key-to to the outbox in one transaction.
func (f *fixture) write(t *testing.T, from, to int) {
	t.Helper()
	var msgs []*kafka.Message
	for i := from; i <= to; i++ {
		msgs = append(msgs, kafkaio.Message(out, fmt.Appendf(nil, "key-%d", i), fmt.Appendf(nil, "value-%d", i)))
	}
	require.NoError(t, f.db.Transaction(func(tx *gorm.DB) error { return outbox.Add(tx, outbox.ByKey, msgs...) }))
}

// run starts a relay and returns its stop function, which waits for it to end.
func (f *fixture) run(t *testing.T) (*outbox.Relay, func()) {
	r := &outbox.Relay{DB: f.db, Bootstrap: f.bootstrap, Log: f.log}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- r.Run(ctx) }()
	stopped := false
	stop := func() {
		if stopped {
			return
		}
		stopped = true
		cancel()
		require.NoError(t, <-done)
	}
	t.Cleanup(stop)
	return r, stop
}

// committed reads the output topic as a consumer reads it: committed records only.
func (f *fixture) committed(t *testing.T) map[string]int {
	t.Helper()
	got := map[string]int{}
	require.NoError(t, kafkaio.ReadTopic(context.Background(), f.bootstrap, out, func(m *kafka.Message) error {
		got[string(m.Key)]++
		return nil
	}))
	return got
}

func (f *fixture) waitFor(t *testing.T, n int) map[string]int {
	t.Helper()
	var got map[string]int
	require.Eventually(t, func() bool { got = f.committed(t); return len(got) >= n }, time.Minute, 50*time.Millisecond, "%d records relayed", n)
	return got
}

func requireOnce(t *testing.T, got map[string]int, n int) {
	t.Helper()
	require.Len(t, got, n)
	for k, c := range got {
		require.Equal(t, 1, c, "%s relayed %d times", k, c)
	}
}

// TestRelayExactlyOnce: a record written twice (a retried writer) is relayed once; a relay
// stopped and replaced resumes from the committed position; a second relay beside the
// first waits, and takes over when the first stops.
func TestRelayExactlyOnce(t *testing.T) {
	for _, database := range []string{"sqlite", "postgres"} {
		t.Run(database, func(t *testing.T) { testRelayExactlyOnce(t, newFixtureOn(t, database)) })
	}
}

func testRelayExactlyOnce(t *testing.T, f *fixture) {
	f.write(t, 1, 100)
	f.write(t, 51, 150) // half of it again
	_, stop := f.run(t)
	requireOnce(t, f.waitFor(t, 150), 150)
	second, stopSecond := f.run(t)
	defer stopSecond()
	stop()
	f.write(t, 151, 300)
	requireOnce(t, f.waitFor(t, 300), 300)
	require.Positive(t, second.Relayed.Load(), "the second relay took over")
}

// TestRelayAbortsAZombie: a relay that died inside a Kafka transaction (records produced,
// position not committed) leaves nothing a reader sees; the next relay fences it, aborts
// its transaction, and sends each record once.
func TestRelayAbortsAZombie(t *testing.T) {
	f := newFixture(t)
	f.write(t, 1, 20)
	conf := kafkaio.ProducerConfig(f.bootstrap)
	conf["transactional.id"] = outbox.TransactionalID
	zombie, err := kafka.NewProducer(&conf)
	require.NoError(t, err)
	defer zombie.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	require.NoError(t, zombie.InitTransactions(ctx))
	require.NoError(t, zombie.BeginTransaction())
	for i := 1; i <= 20; i++ {
		require.NoError(t, zombie.Produce(kafkaio.Message(out, fmt.Appendf(nil, "key-%d", i), []byte("from the zombie")), nil))
	}
	zombie.Flush(5000)
	require.Empty(t, f.committed(t), "an open transaction is invisible to readers")
	_, stop := f.run(t)
	defer stop()
	requireOnce(t, f.waitFor(t, 20), 20)
	require.Error(t, zombie.CommitTransaction(ctx), "the zombie is fenced")
	requireOnce(t, f.committed(t), 20)
}

// A record key may be any bytes. Written twice, such a record is one row and one record,
// its key intact, on either database: PostgreSQL refuses NUL and invalid UTF-8 in text,
// and a key stored in the row's identity as text once kept the bridge retrying forever.
func TestAnyKeyIsWrittenOnce(t *testing.T) {
	for _, database := range []string{"sqlite", "postgres"} {
		t.Run(database, func(t *testing.T) {
			f := newFixtureOn(t, database)
			key := []byte("k\x00\xff\xfe-1")
			for range 2 {
				m := kafkaio.Message(out, key, []byte("v"))
				require.NoError(t, f.db.Transaction(func(tx *gorm.DB) error { return outbox.Add(tx, outbox.ByKey, m) }))
			}
			var rows int64
			require.NoError(t, f.db.Model(&schemas.OutboxRecord{}).Count(&rows).Error)
			require.Equal(t, int64(1), rows, "rows for one record written twice")
			f.run(t)
			requireOnce(t, f.waitFor(t, 1), 1)
			require.Contains(t, f.committed(t), string(key), "the key as it was written")
		})
	}
}

// Rows written before the ordered dedup keys, named by their identity's bare SHA-256, are
// given the new keys when the database is migrated: an ack and a dead letter written then
// and written again now are not written twice.
func TestDedupKeysOfOlderRowsAreMigrated(t *testing.T) {
	for _, database := range []string{"sqlite", "postgres"} {
		t.Run(database, func(t *testing.T) {
			f := newFixtureOn(t, database)
			ack := kafkaio.Message(out, []byte("e\x001"), []byte("ack"))
			src := "join.in"
			dead := kafkaio.DeadLetter(&kafka.Message{TopicPartition: kafka.TopicPartition{Topic: &src, Partition: 2, Offset: 40},
				Key: []byte("k"), Value: []byte("bad"), Headers: []kafka.Header{{Key: "trace", Value: []byte("t1")}}}, "malformed")
			for _, old := range []struct {
				m        *kafka.Message
				identity string
			}{{ack, outbox.ByKey(ack)}, {dead, outbox.BySource(dead)}} {
				sum := sha256.Sum256([]byte(old.identity))
				// The row as Add wrote it then; its headers as the relay reads them.
				require.NoError(t, f.db.Transaction(func(tx *gorm.DB) error { return outbox.Add(tx, outbox.ByKey, old.m) }))
				require.NoError(t, f.db.Model(&schemas.OutboxRecord{}).Where("topic = ?", *old.m.TopicPartition.Topic).
					Update("dedup", hex.EncodeToString(sum[:])).Error)
			}
			require.NoError(t, db.Migrate(f.db))
			var keys []string
			require.NoError(t, f.db.Model(&schemas.OutboxRecord{}).Order("id").Pluck("dedup", &keys).Error)
			require.Len(t, keys, 2)
			for _, k := range keys {
				require.Equal(t, "=", k[:1], "migrated to the ordered form")
			}
			require.NoError(t, f.db.Transaction(func(tx *gorm.DB) error {
				if err := outbox.Add(tx, outbox.ByKey, ack); err != nil {
					return err
				}
				return outbox.Add(tx, outbox.BySource, dead)
			}))
			var rows int64
			require.NoError(t, f.db.Model(&schemas.OutboxRecord{}).Count(&rows).Error)
			require.Equal(t, int64(2), rows, "records written before the migration and again after it")
			require.NoError(t, f.db.Transaction(func(tx *gorm.DB) error {
				return outbox.Add(tx, outbox.ByKey, kafkaio.Message(out, []byte("e\x002"), []byte("ack")))
			}))
			require.NoError(t, f.db.Model(&schemas.OutboxRecord{}).Count(&rows).Error)
			require.Equal(t, int64(3), rows, "a new record")
		})
	}
}
