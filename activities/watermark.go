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
