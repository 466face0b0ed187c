package activities

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/confluentinc/confluent-kafka-go/v2/kafka"
	"gorm.io/gorm"
	"gorm.io/gorm/clause"

	"github.com/tributary-dev/tributary/internal/kafkaio"
	"github.com/tributary-dev/tributary/internal/outbox"
	"github.com/tributary-dev/tributary/pipelines"
	"github.com/tributary-dev/tributary/schemas"
	"github.com/tributary-dev/tributary/window"
)

// ClosedWindow is a window whose aggregate is final.
type ClosedWindow struct {
	Key         string
	SizeSeconds int64
	Start       time.Time
	Partial     window.Partial
}

// ID names the window as its output record is keyed (schemas.WindowKey).
func (w ClosedWindow) ID() string { return schemas.WindowKey(w.Key, w.SizeSeconds, w.Start) }

// FlushRequest is one workflow run's batch of closed windows.
type FlushRequest struct {
	Pipeline string
	Writer   string
	Windows  []ClosedWindow
	ClosedAt time.Time
}

// FlushResult lists the windows another run had already made final: they were not written
// again, so a replayed record can never overwrite a final row with a partial one.
type FlushResult struct {
	AlreadyFinal []string
}

// FlushWindows writes each closed window's row (absolute values, keyed by pipeline, key,
// size and start) and its output record (to the outbox) in one transaction. A window
// already written, by another run or by an earlier attempt of this one, is left as it is.
func (a *Activities) FlushWindows(ctx context.Context, req FlushRequest) (FlushResult, error) {
	var res FlushResult
	var written []schemas.WindowResult
	spec, ok := pipelines.ByName(req.Pipeline)
	if !ok {
		return res, fmt.Errorf("unknown window pipeline %q", req.Pipeline)
	}
	err := a.DB.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		var fresh []schemas.WindowResult
		for _, w := range req.Windows {
			var existing schemas.WindowResult
			q := tx.Select("writer").Where("pipeline = ? AND key = ? AND size_seconds = ? AND window_start = ?", req.Pipeline, w.Key, w.SizeSeconds, w.Start.UTC()).Limit(1).Find(&existing)
			if q.Error != nil {
				return fmt.Errorf("look up window %s: %w", w.ID(), q.Error)
			}
			if q.RowsAffected > 0 {
				if existing.Writer != req.Writer {
					res.AlreadyFinal = append(res.AlreadyFinal, w.ID())
				}
				// Written by this run already (an earlier attempt committed), output and all.
				continue
			}
			p := w.Partial
			fresh = append(fresh, schemas.WindowResult{
				Pipeline: req.Pipeline, Key: w.Key, SizeSeconds: w.SizeSeconds, WindowStart: w.Start.UTC(),
				Count: p.Count, Sum: p.Sum, Min: p.Min, Max: p.Max, Avg: p.Avg(), FirstAt: p.First.UTC(), LastAt: p.Last.UTC(),
				ClosedAt: req.ClosedAt.UTC(), Writer: req.Writer,
			})
		}
		written = fresh
		if len(fresh) == 0 {
			return nil
		}
		if err := tx.Clauses(clause.OnConflict{UpdateAll: true}).CreateInBatches(fresh, 200).Error; err != nil {
			return err
		}
		msgs := make([]*kafka.Message, 0, len(fresh))
		for _, r := range fresh {
			size := time.Duration(r.SizeSeconds) * time.Second
			out := schemas.WindowOutput{Version: schemas.RecordVersion, Pipeline: r.Pipeline, Key: r.Key, SizeSeconds: r.SizeSeconds,
				WindowStart: r.WindowStart, WindowEnd: r.WindowStart.Add(size), Count: r.Count, Sum: r.Sum, Min: r.Min, Max: r.Max, Avg: r.Avg}
			b, err := json.Marshal(out)
			if err != nil {
				return fmt.Errorf("encode window %s: %w", schemas.WindowKey(r.Key, r.SizeSeconds, r.WindowStart), err)
			}
			key := schemas.WindowKey(r.Key, r.SizeSeconds, r.WindowStart)
			msgs = append(msgs, kafkaio.Message(spec.OutputTopics[size], []byte(key), b))
		}
		return outbox.Add(tx, outbox.ByKey, msgs...)
	})
	if err != nil {
		return res, fmt.Errorf("flush %d %s windows: %w", len(req.Windows), req.Pipeline, err)
	}
	now := time.Now()
	for _, r := range written {
		a.Metrics.WindowClosed(r.Pipeline, now.Sub(r.WindowStart.Add(time.Duration(r.SizeSeconds)*time.Second)))
	}
	a.kick()
	return res, nil
}
