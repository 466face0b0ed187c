package schemas

import (
	"bytes"
	"encoding/json"
	"fmt"
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

// membersRule is checkFields' rule spelled with the standard decoder's tokens: every
// member of the object, in order, is null or a number that parses as a float64.
func membersRule(raw []byte) error {
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	if tok, err := dec.Token(); err != nil || tok != json.Delim('{') {
		return errFieldsNotObject
	}
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return errFieldsNotObject
		}
		name := tok.(string)
		var v any
		if err := dec.Decode(&v); err != nil {
			return errFieldsNotObject
		}
		switch v := v.(type) {
		case nil:
		case json.Number:
			if _, err := v.Float64(); err != nil {
				return fmt.Errorf("field %q: %s is out of range", name, v)
			}
		default:
			return fmt.Errorf("field %q must be a number or null", name)
		}
	}
	return nil
}

// FuzzCheckFields: the in-place walk over a row's fields gives the decoder's verdict, and
// the same message, on any well-formed JSON.
func FuzzCheckFields(f *testing.F) {
	for _, s := range []string{
		`{}`, ` { } `, `{"a":1,"b":null,"c":-2.5e-3}`, "{\n\t\"a\" : 1 ,\r\n \"b\":null}",
		`{"a":1e400}`, `{"a":-1e400}`, `{"a":"1"}`, `{"a":true}`, `{"a":{}}`, `{"a":[1]}`,
		`{"a\"b":1,"c\\":"x"}`, `{"\u00e9":false}`, `{"a":1,"a":"x"}`, `[1]`, `null`, `1`, `"x"`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, raw []byte) {
		if !json.Valid(raw) {
			return
		}
		got, want := checkFields(raw), membersRule(raw)
		if (got == nil) != (want == nil) || got != nil && got.Error() != want.Error() {
			t.Fatalf("checkFields(%s) = %v, the decoder's rule says %v", raw, got, want)
		}
	})
}

// FuzzDecodeEnvelope: what the envelope fast path accepts, the json decoder accepts too, and
// reads to the same row, whose fields checkFields accepts (DecodeJoinRow does not ask it
// again).
func FuzzDecodeEnvelope(f *testing.F) {
	const good = `{"v":1,"id":"e1","created_at":"2026-01-01T00:00:00.5+02:00","fields":{"a":3,"b":null,"c":-1.25e-3}}`
	for _, s := range []string{
		good, `{}`, ` { "v" : 1 } `, "{\n\t\"id\":\"x\",\r\n\"v\":1}", `{"fields":{}}`, `{"fields":{ }}`,
		`{"V":1}`, `{"Id":"e1"}`, `{"v":1,"v":2}`, `{"id":"a","id":"b"}`, `{"v":01}`, `{"v":1.0}`, `{"v":-1}`,
		`{"v":1234567890}`, `{"v":1}x`, `{"v":1},`, `{"v":1,}`, `{,"v":1}`, `{"id":"a\"b"}`, `{"id":"\u0065"}`,
		"{\"id\":\"a\tb\"}", `{"id":null}`, `{"created_at":"2026-13-01T00:00:00Z"}`, `{"created_at":"2026-01-01"}`,
		`{"created_at":null}`, `{"fields":[1]}`, `{"fields":{"a":"1"}}`, `{"fields":{"a":1,"a":2}}`,
		`{"fields":{"a":-0}}`, `{"fields":{"a":-}}`, `{"fields":{"a":1.}}`, `{"fields":{"a":.5}}`, `{"fields":{"a":1e}}`,
		`{"fields":{"a":1E+5}}`, `{"fields":{"a":1e400}}`, `{"fields":{"a":-1e309}}`, `{"fields":{"a":00}}`, `{"fields":{"a":nul}}`, `{"fields":{"a\\b":1}}`,
		`{"fields":{"a":1,}}`, `{"fields":{"a" 1}}`, `{"fields":null}`, `{"extra":1}`, `[]`, `"x"`, ``,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, value []byte) {
		if !utf8.Valid(value) {
			return // CheckRecord turns it away first
		}
		got, ok := decodeEnvelope(value)
		if !ok {
			return
		}
		want, err := decodeEnvelopeJSON(value)
		if err != nil {
			t.Fatalf("fast path took %q, the decoder says %v", value, err)
		}
		if got.Version != want.Version || got.EventID != want.EventID || !got.CreatedAt.Equal(want.CreatedAt) ||
			got.CreatedAt.String() != want.CreatedAt.String() || !bytes.Equal(got.Fields, want.Fields) {
			t.Fatalf("%q: fast path read %+v, the decoder %+v", value, got, want)
		}
		if err := checkFields(got.Fields); err != nil {
			t.Fatalf("fast path took %q, whose fields checkFields refuses: %v", value, err)
		}
	})
}
