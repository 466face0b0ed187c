package outbox

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"sync/atomic"
	"time"

	"github.com/confluentinc/confluent-kafka-go/v2/kafka"
	"gorm.io/gorm"

	"github.com/tributary-dev/tributary/internal/kafkaio"
	"github.com/tributary-dev/tributary/schemas"
)

// Defaults of the Relay.
const (
	// Group is the consumer group whose offset on TopicOutboxPosition is the relay's
	// position. No consumer joins it: its offsets are only committed inside the relay's
	// transactions (as a group without members and with no generation, so no rebalance of
	// any group can fail a commit).
	Group = "tributary-outbox"
	// TransactionalID is shared by every relay, so a new one fences a zombie. It also names
	// the relays' lease.
	TransactionalID = "tributary-outbox-relay"
	// LeaseTTL is how long a relay's turn lasts unless it renews it (every third of it): a
	// relay that dies is replaced within about this long.
	LeaseTTL = 6 * time.Second
	// Retention is how long relayed rows stay, so that a retried writer's second copy of a
	// record is still recognised; older relayed rows are deleted.
	Retention = 24 * time.Hour
	batchRows = 500
)

// Relay sends outbox rows to Kafka exactly once.
type Relay struct {
	DB        *gorm.DB
	Bootstrap string
	Log       *slog.Logger
	// Poll is how often the outbox is read when it was last found empty (50 ms when zero).
	Poll time.Duration
	// Relayed counts the records this relay committed.
	Relayed atomic.Int64
	// kick wakes the relay at once (after a local write).
	kick chan struct{}
}

// Kick asks the relay to look at the outbox now; writers in the same process call it after
// their commit, so a record does not wait for the next poll.
func (r *Relay) Kick() {
	if r.kick == nil {
		return
	}
	select {
	case r.kick <- struct{}{}:
	default:
	}
}

// owner is the state of the relay whose turn it is.
type owner struct {
	producer *kafka.Producer
	next     uint64
}

// relays numbers the relays of this process, to name their lease holders apart.
var relays atomic.Int64

// Run relays until ctx ends. Only the relay holding the lease sends; on losing it (or on
// any Kafka error) it aborts what is open and starts over from the committed position.
func (r *Relay) Run(ctx context.Context) error {
	if r.Log == nil {
		r.Log = slog.Default()
	}
	if r.Poll == 0 {
		r.Poll = 50 * time.Millisecond
	}
	if r.kick == nil {
		r.kick = make(chan struct{}, 1)
	}
	conf := kafkaio.ConsumerConfig(r.Bootstrap, Group)
	conf["isolation.level"] = "read_committed"
	c, err := kafka.NewConsumer(&conf) // reads the committed position; never subscribes
	if err != nil {
		return fmt.Errorf("outbox relay consumer: %w", err)
	}
	defer c.Close()
	meta, err := kafka.NewTestConsumerGroupMetadata(Group) // the group id alone, as a memberless group commits
	if err != nil {
		return fmt.Errorf("outbox relay group metadata: %w", err)
	}
	host, _ := os.Hostname()
	turn := lease{db: r.DB, name: TransactionalID, holder: fmt.Sprintf("%s/%d/%d", host, os.Getpid(), relays.Add(1)),
		ttl: LeaseTTL, now: time.Now}
	var own *owner
	drop := func() {
		if own != nil {
			own.producer.Close()
			own = nil
		}
	}
	defer func() {
		held := own != nil
		drop()
		if held {
			rctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			if err := turn.release(rctx); err != nil {
				r.Log.Warn("outbox relay: release", "err", err)
			}
		}
	}()
	var renewed time.Time
	lastClean := time.Now()
	for ctx.Err() == nil {
		if time.Since(renewed) >= turn.ttl/3 {
			held, err := turn.claim(ctx)
			if err != nil && ctx.Err() == nil {
				r.Log.Warn("outbox relay: lease", "err", err)
			}
			if !held {
				if own != nil {
					r.Log.Info("outbox relay: lease lost")
				}
				drop()
				r.wait(ctx, turn.ttl/3)
				continue
			}
			renewed = time.Now()
		}
		if own == nil {
			if own, err = r.takeOver(ctx, c); err != nil {
				r.Log.Warn("outbox relay: take over", "err", err)
				own = nil
				r.wait(ctx, time.Second)
				continue
			}
		}
		n, err := r.relay(ctx, own, meta)
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			r.Log.Warn("outbox relay: batch aborted; starting over from the committed position", "err", err)
			drop()
			r.wait(ctx, time.Second)
			continue
		}
		if time.Since(lastClean) > time.Minute {
			r.clean(own.next)
			lastClean = time.Now()
		}
		if n == 0 {
			r.wait(ctx, r.Poll)
		}
	}
	return nil
}

func (r *Relay) wait(ctx context.Context, d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
	case <-r.kick:
	case <-t.C:
	}
}

// takeOver makes the transactional producer (fencing any earlier one and settling its open
// transaction) and then reads the committed position, which no earlier relay can move
// any more.
func (r *Relay) takeOver(ctx context.Context, c *kafka.Consumer) (*owner, error) {
	conf := kafkaio.ProducerConfig(r.Bootstrap)
	conf["transactional.id"] = TransactionalID
	conf["go.delivery.reports"] = false
	p, err := kafka.NewProducer(&conf)
	if err != nil {
		return nil, fmt.Errorf("transactional producer: %w", err)
	}
	ictx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	if err := p.InitTransactions(ictx); err != nil {
		p.Close()
		return nil, fmt.Errorf("init transactions: %w", err)
	}
	topic := schemas.TopicOutboxPosition
	parts, err := c.Committed([]kafka.TopicPartition{{Topic: &topic, Partition: 0}}, 10000)
	var ke kafka.Error
	if errors.As(err, &ke) && ke.Code() == kafka.ErrGroupIDNotFound {
		parts, err = nil, nil // nothing committed yet: a group with no members exists once it commits
	}
	if err != nil {
		p.Close()
		return nil, fmt.Errorf("committed position: %w", err)
	}
	if len(parts) == 1 && parts[0].Error != nil {
		// Without the position the relay would start from the first row and send every
		// retained record again.
		p.Close()
		return nil, fmt.Errorf("committed position: %w", parts[0].Error)
	}
	own := &owner{producer: p, next: 1}
	if len(parts) == 1 && parts[0].Offset >= 0 {
		own.next = uint64(parts[0].Offset)
	}
	r.Log.Info("outbox relay: taking its turn", "next", own.next)
	return own, nil
}

// relay sends the next rows in one Kafka transaction with the position after them.
func (r *Relay) relay(ctx context.Context, own *owner, meta *kafka.ConsumerGroupMetadata) (int, error) {
	var rows []schemas.OutboxRecord
	if err := r.DB.WithContext(ctx).Where("id >= ?", own.next).Order("id").Limit(batchRows).Find(&rows).Error; err != nil {
		return 0, fmt.Errorf("read outbox: %w", err)
	}
	if len(rows) == 0 {
		return 0, nil
	}
	p := own.producer
	if err := p.BeginTransaction(); err != nil {
		return 0, fmt.Errorf("begin: %w", err)
	}
	abort := func(cause error) (int, error) {
		actx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := p.AbortTransaction(actx); err != nil {
			cause = errors.Join(cause, fmt.Errorf("abort: %w", err))
		}
		return 0, cause
	}
	for _, row := range rows {
		m, err := message(row)
		if err != nil {
			return abort(err)
		}
		for {
			err = p.Produce(m, nil)
			var ke kafka.Error
			if errors.As(err, &ke) && ke.Code() == kafka.ErrQueueFull {
				p.Flush(10)
				continue
			}
			break
		}
		if err != nil {
			return abort(fmt.Errorf("produce outbox row %d: %w", row.ID, err))
		}
	}
	next := rows[len(rows)-1].ID + 1
	topic := schemas.TopicOutboxPosition
	tctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	pos := []kafka.TopicPartition{{Topic: &topic, Partition: 0, Offset: kafka.Offset(next)}}
	if err := p.SendOffsetsToTransaction(tctx, pos, meta); err != nil {
		return abort(fmt.Errorf("send position %d: %w", next, err))
	}
	if err := p.CommitTransaction(tctx); err != nil {
		return abort(fmt.Errorf("commit: %w", err))
	}
	own.next = next
	r.Relayed.Add(int64(len(rows)))
	return len(rows), nil
}

// clean deletes rows relayed more than Retention ago.
func (r *Relay) clean(next uint64) {
	err := r.DB.Where("id < ? AND created_at < ?", next, time.Now().Add(-Retention)).Delete(&schemas.OutboxRecord{}).Error
	if err != nil {
		r.Log.Warn("outbox relay: clean relayed rows", "err", err)
	}
}
