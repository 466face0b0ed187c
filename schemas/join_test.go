package schemas

import (
	"encoding/json"
	"strings"
	"testing"
	"time"
)

func TestDecodeJoinRow(t *testing.T) {
	good := `{"v":1,"id":"e1","created_at":"2026-01-01T00:00:00Z","fields":{"feature1":3,"feature2":null,"feature5":1.25}}`
	cases := []struct {
		name, key, value, wantErr string
	}{
		{"valid", "e1", good, ""},
		{"valid without key", "", good, ""},
		{"not json", "e1", `{"v":1,`, "not a join row"},
		{"unknown field", "e1", `{"v":1,"id":"e1","created_at":"2026-01-01T00:00:00Z","fields":{},"extra":1}`, "unknown field"},
		{"old version", "e1", strings.Replace(good, `"v":1`, `"v":0`, 1), "schema version 0"},
		{"no id", "", strings.Replace(good, `"id":"e1"`, `"id":""`, 1), "event id"},
		{"slash in id", "", strings.Replace(good, `"id":"e1"`, `"id":"a/b"`, 1), "event id"},
		{"key differs", "e2", good, "differs"},
		{"no time", "e1", `{"v":1,"id":"e1","fields":{}}`, "created_at"},
		{"fields not object", "e1", `{"v":1,"id":"e1","created_at":"2026-01-01T00:00:00Z","fields":[1]}`, "JSON object"},
		{"fields missing", "e1", `{"v":1,"id":"e1","created_at":"2026-01-01T00:00:00Z"}`, "JSON object"},
		{"before the epoch", "e1", strings.Replace(good, "2026-01-01", "1969-12-31", 1), "before 1970"},
		{"invalid utf-8", "e1", strings.Replace(good, `"feature1":3`, "\"feature\xff\":3", 1), "UTF-8"},
		{"oversized", "e1", strings.Replace(good, `"feature1":3`, `"feature1":3`+strings.Repeat(`,"f":1`, 12000), 1), "exceeds"},
		{"huge number", "e1", strings.Replace(good, `"feature1":3`, `"feature1":1e400`, 1), "out of range"},
		{"text value", "e1", `{"v":1,"id":"e1","created_at":"2026-01-01T00:00:00Z","fields":{"feature1":"x"}}`, `"feature1" must be a number`},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r, err := DecodeJoinRow([]byte(c.key), []byte(c.value), time.Time{})
			if c.wantErr == "" {
				if err != nil {
					t.Fatalf("unexpected error %v", err)
				}
				if r.EventID != "e1" || r.CreatedAt.IsZero() {
					t.Fatalf("decoded %+v", r)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), c.wantErr) {
				t.Fatalf("error %v, want one containing %q", err, c.wantErr)
			}
		})
	}
}

// The original simulator's producer sends pandas' row.to_json(): flat, no version, a
// numeric id, NA as null, no key and no creation time. Such a row is taken as it is.
func TestDecodeJoinRowTakesTheOriginalFlatShape(t *testing.T) {
	sent := time.Date(2026, 11, 24, 8, 0, 0, 123e6, time.UTC)
	r, err := DecodeJoinRow(nil, []byte(`{"id":102.0,"feature1":0.0,"feature2":1.0,"feature3":null,"feature10":-2.5e-3}`), sent)
	if err != nil {
		t.Fatal(err)
	}
	if r.EventID != "102" || !r.CreatedAt.Equal(sent) || r.Version != RecordVersion {
		t.Errorf("decoded id %q at %s, want 102 at the record's time %s", r.EventID, r.CreatedAt, sent)
	}
	if want := `{"feature1":0.0,"feature2":1.0,"feature3":null,"feature10":-2.5e-3}`; string(r.Fields) != want {
		t.Errorf("fields %s, want %s (in the order and spelling sent)", r.Fields, want)
	}

	cases := []struct {
		name, key, value, wantID, wantErr string
		at                                time.Time
	}{
		{"id as int(id)", "", `{"id":7.9,"f":1}`, "7", "", sent},
		{"negative id", "", `{"id":-3.0,"f":1}`, "-3", "", sent},
		{"string id", "", `{"id":"e9","f":1}`, "e9", "", sent},
		{"key equal to the normalised id", "102", `{"id":102.0,"f":1}`, "102", "", sent},
		{"own creation time", "", `{"id":1,"created_at":"2026-01-02T03:04:05Z","f":1}`, "1", "", time.Time{}},
		{"creation time in ms", "", `{"id":1,"created_at":1767323045000,"f":1}`, "1", "", time.Time{}},
		{"key differs", "103", `{"id":102.0,"f":1}`, "", "differs", sent},
		{"no id", "", `{"feature1":1.0}`, "", `needs an "id"`, sent},
		{"id out of range", "", `{"id":1e300,"f":1}`, "", "out of range", sent},
		{"id an object", "", `{"id":{"x":1},"f":1}`, "", "number or a string", sent},
		{"no time at all", "", `{"id":1,"f":1}`, "", "created_at is missing", time.Time{}},
		{"text feature", "", `{"id":1,"feature1":"NA"}`, "", `"feature1" must be a number`, sent},
		{"NaN literal", "", `{"id":1,"feature1":NaN}`, "", "not a join row", sent},
		{"member twice", "", `{"id":1,"id":2,"f":1}`, "", "twice", sent},
		{"data after the row", "", `{"id":1,"f":1} {"id":2}`, "", "after the row", sent},
		{"bad time", "", `{"id":1,"created_at":"yesterday","f":1}`, "", "created_at", sent},
		{"a versioned row is held to its shape", "", `{"v":1,"id":102.0,"fields":{}}`, "", "not a join row", sent},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r, err := DecodeJoinRow([]byte(c.key), []byte(c.value), c.at)
			if c.wantErr == "" {
				if err != nil || r.EventID != c.wantID || r.CreatedAt.IsZero() {
					t.Fatalf("decoded %+v, %v; want id %s", r, err, c.wantID)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), c.wantErr) {
				t.Fatalf("error %v, want one containing %q", err, c.wantErr)
			}
		})
	}
}

// The rows the project's own producers write, and any JSON encoder's plain output, take the
// fast path: if they did not, every row would quietly pay for the json decoder again.
func TestCanonicalRowsTakeTheFastPath(t *testing.T) {
	at := time.Date(2026, 11, 25, 2, 30, 0, 123456789, time.UTC)
	for _, value := range []string{
		string(mustMarshal(t, JoinRow{Version: RecordVersion, EventID: "e1", CreatedAt: at, Fields: []byte(`{"feature1":3,"feature2":null,"feature3":-0.5e-7}`)})),
		`{"v": 1, "id": "e1", "created_at": "2026-11-25T02:30:00.123456789Z", "fields": {"feature1": 3, "feature2": null}}`,
		"{\n  \"fields\": {},\n  \"created_at\": \"2026-11-25T03:30:00+01:00\",\n  \"id\": \"e1\",\n  \"v\": 1\n}\n",
	} {
		r, ok := decodeEnvelope([]byte(value))
		if !ok {
			t.Fatalf("%s: not taken by the fast path", value)
		}
		if r.Version != RecordVersion || r.EventID != "e1" || !r.CreatedAt.Equal(at.Truncate(time.Second)) && !r.CreatedAt.Equal(at) {
			t.Fatalf("%s: read %+v", value, r)
		}
	}
}

func mustMarshal(t *testing.T, v any) []byte {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}
