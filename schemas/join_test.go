package schemas

import (
	"strings"
	"testing"
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
			r, err := DecodeJoinRow([]byte(c.key), []byte(c.value))
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
