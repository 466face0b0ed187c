// Package watermark keeps the input watermark of each pipeline: how far, in event time and
// in log position, the bridges have delivered every input partition into Temporal. Windows
// close, joins give up and visits end when this watermark passes them, never by the clock
// alone, so records that wait in Kafka behind a dead bridge, a restart or a backlog are
// still on time when they arrive (DESIGN.md, the data path, step 4).
//
// A partition's watermark is the newest event time delivered from it, or the last time it
// was read to its log end, whichever is later. A pipeline's is the minimum over its
// partitions, so one partition that nobody reads holds it back. Every stored value only
// grows and states a fact about records already delivered: a bridge that dies, a zombie
// that writes late, or two bridges that share a partition for a moment cannot make it
// claim more than is true.
package watermark

import (
	"context"
	"fmt"
	"time"

	"gorm.io/gorm"
	"gorm.io/gorm/clause"

	"github.com/tributary-dev/tributary/schemas"
)

// greater keeps the larger of the stored and the new value of a column.
func greater(column string) clause.Assignment {
	return clause.Assignment{Column: clause.Column{Name: column},
		Value: gorm.Expr(fmt.Sprintf("CASE WHEN excluded.%[1]s > input_progress.%[1]s THEN excluded.%[1]s ELSE input_progress.%[1]s END", column))}
}

// Record stores the progress of partitions. A value lower than the one stored (a new owner
// that resumes behind the last commit) leaves it as it is.
func Record(ctx context.Context, db *gorm.DB, rows []schemas.InputProgress) error {
	if len(rows) == 0 {
		return nil
	}
	now := time.Now().UTC()
	for i := range rows {
		rows[i].UpdatedAt = now
	}
	err := db.WithContext(ctx).Clauses(clause.OnConflict{
		Columns: []clause.Column{{Name: "pipeline"}, {Name: "topic"}, {Name: "partition"}},
		DoUpdates: clause.Set{greater("next_offset"), greater("event_ms"), greater("caught_up_ms"),
			{Column: clause.Column{Name: "owner"}, Value: gorm.Expr("excluded.owner")},
			{Column: clause.Column{Name: "updated_at"}, Value: gorm.Expr("excluded.updated_at")}},
	}).Create(&rows).Error
	if err != nil {
		return fmt.Errorf("record input progress of %d partitions: %w", len(rows), err)
	}
	return nil
}

// Ensure adds an empty row for each of a topic's partitions that has none, so that a
// partition no bridge has read yet holds the pipeline's watermark back.
func Ensure(ctx context.Context, db *gorm.DB, pipeline, topic string, partitions int) error {
	rows := make([]schemas.InputProgress, partitions)
	now := time.Now().UTC()
	for p := range rows {
		rows[p] = schemas.InputProgress{Pipeline: pipeline, Topic: topic, Partition: int32(p), UpdatedAt: now}
	}
	if len(rows) == 0 {
		return nil
	}
	err := db.WithContext(ctx).Clauses(clause.OnConflict{DoNothing: true}).Create(&rows).Error
	if err != nil {
		return fmt.Errorf("register %d partitions of %s for pipeline %s: %w", partitions, topic, pipeline, err)
	}
	return nil
}

// Read is a pipeline's input watermark: the minimum over its partitions. It is zero while
// no partition is known or one has delivered nothing yet.
func Read(ctx context.Context, db *gorm.DB, pipeline string) (time.Time, error) {
	var row struct {
		Low   int64
		Count int64
	}
	err := db.WithContext(ctx).Model(&schemas.InputProgress{}).Where("pipeline = ?", pipeline).
		Select("COALESCE(MIN(CASE WHEN event_ms > caught_up_ms THEN event_ms ELSE caught_up_ms END), 0) AS low, COUNT(*) AS count").
		Scan(&row).Error
	if err != nil {
		return time.Time{}, fmt.Errorf("read input watermark of %s: %w", pipeline, err)
	}
	if row.Count == 0 || row.Low <= 0 {
		return time.Time{}, nil
	}
	return time.UnixMilli(row.Low).UTC(), nil
}

// Partitions lists a pipeline's progress rows, for reports and tests.
func Partitions(ctx context.Context, db *gorm.DB, pipeline string) ([]schemas.InputProgress, error) {
	var rows []schemas.InputProgress
	err := db.WithContext(ctx).Where("pipeline = ?", pipeline).Order("topic, partition").Find(&rows).Error
	if err != nil {
		return nil, fmt.Errorf("list input progress of %s: %w", pipeline, err)
	}
	return rows, nil
}
