package chaos

import (
	"context"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/confluentinc/confluent-kafka-go/v2/kafka"

	"github.com/tributary-dev/tributary/internal/joinsim"
	"github.com/tributary-dev/tributary/internal/kafkaio"
	"github.com/tributary-dev/tributary/internal/sensorsim"
	"github.com/tributary-dev/tributary/internal/txsim"
	"github.com/tributary-dev/tributary/schemas"
)

// Rates are what the load sends per second.
type Rates struct {
	// Tx transactions, Join events (three rows each), Likes likes spread over Videos videos,
	// Travelers travelers entering a sensor's view.
	Tx, Join, Likes, Travelers float64
	Videos                     int
}

// load sends transactions, join events (an event's three rows together), likes and sensor
// readings at steady rates through a producer of its own, idempotent with acks=all, and
// notes when the broker acknowledged each record: a record may only be late if that came
// after its window's close. While the broker is down the producer holds records back and
// sends them when it is back, as any client would.
type load struct {
	runID string
	seed  uint64
	p     *kafka.Producer

	mu sync.Mutex
	// acked is when the broker acknowledged each transaction, like and reading, by ref.
	acked map[ref]time.Time
	// placed is where the broker put each reading, for explaining a visit found wrong.
	placed map[ref]kafka.TopicPartition
	// eventSent and eventAcked are when each join event was sent and when the broker had
	// acknowledged the last of its rows.
	eventSent  map[string]time.Time
	eventAcked map[string]time.Time
	// eventRows are where the broker put each join event's rows, as its reports said.
	eventRows map[string][]rowAck
	tx        int
	events    int
	likes     int
	// trips and traffic are the sensor traffic (sensorsim); readings of them are sent.
	trips    []sensorsim.Trip
	traffic  []sensorsim.Delivery
	readings int
	// visitDue is how long after its last reading a visit is stored at the latest.
	visitDue time.Duration
	failed   int
	inFlight int
	done     chan struct{}
	// start is when the load began, for descriptions.
	start time.Time
}

// ref names a record of the load for its delivery report.
type ref struct {
	kind byte // 't' transaction, 'l' like, 'r' reading
	id   string
}

func likeRef(videoID string, at time.Time) ref {
	return ref{'l', videoID + "@" + at.UTC().Format(time.RFC3339Nano)}
}

func readingRef(travelerID string, at time.Time) ref {
	return ref{'r', travelerID + "@" + at.UTC().Format(time.RFC3339Nano)}
}

func newLoad(bootstrap, runID string, seed uint64) (*load, error) {
	conf := kafkaio.ProducerConfig(bootstrap)
	conf["message.timeout.ms"] = 600000 // hold records through a stack restart
	conf["log_level"] = 2               // the broker going away is the point, not news
	p, err := kafka.NewProducer(&conf)
	if err != nil {
		return nil, fmt.Errorf("load producer: %w", err)
	}
	l := &load{runID: runID, seed: seed, p: p, acked: map[ref]time.Time{}, placed: map[ref]kafka.TopicPartition{},
		eventSent: map[string]time.Time{}, eventAcked: map[string]time.Time{}, eventRows: map[string][]rowAck{}, done: make(chan struct{}),
		visitDue: SensorIdleGap + sensorDisorder + 3*time.Second}
	go l.reports()
	return l, nil
}

// reports notes each acknowledgement as it comes.
func (l *load) reports() {
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
			case ref:
				l.acked[o] = now
				if o.kind == 'r' {
					l.placed[o] = m.TopicPartition
				}
			case eventRow:
				if now.After(l.eventAcked[string(o)]) {
					l.eventAcked[string(o)] = now
				}
				l.eventRows[string(o)] = append(l.eventRows[string(o)], rowAck{*m.TopicPartition.Topic,
					m.TopicPartition.Partition, int64(m.TopicPartition.Offset), now})
			}
		}
		l.mu.Unlock()
	}
}

// run sends for d at the rates.
func (l *load) run(ctx context.Context, d time.Duration, r Rates, tick func(elapsed time.Duration)) error {
	start := time.Now()
	l.mu.Lock()
	l.start = start
	l.mu.Unlock()
	if r.Travelers > 0 {
		// Travelers enter over the first 90% of the run, each crossing one sensor: 5 m of
		// view, a reading every 200 ms, delivered up to 300 ms out of order.
		sc := sensorsim.Scenario{Sensors: 4, Travelers: int(r.Travelers * 0.9 * d.Seconds()), Legs: 1, FieldOfView: 5,
			Every: 200 * time.Millisecond, Noise: 0.05, Jitter: 300 * time.Millisecond, Start: start,
			Spread: d * 9 / 10, Seed: l.seed, Run: l.runID + "-", Site: l.runID + "-"}
		l.trips, l.traffic = sc.Generate()
	}
	t := time.NewTicker(20 * time.Millisecond)
	defer t.Stop()
	for {
		elapsed := time.Since(start)
		if elapsed > d {
			elapsed = d
		}
		for l.tx < int(r.Tx*elapsed.Seconds()) {
			if err := l.sendTx(); err != nil {
				return err
			}
		}
		for l.events < int(r.Join*elapsed.Seconds()) {
			if err := l.sendEvent(); err != nil {
				return err
			}
		}
		for l.likes < int(r.Likes*elapsed.Seconds()) {
			if err := l.sendLike(max(r.Videos, 1)); err != nil {
				return err
			}
		}
		for l.readings < len(l.traffic) && !l.traffic[l.readings].Delivered.After(start.Add(elapsed)) {
			if err := l.sendReading(l.traffic[l.readings]); err != nil {
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
	m.Opaque = ref{'t', tx.ID}
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

// VideoID names a video of a run.
func VideoID(runID string, n int) string { return runID + "-video-" + strconv.Itoa(n) }

// sendLike sends a like of one of the videos, drawn in turn, timed now.
func (l *load) sendLike(videos int) error {
	video, at := VideoID(l.runID, l.likes%videos), time.Now()
	key, value, err := schemas.LikeRecord(video, at)
	if err != nil {
		return err
	}
	m := kafkaio.Message(schemas.TopicLikes, key, value)
	m.Opaque = likeRef(video, at)
	if err := l.produce(m); err != nil {
		return err
	}
	l.likes++
	return nil
}

// sendReading sends one sensor reading.
func (l *load) sendReading(d sensorsim.Delivery) error {
	b, err := json.Marshal(schemas.NewSensorReading(d.Reading))
	if err != nil {
		return err
	}
	m := kafkaio.Message(schemas.TopicSensorReadings, []byte(d.Reading.TravelerID), b)
	m.Opaque = readingRef(d.Reading.TravelerID, d.Reading.At)
	if err := l.produce(m); err != nil {
		return err
	}
	l.readings++
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

// rowAck is where and when the broker acknowledged a join row.
type rowAck struct {
	topic     string
	partition int32
	offset    int64
	at        time.Time
}

// describeEvent says when a join event was sent and where and when each of its rows was
// acknowledged, relative to the run's start.
func (l *load) describeEvent(id string) string {
	l.mu.Lock()
	defer l.mu.Unlock()
	start := l.start
	var b strings.Builder
	fmt.Fprintf(&b, "%s sent t+%s:", id, l.eventSent[id].Sub(start).Round(time.Millisecond))
	for _, r := range l.eventRows[id] {
		fmt.Fprintf(&b, " %s[%d]@%d acked t+%s;", r.topic, r.partition, r.offset, r.at.Sub(start).Round(time.Millisecond))
	}
	return b.String()
}

// ackedAt is when the broker acknowledged a record (zero if it never did).
func (l *load) ackedAt(r ref) time.Time {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.acked[r]
}
