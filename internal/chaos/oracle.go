package chaos

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"github.com/confluentinc/confluent-kafka-go/v2/kafka"
	"gorm.io/gorm"

	"github.com/tributary-dev/tributary/internal/kafkaio"
	"github.com/tributary-dev/tributary/internal/txsim"
	"github.com/tributary-dev/tributary/pipelines"
	"github.com/tributary-dev/tributary/schemas"
)

// Outcome is what the run's outputs hold, compared with what its inputs hold. Every count
// but the totals should be zero.
type Outcome struct {
	// Windows are the closed 3-second transactions windows; Equal of them match the
	// recomputation from the topic (records the pipeline found late left out).
	Windows, Equal int
	// Paid counts the paid transactions; Late those recorded late; WronglyLate those
	// recorded late although the broker had acknowledged them before their window closed.
	Paid, Late, WronglyLate int
	// Events were sent with all three rows; Acked of them got an ack; AckedTwice more than
	// one; Incomplete an ack that says incomplete, WronglyIncomplete although the broker had
	// all three rows before the deadline (a row held back by the producer while the broker
	// was down may come after it, as any row may).
	Events, Acked, AckedTwice, Incomplete, WronglyIncomplete int
	// OutputKeys are the keys on transactions_aggregate; OutputTwice those written twice.
	OutputKeys, OutputTwice int
	// Differences describe the first windows that differ.
	Differences []string
}

// Clean reports whether nothing was lost, counted twice, late without cause or repeated.
func (o Outcome) Clean() bool {
	return o.Equal == o.Windows && o.WronglyLate == 0 && o.Acked == o.Events && o.AckedTwice == 0 &&
		o.WronglyIncomplete == 0 && o.OutputTwice == 0 && len(o.Differences) == 0
}

// settled reports whether the outputs have caught up with everything sent.
func (o Outcome) settled() bool {
	return o.Acked == o.Events && o.Windows > 0 && o.Equal == o.Windows
}

// judge compares the outputs with the inputs: windows closed by asOf. It leaves
// WronglyLate to wronglyLate, which reads the input topic once more and is needed only
// once the outputs have settled.
func judge(ctx context.Context, bootstrap string, db *gorm.DB, l *load, asOf time.Time) (Outcome, error) {
	var o Outcome
	v, err := txsim.Verify(ctx, bootstrap, db, asOf, true)
	if err != nil {
		return o, fmt.Errorf("verify transactions: %w", err)
	}
	o.Windows, o.Equal, o.Paid, o.Late = v.Windows, v.Windows-len(v.Differences), v.Paid, v.Late
	o.Differences = v.Differences
	l.mu.Lock()
	o.Events = l.events
	l.mu.Unlock()
	acks := map[string]int{}
	err = kafkaio.ReadTopic(ctx, bootstrap, schemas.TopicAck, func(m *kafka.Message) error {
		var a schemas.Ack
		if json.Unmarshal(m.Value, &a) != nil || !strings.HasPrefix(a.EventID, l.runID+"-e") {
			return nil
		}
		acks[a.EventID]++
		if a.Status != schemas.JoinComplete {
			o.Incomplete++
			if l.completeInTime(a.EventID) {
				o.WronglyIncomplete++
			}
		}
		return nil
	})
	if err != nil {
		return o, fmt.Errorf("read acks: %w", err)
	}
	for _, n := range acks {
		o.Acked++
		if n > 1 {
			o.AckedTwice++
		}
	}
	outputs := map[string]int{}
	err = kafkaio.ReadTopic(ctx, bootstrap, schemas.TopicTransactionsAggregate, func(m *kafka.Message) error {
		outputs[string(m.Key)]++
		return nil
	})
	if err != nil {
		return o, fmt.Errorf("read window outputs: %w", err)
	}
	for _, n := range outputs {
		o.OutputKeys++
		if n > 1 {
			o.OutputTwice++
		}
	}
	return o, nil
}

// wronglyLate counts the run's transactions recorded late although the broker had
// acknowledged them before their window's end plus grace.
func wronglyLate(ctx context.Context, bootstrap string, db *gorm.DB, l *load) (int, error) {
	spec := pipelines.Transactions()
	var late []schemas.LateRecord
	if err := db.WithContext(ctx).Where("pipeline = ?", spec.Name).Find(&late).Error; err != nil {
		return 0, fmt.Errorf("read late records: %w", err)
	}
	if len(late) == 0 {
		return 0, nil
	}
	isLate := map[string]bool{}
	for _, r := range late {
		isLate[fmt.Sprintf("%d/%d", r.Partition, r.Offset)] = true
	}
	wrong := 0
	err := kafkaio.ReadTopic(ctx, bootstrap, spec.Topic, func(m *kafka.Message) error {
		if !isLate[fmt.Sprintf("%d/%d", m.TopicPartition.Partition, m.TopicPartition.Offset)] {
			return nil
		}
		var tx schemas.Transaction
		if json.Unmarshal(m.Value, &tx) != nil {
			return nil
		}
		ws := spec.Windows[0]
		closeAt := ws.CloseAt(ws.Starts(tx.At)[0])
		if acked := l.ackedAt(tx.ID); !acked.IsZero() && acked.Before(closeAt) {
			wrong++
		}
		return nil
	})
	return wrong, err
}
