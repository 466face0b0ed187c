package schemas

import (
	"fmt"
	"math"
	"time"
	"unicode/utf8"
)

// Bounds every decoder applies, so that a record that passes decoding can always be
// aggregated, encoded and stored: a failure later in the path is then one that can pass.
const (
	// MaxRecordBytes bounds an input record's value. A row travels in signals and in
	// workflow history; Kafka's own default limit is 1 MiB.
	MaxRecordBytes = 64 << 10
	// MaxValue bounds the magnitude of an aggregated number. Sums of values within it stay
	// finite (and exact for whole numbers) for far more records than any window holds.
	MaxValue = 1e15
)

// MinEventTime is the earliest event time accepted: windows are aligned to the Unix epoch,
// and event times are carried as nanoseconds since it.
var MinEventTime = time.Unix(0, 0).UTC()

// CheckRecord rejects a value too large to carry or not valid UTF-8 (JSON decoding would
// silently replace the bad bytes, so a key could change on the way).
func CheckRecord(value []byte) error {
	if len(value) > MaxRecordBytes {
		return fmt.Errorf("record of %d bytes exceeds the limit of %d", len(value), MaxRecordBytes)
	}
	if !utf8.Valid(value) {
		return fmt.Errorf("record is not valid UTF-8")
	}
	return nil
}

// CheckValue rejects a number that is not finite or beyond MaxValue.
func CheckValue(field string, v float64) error {
	if math.IsNaN(v) || math.IsInf(v, 0) || math.Abs(v) > MaxValue {
		return fmt.Errorf("field %q: %g is out of range (finite, at most %g in magnitude)", field, v, MaxValue)
	}
	return nil
}

// CheckEventTime rejects an event time before MinEventTime or later than now plus the
// tolerance for clocks ahead: a record dated decades ahead would open a window, and keep
// its workflow, for decades.
func CheckEventTime(at, now time.Time, tolerance time.Duration) error {
	if at.Before(MinEventTime) {
		return fmt.Errorf("event time %s is before %s", at.Format(time.RFC3339Nano), MinEventTime.Format(time.RFC3339))
	}
	if at.After(now.Add(tolerance)) {
		return fmt.Errorf("event time %s is in the future (now %s, tolerance %s)", at.Format(time.RFC3339Nano), now.UTC().Format(time.RFC3339Nano), tolerance)
	}
	return nil
}
