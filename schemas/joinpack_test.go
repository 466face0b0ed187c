package schemas

import (
	"encoding/json"
	"strconv"
	"strings"
	"testing"
	"time"
)

// sameSignal compares two signals member by member, times as instants with their offsets.
func sameSignal(t testing.TB, want, got JoinSignal) {
	t.Helper()
	sameTime := func(what string, a, b time.Time) {
		_, ao := a.Zone()
		_, bo := b.Zone()
		if !a.Equal(b) || ao != bo || a.IsZero() != b.IsZero() {
			t.Fatalf("%s: want %v, got %v", what, a, b)
		}
	}
	sameTime("watermark", want.Watermark, got.Watermark)
	if len(want.Arrivals) != len(got.Arrivals) {
		t.Fatalf("want %d arrivals, got %d", len(want.Arrivals), len(got.Arrivals))
	}
	for i, w := range want.Arrivals {
		g := got.Arrivals[i]
		if w.EventID != g.EventID || w.Topic != g.Topic || w.Partition != g.Partition || w.Offset != g.Offset ||
			string(w.Fields) != string(g.Fields) || (w.Fields == nil) != (g.Fields == nil) {
			t.Fatalf("arrival %d: want %+v, got %+v", i, w, g)
		}
		sameTime("created", w.CreatedAt, g.CreatedAt)
	}
}

// A packed signal unpacks to what was packed: ids, topics and coordinates, the fields byte
// for byte (JSON re-encoding them escaped <, > and &), and times to the nanosecond with
// their zone's offset, as much of a time as its JSON form kept.
func TestPackJoinSignalKeepsWhatJSONKept(t *testing.T) {
	east := time.FixedZone("", 5*3600+30*60)
	s := JoinSignal{Watermark: time.Date(2026, 11, 24, 12, 0, 0, 987654321, time.UTC), Arrivals: []JoinArrival{
		{EventID: "e1", Topic: TopicJoin1, Partition: 3, Offset: 1 << 40, CreatedAt: time.Date(2026, 11, 24, 11, 59, 59, 1, east),
			Fields: json.RawMessage(`{"feature1":1,"feature2":null,"name":"<a & b>"}`)},
		{EventID: "é\u2028", Topic: TopicJoin2, Partition: -1, Offset: -2, Fields: json.RawMessage(`{}`)},
		{EventID: strings.Repeat("x", MaxEventIDLen), Topic: TopicJoin3, CreatedAt: time.Unix(0, 0).UTC(),
			Fields: json.RawMessage(`{"v":1.5e-300}`)},
	}}
	for name, sig := range map[string]JoinSignal{"rows": s, "no watermark": {Arrivals: s.Arrivals[:1]}, "empty": {}} {
		t.Run(name, func(t *testing.T) {
			packed, err := PackJoinSignal(sig)
			if err != nil {
				t.Fatal(err)
			}
			got, err := UnpackJoinSignal(packed)
			if err != nil {
				t.Fatal(err)
			}
			sameSignal(t, sig, got)
		})
	}
}

// Rows of the original's shape pack to a fraction of their JSON.
func TestPackJoinSignalIsSmallerThanJSON(t *testing.T) {
	var s JoinSignal
	at := time.Date(2026, 11, 24, 12, 0, 0, 0, time.UTC)
	for i := range 3000 {
		var f strings.Builder
		f.WriteString("{")
		for c := 1; c <= 25; c++ {
			if c > 1 {
				f.WriteString(",")
			}
			f.WriteString(`"feature` + strconv.Itoa(c) + `":` + strconv.Itoa((i*7919+c*104729)%1000))
		}
		f.WriteString("}")
		s.Arrivals = append(s.Arrivals, JoinArrival{EventID: "run-" + strconv.Itoa(i), Topic: JoinTopics[i%3], Partition: int32(i % 3),
			Offset: int64(i), CreatedAt: at.Add(time.Duration(i) * time.Millisecond), Fields: json.RawMessage(f.String())})
	}
	js, err := json.Marshal(s)
	if err != nil {
		t.Fatal(err)
	}
	packed, err := PackJoinSignal(s)
	if err != nil {
		t.Fatal(err)
	}
	if len(packed)*3 > len(js) {
		t.Errorf("packed %d bytes, JSON %d: want under a third", len(packed), len(js))
	}
	t.Logf("3,000 rows: JSON %d bytes, packed %d", len(js), len(packed))
}

// Whatever is not a packed signal is refused with an error, never a panic or a huge
// allocation; what unpacks packs again to the same signal.
func FuzzUnpackJoinSignal(f *testing.F) {
	good, err := PackJoinSignal(JoinSignal{Watermark: time.Unix(1e9, 5), Arrivals: []JoinArrival{
		{EventID: "e1", Topic: TopicJoin1, Offset: 7, CreatedAt: time.Unix(1e9, 0), Fields: json.RawMessage(`{"a":1}`)}}})
	if err != nil {
		f.Fatal(err)
	}
	f.Add(good)
	f.Add([]byte{})
	f.Add([]byte{joinPackVersion})
	f.Add(good[:len(good)/2])
	f.Fuzz(func(t *testing.T, b []byte) {
		s, err := UnpackJoinSignal(b)
		if err != nil {
			return
		}
		again, err := PackJoinSignal(s)
		if err != nil {
			t.Fatal(err)
		}
		s2, err := UnpackJoinSignal(again)
		if err != nil {
			t.Fatal(err)
		}
		sameSignal(t, s, s2)
	})
}
