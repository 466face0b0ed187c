package workflows

import (
	"errors"
	"fmt"

	"go.temporal.io/sdk/temporal"

	"github.com/tributary-dev/tributary/schemas"
)

// Application error types the workflows answer with (temporal.ApplicationError.Type()).
const (
	// ErrorTypeOffsetsApplied rejects a window batch that overlaps offsets the workflow
	// already applied; the error's details carry them (see OffsetsAppliedError).
	ErrorTypeOffsetsApplied = "BatchOverlapsApplied"
	// ErrorTypeUnknownWindow rejects a window batch with a window size its pipeline lacks.
	ErrorTypeUnknownWindow = "UnknownWindow"
	// ErrorTypeMalformedRows refuses a join update whose packed rows do not unpack.
	ErrorTypeMalformedRows = "MalformedRows"
)

// OffsetsAppliedError is a window workflow's rejection of a batch whose offsets overlap
// what it already applied: a redelivery after a crash, a rewind, a moved partition. The
// sender rebuilds the batch from the records past Applied and sends that; no history was
// written for the rejected one.
type OffsetsAppliedError struct {
	// Applied maps schemas.TopicPartition to the last offset the workflow applied.
	Applied map[string]int64
	// Late is what the workflow kept of the late partials among the offsets the rejected
	// batch overlaps: records there in one of a span's windows were late.
	Late []schemas.LateSpan
}

func (e *OffsetsAppliedError) Error() string {
	return fmt.Sprintf("batch overlaps the offsets the workflow applied in %d partitions", len(e.Applied))
}

// newOffsetsAppliedError is the rejection as it travels to the caller: an application error
// of type ErrorTypeOffsetsApplied with the applied offsets and the late spans over the
// batch as its details.
func newOffsetsAppliedError(msg string, applied map[string]int64, late []schemas.LateSpan) error {
	return temporal.NewNonRetryableApplicationError(msg, ErrorTypeOffsetsApplied, nil, applied, late)
}

// AsOffsetsAppliedError finds a window workflow's overlap rejection in an update's error
// and decodes it; ok is false for any other error.
func AsOffsetsAppliedError(err error) (e *OffsetsAppliedError, ok bool, decodeErr error) {
	var appErr *temporal.ApplicationError
	if !errors.As(err, &appErr) || appErr.Type() != ErrorTypeOffsetsApplied {
		return nil, false, nil
	}
	e = &OffsetsAppliedError{}
	if err := appErr.Details(&e.Applied, &e.Late); err != nil {
		return nil, true, fmt.Errorf("decode the applied offsets of a rejected batch: %w", err)
	}
	return e, true, nil
}
