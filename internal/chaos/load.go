package chaos

import (
	"context"
	"encoding/json"
	"fmt"
	"strconv"
	"sync"
	"time"

	"github.com/confluentinc/confluent-kafka-go/v2/kafka"

	"github.com/tributary-dev/tributary/internal/joinsim"
	"github.com/tributary-dev/tributary/internal/kafkaio"
	"github.com/tributary-dev/tributary/internal/txsim"
	"github.com/tributary-dev/tributary/schemas"
)

// load sends transactions and join events (an event's three rows together) at steady
// rates through a producer of its own, idempotent with acks=all, and notes when the broker
// acknowledged each transaction: a record may only be late if that came after its
// window's close. While the broker is down the producer holds records back and sends them
// when it is back, as any client would.
type load struct {
	runID string
	seed  uint64
	p     *kafka.Producer

	mu    sync.Mutex
	acked map[string]time.Time // transaction id -> when the broker acknowledged it
	// eventSent and eventAcked are when each join event was sent and when the broker had
	// acknowledged the last of its rows.
	eventSent  map[string]time.Time
	eventAcked map[string]time.Time
	tx         int
	events     int
	failed     int
	inFlight   int
	done       chan struct{}
}

func newLoad(bootstrap, runID string, seed uint64) (*load, error) {
	conf := kafkaio.ProducerConfig(bootstrap)
	conf["message.timeout.ms"] = 600000 // hold records through a stack restart
	conf["log_level"] = 2               // the broker going away is the point, not news
	p, err := kafka.NewProducer(&conf)
	if err != nil {
		return nil, fmt.Errorf("load producer: %w", err)
	}
	l := &load{runID: runID, seed: seed, p: p, acked: map[string]time.Time{},
		eventSent: map[string]time.Time{}, eventAcked: map[string]time.Time{}, done: make(chan struct{})}
	go l.deliveries()
	return l, nil
}

// deliveries notes each acknowledgement as it comes.
func (l *load) deliveries() {
	defer close(l.done)
	for ev := range l.p.Events() {
		m, ok := ev.(*kafka.Message)
		if !ok {
			continue
		}
		now := time.Now()
		l.mu.Lock()
		l.inFlight--
		if m.TopicPartition.Error != nil {
			l.failed++
		} else {
			switch o := m.Opaque.(type) {
			case string:
				l.acked[o] = now
			case eventRow:
				if now.After(l.eventAcked[string(o)]) {
					l.eventAcked[string(o)] = now
				}
			}
		}
		l.mu.Unlock()
	}
}

// run sends for d: txRate transactions and joinRate events per second.
func (l *load) run(ctx context.Context, d time.Duration, txRate, joinRate float64, tick func(elapsed time.Duration)) error {
	start := time.Now()
	t := time.NewTicker(20 * time.Millisecond)
	defer t.Stop()
	for {
		elapsed := time.Since(start)
		if elapsed > d {
			elapsed = d
		}
		for l.tx < int(txRate*elapsed.Seconds()) {
			if err := l.sendTx(); err != nil {
				return err
			}
		}
		for l.events < int(joinRate*elapsed.Seconds()) {
			if err := l.sendEvent(); err != nil {
				return err
			}
		}
		if tick != nil {
			tick(elapsed)
		}
		if elapsed >= d {
			return nil
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-t.C:
		}
	}
}

func (l *load) produce(m *kafka.Message) error {
	l.mu.Lock()
	l.inFlight++
	l.mu.Unlock()
	for {
		err := l.p.Produce(m, nil)
		if err == nil {
			return nil
		}
		if kerr, ok := err.(kafka.Error); ok && kerr.Code() == kafka.ErrQueueFull {
			l.p.Flush(100)
			continue
		}
		l.mu.Lock()
		l.inFlight--
		l.mu.Unlock()
		return fmt.Errorf("produce to %s: %w", *m.TopicPartition.Topic, err)
	}
}

func (l *load) sendTx() error {
	tx := txsim.Generate(l.runID, l.seed, l.tx, time.Now())
	b, err := json.Marshal(tx)
	if err != nil {
		return err
	}
	m := kafkaio.Message(schemas.TopicTransactions, []byte(tx.ID), b)
	m.Opaque = tx.ID
	if err := l.produce(m); err != nil {
		return err
	}
	l.tx++
	return nil
}

// EventID names the n-th join event of a run.
func EventID(runID string, n int) string { return runID + "-e" + strconv.Itoa(n) }

// eventRow marks a join row's delivery report with its event id.
type eventRow string

func (l *load) sendEvent() error {
	id := EventID(l.runID, l.events)
	now := time.Now()
	l.mu.Lock()
	l.eventSent[id] = now
	l.mu.Unlock()
	for i, topic := range schemas.JoinTopics {
		fields := json.RawMessage(fmt.Sprintf(`{"feature1":%d,"feature2":%d}`, l.events, i))
		m := kafkaio.Message(topic, []byte(id), joinsim.Row(id, fields, now))
		m.Opaque = eventRow(id)
		if err := l.produce(m); err != nil {
			return err
		}
	}
	l.events++
	return nil
}

// finish waits until every record was acknowledged or failed, then closes the producer.
func (l *load) finish(ctx context.Context) error {
	for {
		l.mu.Lock()
		left := l.inFlight
		l.mu.Unlock()
		if left == 0 {
			break
		}
		l.p.Flush(200)
		if ctx.Err() != nil {
			return fmt.Errorf("%d records still unacknowledged: %w", left, ctx.Err())
		}
	}
	l.p.Close()
	<-l.done
	return nil
}

// completeInTime reports whether the broker had every row of a join event before its
// deadline passed (counted from when the event was sent): such an event must complete.
func (l *load) completeInTime(id string) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	acked, sent := l.eventAcked[id], l.eventSent[id]
	return !acked.IsZero() && acked.Before(sent.Add(joinDeadline))
}

// ackedAt is when the broker acknowledged a transaction (zero if it never did).
func (l *load) ackedAt(id string) time.Time {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.acked[id]
}
