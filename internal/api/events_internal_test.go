package api

import (
	"testing"
	"time"
)

// A stream of one kind forgets what it sent of that kind as its cursor moves on.
func TestFeedForgetsEachKindByItsCursor(t *testing.T) {
	t0 := time.Date(2026, 11, 24, 0, 0, 0, 0, time.UTC)
	f := &feed{windows: t0, acks: t0, sent: map[string]time.Time{}}
	for i := range 100 {
		at := t0.Add(time.Duration(i) * time.Second)
		f.fresh("a/e"+time.Duration(i).String(), at, &f.acks, at)
		f.forget("a/", f.acks)
	}
	if len(f.sent) > int(2*overlap/time.Second)+2 {
		t.Errorf("%d acks remembered after 100 s of acks; the windows cursor never moved", len(f.sent))
	}
	f.sent["w/old"] = t0
	f.forget("a/", f.acks)
	if _, ok := f.sent["w/old"]; !ok {
		t.Error("forgetting acks dropped a window id")
	}
}
