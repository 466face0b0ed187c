package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strconv"
	"text/tabwriter"
	"time"

	"gorm.io/gorm"

	"github.com/tributary-dev/tributary/internal/config"
	"github.com/tributary-dev/tributary/internal/db"
	"github.com/tributary-dev/tributary/internal/kafkaio"
	"github.com/tributary-dev/tributary/internal/progress"
	"github.com/tributary-dev/tributary/internal/sensorsim"
	"github.com/tributary-dev/tributary/schemas"
	"github.com/tributary-dev/tributary/travel"
)

// simulateSensors is `starter simulate sensors`: travelers crossing sensors, in real time.
func simulateSensors(ctx context.Context, args []string, out io.Writer, log *slog.Logger) error {
	fs, cfg, err := configFlags("simulate sensors", []config.FlagGroup{config.ClientFlags, config.ResultsFlags, config.SensorTimingFlags})
	if err != nil {
		return err
	}
	sc := sensorsim.Scenario{Start: time.Now().Add(100 * time.Millisecond)}
	fs.IntVar(&sc.Sensors, "sensors", 5, "number of sensors")
	rate := fs.Float64("rate", 2, "travelers entering per second")
	fs.DurationVar(&sc.Spread, "duration", time.Minute, "how long travelers keep entering")
	fs.IntVar(&sc.Legs, "legs", 2, "sensors each traveler crosses, one after another")
	fs.Float64Var(&sc.FieldOfView, "field", 40, "width of a sensor's view along the road, in metres")
	fs.DurationVar(&sc.Every, "every", 500*time.Millisecond, "interval between a traveler's readings")
	fs.Float64Var(&sc.Noise, "noise", 0.1, "standard deviation of position noise, in metres")
	fs.DurationVar(&sc.Jitter, "jitter", time.Second, "readings are delivered up to this late, out of order (keep under -sensor-disorder)")
	fs.Float64Var(&sc.Bad, "bad", 0.02, "share of travelers that also send one bad reading (NaN, future, impossible jump)")
	fs.Uint64Var(&sc.Seed, "seed", 1, "random seed")
	wait := fs.Duration("wait", 0, "how long to wait for the visits to be stored after sending (0: idle gap + disorder + 30s)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	sc.Travelers = int(*rate * sc.Spread.Seconds())
	if sc.Sensors < 1 || sc.Travelers < 1 || sc.Legs < 1 || sc.FieldOfView <= 0 || sc.Every <= 0 || sc.Noise < 0 || sc.Jitter < 0 {
		return errors.New("-sensors, -legs, -field and -every must be positive, -rate x -duration at least one traveler, -noise and -jitter not negative")
	}
	if sc.Legs > sc.Sensors {
		return fmt.Errorf("-legs %d: a traveler crosses distinct sensors, and there are %d", sc.Legs, sc.Sensors)
	}
	sc.Pause = cfg.Sensors.IdleGap + cfg.Sensors.Disorder + time.Second
	sc.Run = "r" + strconv.FormatInt(time.Now().Unix()%100000, 10) + "-"
	trips, deliveries := sc.Generate()
	sum := sensorsim.Summarize(trips, deliveries)
	fmt.Fprintf(out, "%d travelers over %d sensors, %d readings (%d bad) over %s; run %s\n",
		sum.Travelers, sc.Sensors, sum.Readings, sum.BadTotal(), sum.Last.Sub(sum.First).Round(time.Second), sc.Run)

	// The visits are read back from the results database: it must be there before anything
	// is sent.
	g, err := db.OpenExisting(cfg.Database(), log)
	if err != nil {
		return err
	}
	p, err := kafkaio.NewProducer(cfg.KafkaBootstrap, log, nil)
	if err != nil {
		return err
	}
	defer p.Close()
	bar := progress.New(out, "readings", len(deliveries))
	if err := sensorsim.Produce(ctx, p, deliveries, true, bar.Set); err != nil {
		return err
	}
	bar.Done()

	if *wait == 0 {
		*wait = cfg.Sensors.IdleGap + cfg.Sensors.Disorder + 30*time.Second
	}
	vbar := progress.New(out, "visits", len(trips))
	stored, err := waitForVisits(ctx, g, sc.Run, len(trips), *wait, vbar.Set)
	if err != nil {
		return err
	}
	vbar.Done()
	return printSensorsSummary(out, sum, stored)
}

// waitForVisits polls the visits of a run until want are stored or wait passes.
func waitForVisits(ctx context.Context, g *gorm.DB, run string, want int, wait time.Duration, progress func(int)) ([]schemas.Visit, error) {
	deadline := time.Now().Add(wait)
	for {
		var vs []schemas.Visit
		if err := g.WithContext(ctx).Where("traveler_id LIKE ?", run+"%").Find(&vs).Error; err != nil {
			return nil, fmt.Errorf("read visits: %w", err)
		}
		progress(len(vs))
		if len(vs) >= want || time.Now().After(deadline) {
			return vs, nil
		}
		select {
		case <-ctx.Done():
			return vs, ctx.Err()
		case <-time.After(500 * time.Millisecond):
		}
	}
}

func printSensorsSummary(out io.Writer, sum sensorsim.Summary, stored []schemas.Visit) error {
	type measured struct {
		visits int
		speed  float64
	}
	byType := map[string]*measured{}
	for _, v := range stored {
		m := byType[v.Type]
		if m == nil {
			m = &measured{}
			byType[v.Type] = m
		}
		m.speed = (m.speed*float64(m.visits) + v.AvgSpeed) / float64(m.visits+1)
		m.visits++
	}
	fmt.Fprintf(out, "\n%d of %d visits stored; bad readings sent: %v (see %s)\n", len(stored), sum.Trips, sum.Bad, kafkaio.DLQTopic(schemas.TopicSensorReadings))
	tw := tabwriter.NewWriter(out, 2, 4, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "type\ttravelers\ttrue speed m/s\tvisits stored\tmeasured speed m/s\t")
	for _, t := range travel.Types {
		ts := sum.ByType[t]
		m := byType[t]
		if m == nil {
			m = &measured{}
		}
		fmt.Fprintf(tw, "%s\t%d\t%.2f\t%d\t%.2f\t\n", t, ts.Travelers, ts.MeanSpeed, m.visits, m.speed)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	fmt.Fprintln(out, "metrics per sensor and type appear once each minute closes (GET /api/sensors/metrics, or the dashboard)")
	if len(stored) < sum.Trips {
		return fmt.Errorf("%d visits not stored yet; is the stack running (starter dev)?", sum.Trips-len(stored))
	}
	return nil
}
