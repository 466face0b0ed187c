package schemas

import (
	"encoding/json"
	"math"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/tributary-dev/tributary/internal/badinput"
	"github.com/tributary-dev/tributary/travel"
)

// addCorpus seeds a fuzz target with the bad-input records of a pipeline.
func addCorpus(f *testing.F, pipeline string, add func(value []byte)) {
	recs, err := badinput.Records(pipeline)
	if err != nil || len(recs) == 0 {
		f.Fatalf("no bad-input corpus for %s: %v", pipeline, err)
	}
	for _, v := range recs {
		add(v)
	}
}

// FuzzDecodeJoinRow: whatever the decoder accepts is a row the join can carry and store.
func FuzzDecodeJoinRow(f *testing.F) {
	f.Add([]byte("e1"), []byte(`{"v":1,"id":"e1","created_at":"2026-01-01T00:00:00Z","fields":{"feature1":3,"feature2":null}}`))
	addCorpus(f, "join", func(v []byte) { f.Add([]byte(badinput.Key), v) })
	f.Fuzz(func(t *testing.T, key, value []byte) {
		r, err := DecodeJoinRow(key, value, time.Unix(1e9, 0))
		if err != nil {
			return
		}
		if r.EventID == "" || len(r.EventID) > MaxEventIDLen || !utf8.ValidString(r.EventID) {
			t.Fatalf("accepted event id %q", r.EventID)
		}
		if len(key) > 0 && string(key) != r.EventID {
			t.Fatalf("accepted key %q for id %q", key, r.EventID)
		}
		if r.CreatedAt.Before(MinEventTime) || len(value) > MaxRecordBytes {
			t.Fatalf("accepted %s, %d bytes", r.CreatedAt, len(value))
		}
		if _, err := json.Marshal(JoinArrival{EventID: r.EventID, CreatedAt: r.CreatedAt, Fields: r.Fields}); err != nil {
			t.Fatalf("an accepted row cannot be signalled: %v", err)
		}
	})
}

// FuzzDecodeSensorReading: whatever the decoder accepts has finite, bounded positions, so
// speeds computed from two of them are finite.
func FuzzDecodeSensorReading(f *testing.F) {
	f.Add([]byte("t1"), []byte(`{"v":1,"sensor_id":"s1","traveler_id":"t1","traveler_type":"car","x":1.5,"y":-2,"t":"2026-11-22T08:00:30Z"}`))
	addCorpus(f, "sensors", func(v []byte) { f.Add([]byte(badinput.Key), v) })
	f.Fuzz(func(t *testing.T, key, value []byte) {
		r, err := DecodeSensorReading(key, value)
		if err != nil {
			return
		}
		for _, v := range []float64{r.X, r.Y} {
			if math.IsNaN(v) || math.Abs(v) > travel.MaxCoord {
				t.Fatalf("accepted position %g", v)
			}
		}
		if d := math.Hypot(r.X-(-r.X), r.Y-(-r.Y)); math.IsInf(d, 0) || math.IsNaN(d) {
			t.Fatalf("distance %g from accepted positions", d)
		}
		if r.At.Before(MinEventTime) || r.TravelerID == "" || (len(key) > 0 && string(key) != r.TravelerID) {
			t.Fatalf("accepted %+v for key %q", r, key)
		}
	})
}
