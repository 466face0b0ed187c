package sensorsim

import (
	"math"
	"math/rand/v2"
	"slices"
	"strconv"
	"time"

	"github.com/tributary-dev/tributary/travel"
)

// typeSpeeds are the ranges of cruising speed, in metres per second, the simulator draws from.
var typeSpeeds = map[string][2]float64{"car": {8, 25}, "truck": {6, 18}, "bike": {3, 8}, "pedestrian": {0.8, 1.8}}

// Kinds of bad reading the simulator mixes in.
const (
	BadNaN    = "nan"
	BadFuture = "future"
	BadJump   = "jump"
)

// Scenario describes simulated traffic past a set of sensors.
type Scenario struct {
	Sensors   int
	Travelers int
	// Legs is how many sensors each traveler crosses, one after another (at least 1).
	Legs int
	// FieldOfView is the width of a sensor's view along the road, in metres.
	FieldOfView float64
	// Every is the interval between readings of a traveler in view.
	Every time.Duration
	// Noise is the standard deviation of position noise, in metres.
	Noise float64
	// Jitter delays each reading's delivery by up to this much, so readings arrive out of order.
	Jitter time.Duration
	// Start is when the first traveler may enter; travelers enter over Spread.
	Start  time.Time
	Spread time.Duration
	// Pause separates a traveler's legs; it must exceed the pipeline's idle gap for the legs
	// to be separate visits.
	Pause time.Duration
	// Bad is the share of travelers that also send one bad reading (NaN, from the future,
	// or an impossible jump), which the pipeline must dead-letter.
	Bad  float64
	Seed uint64
	// Run prefixes the traveler ids, so that runs do not mix; Site prefixes the sensor ids.
	Run, Site string
}

// Trip is one traveler crossing one sensor's view at a constant speed: the truth a test
// compares the pipeline's visits with.
type Trip struct {
	SensorID, TravelerID, Type string
	Speed                      float64
	Entered                    time.Time
	Readings                   []travel.Reading
}

// Delivery is a reading with the time it reaches the topic; Bad names what is wrong with it.
type Delivery struct {
	Reading   travel.Reading
	Delivered time.Time
	Bad       string
}

// Generate makes each traveler cross Legs sensors (chosen at random), entering at a random
// time within Spread, and returns the trips and the deliveries in delivery order.
func (s Scenario) Generate() ([]Trip, []Delivery) {
	rng := rand.New(rand.NewPCG(s.Seed, 7))
	spread := s.Spread
	if spread <= 0 {
		spread = time.Minute
	}
	var trips []Trip
	var out []Delivery
	deliver := func(r travel.Reading, sent time.Time, bad string) {
		out = append(out, Delivery{Reading: r, Delivered: sent.Add(time.Duration(rng.Float64() * float64(s.Jitter))), Bad: bad})
	}
	for i := range s.Travelers {
		typ := travel.Types[rng.IntN(len(travel.Types))]
		r := typeSpeeds[typ]
		id := s.Run + "traveler-" + strconv.Itoa(i)
		speed := r[0] + rng.Float64()*(r[1]-r[0])
		at := s.Start.Add(time.Duration(rng.Float64() * float64(spread))).Truncate(time.Millisecond)
		sensors := rng.Perm(max(s.Sensors, s.Legs))
		for leg := range max(s.Legs, 1) {
			trip := Trip{SensorID: s.Site + "sensor-" + strconv.Itoa(sensors[leg]%s.Sensors), TravelerID: id, Type: typ, Speed: speed, Entered: at}
			lane := rng.Float64() * 10
			for k := 0; ; k++ {
				dt := time.Duration(k) * s.Every
				x := speed * dt.Seconds()
				if x > s.FieldOfView {
					break
				}
				rd := travel.Reading{SensorID: trip.SensorID, TravelerID: id, Type: typ,
					X: x + rng.NormFloat64()*s.Noise, Y: lane + rng.NormFloat64()*s.Noise, At: trip.Entered.Add(dt)}
				trip.Readings = append(trip.Readings, rd)
				deliver(rd, rd.At, "")
			}
			trips = append(trips, trip)
			at = trip.Readings[len(trip.Readings)-1].At.Add(s.Pause)
		}
		if rng.Float64() < s.Bad {
			trip := trips[len(trips)-1]
			bad := trip.Readings[len(trip.Readings)/2]
			bad.At = bad.At.Add(s.Every / 2)
			sent := bad.At
			kind := []string{BadNaN, BadFuture, BadJump}[rng.IntN(3)]
			if len(trip.Readings) < 3 {
				kind = BadNaN // a jump needs readings on both sides to be seen
			}
			switch kind {
			case BadNaN:
				bad.X = math.NaN()
			case BadFuture:
				bad.At = bad.At.Add(24 * time.Hour)
			case BadJump:
				bad.X += 50 * travel.TopSpeed[typ] * s.Every.Seconds()
			}
			deliver(bad, sent, kind)
		}
	}
	slices.SortStableFunc(out, func(a, b Delivery) int { return a.Delivered.Compare(b.Delivered) })
	return trips, out
}

// Expected computes, from a trip's true readings (noise included), the visit a correct
// pipeline reports: the same arithmetic over the readings in event-time order, written
// out again here so that a test compares two computations.
func (t Trip) Expected() travel.Visit {
	v := travel.Visit{SensorID: t.SensorID, TravelerID: t.TravelerID, Type: t.Type, Entered: t.Readings[0].At,
		Left: t.Readings[len(t.Readings)-1].At, Readings: len(t.Readings)}
	for i := 1; i < len(t.Readings); i++ {
		a, b := t.Readings[i-1], t.Readings[i]
		sp := math.Hypot(b.X-a.X, b.Y-a.Y) / b.At.Sub(a.At).Seconds()
		if i == 1 || sp < v.MinSpeed {
			v.MinSpeed = sp
		}
		v.MaxSpeed = max(v.MaxSpeed, sp)
		v.SumSpeed += sp
		v.Speeds++
		m := b.At.Truncate(time.Minute)
		if n := len(v.Minutes); n == 0 || !v.Minutes[n-1].Start.Equal(m) {
			v.Minutes = append(v.Minutes, travel.MinuteSpeed{Start: m, First: b.At})
		}
		last := &v.Minutes[len(v.Minutes)-1]
		last.Count++
		last.Sum += sp
		last.Last = b.At
	}
	if v.Speeds > 0 {
		v.AvgSpeed = v.SumSpeed / float64(v.Speeds)
	}
	return v
}
