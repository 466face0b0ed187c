package travel

import (
	"math"
	"math/rand/v2"
	"testing"
	"time"
)

var t0 = time.Date(2026, 11, 22, 8, 0, 0, 0, time.UTC)

// straight is a car crossing sensor s1 at 10 m/s for 5 s, then 20 m/s for 5 s, one reading
// a second: speeds are known exactly.
func straight() []Reading {
	var rs []Reading
	x := 0.0
	for i := 0; i <= 10; i++ {
		rs = append(rs, Reading{SensorID: "s1", TravelerID: "t1", Type: "car", X: x, Y: 3, At: t0.Add(time.Duration(i) * time.Second)})
		if i < 5 {
			x += 10
		} else {
			x += 20
		}
	}
	return rs
}

func run(tr *Tracker, rs []Reading) ([]Visit, []Reading) {
	var visits []Visit
	var rejected []Reading
	for _, r := range rs {
		c, rej := tr.Add(r)
		visits = append(visits, c...)
		rejected = append(rejected, rej...)
	}
	c, rej := tr.Flush(t0.Add(time.Hour))
	return append(visits, c...), append(rejected, rej...)
}

func TestKnownTrajectory(t *testing.T) {
	visits, rejected := run(&Tracker{Disorder: 2 * time.Second, IdleGap: 30 * time.Second}, straight())
	if len(visits) != 1 || len(rejected) != 0 {
		t.Fatalf("visits %+v rejected %v", visits, rejected)
	}
	v := visits[0]
	if v.MinSpeed != 10 || v.MaxSpeed != 20 || v.AvgSpeed != 15 || v.Readings != 11 {
		t.Errorf("visit %+v, want speeds 10..20 avg 15 over 11 readings", v)
	}
	if !v.Entered.Equal(t0) || !v.Left.Equal(t0.Add(10*time.Second)) {
		t.Errorf("entered %s left %s", v.Entered, v.Left)
	}
}

func TestOutOfOrderWithinToleranceIsTheSame(t *testing.T) {
	want, _ := run(&Tracker{Disorder: 3 * time.Second, IdleGap: 30 * time.Second}, straight())
	rs := straight()
	rng := rand.New(rand.NewPCG(1, 2))
	// Swap neighbours at most 2 apart: every reading arrives within 3 s of its place.
	for i := 0; i+2 < len(rs); i += 3 {
		j := i + rng.IntN(3)
		rs[i], rs[j] = rs[j], rs[i]
	}
	got, _ := run(&Tracker{Disorder: 3 * time.Second, IdleGap: 30 * time.Second}, rs)
	if len(got) != 1 || got[0].AvgSpeed != want[0].AvgSpeed || got[0].MinSpeed != want[0].MinSpeed || got[0].MaxSpeed != want[0].MaxSpeed {
		t.Fatalf("out of order %+v, in order %+v", got, want)
	}
}

func TestIdleGapEndsAVisit(t *testing.T) {
	rs := straight()
	back := Reading{SensorID: "s1", TravelerID: "t1", Type: "car", X: 0, Y: 0, At: t0.Add(2 * time.Minute)}
	visits, _ := run(&Tracker{Disorder: time.Second, IdleGap: 30 * time.Second}, append(rs, back))
	if len(visits) != 2 || visits[0].Readings != 11 || visits[1].Readings != 1 {
		t.Fatalf("visits %+v, want the first to end before the traveler came back", visits)
	}
}

func TestDuplicatesChangeNothing(t *testing.T) {
	want, _ := run(&Tracker{Disorder: time.Second, IdleGap: time.Minute}, straight())
	var rs []Reading
	for _, r := range straight() {
		rs = append(rs, r, r)
	}
	got, _ := run(&Tracker{Disorder: time.Second, IdleGap: time.Minute}, rs)
	if len(got) != 1 || got[0].Readings != want[0].Readings || got[0].AvgSpeed != want[0].AvgSpeed {
		t.Fatalf("with duplicates %+v, without %+v", got, want)
	}
}

func TestImpossibleJumpsAndBadReadings(t *testing.T) {
	rs := straight()
	rs[4].X += 500 // 500 m in a second
	visits, rejected := run(&Tracker{Disorder: time.Second, IdleGap: time.Minute}, rs)
	if len(rejected) != 1 || visits[0].MaxSpeed > TopSpeed["car"] {
		t.Fatalf("rejected %v, visit %+v", rejected, visits)
	}
	now := t0
	for name, r := range map[string]Reading{
		"nan":    {SensorID: "s", TravelerID: "t", Type: "car", X: math.NaN(), At: now},
		"type":   {SensorID: "s", TravelerID: "t", Type: "boat", At: now},
		"future": {SensorID: "s", TravelerID: "t", Type: "car", At: now.Add(time.Minute)},
		"ids":    {Type: "car", At: now},
	} {
		if Validate(r, now, 5*time.Second) == nil {
			t.Errorf("%s reading validated", name)
		}
	}
	if err := Validate(Reading{SensorID: "s", TravelerID: "t", Type: "bike", At: now.Add(2 * time.Second)}, now, 5*time.Second); err != nil {
		t.Errorf("a reading within the tolerance: %v", err)
	}
}

func TestSimulatedTrafficMatchesItsTruth(t *testing.T) {
	sc := Scenario{Sensors: 3, Travelers: 40, FieldOfView: 60, Every: 500 * time.Millisecond, Noise: 0.05, Jitter: 800 * time.Millisecond, Start: t0, Seed: 4}
	trips, deliveries := sc.Generate()
	trackers := map[string]*Tracker{}
	got := map[string]Visit{}
	for _, d := range deliveries {
		tr := trackers[d.Reading.TravelerID]
		if tr == nil {
			tr = &Tracker{Disorder: time.Second, IdleGap: 10 * time.Second}
			trackers[d.Reading.TravelerID] = tr
		}
		closed, rejected := tr.Add(d.Reading)
		if len(rejected) > 0 {
			t.Fatalf("rejected %v", rejected)
		}
		for _, v := range closed {
			got[v.TravelerID] = v
		}
	}
	for id, tr := range trackers {
		closed, _ := tr.Flush(t0.Add(time.Hour))
		for _, v := range closed {
			got[id] = v
		}
	}
	for _, trip := range trips {
		if len(trip.Readings) < 2 {
			continue
		}
		want, v := trip.Expected(), got[trip.TravelerID]
		if v.Readings != want.Readings || math.Abs(v.AvgSpeed-want.AvgSpeed) > 1e-9 || math.Abs(v.MaxSpeed-want.MaxSpeed) > 1e-9 {
			t.Errorf("%s: visit %+v, want %+v", trip.TravelerID, v, want)
		}
		if math.Abs(want.AvgSpeed-trip.Speed) > 0.5 {
			t.Errorf("%s: measured %.2f m/s, drove %.2f", trip.TravelerID, want.AvgSpeed, trip.Speed)
		}
	}
}
