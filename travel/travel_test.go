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

func run(tr *Tracker, rs []Reading) ([]Visit, []Rejected) {
	var visits []Visit
	var rejected []Rejected
	for _, r := range rs {
		c, rej := tr.Add(r)
		visits = append(visits, c...)
		rejected = append(rejected, rej...)
	}
	c, rej := tr.Flush()
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
		"nan":     {SensorID: "s", TravelerID: "t", Type: "car", X: math.NaN(), At: now},
		"type":    {SensorID: "s", TravelerID: "t", Type: "boat", At: now},
		"huge":    {SensorID: "s", TravelerID: "t", Type: "car", X: 1e300, At: now},
		"no time": {SensorID: "s", TravelerID: "t", Type: "car", X: 1},
		"ids":     {Type: "car", At: now},
	} {
		if Validate(r) == nil {
			t.Errorf("%s reading validated", name)
		}
	}
	if err := Validate(Reading{SensorID: "s", TravelerID: "t", Type: "bike", X: -MaxCoord, At: now}); err != nil {
		t.Errorf("a reading at the edge of the frame: %v", err)
	}
}

func TestSpeedsByMinuteAndFloor(t *testing.T) {
	// Readings from 08:00:50 to 08:01:10: the speeds ending in each minute are kept apart.
	var rs []Reading
	for i := 0; i <= 4; i++ {
		rs = append(rs, Reading{SensorID: "s1", TravelerID: "t1", Type: "bike", X: float64(i) * 5 * float64(i+1), At: t0.Add(50*time.Second + time.Duration(i)*5*time.Second)})
	}
	tr := &Tracker{Disorder: time.Second, IdleGap: 30 * time.Second}
	visits, _ := run(tr, rs)
	if len(visits) != 1 || len(visits[0].Minutes) != 2 {
		t.Fatalf("visits %+v", visits)
	}
	m := visits[0].Minutes
	// Speeds: (10-0)/5=2 at :55, (30-10)/5=4 at 1:00, (60-30)/5=6 at 1:05, (100-60)/5=8 at 1:10.
	if !m[0].Start.Equal(t0) || m[0].Count != 1 || m[0].Mean() != 2 || m[1].Count != 3 || m[1].Mean() != 6 {
		t.Errorf("minutes %+v", m)
	}
	// The visit is final: a straggler of it changes nothing and is counted stale.
	closed, rejected := tr.Add(rs[2])
	if len(closed) != 0 || len(rejected) != 0 || tr.Stale != 1 || len(tr.Open) != 0 {
		t.Errorf("straggler after the visit ended: closed %v rejected %v stale %d open %d", closed, rejected, tr.Stale, len(tr.Open))
	}
}
