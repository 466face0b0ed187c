package sensorsim

import (
	"math"
	"testing"
	"time"

	"github.com/tributary-dev/tributary/schemas"
	"github.com/tributary-dev/tributary/travel"
)

var t0 = time.Date(2026, 11, 22, 8, 0, 0, 0, time.UTC)

func TestSimulatedTrafficMatchesItsTruth(t *testing.T) {
	sc := Scenario{Sensors: 3, Travelers: 40, Legs: 2, Pause: 20 * time.Second, FieldOfView: 60, Every: 500 * time.Millisecond,
		Noise: 0.05, Jitter: 800 * time.Millisecond, Start: t0, Bad: 0.3, Seed: 4}
	trips, deliveries := sc.Generate()
	bad := map[string]int{}
	jumps := 0
	trackers := map[string]*travel.Tracker{}
	got := map[string]travel.Visit{}
	for _, d := range deliveries {
		tr := trackers[d.Reading.TravelerID]
		if tr == nil {
			tr = &travel.Tracker{Disorder: time.Second, IdleGap: 10 * time.Second}
			trackers[d.Reading.TravelerID] = tr
		}
		if d.Bad != "" {
			bad[d.Bad]++
		}
		err := travel.Validate(d.Reading)
		if err == nil {
			err = schemas.CheckEventTime(d.Reading.At, t0.Add(time.Hour), time.Minute) // as the bridge admits
		}
		if err != nil {
			if d.Bad != BadNaN && d.Bad != BadFuture {
				t.Fatalf("%+v: %v", d, err)
			}
			continue
		}
		closed, rejected := tr.Add(d.Reading)
		jumps += len(rejected)
		for _, v := range closed {
			got[v.TravelerID+"@"+v.SensorID] = v
		}
	}
	for id, tr := range trackers {
		closed, rejected := tr.Flush()
		jumps += len(rejected)
		for _, v := range closed {
			got[id+"@"+v.SensorID] = v
		}
	}
	for _, trip := range trips {
		if len(trip.Readings) < 2 {
			continue
		}
		want, v := trip.Expected(), got[trip.TravelerID+"@"+trip.SensorID]
		if v.Readings != want.Readings || math.Abs(v.AvgSpeed-want.AvgSpeed) > 1e-9 || math.Abs(v.MaxSpeed-want.MaxSpeed) > 1e-9 || len(v.Minutes) != len(want.Minutes) {
			t.Errorf("%s: visit %+v, want %+v", trip.TravelerID, v, want)
		}
		if math.Abs(want.AvgSpeed-trip.Speed) > 0.5 {
			t.Errorf("%s: measured %.2f m/s, drove %.2f", trip.TravelerID, want.AvgSpeed, trip.Speed)
		}
	}
	if len(got) != len(trips) {
		t.Errorf("%d visits for %d trips", len(got), len(trips))
	}
	if jumps != bad[BadJump] || bad[BadJump] == 0 || bad[BadNaN]+bad[BadFuture] == 0 {
		t.Errorf("rejected %d jumps; the simulator sent bad readings %v", jumps, bad)
	}
}
