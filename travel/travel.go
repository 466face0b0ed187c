// Package travel turns a traveler's sensor readings into visits: it orders readings by event
// time within an allowed disorder, computes the speed between consecutive readings of one
// sensor, and ends a visit after an idle gap. It is pure and deterministic, and its state
// is plain exported data, so that a workflow can run it and carry it over continue-as-new.
package travel

import (
	"errors"
	"fmt"
	"maps"
	"math"
	"slices"
	"time"
)

// TopSpeed is, per traveler type, the top speed in metres per second that it can plausibly
// reach; a faster jump between two readings is a measurement error.
var TopSpeed = map[string]float64{"car": 70, "truck": 45, "bike": 25, "pedestrian": 4}

// Types are the traveler types, in the order reports list them.
var Types = []string{"car", "truck", "bike", "pedestrian"}

// Ref locates the Kafka record a reading came from.
type Ref struct {
	Topic     string
	Partition int32
	Offset    int64
}

// Reading is one position of a traveler in a sensor's frame.
type Reading struct {
	SensorID   string
	TravelerID string
	Type       string
	X, Y       float64 // metres
	At         time.Time
	// Ref is where the reading was read from; two readings that differ only in Ref are the
	// same measurement delivered twice.
	Ref Ref
}

// same reports whether two readings are the same measurement.
func same(a, b Reading) bool {
	return a.SensorID == b.SensorID && a.TravelerID == b.TravelerID && a.Type == b.Type &&
		a.X == b.X && a.Y == b.Y && a.At.Equal(b.At)
}

// MaxCoord bounds a position's coordinates, in metres: a sensor's frame is far smaller,
// and squares of differences of coordinates within it stay finite.
const MaxCoord = 1e9

// Validate rejects readings no sensor could have made: missing ids, unknown types, and
// positions that are not finite or beyond MaxCoord. Whether a reading's time is plausible
// is judged where the clock is known (the bridge).
func Validate(r Reading) error {
	if r.SensorID == "" || r.TravelerID == "" {
		return errors.New("sensor id and traveler id are required")
	}
	if _, ok := TopSpeed[r.Type]; !ok {
		return fmt.Errorf("traveler type %q: want car, truck, bike or pedestrian", r.Type)
	}
	for _, v := range []float64{r.X, r.Y} {
		if math.IsNaN(v) || math.IsInf(v, 0) || math.Abs(v) > MaxCoord {
			return fmt.Errorf("position %g is out of range (finite, within %g m)", v, float64(MaxCoord))
		}
	}
	if r.At.IsZero() {
		return errors.New("reading has no time")
	}
	return nil
}

// MinuteSpeed sums the speeds measured in one minute of a visit (each speed belongs to the
// minute of the later of its two readings).
type MinuteSpeed struct {
	Start       time.Time
	Count       int
	Sum         float64
	First, Last time.Time
}

// Mean is the traveler's mean measured speed in the minute.
func (m MinuteSpeed) Mean() float64 { return m.Sum / float64(m.Count) }

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
	Speeds                       int
	SumSpeed                     float64
	// Minutes are the visit's speeds by minute, oldest first.
	Minutes []MinuteSpeed
	Last    Reading
}

// addSpeed records a speed measured at a reading's time.
func (v *Visit) addSpeed(speed float64, at time.Time) {
	if v.Speeds == 0 || speed < v.MinSpeed {
		v.MinSpeed = speed
	}
	v.MaxSpeed = max(v.MaxSpeed, speed)
	v.Speeds++
	v.SumSpeed += speed
	v.AvgSpeed = v.SumSpeed / float64(v.Speeds)
	minute := at.Truncate(time.Minute)
	if n := len(v.Minutes); n > 0 && v.Minutes[n-1].Start.Equal(minute) {
		m := &v.Minutes[n-1]
		m.Count++
		m.Sum += speed
		m.Last = at
		return
	}
	v.Minutes = append(v.Minutes, MinuteSpeed{Start: minute, Count: 1, Sum: speed, First: at, Last: at})
}

// Tracker follows one traveler. Its fields are its state.
type Tracker struct {
	// Disorder is how far out of order readings may arrive: a reading is used once the
	// newest event time seen is Disorder past it.
	Disorder time.Duration
	// IdleGap ends a visit when no reading of it came for this long (event time).
	IdleGap time.Duration

	Pending []Reading
	Newest  time.Time
	// Open visits by sensor.
	Open map[string]*Visit
	// Floor is, per sensor, the end of the last visit made final: an older reading belongs
	// to a finished visit and is dropped.
	Floor map[string]time.Time
	// Stale counts readings dropped for arriving after their place was used or final.
	Stale int64
}

// ErrImpossibleJump marks a reading that implies a speed above its type's top speed.
var ErrImpossibleJump = errors.New("impossible jump")

// Rejected is a reading the tracker refused, with the reason.
type Rejected struct {
	Reading Reading
	Reason  string
}

// Add takes a reading and returns the visits it made final, oldest first, and the readings
// it refused as impossible jumps. A reading identical to one already used changes nothing.
func (t *Tracker) Add(r Reading) (closed []Visit, rejected []Rejected) {
	if f, ok := t.Floor[r.SensorID]; ok && !r.At.After(f) {
		t.Stale++
		return nil, nil
	}
	if r.At.After(t.Newest) {
		t.Newest = r.At
	}
	t.Pending = append(t.Pending, r)
	return t.advance(t.Newest.Add(-t.Disorder))
}

// Flush uses every pending reading and ends every open visit: the traveler went quiet.
func (t *Tracker) Flush() (closed []Visit, rejected []Rejected) {
	closed, rejected = t.advance(t.Newest)
	return append(closed, t.closeIdle(time.Time{}, true)...), rejected
}

// OpenVisits are the visits still open, by sensor id.
func (t *Tracker) OpenVisits() []Visit {
	out := make([]Visit, 0, len(t.Open))
	for _, s := range sensors(t.Open) {
		out = append(out, *t.Open[s])
	}
	return out
}

// advance uses the pending readings up to the horizon, in event time order.
func (t *Tracker) advance(horizon time.Time) (closed []Visit, rejected []Rejected) {
	slices.SortStableFunc(t.Pending, func(a, b Reading) int { return a.At.Compare(b.At) })
	n := 0
	for n < len(t.Pending) && !t.Pending[n].At.After(horizon) {
		n++
	}
	if n == 0 {
		return nil, nil
	}
	ready := t.Pending[:n]
	t.Pending = append([]Reading(nil), t.Pending[n:]...)
	if t.Open == nil {
		t.Open = map[string]*Visit{}
	}
	for _, r := range ready {
		// Add dropped readings at or before a floor; a floor raised here is the end of a
		// visit an idle gap before r, so no reading still to come lies at or before it.
		closed = append(closed, t.closeIdle(r.At, false)...)
		v := t.Open[r.SensorID]
		if v == nil {
			t.Open[r.SensorID] = &Visit{SensorID: r.SensorID, TravelerID: r.TravelerID, Type: r.Type, Entered: r.At, Left: r.At, Readings: 1, Last: r}
			continue
		}
		if same(r, v.Last) {
			continue // the same reading delivered twice
		}
		dt := r.At.Sub(v.Last.At).Seconds()
		if dt <= 0 {
			t.Stale++ // older than a reading already used: beyond the allowed disorder
			continue
		}
		speed := math.Hypot(r.X-v.Last.X, r.Y-v.Last.Y) / dt
		if speed > TopSpeed[r.Type] {
			rejected = append(rejected, Rejected{Reading: r, Reason: fmt.Sprintf("%s: %.1f m/s from the previous reading, above a %s's top speed of %.0f m/s", ErrImpossibleJump, speed, r.Type, TopSpeed[r.Type])})
			continue
		}
		v.addSpeed(speed, r.At)
		v.Readings++
		v.Left = r.At
		v.Last = r
	}
	return closed, rejected
}

// closeIdle ends the visits whose last reading is IdleGap before at (or all, with force),
// oldest first, and raises their sensors' floors.
func (t *Tracker) closeIdle(at time.Time, force bool) []Visit {
	var out []Visit
	for _, s := range sensors(t.Open) {
		v := t.Open[s]
		if force || at.Sub(v.Left) >= t.IdleGap {
			out = append(out, *v)
			delete(t.Open, s)
			if t.Floor == nil {
				t.Floor = map[string]time.Time{}
			}
			t.Floor[s] = v.Left
		}
	}
	slices.SortStableFunc(out, func(a, b Visit) int { return a.Entered.Compare(b.Entered) })
	return out
}

// sensors returns the sensor ids of the open visits, sorted: the order workflow code needs.
//
//workflowcheck:ignore the keys are sorted before anything uses them
func sensors(open map[string]*Visit) []string {
	return slices.Sorted(maps.Keys(open))
}
