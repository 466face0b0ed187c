package joinsim

import (
	"encoding/json"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/tributary-dev/tributary/schemas"
)

func TestPlanIsDeterministic(t *testing.T) {
	p := Plan{RunID: "r", Events: 500, Seed: 9, MissingFraction: 0.1, DuplicateFraction: 0.1, MalformedFraction: 0.1, NAFraction: 0.1}
	for n := range p.Events {
		a, b := p.Generate(n), p.Generate(n)
		ja, _ := json.Marshal(a)
		jb, _ := json.Marshal(b)
		if string(ja) != string(jb) {
			t.Fatalf("event %d differs between calls", n)
		}
	}
	e := p.Expected()
	if e.Complete+e.Incomplete != p.Events {
		t.Fatalf("expected %+v does not add up to %d events", e, p.Events)
	}
	// With 10% each, the counts land near their share of 500.
	for name, v := range map[string]int{"incomplete": e.Incomplete, "malformed": e.Malformed} {
		if v < 25 || v > 75 {
			t.Errorf("%s = %d, want about 50", name, v)
		}
	}
	ev := p.Generate(1)
	for topic, raw := range ev.Rows {
		var fields map[string]any
		if err := json.Unmarshal(raw, &fields); err != nil {
			t.Fatal(err)
		}
		if len(fields) != Columns[topic] {
			t.Errorf("%s row has %d fields, want %d", topic, len(fields), Columns[topic])
		}
		if _, err := schemas.DecodeJoinRow([]byte(ev.ID), Row(ev.ID, raw, time.Now()), time.Time{}); err != nil {
			t.Errorf("generated %s row does not validate: %v", topic, err)
		}
	}
	if _, err := schemas.DecodeJoinRow([]byte(ev.ID), MalformedRow(ev.ID, time.Now()), time.Time{}); err == nil {
		t.Error("malformed row validates")
	}
}

func TestSamplesRoundTrip(t *testing.T) {
	dir := t.TempDir()
	if err := WriteSamples(dir, 50, 7); err != nil {
		t.Fatal(err)
	}
	fs, err := LoadFiles(dir)
	if err != nil {
		t.Fatal(err)
	}
	for i, topic := range schemas.JoinTopics {
		if len(fs.Rows[i]) != 50 {
			t.Fatalf("%s: %d rows, want 50", fs.Paths[i], len(fs.Rows[i]))
		}
		var fields map[string]any
		if err := json.Unmarshal(fs.Rows[i][0].Fields, &fields); err != nil {
			t.Fatal(err)
		}
		if len(fields) != Columns[topic] {
			t.Errorf("%s: %d columns, want %d", fs.Paths[i], len(fields), Columns[topic])
		}
	}
	src := NewFileSource("run", fs)
	if src.Len() != 50 || !src.Event(0).Complete() || src.Event(0).ID != "run-1" {
		t.Fatalf("file source: %d events, first %+v", src.Len(), src.Event(0))
	}
}

func TestReadFileErrors(t *testing.T) {
	dir := t.TempDir()
	write := func(name, body string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	rows, err := ReadFile(write("ok.csv", "id,feature1,feature2\n1,NA,2.5\n2,3,\n"))
	if err != nil {
		t.Fatal(err)
	}
	if string(rows[0].Fields) != `{"feature1":null,"feature2":2.5}` || string(rows[1].Fields) != `{"feature1":3,"feature2":null}` {
		t.Fatalf("rows %s %s", rows[0].Fields, rows[1].Fields)
	}
	if _, err := ReadFile(write("bad.csv", "id,feature1\n1,abc\n")); err == nil {
		t.Error("a text cell was accepted")
	}
	if _, err := ReadFile(write("nohdr.csv", "x,feature1\n1,2\n")); err == nil {
		t.Error("a file without an id column was accepted")
	}
	write("extra.xlsx", "")
	if _, err := FindFiles(dir); err == nil {
		t.Error("a directory with 4 input files was accepted")
	}
}

func TestHistogramQuantiles(t *testing.T) {
	var h Histogram
	for i := 1; i <= 1000; i++ {
		h.Add(time.Duration(i) * time.Millisecond)
	}
	for _, c := range []struct {
		q    float64
		want time.Duration
	}{{0.5, 500 * time.Millisecond}, {0.9, 900 * time.Millisecond}, {0.99, 990 * time.Millisecond}, {1, time.Second}} {
		got := h.Quantile(c.q)
		if got < c.want || float64(got) > float64(c.want)*1.021 {
			t.Errorf("q%.2f = %s, want within 2%% above %s", c.q, got, c.want)
		}
	}
	if h.Max != time.Second || h.Count != 1000 {
		t.Errorf("max %s count %d", h.Max, h.Count)
	}
	var empty Histogram
	if empty.Quantile(0.5) != 0 {
		t.Error("empty histogram has a quantile")
	}
}

// Generated rows are byte for byte what json.Marshal makes of their fields as a map, as
// they were when Generate built one: keys by name, numbers in the encoder's form, nulls.
func TestGeneratedRowsAreTheEncodersForm(t *testing.T) {
	p := Plan{RunID: "enc", Seed: 9, NAFraction: 0.2, MissingFraction: 0.1}
	for n := range 2000 {
		for topic, row := range p.Generate(n).Rows {
			var fields map[string]any
			if err := json.Unmarshal(row, &fields); err != nil {
				t.Fatalf("event %d %s: %v", n, topic, err)
			}
			if len(fields) != Columns[topic] {
				t.Fatalf("event %d %s: %d fields", n, topic, len(fields))
			}
			again, err := json.Marshal(fields)
			if err != nil {
				t.Fatal(err)
			}
			if string(again) != string(row) {
				t.Fatalf("event %d %s:\n generated %s\n encoder   %s", n, topic, row, again)
			}
		}
	}
}

// Row writes what json.Marshal makes of the schemas.JoinRow, for any id and time.
func TestRowIsTheEncodersForm(t *testing.T) {
	p := Plan{RunID: "row", Seed: 4}
	east := time.FixedZone("", 5*3600+1800)
	for n, id := range []string{"e1", `a"b\c`, "<&>", "é\u2028", ""} {
		at := time.Date(2026, 11, 25, 5, 0, n, n*1000, time.UTC)
		if n%2 == 1 {
			at = at.In(east)
		}
		for _, fields := range []json.RawMessage{p.Generate(n).Rows[schemas.TopicJoin1], []byte(`{}`), nil} {
			want, err := json.Marshal(schemas.JoinRow{Version: schemas.RecordVersion, EventID: id, CreatedAt: at, Fields: fields})
			if err != nil {
				t.Fatal(err)
			}
			if got := Row(id, fields, at); string(got) != string(want) {
				t.Fatalf("Row(%q):\n got     %s\n encoder %s", id, got, want)
			}
		}
	}
}
