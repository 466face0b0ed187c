package workflows

import (
	"bytes"
	"compress/zlib"
	"encoding/json"
	"fmt"
	"io"
	"time"
)

// maxCarried bounds the state a shard packs into its continue-as-new input. The server
// takes at most 2 MiB of payloads in one command (limit.blobSize.error), and the SDK
// refuses to send more: a shard whose input was larger stood still, failing the same
// workflow task at every attempt.
const maxCarried = 1536 << 10

// TaskDeadlockTimeout is how long workflow code may run between two yields before the
// worker reports a deadlock (the SDK's default is a second). A shard packing a large state
// takes about 80 ms for 12,000 pending events here, and ten times that under the race
// detector or with ten times the events: the worker allows more than the default.
const TaskDeadlockTimeout = 10 * time.Second

// carryRetry is how many more updates a shard takes before it tries again to continue as
// new, after its packed state was too large: a tenth of its update budget. A backlog read
// unevenly across the topics leaves many events pending, and the rows that complete them
// are on their way.
func carryRetry(maxUpdates int) int { return max(maxUpdates/10, 1) }

// packState encodes a join's state for continue-as-new: its JSON, compressed. A shard's
// pending rows are most of it, and rows of one shape compress well: the bench's 3.2 MB
// to about 1 MB, rows with a repeated field twentyfold.
func packState(s *JoinState) ([]byte, error) {
	var buf bytes.Buffer
	zw := zlib.NewWriter(&buf)
	//workflowcheck:ignore encoding/json writes map keys sorted: one state, one encoding
	if err := json.NewEncoder(zw).Encode(s); err != nil {
		return nil, fmt.Errorf("pack join state: %w", err)
	}
	if err := zw.Close(); err != nil {
		return nil, fmt.Errorf("pack join state: %w", err)
	}
	return buf.Bytes(), nil
}

// unpackState decodes what packState made.
func unpackState(b []byte) (*JoinState, error) {
	zr, err := zlib.NewReader(bytes.NewReader(b))
	if err != nil {
		return nil, fmt.Errorf("unpack join state: %w", err)
	}
	defer zr.Close()
	var s JoinState
	//workflowcheck:ignore decoding has no choices to make: one input, one state
	if err := json.NewDecoder(io.Reader(zr)).Decode(&s); err != nil {
		return nil, fmt.Errorf("unpack join state: %w", err)
	}
	return &s, nil
}
