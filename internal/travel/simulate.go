package travel

import (
	"math"
	"math/rand/v2"
	"slices"
	"strconv"
	"time"
)

// typeSpeeds are the ranges of cruising speed, in metres per second, the simulator draws from.
var typeSpeeds = map[string][2]float64{"car": {8, 25}, "truck": {6, 18}, "bike": {3, 8}, "pedestrian": {0.8, 1.8}}

// Scenario describes simulated traffic past a set of sensors.
type Scenario struct {
	Sensors   int
	Travelers int
	// FieldOfView is the width of a sensor's view along the road, in metres.
	FieldOfView float64
	// Every is the interval between readings of a traveler in view.
	Every time.Duration
	// Noise is the standard deviation of position noise, in metres.
	Noise float64
	// Jitter delays each reading's delivery by up to this much, so readings arrive out of order.
	Jitter time.Duration
	Start  time.Time
	Seed   uint64
}

// Trip is one traveler crossing one sensor's view at a constant speed: the truth a test
// compares the pipeline's visits with.
type Trip struct {
	SensorID, TravelerID, Type string
	Speed                      float64
	Entered                    time.Time
	Readings                   []Reading
}

// Delivery is a reading with the time it reaches the topic.
type Delivery struct {
	Reading   Reading
	Delivered time.Time
}

// Generate makes each traveler cross one sensor (chosen at random), entering at a random
// time in the first minute, and returns the trips and the deliveries in delivery order.
func (s Scenario) Generate() ([]Trip, []Delivery) {
	rng := rand.New(rand.NewPCG(s.Seed, 7))
	types := []string{"car", "truck", "bike", "pedestrian"}
	var trips []Trip
	var out []Delivery
	for i := range s.Travelers {
		typ := types[rng.IntN(len(types))]
		r := typeSpeeds[typ]
		trip := Trip{
			SensorID:   "sensor-" + strconv.Itoa(rng.IntN(s.Sensors)),
			TravelerID: "traveler-" + strconv.Itoa(i),
			Type:       typ,
			Speed:      r[0] + rng.Float64()*(r[1]-r[0]),
			Entered:    s.Start.Add(time.Duration(rng.Float64() * float64(time.Minute))).Truncate(time.Millisecond),
		}
		lane := rng.Float64() * 10
		for k := 0; ; k++ {
			dt := time.Duration(k) * s.Every
			x := trip.Speed * dt.Seconds()
			if x > s.FieldOfView {
				break
			}
			rd := Reading{SensorID: trip.SensorID, TravelerID: trip.TravelerID, Type: typ,
				X: x + rng.NormFloat64()*s.Noise, Y: lane + rng.NormFloat64()*s.Noise, At: trip.Entered.Add(dt)}
			trip.Readings = append(trip.Readings, rd)
			out = append(out, Delivery{Reading: rd, Delivered: rd.At.Add(time.Duration(rng.Float64() * float64(s.Jitter)))})
		}
		trips = append(trips, trip)
	}
	slices.SortStableFunc(out, func(a, b Delivery) int { return a.Delivered.Compare(b.Delivered) })
	return trips, out
}

// Expected computes, from a trip's true readings (noise included), the visit a correct
// pipeline reports: the same arithmetic over the readings in event-time order.
func (t Trip) Expected() Visit {
	v := Visit{SensorID: t.SensorID, TravelerID: t.TravelerID, Type: t.Type, Entered: t.Readings[0].At,
		Left: t.Readings[len(t.Readings)-1].At, Readings: len(t.Readings)}
	for i := 1; i < len(t.Readings); i++ {
		a, b := t.Readings[i-1], t.Readings[i]
		sp := math.Hypot(b.X-a.X, b.Y-a.Y) / b.At.Sub(a.At).Seconds()
		if i == 1 || sp < v.MinSpeed {
			v.MinSpeed = sp
		}
		v.MaxSpeed = max(v.MaxSpeed, sp)
		v.sumSpeed += sp
	}
	if n := len(t.Readings) - 1; n > 0 {
		v.AvgSpeed = v.sumSpeed / float64(n)
	}
	return v
}
