package metrics

import (
	"slices"
	"strings"
	"testing"
	"time"
)

func TestReasonClassKeepsTheFixedWords(t *testing.T) {
	for reason, want := range map[string]string{
		`not a join row: json: cannot unmarshal number`:    "not a join row",
		`field "x" must be a number or null`:               "field",
		`event time 2030-01-01T00:00:00Z is in the future`: "event time",
		`created_at is missing`:                            "created_at is missing",
		`undeliverable: workflow rejected the batch`:       "undeliverable",
		`record key "a" differs from event id "b"`:         "record key",
		"":      "other",
		`12345`: "other",
		`a very long reason with no stop in it at all that goes on and on`: "a very long reason with no stop in it at",
	} {
		if got := ReasonClass(reason); got != want {
			t.Errorf("ReasonClass(%q) = %q, want %q", reason, got, want)
		}
	}
}

// A nil set records nothing and does not panic: parts built without metrics need no checks.
func TestNilSetRecordsNothing(t *testing.T) {
	var s *Set
	s.Batch("p", 1, 1)
	s.DeadLettered("p", "r")
	s.Lag("p", "t", 0, 1)
	s.LagGone("p", "t", 0)
	s.FatalError("c")
	s.AckDelay(time.Second)
	s.WindowClosed("p", time.Second)
	s.Include(nil)
	s.WatchLateRecords(nil)
	s.Close()
	if s.SDKHandler() == nil {
		t.Fatal("a nil set gives no SDK handler")
	}
}

// The SDK's counters, gauges and timers land in the set under their names.
func TestSDKHandlerReports(t *testing.T) {
	s := New()
	defer s.Close()
	h := s.SDKHandler().WithTags(map[string]string{"namespace": "default"})
	h.Counter("temporal_request").Inc(3)
	h.Timer("temporal_workflow_task_execution_latency").Record(20 * time.Millisecond)
	deadline := time.Now().Add(10 * time.Second)
	for {
		fams, err := s.Gather()
		if err != nil {
			t.Fatal(err)
		}
		found := map[string]bool{}
		for _, f := range fams {
			found[f.GetName()] = true
		}
		if found["temporal_request"] && found["temporal_workflow_task_execution_latency"] {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("families gathered: %v", found)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// Names lists every family the set registers: each, touched once, is gathered.
func TestNamesAreTheRegisteredFamilies(t *testing.T) {
	s := New()
	s.Batch("p", 1, 1)
	s.DeadLettered("p", "r")
	s.Lag("p", "t", 0, 1)
	s.FatalError("c")
	s.AckDelay(time.Second)
	s.WindowClosed("p", time.Second)
	fams, err := s.Gather()
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]bool{}
	for _, f := range fams {
		got[f.GetName()] = true
	}
	for _, n := range Names() {
		// Late records are read from a database at scrape time; none is watched here.
		if !got[n] && n != "tributary_late_records_total" {
			t.Errorf("%s is named but not registered", n)
		}
	}
	for n := range got {
		if strings.HasPrefix(n, "tributary_") && !slices.Contains(Names(), n) {
			t.Errorf("%s is registered but not named", n)
		}
	}
}

// A producer's replaced clients and a bridge's fatal errors share one family.
func TestFatalErrorsOfBothClients(t *testing.T) {
	s := New()
	var n int64 = 2
	s.WatchRecreated("producer", func() int64 { return n })
	s.FatalError("bridge join")
	fams, err := s.Gather()
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]float64{}
	for _, f := range fams {
		if f.GetName() == "tributary_kafka_fatal_errors_total" {
			for _, m := range f.GetMetric() {
				got[m.GetLabel()[0].GetValue()] = m.GetCounter().GetValue()
			}
		}
	}
	if got["producer"] != 2 || got["bridge join"] != 1 {
		t.Errorf("fatal errors %v", got)
	}
}
