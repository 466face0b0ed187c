package kafkaio

import (
	"context"
	"io"
	"log/slog"
	"testing"
	"time"

	"github.com/confluentinc/confluent-kafka-go/v2/kafka"

	"github.com/tributary-dev/tributary/internal/embedded"
)

// TestProducerReplacesAFatalClient: once librdkafka reports a fatal error, every send on
// that client fails for good; the producer replaces it and the next send is delivered.
func TestProducerReplacesAFatalClient(t *testing.T) {
	b, err := embedded.StartLoopbackBroker(1)
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	bootstrap := b.Address
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := EnsureTopics(ctx, bootstrap, 1, "out"); err != nil {
		t.Fatal(err)
	}
	p, err := NewProducer(bootstrap, slog.New(slog.NewTextHandler(io.Discard, nil)), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	send := func(v string) error { return p.Send(ctx, Message("out", []byte("k"), []byte(v))) }
	if err := send("before"); err != nil {
		t.Fatal(err)
	}
	p.p.TestFatalError(kafka.ErrOutOfOrderSequenceNumber, "the broker lost the producer's sequence")
	if err := send("on the fatal client"); err == nil {
		t.Fatal("a send on a fatal client succeeded")
	}
	if err := send("after"); err != nil {
		t.Fatalf("the send after a fatal error: %v", err)
	}
	if n := p.Recreated.Load(); n != 1 {
		t.Errorf("recreated %d clients, want 1", n)
	}
	var got []string
	if err := ReadTopic(ctx, bootstrap, "out", func(m *kafka.Message) error { got = append(got, string(m.Value)); return nil }); err != nil {
		t.Fatal(err)
	}
	if len(got) != 2 || got[0] != "before" || got[1] != "after" {
		t.Errorf("topic holds %q", got)
	}
}
