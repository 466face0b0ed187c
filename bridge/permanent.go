package bridge

import (
	"encoding/json"
	"errors"

	"go.temporal.io/api/serviceerror"
	"go.temporal.io/sdk/converter"
	"go.temporal.io/sdk/temporal"

	"github.com/tributary-dev/tributary/workflows"
)

// PermanentError is a delivery failure that would fail again the same way: a payload that
// cannot be encoded, a request the server refuses as invalid, a workflow's validator that
// says no for good. The bridge dead-letters the records it names, with the reason, and the
// partition moves on; it retries every other failure.
type PermanentError struct {
	Err error
	// Records are the records to dead-letter; nil means every record of the delivery.
	Records []Routed
}

func (e *PermanentError) Error() string { return "permanent: " + e.Err.Error() }

func (e *PermanentError) Unwrap() error { return e.Err }

// records are the records of a delivery of recs that the failure dead-letters.
func (e *PermanentError) records(recs []Routed) []Routed {
	if e.Records != nil {
		return e.Records
	}
	return recs
}

// Permanent marks err as one that will not pass; recs, if given, are the records to blame.
func Permanent(err error, recs ...Routed) error {
	if err == nil {
		return nil
	}
	return &PermanentError{Err: err, Records: recs}
}

// AsPermanent reports whether a delivery error will fail again the same way: one marked
// with Permanent, or one of the kinds no retry changes (a value the data converter cannot
// encode, an invalid argument, a non-retryable application error other than an overlap
// rejection, which Deliver resolves itself).
func AsPermanent(err error) (*PermanentError, bool) {
	if err == nil {
		return nil, false
	}
	var p *PermanentError
	if errors.As(err, &p) {
		return p, true
	}
	var unsupported *json.UnsupportedValueError
	var invalid *serviceerror.InvalidArgument
	var app *temporal.ApplicationError
	switch {
	case errors.Is(err, converter.ErrUnableToEncode), errors.As(err, &unsupported), errors.As(err, &invalid):
		return &PermanentError{Err: err}, true
	case errors.As(err, &app) && app.NonRetryable() && app.Type() != workflows.ErrorTypeOffsetsApplied:
		return &PermanentError{Err: err}, true
	}
	return nil, false
}
