// Package travel turns a traveler's sensor readings into visits: it orders readings by event
// time within an allowed disorder, computes the speed between consecutive readings of one
// sensor, and ends a visit after an idle gap. It is pure and deterministic, so that a
// workflow can run it (groundwork for the sensors pipeline).
package travel

import (
	"errors"
	"fmt"
	"math"
	"slices"
	"time"
)

// Traveler types and the top speed, in metres per second, that each can plausibly reach;
// a faster jump between two readings is a measurement error.
var TopSpeed = map[string]float64{"car": 70, "truck": 45, "bike": 25, "pedestrian": 4}

// Reading is one position of a traveler in a sensor's frame.
type Reading struct {
	SensorID   string
	TravelerID string
	Type       string
	X, Y       float64 // metres
	At         time.Time
}

// Validate rejects readings no sensor could have made: NaN or infinite positions, unknown
// types, and times further in the future than tolerance allows.
func Validate(r Reading, now time.Time, tolerance time.Duration) error {
	if r.SensorID == "" || r.TravelerID == "" {
		return errors.New("sensor id and traveler id are required")
	}
	if _, ok := TopSpeed[r.Type]; !ok {
		return fmt.Errorf("traveler type %q: want car, truck, bike or pedestrian", r.Type)
	}
	for _, v := range []float64{r.X, r.Y} {
		if math.IsNaN(v) || math.IsInf(v, 0) {
			return errors.New("position is not a finite number")
		}
	}
	if r.At.After(now.Add(tolerance)) {
		return fmt.Errorf("reading from %s is in the future (now %s, tolerance %s)", r.At.Format(time.RFC3339Nano), now.Format(time.RFC3339Nano), tolerance)
	}
	return nil
}

// Visit is a traveler's stay in one sensor's field of view.
type Visit struct {
	SensorID   string
	TravelerID string
	Type       string
	Entered    time.Time
	Left       time.Time
	Readings   int
	// Speeds between consecutive readings, in metres per second.
	MinSpeed, MaxSpeed, AvgSpeed float64
	speeds                       int
	sumSpeed                     float64
	last                         Reading
}

// Tracker follows one traveler.
type Tracker struct {
	// Disorder is how far out of order readings may arrive: a reading is used once the
	// newest event time seen is Disorder past it.
	Disorder time.Duration
	// IdleGap ends a visit when no reading of it came for this long (event time).
	IdleGap time.Duration

	pending []Reading
	newest  time.Time
	open    map[string]*Visit // by sensor
}

// ErrImpossibleJump marks a reading that implies a speed above its type's top speed.
var ErrImpossibleJump = errors.New("impossible jump")

// Add takes a reading and returns the visits it made final, oldest first, and the
// readings it dropped as impossible jumps. A reading identical to one already used
// changes nothing.
func (t *Tracker) Add(r Reading) (closed []Visit, rejected []Reading) {
	if r.At.After(t.newest) {
		t.newest = r.At
	}
	t.pending = append(t.pending, r)
	return t.advance(t.newest.Add(-t.Disorder))
}

// Flush uses every pending reading and closes every visit idle at now.
func (t *Tracker) Flush(now time.Time) (closed []Visit, rejected []Reading) {
	closed, rejected = t.advance(t.newest)
	closed = append(closed, t.closeIdle(now, true)...)
	return closed, rejected
}

// advance uses the pending readings up to the horizon, in event time order.
func (t *Tracker) advance(horizon time.Time) (closed []Visit, rejected []Reading) {
	slices.SortStableFunc(t.pending, func(a, b Reading) int { return a.At.Compare(b.At) })
	n := 0
	for n < len(t.pending) && !t.pending[n].At.After(horizon) {
		n++
	}
	ready := t.pending[:n]
	t.pending = append([]Reading(nil), t.pending[n:]...)
	if t.open == nil {
		t.open = map[string]*Visit{}
	}
	for _, r := range ready {
		closed = append(closed, t.closeIdle(r.At, false)...)
		v := t.open[r.SensorID]
		if v == nil {
			t.open[r.SensorID] = &Visit{SensorID: r.SensorID, TravelerID: r.TravelerID, Type: r.Type, Entered: r.At, Left: r.At, Readings: 1, last: r}
			continue
		}
		if r == v.last {
			continue // a duplicate reading
		}
		dt := r.At.Sub(v.last.At).Seconds()
		if dt <= 0 {
			continue // the same instant twice: no speed to measure
		}
		speed := math.Hypot(r.X-v.last.X, r.Y-v.last.Y) / dt
		if speed > TopSpeed[r.Type] {
			rejected = append(rejected, r)
			continue
		}
		if v.speeds == 0 || speed < v.MinSpeed {
			v.MinSpeed = speed
		}
		v.MaxSpeed = max(v.MaxSpeed, speed)
		v.speeds++
		v.sumSpeed += speed
		v.AvgSpeed = v.sumSpeed / float64(v.speeds)
		v.Readings++
		v.Left = r.At
		v.last = r
	}
	return closed, rejected
}

// closeIdle ends the visits whose last reading is IdleGap before at (or all, with force).
func (t *Tracker) closeIdle(at time.Time, force bool) []Visit {
	var out []Visit
	sensors := make([]string, 0, len(t.open))
	for s := range t.open {
		sensors = append(sensors, s)
	}
	slices.Sort(sensors)
	for _, s := range sensors {
		v := t.open[s]
		if force || at.Sub(v.Left) >= t.IdleGap {
			out = append(out, *v)
			delete(t.open, s)
		}
	}
	slices.SortFunc(out, func(a, b Visit) int { return a.Entered.Compare(b.Entered) })
	return out
}
