package bridge

import (
	"context"
	"fmt"
	"time"

	"github.com/confluentinc/confluent-kafka-go/v2/kafka"
	"gorm.io/gorm"
	"gorm.io/gorm/clause"

	"github.com/tributary-dev/tributary/internal/outbox"
	"github.com/tributary-dev/tributary/schemas"
)

// Reasons a record is late, as late_records and the late topics' headers give them.
const (
	reasonWindowClosed = "late: window already closed"
	reasonEventFinal   = "duplicate: event already final"
)

// lateDeadline bounds how long a bridge keeps trying to record the late inputs of an
// answer it holds.
const lateDeadline = time.Minute

// recordLate records inputs that came after their result was final: each once in
// late_records (keyed by its source, so a second recording counts it once) and, if copies
// are given, their copies for the pipeline's late topic in the outbox, in one transaction.
//
// The workflow has applied the delivery and said which of it came late, and only this
// answer says so: a delivery made again finds its offsets applied and learns nothing. So
// the rows are written even when ctx ends because the bridge stops (its stop waits for
// them), and a failed write is tried again, for up to lateDeadline. A fault run lost the
// late records of 1,063 transactions this way, most likely to a bridge stopped right after
// their answer came (inferred from the timing).
func recordLate(ctx context.Context, db *gorm.DB, rows []schemas.LateRecord, copies []*kafka.Message) error {
	if len(rows) == 0 {
		return nil
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), lateDeadline)
	defer cancel()
	wait := 50 * time.Millisecond
	for {
		err := db.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
			if err := tx.Clauses(clause.OnConflict{DoNothing: true}).CreateInBatches(rows, 200).Error; err != nil {
				return fmt.Errorf("record %d late %s records: %w", len(rows), rows[0].Pipeline, err)
			}
			return outbox.Add(tx, outbox.BySource, copies...)
		})
		if err == nil {
			return nil
		}
		select {
		case <-ctx.Done():
			return err
		case <-time.After(wait):
		}
		wait = min(2*wait, 2*time.Second)
	}
}
