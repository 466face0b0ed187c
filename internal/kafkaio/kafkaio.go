// Package kafkaio holds Tributary's Kafka plumbing on confluent-kafka-go: client settings,
// topic creation, a producer that waits for delivery, and dead-letter records.
package kafkaio

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/confluentinc/confluent-kafka-go/v2/kafka"
)

// Header names carried by dead-letter and late records.
const (
	HeaderReason          = "tributary-reason"
	HeaderSourceTopic     = "tributary-source-topic"
	HeaderSourcePartition = "tributary-source-partition"
	HeaderSourceOffset    = "tributary-source-offset"
)

// DLQTopic names the dead-letter topic of an input topic.
func DLQTopic(topic string) string { return topic + ".dlq" }

// baseConfig is what every client here sets. Metrics push is off: brokers other than
// Apache Kafka 3.7+ (the embedded one among them) answer it with errors.
func baseConfig(bootstrap string) kafka.ConfigMap {
	return kafka.ConfigMap{
		"bootstrap.servers":                  bootstrap,
		"enable.metrics.push":                false,
		"topic.metadata.refresh.interval.ms": 10000,
	}
}

// ProducerConfig is an idempotent, acks=all producer: a retried send can never be
// written twice by the broker, and a record is acknowledged only once every replica has it.
func ProducerConfig(bootstrap string) kafka.ConfigMap {
	c := baseConfig(bootstrap)
	c["enable.idempotence"] = true
	c["acks"] = "all"
	c["linger.ms"] = 0
	c["compression.type"] = "lz4"
	return c
}

// ConsumerConfig is a consumer-group member that never commits on its own: the bridge
// stores an offset only once Temporal has accepted what the record carried.
func ConsumerConfig(bootstrap, group string) kafka.ConfigMap {
	c := baseConfig(bootstrap)
	c["group.id"] = group
	c["enable.auto.commit"] = false
	c["enable.auto.offset.store"] = false
	c["auto.offset.reset"] = "earliest"
	c["fetch.wait.max.ms"] = 10
	c["session.timeout.ms"] = 10000
	c["heartbeat.interval.ms"] = 1000
	// Also the rebalance timeout a member sends with its JoinGroup: how long a rebalance
	// waits for a member that does not rejoin or sync, such as one killed in the middle of
	// it (TestMemberKilledMidRebalanceHoldsNothingLong; librdkafka's default is five
	// minutes). A bridge polls within seconds, also while its deliveries wait (its await).
	c["max.poll.interval.ms"] = 30000
	c["partition.assignment.strategy"] = "cooperative-sticky"
	return c
}

// EnsureTopics creates the topics that do not exist yet; existing ones are left as they are.
func EnsureTopics(ctx context.Context, bootstrap string, partitions int, topics ...string) error {
	conf := baseConfig(bootstrap)
	admin, err := kafka.NewAdminClient(&conf)
	if err != nil {
		return fmt.Errorf("kafka admin client for %s: %w", bootstrap, err)
	}
	defer admin.Close()
	specs := make([]kafka.TopicSpecification, 0, len(topics))
	for _, t := range topics {
		specs = append(specs, kafka.TopicSpecification{Topic: t, NumPartitions: partitions, ReplicationFactor: 1})
	}
	res, err := admin.CreateTopics(ctx, specs, kafka.SetAdminOperationTimeout(30*time.Second))
	if err != nil {
		return fmt.Errorf("create topics %v on %s: %w", topics, bootstrap, err)
	}
	var errs []error
	for _, r := range res {
		if code := r.Error.Code(); code != kafka.ErrNoError && code != kafka.ErrTopicAlreadyExists {
			errs = append(errs, fmt.Errorf("create topic %s: %w", r.Topic, r.Error))
		}
	}
	return errors.Join(errs...)
}

// Producer sends records and waits for the broker's acknowledgement of each. A client
// that turns fatal (an idempotent producer whose sequence the broker lost, say, when the
// broker was replaced) never recovers by itself: the producer then closes it and makes a
// new one, so the next send can pass.
type Producer struct {
	conf kafka.ConfigMap
	log  *slog.Logger

	mu     sync.RWMutex
	p      *kafka.Producer
	events sync.WaitGroup
	// Recreated counts the clients replaced after a fatal error.
	Recreated atomic.Int64
}

// NewProducer connects an idempotent producer. extra overrides ProducerConfig's settings.
func NewProducer(bootstrap string, log *slog.Logger, extra kafka.ConfigMap) (*Producer, error) {
	conf := ProducerConfig(bootstrap)
	for k, v := range extra {
		conf[k] = v
	}
	pr := &Producer{conf: conf, log: log}
	if err := pr.connect(); err != nil {
		return nil, err
	}
	return pr, nil
}

// connect makes a new client; the caller holds mu (or is the constructor).
func (p *Producer) connect() error {
	c, err := kafka.NewProducer(&p.conf)
	if err != nil {
		return fmt.Errorf("kafka producer for %s: %w", p.conf["bootstrap.servers"], err)
	}
	p.p = c
	p.events.Add(1)
	go p.drain(c)
	return nil
}

// drain logs client-level events; delivery reports go to the channel each send passes.
func (p *Producer) drain(c *kafka.Producer) {
	defer p.events.Done()
	for ev := range c.Events() {
		if e, ok := ev.(kafka.Error); ok {
			if e.IsFatal() {
				p.log.Error("kafka producer fatal error; it is replaced at the next send", "err", e, "code", e.Code())
				continue
			}
			p.log.Warn("kafka producer", "err", e, "code", e.Code())
		}
	}
}

// fatal reports whether err leaves the client unusable.
func fatal(err error) bool {
	var ke kafka.Error
	return errors.As(err, &ke) && (ke.IsFatal() || ke.Code() == kafka.ErrFatal)
}

// replace closes a client that turned fatal and makes a new one, unless another send
// already did.
func (p *Producer) replace(old *kafka.Producer, cause error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.p != old {
		return
	}
	p.log.Error("kafka producer: replacing a client that turned fatal", "err", cause)
	old.Close()
	if err := p.connect(); err != nil {
		p.log.Error("kafka producer: could not make a new client", "err", err)
		p.p = old // closed; the next send fails and tries again
		return
	}
	p.Recreated.Add(1)
}

// Send produces the messages and waits until the broker acknowledged all of them, or
// returns the first failure. A caller that retries may write a record again, so records
// carry keys and ids that let their readers recognise a repeat.
func (p *Producer) Send(ctx context.Context, msgs ...*kafka.Message) error {
	if len(msgs) == 0 {
		return nil
	}
	p.mu.RLock()
	c := p.p
	err := send(ctx, c, msgs)
	p.mu.RUnlock()
	if fatal(err) || (err != nil && c.IsClosed()) {
		p.replace(c, err)
	}
	return err
}

func send(ctx context.Context, c *kafka.Producer, msgs []*kafka.Message) error {
	if c.IsClosed() {
		return errors.New("kafka producer is closed")
	}
	done := make(chan kafka.Event, len(msgs))
	for _, m := range msgs {
		for {
			err := c.Produce(m, done)
			if err == nil {
				break
			}
			var ke kafka.Error
			if errors.As(err, &ke) && ke.Code() == kafka.ErrQueueFull {
				// The local queue is full: let deliveries drain, then try again.
				c.Flush(10)
				continue
			}
			return fmt.Errorf("produce to %s: %w", *m.TopicPartition.Topic, err)
		}
	}
	var first error
	for range msgs {
		select {
		case ev := <-done:
			if m, ok := ev.(*kafka.Message); ok && m.TopicPartition.Error != nil && first == nil {
				first = fmt.Errorf("deliver to %s: %w", *m.TopicPartition.Topic, m.TopicPartition.Error)
			}
		case <-ctx.Done():
			return fmt.Errorf("waiting for delivery: %w", ctx.Err())
		}
	}
	return first
}

// Close flushes what is queued and closes the producer.
func (p *Producer) Close() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if !p.p.IsClosed() {
		p.p.Flush(5000)
		p.p.Close()
	}
	p.events.Wait()
}

// Message builds a record for a topic; partition is chosen from the key.
func Message(topic string, key, value []byte, headers ...kafka.Header) *kafka.Message {
	return &kafka.Message{
		TopicPartition: kafka.TopicPartition{Topic: &topic, Partition: kafka.PartitionAny},
		Key:            key,
		Value:          value,
		Headers:        headers,
	}
}

// DeadLetter builds the dead-letter copy of a record that could not be used, with the reason
// and the record's origin in headers.
func DeadLetter(m *kafka.Message, reason string) *kafka.Message {
	src := *m.TopicPartition.Topic
	return Message(DLQTopic(src), m.Key, m.Value, append(append([]kafka.Header{}, m.Headers...),
		kafka.Header{Key: HeaderReason, Value: []byte(reason)},
		kafka.Header{Key: HeaderSourceTopic, Value: []byte(src)},
		kafka.Header{Key: HeaderSourcePartition, Value: []byte(strconv.Itoa(int(m.TopicPartition.Partition)))},
		kafka.Header{Key: HeaderSourceOffset, Value: []byte(strconv.FormatInt(int64(m.TopicPartition.Offset), 10))},
	)...)
}

// Header returns a header's value, or "" when the record has none of that name.
func Header(m *kafka.Message, key string) string {
	for _, h := range m.Headers {
		if h.Key == key {
			return string(h.Value)
		}
	}
	return ""
}
