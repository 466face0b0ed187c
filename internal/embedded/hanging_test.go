package embedded_test

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/confluentinc/confluent-kafka-go/v2/kafka"

	"github.com/tributary-dev/tributary/internal/embedded"
	"github.com/tributary-dev/tributary/internal/kafkaio"
)

// crashed starts a broker on dir and never stops it cleanly: the next broker started on
// the same directory finds it as a killed broker leaves it. It is closed when the test ends.
func crashed(t *testing.T, dir string) *embedded.Broker {
	t.Helper()
	ports, err := embedded.FreePorts("127.0.0.1", 1)
	if err != nil {
		t.Fatal(err)
	}
	b, err := embedded.StartBroker(embedded.BrokerOptions{Port: ports[0], DataDir: dir, Partitions: 1})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(b.Close)
	return b
}

// transaction sends three records with value v in one transaction of the producer
// "relay", and commits it only if commit is set.
func transaction(t *testing.T, b *embedded.Broker, v string, commit bool) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	conf := kafkaio.ProducerConfig(b.Address)
	conf["transactional.id"] = "relay"
	conf["go.delivery.reports"] = false
	p, err := kafka.NewProducer(&conf)
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	if err := p.InitTransactions(ctx); err != nil {
		t.Fatal(err)
	}
	if err := p.BeginTransaction(); err != nil {
		t.Fatal(err)
	}
	topic := "out"
	for range 3 {
		if err := p.Produce(&kafka.Message{TopicPartition: kafka.TopicPartition{Topic: &topic, Partition: 0}, Value: []byte(v)}, nil); err != nil {
			t.Fatal(err)
		}
	}
	if left := p.Flush(10_000); left > 0 {
		t.Fatalf("%d records unsent", left)
	}
	if commit {
		if err := p.CommitTransaction(ctx); err != nil {
			t.Fatal(err)
		}
	}
}

// committed is what a read-committed librdkafka consumer reads of the topic.
func committed(t *testing.T, b *embedded.Broker) []string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var out []string
	err := kafkaio.ReadTopic(ctx, b.Address, "out", func(m *kafka.Message) error {
		out = append(out, string(m.Value))
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// TestCrashLeavesNoTransactionOpen kills the broker (in effect) with a transaction open,
// twice. Without the recovery, the transaction committed after the first crash could not
// be read (the consumer waited for the open one's marker), and after the second crash the
// aborted records were read as committed.
func TestCrashLeavesNoTransactionOpen(t *testing.T) {
	dir := t.TempDir()
	first := crashed(t, dir)
	if err := kafkaio.EnsureTopics(context.Background(), first.Address, 1, "out"); err != nil {
		t.Fatal(err)
	}
	transaction(t, first, "aborted", false)

	second := crashed(t, dir)
	if got := committed(t, second); len(got) != 0 {
		t.Fatalf("after the first crash, read %v, want nothing", got)
	}
	transaction(t, second, "resent", true)
	want := []string{"resent", "resent", "resent"}
	if got := committed(t, second); !slices.Equal(got, want) {
		t.Fatalf("after the transaction that followed the crash, read %v, want %v", got, want)
	}

	third := crashed(t, dir)
	if got := committed(t, third); !slices.Equal(got, want) {
		t.Fatalf("after the second crash, read %v, want %v", got, want)
	}
}

// TestCleanStopSkipsRecovery: a broker stopped cleanly leaves its mark, and the next one
// starts without reading the data again; the committed records stay as they were.
func TestCleanStopSkipsRecovery(t *testing.T) {
	dir := t.TempDir()
	ports, err := embedded.FreePorts("127.0.0.1", 2)
	if err != nil {
		t.Fatal(err)
	}
	b, err := embedded.StartBroker(embedded.BrokerOptions{Port: ports[0], DataDir: dir, Partitions: 1})
	if err != nil {
		t.Fatal(err)
	}
	if err := kafkaio.EnsureTopics(context.Background(), b.Address, 1, "out"); err != nil {
		t.Fatal(err)
	}
	transaction(t, b, "kept", true)
	b.Close()
	if !embedded.StoppedCleanly(dir) {
		t.Fatal("no clean-stop mark after Close")
	}
	again, err := embedded.StartBroker(embedded.BrokerOptions{Port: ports[1], DataDir: dir, Partitions: 1})
	if err != nil {
		t.Fatal(err)
	}
	defer again.Close()
	if embedded.StoppedCleanly(dir) {
		t.Fatal("the clean-stop mark outlived the start: a crash of this run would go unnoticed")
	}
	if got := committed(t, again); !slices.Equal(got, []string{"kept", "kept", "kept"}) {
		t.Fatalf("read %v after a clean restart", got)
	}
}
