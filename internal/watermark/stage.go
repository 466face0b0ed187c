package watermark

import (
	"context"
	"fmt"
	"time"

	"gorm.io/gorm"
	"gorm.io/gorm/clause"

	"github.com/tributary-dev/tributary/schemas"
)

// A pipeline with two stages (sensors: readings become visits in traveler workflows, whose
// speeds then fill the sensor minutes) cannot close its second stage by the input
// watermark alone: the bridges deliver readings, and so move the input watermark, while
// the first stage's workflows may not run at all (workers down). The stage watermark is the
// input watermark held back by the oldest input a first-stage workflow holds and has not
// handed on, as a stream processor's operator passes on the minimum of its inputs'
// watermarks only after it has processed them.
//
// The marks keep this true without a lock between bridges and workflows:
//
//  1. Before a delivery a bridge reserves a mark (Reserve) and sends it with the delivery.
//  2. Once the server accepted the delivery, before the bridge records the input's progress,
//     it lowers the workflow's SinceMs to the delivery's oldest event time (Delivered),
//     unless the workflow already cleared that mark.
//  3. The workflow, having applied every delivery up to its highest mark seen, sets
//     SinceMs to the oldest input it still holds and Cleared to that mark (Clear), unless a
//     delivery it has not applied yet has lowered SinceMs meanwhile.
//
// A mark reserved by a bridge that then died holds nothing back: only accepted deliveries
// lower SinceMs.

// Reserve takes the next mark of a workflow's deliveries.
func Reserve(ctx context.Context, db *gorm.DB, pipeline, workflowID string) (int64, error) {
	var mark int64
	err := db.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		err := tx.Clauses(clause.OnConflict{
			Columns:   []clause.Column{{Name: "pipeline"}, {Name: "workflow_id"}},
			DoUpdates: clause.Assignments(map[string]any{"reserved": gorm.Expr("stage_pending.reserved + 1")}),
		}).Create(&schemas.StagePending{Pipeline: pipeline, WorkflowID: workflowID, Reserved: 1}).Error
		if err != nil {
			return err
		}
		return tx.Model(&schemas.StagePending{}).Where("pipeline = ? AND workflow_id = ?", pipeline, workflowID).
			Pluck("reserved", &mark).Error
	})
	if err != nil {
		return 0, fmt.Errorf("reserve a stage mark of %s: %w", workflowID, err)
	}
	return mark, nil
}

// Delivered notes that the delivery with mark, whose oldest event time is oldest, was
// accepted: until the workflow clears the mark, the stage watermark stays before oldest.
func Delivered(ctx context.Context, db *gorm.DB, pipeline, workflowID string, mark int64, oldest time.Time) error {
	ms := oldest.UnixMilli()
	err := db.WithContext(ctx).Model(&schemas.StagePending{}).
		Where("pipeline = ? AND workflow_id = ? AND cleared < ?", pipeline, workflowID, mark).
		Updates(map[string]any{
			"since_ms": gorm.Expr("CASE WHEN since_ms = 0 OR since_ms > ? THEN ? ELSE since_ms END", ms, ms),
			"written":  gorm.Expr("CASE WHEN written > ? THEN written ELSE ? END", mark, mark),
		}).Error
	if err != nil {
		return fmt.Errorf("note stage delivery %d of %s: %w", mark, workflowID, err)
	}
	return nil
}

// Clear records that the workflow applied every delivery up to mark and now holds input
// from oldest on (zero: none). It reports false, changing nothing, when a later delivery
// has already lowered the workflow's SinceMs: the workflow clears again once it applied it.
func Clear(ctx context.Context, db *gorm.DB, pipeline, workflowID string, mark int64, oldest time.Time) (bool, error) {
	var ms int64
	if !oldest.IsZero() {
		ms = max(oldest.UnixMilli(), 1)
	}
	res := db.WithContext(ctx).Model(&schemas.StagePending{}).
		Where("pipeline = ? AND workflow_id = ? AND written <= ?", pipeline, workflowID, mark).
		Updates(map[string]any{"since_ms": ms, "cleared": gorm.Expr("CASE WHEN cleared > ? THEN cleared ELSE ? END", mark, mark)})
	if res.Error != nil {
		return false, fmt.Errorf("clear stage marks of %s up to %d: %w", workflowID, mark, res.Error)
	}
	return res.RowsAffected > 0, nil
}

// ReadStage is a pipeline's stage watermark: its input watermark, held back to just
// before the oldest input a first-stage workflow holds.
func ReadStage(ctx context.Context, db *gorm.DB, pipeline string) (time.Time, error) {
	in, err := Read(ctx, db, pipeline)
	if err != nil || in.IsZero() {
		return in, err
	}
	var oldest int64
	err = db.WithContext(ctx).Model(&schemas.StagePending{}).Where("pipeline = ? AND since_ms > 0", pipeline).
		Select("COALESCE(MIN(since_ms), 0)").Scan(&oldest).Error
	if err != nil {
		return time.Time{}, fmt.Errorf("read the stage watermark of %s: %w", pipeline, err)
	}
	if oldest > 0 {
		if held := time.UnixMilli(oldest - 1).UTC(); held.Before(in) {
			return held, nil
		}
	}
	return in, nil
}
