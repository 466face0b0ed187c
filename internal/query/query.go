// Package query answers questions about stored results: sensor metrics over any time range
// and step, visits, and window rows. The HTTP API serves it; it reads only the database.
package query

import (
	"context"
	"errors"
	"fmt"
	"math"
	"slices"
	"time"

	"gorm.io/gorm"

	"github.com/tributary-dev/tributary/schemas"
	"github.com/tributary-dev/tributary/travel"
)

// MaxPoints bounds the points one metrics answer holds.
const MaxPoints = 10000

// ErrInvalid marks a request that cannot be answered as asked.
var ErrInvalid = errors.New("invalid request")

// MetricsRequest asks for sensor metrics: a sensor or all (""), a traveler type or all
// (""), a time range, a step between points, and the window each point covers (rolling
// windows when Window is longer than Step; Window 0 means Step).
type MetricsRequest struct {
	Sensor string
	Type   string
	From   time.Time
	To     time.Time
	Step   time.Duration
	Window time.Duration
	// Open are sensor minutes still open, as their workflows hold them (the API asks with
	// live=1): each counts where no closed row of its key and minute is stored yet, so a
	// chart is not empty during the minutes before the first one closes.
	Open []schemas.WindowResult
}

// Normalize aligns the range to whole minutes, fills defaults and reports what cannot be
// answered.
func (r *MetricsRequest) Normalize() error {
	if r.Step == 0 {
		r.Step = time.Minute
	}
	if r.Window == 0 {
		r.Window = r.Step
	}
	var errs []error
	if r.Step%time.Minute != 0 || r.Step <= 0 {
		errs = append(errs, fmt.Errorf("step %s: want a whole number of minutes", r.Step))
	}
	if r.Window%time.Minute != 0 || r.Window < r.Step {
		errs = append(errs, fmt.Errorf("window %s: want a whole number of minutes, at least the step", r.Window))
	}
	if r.Type != "" && !slices.Contains(travel.Types, r.Type) {
		errs = append(errs, fmt.Errorf("type %q: want one of %v, or none for all", r.Type, travel.Types))
	}
	if r.From.IsZero() || r.To.IsZero() || !r.From.Before(r.To) {
		errs = append(errs, errors.New("from must be before to"))
	}
	if len(errs) > 0 {
		return fmt.Errorf("%w: %w", ErrInvalid, errors.Join(errs...))
	}
	r.From = r.From.UTC().Truncate(time.Minute)
	if to := r.To.UTC().Truncate(time.Minute); to.Before(r.To) {
		r.To = to.Add(time.Minute)
	} else {
		r.To = to
	}
	if n := r.To.Sub(r.From) / r.Step; n > MaxPoints {
		return fmt.Errorf("%w: %d points asked for, at most %d: widen the step or narrow the range", ErrInvalid, n, MaxPoints)
	}
	return nil
}

// Point is one step of a metrics answer, covering [Start, End).
type Point struct {
	Start time.Time `json:"start"`
	End   time.Time `json:"end"`
	// Travelers counts the distinct travelers whose visit overlaps the window.
	Travelers int `json:"travelers"`
	// Measured counts traveler-minutes with a measured speed: the speeds below are over
	// those, each a traveler's mean speed in one minute. All are zero for an empty step.
	Measured int64   `json:"measured"`
	MinSpeed float64 `json:"min_speed"`
	MaxSpeed float64 `json:"max_speed"`
	AvgSpeed float64 `json:"avg_speed"`
	// Open says that a minute still open contributed: the values may still change.
	Open bool `json:"open,omitempty"`
}

// Metrics answers a MetricsRequest.
type Metrics struct {
	Sensor string  `json:"sensor"`
	Type   string  `json:"type"`
	From   string  `json:"from"`
	To     string  `json:"to"`
	Step   string  `json:"step"`
	Window string  `json:"window"`
	Points []Point `json:"points"`
}

type minuteAgg struct {
	count    int64
	sum      float64
	min, max float64
}

// SensorMetrics computes a metrics answer from the closed sensor minutes (window rows of
// the sensors pipeline) and the stored visits. Steps with nothing in them are zeros. A
// request it cannot answer returns an error wrapping ErrInvalid.
func SensorMetrics(ctx context.Context, db *gorm.DB, req MetricsRequest) (Metrics, error) {
	if err := req.Normalize(); err != nil {
		return Metrics{}, err
	}
	n := int(req.To.Sub(req.From) / req.Step)
	last := req.From.Add(time.Duration(n-1)*req.Step + req.Window)
	var rows []schemas.WindowResult
	err := db.WithContext(ctx).Where("pipeline = ? AND size_seconds = ? AND window_start >= ? AND window_start < ?",
		schemas.PipelineSensors, 60, req.From, last).Find(&rows).Error
	if err != nil {
		return Metrics{}, fmt.Errorf("read sensor minutes: %w", err)
	}
	closed := make(map[string]bool, len(rows))
	for _, r := range rows {
		closed[schemas.WindowKey(r.Key, r.SizeSeconds, r.WindowStart)] = true
	}
	openMinutes := map[int64]bool{}
	for _, r := range req.Open {
		if r.SizeSeconds == 60 && !closed[schemas.WindowKey(r.Key, r.SizeSeconds, r.WindowStart)] &&
			!r.WindowStart.Before(req.From) && r.WindowStart.Before(last) {
			rows = append(rows, r)
			openMinutes[r.WindowStart.Unix()] = true
		}
	}
	minutes := map[int64]*minuteAgg{}
	for _, r := range rows {
		sensor, typ := schemas.SplitSensorKey(r.Key)
		if (req.Sensor != "" && sensor != req.Sensor) || (req.Type != "" && typ != req.Type) || r.Count == 0 {
			continue
		}
		m := minutes[r.WindowStart.Unix()]
		if m == nil {
			m = &minuteAgg{min: math.Inf(1), max: math.Inf(-1)}
			minutes[r.WindowStart.Unix()] = m
		}
		m.count += r.Count
		m.sum += r.Sum
		m.min = math.Min(m.min, r.Min)
		m.max = math.Max(m.max, r.Max)
	}
	q := db.WithContext(ctx).Select("traveler_id", "sensor_id", "type", "entered_at", "left_at").
		Where("entered_at < ? AND left_at >= ?", last, req.From)
	if req.Sensor != "" {
		q = q.Where("sensor_id = ?", req.Sensor)
	}
	if req.Type != "" {
		q = q.Where("type = ?", req.Type)
	}
	var visits []schemas.Visit
	if err := q.Find(&visits).Error; err != nil {
		return Metrics{}, fmt.Errorf("read visits: %w", err)
	}
	travelers := make([]map[string]bool, n)
	for _, v := range visits {
		// Points k with start_k <= left and start_k + window > entered.
		lo := max(0, int(math.Floor(float64(v.Entered.Sub(req.From)-req.Window)/float64(req.Step))))
		hi := min(n-1, int(math.Floor(float64(v.Left.Sub(req.From))/float64(req.Step))))
		for k := lo; k <= hi; k++ {
			s := req.From.Add(time.Duration(k) * req.Step)
			if s.After(v.Left) || !s.Add(req.Window).After(v.Entered) {
				continue
			}
			if travelers[k] == nil {
				travelers[k] = map[string]bool{}
			}
			travelers[k][v.TravelerID] = true
		}
	}
	out := Metrics{Sensor: req.Sensor, Type: req.Type, From: req.From.Format(time.RFC3339), To: req.To.Format(time.RFC3339),
		Step: req.Step.String(), Window: req.Window.String(), Points: make([]Point, n)}
	for k := range n {
		p := Point{Start: req.From.Add(time.Duration(k) * req.Step)}
		p.End = p.Start.Add(req.Window)
		p.Travelers = len(travelers[k])
		agg := minuteAgg{min: math.Inf(1), max: math.Inf(-1)}
		for m := p.Start; m.Before(p.End); m = m.Add(time.Minute) {
			if a := minutes[m.Unix()]; a != nil {
				p.Open = p.Open || openMinutes[m.Unix()]
				agg.count += a.count
				agg.sum += a.sum
				agg.min = math.Min(agg.min, a.min)
				agg.max = math.Max(agg.max, a.max)
			}
		}
		if agg.count > 0 {
			p.Measured, p.MinSpeed, p.MaxSpeed, p.AvgSpeed = agg.count, agg.min, agg.max, agg.sum/float64(agg.count)
		}
		out.Points[k] = p
	}
	return out, nil
}

// Sensors lists the sensor ids that stored visits name, sorted.
func Sensors(ctx context.Context, db *gorm.DB) ([]string, error) {
	var ids []string
	if err := db.WithContext(ctx).Model(&schemas.Visit{}).Distinct("sensor_id").Order("sensor_id").Pluck("sensor_id", &ids).Error; err != nil {
		return nil, fmt.Errorf("list sensors: %w", err)
	}
	return ids, nil
}

// VisitFilter selects stored visits; empty fields select all.
type VisitFilter struct {
	Traveler, Sensor string
	Limit            int
}

// Visits returns the newest visits that match, newest first.
func Visits(ctx context.Context, db *gorm.DB, f VisitFilter) ([]schemas.Visit, error) {
	q := db.WithContext(ctx).Order("entered_at DESC").Limit(max(1, min(f.Limit, 1000)))
	if f.Traveler != "" {
		q = q.Where("traveler_id = ?", f.Traveler)
	}
	if f.Sensor != "" {
		q = q.Where("sensor_id = ?", f.Sensor)
	}
	var out []schemas.Visit
	if err := q.Find(&out).Error; err != nil {
		return nil, fmt.Errorf("read visits: %w", err)
	}
	return out, nil
}

// WindowFilter selects window rows of a pipeline; Key and Size may be empty.
type WindowFilter struct {
	Pipeline    string
	Key         string
	SizeSeconds int64
	Limit       int
	// ClosedAfter keeps rows closed after it (the live feed's cursor).
	ClosedAfter time.Time
}

// Windows returns the newest matching window rows, newest window first.
func Windows(ctx context.Context, db *gorm.DB, f WindowFilter) ([]schemas.WindowResult, error) {
	q := db.WithContext(ctx).Order("window_start DESC, key").Limit(max(1, min(f.Limit, 5000)))
	if f.Pipeline != "" {
		q = q.Where("pipeline = ?", f.Pipeline)
	}
	if f.Key != "" {
		q = q.Where("key = ?", f.Key)
	}
	if f.SizeSeconds > 0 {
		q = q.Where("size_seconds = ?", f.SizeSeconds)
	}
	if !f.ClosedAfter.IsZero() {
		q = q.Where("closed_at > ?", f.ClosedAfter)
	}
	var out []schemas.WindowResult
	if err := q.Find(&out).Error; err != nil {
		return nil, fmt.Errorf("read windows: %w", err)
	}
	return out, nil
}

// Acks returns join events stored (and so acked) after a time, oldest first.
func Acks(ctx context.Context, db *gorm.DB, storedAfter time.Time, limit int) ([]schemas.JoinedEvent, error) {
	var out []schemas.JoinedEvent
	err := db.WithContext(ctx).Where("stored_at > ?", storedAfter).Order("stored_at, event_id").Limit(max(1, min(limit, 5000))).Find(&out).Error
	if err != nil {
		return nil, fmt.Errorf("read acks: %w", err)
	}
	return out, nil
}
