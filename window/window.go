// Package window is the arithmetic of event-time windows: which windows a record falls in,
// when a window closes, and mergeable partial aggregates. Windows are aligned to the Unix
// epoch, so every bridge and workflow computes the same boundaries without talking.
package window

import (
	"errors"
	"fmt"
	"math"
	"time"
)

// Spec describes windows of one size. Tumbling windows have Advance equal to Size (or
// zero); hopping windows advance by less than their size and overlap.
type Spec struct {
	Size    time.Duration
	Advance time.Duration
	// Grace is how long after its end a window still takes records.
	Grace time.Duration
}

// Validate reports a spec that cannot be used.
func (s Spec) Validate() error {
	var errs []error
	if s.Size <= 0 {
		errs = append(errs, fmt.Errorf("window size must be positive, got %s", s.Size))
	}
	if s.Advance < 0 || s.Advance > s.Size {
		errs = append(errs, fmt.Errorf("window advance must be between 0 and the size %s, got %s", s.Size, s.Advance))
	}
	if s.Advance > 0 && s.Size%s.Advance != 0 {
		errs = append(errs, fmt.Errorf("window size %s must be a multiple of its advance %s", s.Size, s.Advance))
	}
	if s.Grace < 0 {
		errs = append(errs, fmt.Errorf("grace must not be negative, got %s", s.Grace))
	}
	return errors.Join(errs...)
}

func (s Spec) advance() time.Duration {
	if s.Advance == 0 {
		return s.Size
	}
	return s.Advance
}

// floorTo rounds t down to a multiple of d since the epoch, also before 1970.
func floorTo(t time.Time, d time.Duration) time.Time {
	ns := t.UnixNano()
	r := ns % int64(d)
	if r < 0 {
		r += int64(d)
	}
	return time.Unix(0, ns-r).UTC()
}

// Starts returns the starts of every window that holds event time t, oldest first: one for
// tumbling windows, Size/Advance for hopping ones.
func (s Spec) Starts(t time.Time) []time.Time {
	return s.AppendStarts(make([]time.Time, 0, int(s.Size/s.advance())), t)
}

// AppendStarts appends Starts(t) to dst, for a caller that reuses one slice per record.
func (s Spec) AppendStarts(dst []time.Time, t time.Time) []time.Time {
	adv := s.advance()
	last := floorTo(t, adv)
	for i := int(s.Size/adv) - 1; i >= 0; i-- {
		dst = append(dst, last.Add(-time.Duration(i)*adv))
	}
	return dst
}

// End is when the window that starts at start ends (exclusive).
func (s Spec) End(start time.Time) time.Time { return start.Add(s.Size) }

// CloseAt is when the window becomes final: its end plus the grace period.
func (s Spec) CloseAt(start time.Time) time.Time { return s.End(start).Add(s.Grace) }

// Closed reports whether the window is final once the watermark (the newest event time
// seen, or the clock) has reached watermark.
func (s Spec) Closed(start, watermark time.Time) bool { return !watermark.Before(s.CloseAt(start)) }

// Partial is a mergeable aggregate of one window's records: partials built from disjoint
// sets of records merge into the aggregate of their union, in any order.
type Partial struct {
	Count int64
	Sum   float64
	Min   float64
	Max   float64
	// First and Last are the oldest and newest event times aggregated.
	First time.Time
	Last  time.Time
}

// Add aggregates one record.
func (p *Partial) Add(v float64, at time.Time) {
	p.Merge(Partial{Count: 1, Sum: v, Min: v, Max: v, First: at, Last: at})
}

// Merge adds another partial.
func (p *Partial) Merge(o Partial) {
	if o.Count == 0 {
		return
	}
	if p.Count == 0 {
		*p = o
		return
	}
	p.Count += o.Count
	p.Sum += o.Sum
	p.Min = math.Min(p.Min, o.Min)
	p.Max = math.Max(p.Max, o.Max)
	if o.First.Before(p.First) {
		p.First = o.First
	}
	if o.Last.After(p.Last) {
		p.Last = o.Last
	}
}

// Avg is the mean of the aggregated values, 0 for an empty partial.
func (p Partial) Avg() float64 {
	if p.Count == 0 {
		return 0
	}
	return p.Sum / float64(p.Count)
}
