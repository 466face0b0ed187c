package bench

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"time"

	"github.com/tributary-dev/tributary/internal/config"
	"github.com/tributary-dev/tributary/internal/progress"
	"github.com/tributary-dev/tributary/internal/sensorsim"
	"github.com/tributary-dev/tributary/schemas"
	"github.com/tributary-dev/tributary/workflows"
)

// SensorOptions size the sensors bench.
type SensorOptions struct {
	Travelers int
	Sensors   int
	Legs      int
	// Shards are the traveler shard counts to run; 0 is one workflow per traveler.
	Shards []int
}

// DefaultSensorOptions are the sizes the README's figures come from: 1,000 travelers in
// view at once.
func DefaultSensorOptions() SensorOptions {
	return SensorOptions{Travelers: 1000, Sensors: 10, Legs: 2, Shards: []int{0, 8}}
}

// SensorRun is the sensors pipeline in one mode.
type SensorRun struct {
	Shards   int
	Readings int
	Visits   int
	// Committed is from the bridge owning its partitions to its committing the last reading;
	// Stored, to the last visit row (including the idle gap that ends the last visits).
	Committed, Stored time.Duration
	// Temporal's work: SignalWithStart calls, window updates, workflow runs and their
	// history events.
	Signals, Updates, Runs, HistoryEvents int64
}

// Per1000 scales a count to a thousand readings.
func (r SensorRun) Per1000(n int64) float64 { return 1000 * float64(n) / float64(r.Readings) }

// RunSensors measures the sensors pipeline, each mode on a fresh stack: a backlog of
// readings from Travelers concurrent travelers, from the bridge's start to the visits stored.
func RunSensors(ctx context.Context, o SensorOptions, out io.Writer, log *slog.Logger) ([]SensorRun, error) {
	var runs []SensorRun
	for _, shards := range o.Shards {
		fmt.Fprintf(out, "sensors, %s\n", SensorMode(shards))
		r, err := sensorRun(ctx, o, shards, out, log)
		if err != nil {
			return runs, fmt.Errorf("sensors with %d shards: %w", shards, err)
		}
		runs = append(runs, r)
	}
	return runs, nil
}

// SensorMode names a traveler shard count as the reports do.
func SensorMode(shards int) string {
	if shards == 0 {
		return "one workflow per traveler"
	}
	return fmt.Sprintf("%d traveler shards", shards)
}

func sensorRun(ctx context.Context, o SensorOptions, shards int, out io.Writer, log *slog.Logger) (SensorRun, error) {
	run := SensorRun{Shards: shards}
	deps, closeStack, err := freshStack(ctx, log, func(c *config.Config) {
		c.Sensors.Shards = shards
		c.Sensors.IdleGap, c.Sensors.Disorder = 2*time.Second, time.Second
		// The backlog's readings are minutes old: keep their minutes open through the run.
		c.SensorGrace = time.Hour
	})
	if err != nil {
		return run, err
	}
	defer closeStack()
	cfg := deps.Config

	sc := sensorsim.Scenario{Sensors: o.Sensors, Travelers: o.Travelers, Legs: o.Legs, FieldOfView: 40, Every: 500 * time.Millisecond,
		Noise: 0.1, Jitter: 500 * time.Millisecond, Start: time.Now().Add(-10 * time.Minute), Spread: 10 * time.Second,
		Pause: cfg.Sensors.IdleGap + cfg.Sensors.Disorder + time.Second, Seed: 7}
	trips, deliveries := sc.Generate()
	run.Readings, run.Visits = len(deliveries), len(trips)
	fmt.Fprintf(out, "  %d readings of %d travelers (%d visits)\n", run.Readings, o.Travelers, run.Visits)
	if err := sensorsim.Produce(ctx, deps.Producer, deliveries, false, nil); err != nil {
		return run, err
	}

	stopRoles, running, err := startRoles(ctx, deps)
	if err != nil {
		return run, err
	}
	defer stopRoles()
	start := time.Now()
	if err := waitCommitted(ctx, cfg.KafkaBootstrap, schemas.PipelineSensors, schemas.TopicSensorReadings, run.Readings, out); err != nil {
		return run, err
	}
	run.Committed = time.Since(start)
	bar := progress.New(out, "  visits stored", run.Visits)
	for {
		var n int64
		if err := deps.DB.WithContext(ctx).Model(&schemas.Visit{}).Count(&n).Error; err != nil {
			return run, err
		}
		bar.Set(int(n))
		if int(n) >= run.Visits {
			break
		}
		select {
		case <-ctx.Done():
			return run, ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
	bar.Done()
	run.Stored = time.Since(start)
	run.Signals = running.SensorsBridge.Stats.Signals.Load()
	run.Updates = deps.SensorWindows.Updates()
	stopRoles()
	run.Runs, run.HistoryEvents, err = historyEvents(ctx, deps, workflows.WorkflowTraveler, workflows.WorkflowWindow)
	return run, err
}
