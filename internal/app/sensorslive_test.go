package app_test

import (
	"context"
	"encoding/json"
	"net/http"
	"testing"
	"time"

	"github.com/tributary-dev/tributary/internal/sensorsim"
	"github.com/tributary-dev/tributary/internal/testenv"
	"github.com/tributary-dev/tributary/schemas"
)

// TestSensorChartsFillBeforeAMinuteCloses sends sensor traffic and asks for the metrics
// with live=1: speeds come from the minutes still open in their workflows, before any
// minute is written (a minute closes two minutes after its end).
func TestSensorChartsFillBeforeAMinuteCloses(t *testing.T) {
	cfg := testenv.Config(t)
	cfg.Sensors.Disorder = time.Second
	cfg.Sensors.IdleGap = 2 * time.Second
	env := testenv.Start(t, cfg)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	sc := sensorsim.Scenario{Sensors: 2, Travelers: 6, Legs: 1, FieldOfView: 8, Every: 200 * time.Millisecond,
		Start: time.Now().Add(200 * time.Millisecond), Spread: 2 * time.Second, Seed: 3, Run: "live", Site: "live"}
	_, deliveries := sc.Generate()
	if err := sensorsim.Produce(ctx, env.Deps.Producer, deliveries, true, nil); err != nil {
		t.Fatal(err)
	}
	type point struct {
		Measured int64   `json:"measured"`
		AvgSpeed float64 `json:"avg_speed"`
		Open     bool    `json:"open"`
	}
	ask := func(live string) []point {
		r, err := http.Get("http://" + env.Running.APIAddress + "/api/sensors/metrics?from=-5m&to=0s&live=" + live)
		if err != nil {
			t.Fatal(err)
		}
		defer r.Body.Close()
		var m struct{ Points []point }
		if r.StatusCode != 200 || json.NewDecoder(r.Body).Decode(&m) != nil {
			t.Fatalf("metrics: %s", r.Status)
		}
		return m.Points
	}
	measured := func(ps []point) (n int64, open bool) {
		for _, p := range ps {
			n += p.Measured
			open = open || p.Open
		}
		return n, open
	}
	waitFor(t, time.Minute, "speeds from the open minutes", func() bool {
		n, open := measured(ask("1"))
		return n > 0 && open
	})
	var closed int64
	if err := env.Deps.DB.Model(&schemas.WindowResult{}).Where("pipeline = ?", schemas.PipelineSensors).Count(&closed).Error; err != nil {
		t.Fatal(err)
	}
	// A minute closes its grace (2 minutes) after its end: none can have closed yet.
	if closed != 0 {
		t.Fatalf("%d sensor minutes closed within a minute of their readings", closed)
	}
	if n, _ := measured(ask("0")); n != 0 {
		t.Errorf("without live, %d traveler-minutes measured before any minute closed", n)
	}
}
