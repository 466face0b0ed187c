package bridge

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/tributary-dev/tributary/pipelines"
	"github.com/tributary-dev/tributary/schemas"
)

// Zero options take the component's defaults; the defaults are what DefaultXOptions say.
func TestOptionsDefaults(t *testing.T) {
	var b Options
	b.setDefaults("likes")
	if b.MaxBatch != DefaultOptions().MaxBatch || b.Concurrency != DefaultConcurrency || b.CommitInterval != DefaultCommitInterval || b.Group != GroupID("likes") || b.Log == nil || b.Now == nil {
		t.Errorf("bridge defaults %+v", b)
	}
	j, err := NewJoin(nil, nil, JoinOptions{})
	if err != nil || j.opts != DefaultJoinOptions() {
		t.Errorf("join options %+v, %v", j.opts, err)
	}
	s, err := NewSensors(nil, nil, SensorsOptions{Disorder: DefaultSensorDisorder, FlushDelay: DefaultSensorFlushDelay})
	if err != nil || s.opts != DefaultSensorsOptions() {
		t.Errorf("sensors options %+v, %v", s.opts, err)
	}
	w, err := NewWindow(pipelines.Likes(), nil, nil, WindowOptions{})
	if err != nil || w.opts != DefaultWindowOptions() {
		t.Errorf("window options %+v, %v", w.opts, err)
	}
}

func TestOptionsValidate(t *testing.T) {
	for name, err := range map[string]error{
		"bridge":  DefaultOptions().Validate(),
		"join":    DefaultJoinOptions().Validate(),
		"sensors": DefaultSensorsOptions().Validate(),
		"windows": DefaultWindowOptions().Validate(),
	} {
		if err != nil {
			t.Errorf("default %s options: %v", name, err)
		}
	}
	_, noWindows := NewWindow(pipelines.Spec{Name: "x", Topic: "x", TimeField: "at"}, nil, nil, WindowOptions{})
	for name, err := range map[string]error{
		"bridge batch":        Options{MaxBatch: -1}.Validate(),
		"bridge window":       Options{BatchWindow: -time.Second}.Validate(),
		"join deadline":       JoinOptions{Deadline: -time.Second}.Validate(),
		"sensors idle gap":    SensorsOptions{IdleGap: -time.Second}.Validate(),
		"window shards":       WindowOptions{Shards: -1}.Validate(),
		"window max updates":  WindowOptions{MaxUpdates: MaxWindowUpdates + 1}.Validate(),
		"spec without window": noWindows,
	} {
		if err == nil {
			t.Errorf("%s: no error", name)
		}
	}
}

// A closed sender turns callers away at once instead of leaving them waiting.
func TestPieceSenderClosed(t *testing.T) {
	w, err := NewWindow(pipelines.Sensors(pipelines.SensorsGrace), nil, nil, WindowOptions{})
	if err != nil {
		t.Fatal(err)
	}
	s := NewPieceSender(w)
	s.Close()
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	_, err = s.SendPieces(ctx, schemas.SensorKey("s1", "car"), []schemas.WindowPiece{{Range: schemas.OffsetRange{Topic: "visit/t1/s1", From: 1, To: 2}}})
	if !errors.Is(err, ErrSenderClosed) {
		t.Errorf("send after close: %v", err)
	}
}
