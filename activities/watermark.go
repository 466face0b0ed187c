package activities

import (
	"context"
	"time"

	"github.com/tributary-dev/tributary/internal/watermark"
)

// InputWatermark reads a pipeline's input watermark: every record of its input up to that
// event time (or that moment of a caught-up log) has been applied by its workflows.
func (a *Activities) InputWatermark(ctx context.Context, pipeline string) (time.Time, error) {
	return watermark.Read(ctx, a.DB, pipeline)
}

// StageWatermark reads a two-stage pipeline's stage watermark: the input watermark, held
// back by the oldest input a first-stage workflow holds unflushed (watermark.ReadStage).
func (a *Activities) StageWatermark(ctx context.Context, pipeline string) (time.Time, error) {
	return watermark.ReadStage(ctx, a.DB, pipeline)
}

// ClearStageRequest says that a first-stage workflow applied every delivery up to Mark and
// holds input from Oldest on (zero: none).
type ClearStageRequest struct {
	Pipeline, WorkflowID string
	Mark                 int64
	Oldest               time.Time
}

// ClearStage records a ClearStageRequest; it reports false when a delivery the workflow has
// not applied yet lowered its hold meanwhile.
func (a *Activities) ClearStage(ctx context.Context, req ClearStageRequest) (bool, error) {
	return watermark.Clear(ctx, a.DB, req.Pipeline, req.WorkflowID, req.Mark, req.Oldest)
}
