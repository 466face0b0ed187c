package pipelines

import (
	"encoding/json"
	"math"
	"testing"

	"github.com/tributary-dev/tributary/internal/badinput"
	"github.com/tributary-dev/tributary/schemas"
	"github.com/tributary-dev/tributary/window"
)

// FuzzExtract: whatever a window pipeline accepts can be aggregated, many times over, into
// a partial that still encodes: no record can make an update the bridge cannot send.
func FuzzExtract(f *testing.F) {
	f.Add(true, []byte("t1"), []byte(`{"v":1,"id":"t1","user_id":"5x","amount":50,"status":"paid","at":"2026-01-01T00:00:01Z"}`))
	f.Add(false, []byte("v9"), []byte(`{"v":1,"video_id":"v9","at":"2026-01-01T00:00:01Z"}`))
	for pipeline, tx := range map[string]bool{"transactions": true, "likes": false} {
		recs, err := badinput.Records(pipeline)
		if err != nil || len(recs) == 0 {
			f.Fatalf("no bad-input corpus for %s: %v", pipeline, err)
		}
		for _, v := range recs {
			f.Add(tx, []byte(badinput.Key), v)
		}
	}
	f.Fuzz(func(t *testing.T, transactions bool, key, value []byte) {
		spec := Likes()
		if transactions {
			spec = Transactions()
		}
		it, err := spec.Extract(key, value)
		if err != nil {
			return
		}
		if math.IsNaN(it.Value) || math.Abs(it.Value) > schemas.MaxValue || it.At.Before(schemas.MinEventTime) {
			t.Fatalf("accepted %+v", it)
		}
		var p window.Partial
		for range 1000 {
			p.Add(it.Value, it.At)
		}
		var total window.Partial
		for range 1000 {
			total.Merge(p) // a million records of the largest value
		}
		if _, err := json.Marshal(schemas.WindowPartial{Key: it.Key, Partial: total}); err != nil {
			t.Fatalf("a window of accepted records cannot be encoded: %v", err)
		}
	})
}
