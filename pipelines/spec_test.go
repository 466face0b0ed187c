package pipelines

import (
	"errors"
	"strings"
	"testing"
)

func TestExtract(t *testing.T) {
	tx, likes := Transactions(), Likes()
	cases := []struct {
		name    string
		spec    Spec
		key     string
		value   string
		wantKey string
		wantVal float64
		wantErr string
	}{
		{"paid", tx, "", `{"v":1,"id":"t1","user_id":"5x","amount":50,"status":"paid","at":"2026-01-01T00:00:01Z"}`, GlobalKey, 50, ""},
		{"failed is filtered", tx, "", `{"v":1,"id":"t1","user_id":"5x","amount":50,"status":"failed","at":"2026-01-01T00:00:01Z"}`, "", 0, "filtered"},
		{"amount text", tx, "", `{"v":1,"amount":"50","status":"paid","at":"2026-01-01T00:00:01Z"}`, "", 0, `"amount" must be a number`},
		{"no time", tx, "", `{"v":1,"amount":50,"status":"paid"}`, "", 0, "RFC 3339"},
		{"version", tx, "", `{"v":2,"amount":50,"status":"paid","at":"2026-01-01T00:00:01Z"}`, "", 0, "schema version"},
		{"like", likes, "", `{"v":1,"video_id":"v9","at":"2026-01-01T00:00:01Z"}`, "v9", 1, ""},
		{"like without video", likes, "", `{"v":1,"at":"2026-01-01T00:00:01Z"}`, "", 0, `"video_id"`},
		{"not json", likes, "", `{`, "", 0, "not a JSON object"},
		{"huge amount", tx, "", `{"v":1,"amount":1e308,"status":"paid","at":"2026-01-01T00:00:01Z"}`, "", 0, "out of range"},
		{"infinite amount", tx, "", `{"v":1,"amount":1e400,"status":"paid","at":"2026-01-01T00:00:01Z"}`, "", 0, `"amount"`},
		{"negative huge", tx, "", `{"v":1,"amount":-2e15,"status":"paid","at":"2026-01-01T00:00:01Z"}`, "", 0, "out of range"},
		{"largest amount", tx, "", `{"v":1,"amount":1e15,"status":"paid","at":"2026-01-01T00:00:01Z"}`, GlobalKey, 1e15, ""},
		{"before the epoch", likes, "", `{"v":1,"video_id":"v9","at":"0001-01-01T00:00:00Z"}`, "", 0, "before 1970"},
		{"invalid utf-8", likes, "", "{\"v\":1,\"video_id\":\"v\xff\",\"at\":\"2026-01-01T00:00:01Z\"}", "", 0, "UTF-8"},
		{"like keyed by its video", likes, "v9", `{"v":1,"video_id":"v9","at":"2026-01-01T00:00:01Z"}`, "v9", 1, ""},
		{"like keyed by another video", likes, "v8", `{"v":1,"video_id":"v9","at":"2026-01-01T00:00:01Z"}`, "", 0, "differs"},
		{"transaction keyed by another id", tx, "t2", `{"v":1,"id":"t1","amount":50,"status":"paid","at":"2026-01-01T00:00:01Z"}`, "", 0, "differs"},
		{"oversized", likes, "", `{"v":1,"video_id":"v9","pad":"` + strings.Repeat("x", 70000) + `","at":"2026-01-01T00:00:01Z"}`, "", 0, "exceeds"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			it, err := c.spec.Extract([]byte(c.key), []byte(c.value))
			if c.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), c.wantErr) {
					t.Fatalf("error %v, want %q", err, c.wantErr)
				}
				if c.wantErr == "filtered" && !errors.Is(err, ErrFiltered) {
					t.Fatal("a filtered record is not ErrFiltered")
				}
				return
			}
			if err != nil || it.Key != c.wantKey || it.Value != c.wantVal || it.At.IsZero() {
				t.Fatalf("got %+v, %v", it, err)
			}
		})
	}
}

func TestSpecsValidate(t *testing.T) {
	for _, s := range []Spec{Likes(), Transactions()} {
		if err := s.Validate(); err != nil {
			t.Errorf("%s: %v", s.Name, err)
		}
		if len(s.Topics()) < 3 {
			t.Errorf("%s topics %v", s.Name, s.Topics())
		}
	}
	bad := Likes()
	bad.OutputTopics = nil
	if bad.Validate() == nil {
		t.Error("a spec without output topics validated")
	}
}
