package query

import (
	"context"
	"io"
	"log/slog"
	"path/filepath"
	"testing"
	"time"

	"github.com/tributary-dev/tributary/internal/db"
	"github.com/tributary-dev/tributary/schemas"
)

var m0 = time.Date(2026, 11, 22, 9, 0, 0, 0, time.UTC)

func minuteRow(sensor, typ string, minute int, count int64, min, max, sum float64) schemas.WindowResult {
	at := m0.Add(time.Duration(minute) * time.Minute)
	return schemas.WindowResult{Pipeline: schemas.PipelineSensors, Key: schemas.SensorKey(sensor, typ), SizeSeconds: 60, WindowStart: at,
		Count: count, Sum: sum, Min: min, Max: max, Avg: sum / float64(count), FirstAt: at, LastAt: at, ClosedAt: at.Add(2 * time.Minute), Writer: "w"}
}

func visit(traveler, sensor, typ string, from, to time.Duration) schemas.Visit {
	return schemas.Visit{TravelerID: traveler, SensorID: sensor, Type: typ, Entered: m0.Add(from), Left: m0.Add(to), Readings: 3, Writer: "w", StoredAt: m0}
}

func TestSensorMetrics(t *testing.T) {
	g, err := db.Open(filepath.Join(t.TempDir(), "q.db"), slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	rows := []schemas.WindowResult{
		minuteRow("s1", "car", 0, 2, 10, 20, 30), // two cars at 10 and 20 m/s
		minuteRow("s1", "bike", 0, 1, 5, 5, 5),
		minuteRow("s2", "car", 1, 1, 30, 30, 30),
		minuteRow("s1", "car", 3, 1, 12, 12, 12),
		{Pipeline: schemas.PipelineLikes, Key: "s1|car", SizeSeconds: 60, WindowStart: m0, Count: 99, Writer: "w"},
	}
	visits := []schemas.Visit{
		visit("c1", "s1", "car", 10*time.Second, 50*time.Second),
		visit("c2", "s1", "car", 30*time.Second, 70*time.Second), // spans minutes 0 and 1
		visit("b1", "s1", "bike", 20*time.Second, 40*time.Second),
		visit("c3", "s2", "car", 65*time.Second, 80*time.Second),
		visit("c1", "s1", "car", 190*time.Second, 200*time.Second), // c1 again, minute 3
	}
	if err := g.Create(&rows).Error; err != nil {
		t.Fatal(err)
	}
	if err := g.Create(&visits).Error; err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	ask := func(r MetricsRequest) []Point {
		t.Helper()
		m, err := SensorMetrics(ctx, g, r)
		if err != nil {
			t.Fatal(err)
		}
		return m.Points
	}

	all := ask(MetricsRequest{From: m0, To: m0.Add(5 * time.Minute)})
	if len(all) != 5 {
		t.Fatalf("%d points for 5 minutes", len(all))
	}
	want := []Point{
		{Travelers: 3, Measured: 3, MinSpeed: 5, MaxSpeed: 20, AvgSpeed: 35.0 / 3},
		{Travelers: 2, Measured: 1, MinSpeed: 30, MaxSpeed: 30, AvgSpeed: 30},
		{},
		{Travelers: 1, Measured: 1, MinSpeed: 12, MaxSpeed: 12, AvgSpeed: 12},
		{}, // an empty minute is zeros
	}
	for i, w := range want {
		w.Start, w.End = m0.Add(time.Duration(i)*time.Minute), m0.Add(time.Duration(i+1)*time.Minute)
		if all[i] != w {
			t.Errorf("minute %d: %+v, want %+v", i, all[i], w)
		}
	}

	cars := ask(MetricsRequest{Sensor: "s1", Type: "car", From: m0, To: m0.Add(2 * time.Minute)})
	if cars[0].Travelers != 2 || cars[0].AvgSpeed != 15 || cars[1].Travelers != 1 || cars[1].Measured != 0 {
		t.Errorf("s1 cars: %+v", cars)
	}
	// Five-minute steps: c1 counts once although it came twice.
	five := ask(MetricsRequest{Type: "car", From: m0, To: m0.Add(5 * time.Minute), Step: 5 * time.Minute})
	if len(five) != 1 || five[0].Travelers != 3 || five[0].Measured != 4 || five[0].MaxSpeed != 30 || five[0].MinSpeed != 10 {
		t.Errorf("five-minute step: %+v", five)
	}
	// Rolling: two-minute windows every minute.
	roll := ask(MetricsRequest{From: m0, To: m0.Add(4 * time.Minute), Window: 2 * time.Minute})
	if len(roll) != 4 || roll[0].Travelers != 4 || roll[1].Travelers != 2 || roll[2].Travelers != 1 || !roll[3].End.Equal(m0.Add(5*time.Minute)) {
		t.Errorf("rolling: %+v", roll)
	}

	for name, bad := range map[string]MetricsRequest{
		"step":     {From: m0, To: m0.Add(time.Hour), Step: 30 * time.Second},
		"window":   {From: m0, To: m0.Add(time.Hour), Step: 2 * time.Minute, Window: time.Minute},
		"type":     {From: m0, To: m0.Add(time.Hour), Type: "boat"},
		"range":    {From: m0, To: m0},
		"too many": {From: m0, To: m0.Add(10 * 24 * time.Hour)},
	} {
		if _, err := SensorMetrics(ctx, g, bad); err == nil {
			t.Errorf("%s: no error", name)
		}
	}
	ss, err := Sensors(ctx, g)
	if err != nil || len(ss) != 2 || ss[0] != "s1" {
		t.Errorf("sensors %v %v", ss, err)
	}
	vs, err := Visits(ctx, g, VisitFilter{Traveler: "c1", Limit: 10})
	if err != nil || len(vs) != 2 || !vs[0].Entered.Equal(m0.Add(190*time.Second)) {
		t.Errorf("visits of c1: %+v %v", vs, err)
	}
}

// Open minutes count where no closed row of their key and minute is stored, and mark the
// points they reach; a closed row wins over an open one of the same minute.
func TestSensorMetricsWithOpenMinutes(t *testing.T) {
	g, err := db.Open(filepath.Join(t.TempDir(), "q.db"), slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	if err := g.Create(&[]schemas.WindowResult{minuteRow("s1", "car", 0, 2, 10, 20, 30)}).Error; err != nil {
		t.Fatal(err)
	}
	open := []schemas.WindowResult{
		minuteRow("s1", "car", 0, 9, 1, 1, 9),    // closed already: ignored
		minuteRow("s1", "car", 2, 1, 40, 40, 40), // open
		minuteRow("s2", "bike", 2, 1, 6, 6, 6),   // open
		minuteRow("s2", "bike", 9, 1, 6, 6, 6),   // outside the range
	}
	m, err := SensorMetrics(context.Background(), g, MetricsRequest{From: m0, To: m0.Add(4 * time.Minute), Open: open})
	if err != nil {
		t.Fatal(err)
	}
	p := m.Points
	if p[0].Measured != 2 || p[0].Open {
		t.Errorf("minute 0 %+v: the closed row, not the open one", p[0])
	}
	if p[1].Measured != 0 || p[1].Open {
		t.Errorf("minute 1 %+v", p[1])
	}
	if p[2].Measured != 2 || !p[2].Open || p[2].MinSpeed != 6 || p[2].MaxSpeed != 40 || p[2].AvgSpeed != 23 {
		t.Errorf("minute 2 %+v: the two open minutes", p[2])
	}
	only, err := SensorMetrics(context.Background(), g, MetricsRequest{From: m0, To: m0.Add(4 * time.Minute), Sensor: "s2", Open: open})
	if err != nil {
		t.Fatal(err)
	}
	if only.Points[2].Measured != 1 {
		t.Errorf("s2's minute 2 %+v", only.Points[2])
	}
}
