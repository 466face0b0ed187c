package bridge

import (
	"context"
	"fmt"

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

// recordLate records inputs that came after their result was final: each once in
// late_records (keyed by its source, so a second recording counts it once) and, if copies
// are given, their copies for the pipeline's late topic in the outbox, in one transaction.
func recordLate(ctx context.Context, db *gorm.DB, rows []schemas.LateRecord, copies []*kafka.Message) error {
	if len(rows) == 0 {
		return nil
	}
	return db.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		if err := tx.Clauses(clause.OnConflict{DoNothing: true}).CreateInBatches(rows, 200).Error; err != nil {
			return fmt.Errorf("record %d late %s records: %w", len(rows), rows[0].Pipeline, err)
		}
		return outbox.Add(tx, outbox.BySource, copies...)
	})
}
