package window

import (
	"testing"
	"time"
)

var t0 = time.Date(2026, 11, 22, 10, 0, 0, 0, time.UTC)

func TestStartsTumbling(t *testing.T) {
	s := Spec{Size: 3 * time.Second}
	cases := []struct {
		at   time.Time
		want time.Time
	}{
		{t0, t0},                              // a window's start belongs to it
		{t0.Add(2999 * time.Millisecond), t0}, // the last instant before its end
		{t0.Add(3 * time.Second), t0.Add(3 * time.Second)}, // its end starts the next
		{t0.Add(-time.Nanosecond), t0.Add(-3 * time.Second)},
		{time.Unix(-1, 0), time.Unix(-3, 0)}, // before the epoch, still floored
	}
	for _, c := range cases {
		got := s.Starts(c.at)
		if len(got) != 1 || !got[0].Equal(c.want) {
			t.Errorf("Starts(%s) = %v, want [%s]", c.at, got, c.want)
		}
	}
}

func TestStartsHopping(t *testing.T) {
	s := Spec{Size: 10 * time.Minute, Advance: 5 * time.Minute}
	got := s.Starts(t0.Add(7 * time.Minute))
	want := []time.Time{t0, t0.Add(5 * time.Minute)}
	if len(got) != 2 || !got[0].Equal(want[0]) || !got[1].Equal(want[1]) {
		t.Fatalf("Starts = %v, want %v", got, want)
	}
	for _, st := range got {
		if at := t0.Add(7 * time.Minute); at.Before(st) || !at.Before(s.End(st)) {
			t.Errorf("window [%s, %s) does not hold %s", st, s.End(st), at)
		}
	}
	// On a boundary, the record is in the window starting there and the one before.
	got = s.Starts(t0.Add(5 * time.Minute))
	if len(got) != 2 || !got[0].Equal(t0) || !got[1].Equal(t0.Add(5*time.Minute)) {
		t.Errorf("boundary Starts = %v", got)
	}
}

func TestCloseAndGrace(t *testing.T) {
	s := Spec{Size: time.Minute, Grace: 10 * time.Second}
	start := t0
	if !s.CloseAt(start).Equal(t0.Add(70 * time.Second)) {
		t.Fatalf("CloseAt = %s", s.CloseAt(start))
	}
	for _, c := range []struct {
		wm     time.Duration
		closed bool
	}{{59 * time.Second, false}, {time.Minute, false}, {69 * time.Second, false}, {70 * time.Second, true}, {time.Hour, true}} {
		if got := s.Closed(start, t0.Add(c.wm)); got != c.closed {
			t.Errorf("watermark +%s: closed %v, want %v", c.wm, got, c.closed)
		}
	}
	// A record whose window closed is late: its event time is inside a final window.
	late := t0.Add(30 * time.Second)
	if st := s.Starts(late)[0]; !s.Closed(st, t0.Add(75*time.Second)) {
		t.Error("a record for a closed window is not recognised as late")
	}
	// Clock skew: a record from the future opens a future window and closes nothing early.
	future := t0.Add(5 * time.Minute)
	if st := s.Starts(future)[0]; s.Closed(st, t0.Add(time.Minute)) {
		t.Error("a future window closed at the present watermark")
	}
}

func TestValidate(t *testing.T) {
	for _, s := range []Spec{{}, {Size: time.Second, Advance: 2 * time.Second}, {Size: 10 * time.Second, Advance: 3 * time.Second}, {Size: time.Second, Grace: -1}} {
		if s.Validate() == nil {
			t.Errorf("%+v validated", s)
		}
	}
	for _, s := range []Spec{{Size: 3 * time.Second}, {Size: 10 * time.Minute, Advance: 5 * time.Minute, Grace: time.Second}} {
		if err := s.Validate(); err != nil {
			t.Errorf("%+v: %v", s, err)
		}
	}
}

func TestPartialMergeIsOrderFree(t *testing.T) {
	values := []float64{50, 10, 100, 30, 70, 20}
	var whole Partial
	for i, v := range values {
		whole.Add(v, t0.Add(time.Duration(i)*time.Second))
	}
	var a, b Partial
	for i, v := range values {
		p := &a
		if i%2 == 1 {
			p = &b
		}
		p.Add(v, t0.Add(time.Duration(i)*time.Second))
	}
	ab, ba := a, b
	ab.Merge(b)
	ba.Merge(a)
	for _, got := range []Partial{ab, ba} {
		if got != whole {
			t.Errorf("merged %+v, want %+v", got, whole)
		}
	}
	if whole.Count != 6 || whole.Sum != 280 || whole.Min != 10 || whole.Max != 100 || whole.Avg() != 280.0/6 {
		t.Errorf("aggregate %+v", whole)
	}
	if !whole.First.Equal(t0) || !whole.Last.Equal(t0.Add(5*time.Second)) {
		t.Errorf("first %s last %s", whole.First, whole.Last)
	}
	var empty Partial
	empty.Merge(Partial{})
	if empty.Count != 0 || empty.Avg() != 0 {
		t.Errorf("empty merge %+v", empty)
	}
}
