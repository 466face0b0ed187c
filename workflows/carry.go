package workflows

import (
	"bytes"
	"compress/zlib"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"slices"
	"time"

	"github.com/tributary-dev/tributary/internal/packed"
	"github.com/tributary-dev/tributary/schemas"
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

// statePackVersion is the first byte of a state packed in binary. What packState wrote
// before is a zlib stream, whose first byte has 8 in its low four bits (0x78 from Go's).
const statePackVersion = 2

// packState encodes a join's state for continue-as-new, compressed: in binary, or, in runs
// of the code before versionBinaryState, as its JSON. A shard's pending rows are most of
// it. Binary, it packs and unpacks in about a fifth of the JSON's time (go test -bench
// PackState ./workflows): a shard packs at every continue-as-new and stops taking rows
// meanwhile.
func packState(s *JoinState, asBinary bool) ([]byte, error) {
	if asBinary {
		b, err := packed.Compress(statePackVersion, appendState(nil, s))
		if err != nil {
			return nil, fmt.Errorf("pack join state: %w", err)
		}
		return b, nil
	}
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

// unpackState decodes what packState made, in either form.
func unpackState(b []byte) (*JoinState, error) {
	if len(b) > 0 && b[0] == statePackVersion {
		raw, err := packed.Decompress(statePackVersion, b, schemas.MaxUnpacked)
		if err != nil {
			return nil, fmt.Errorf("unpack join state: %w", err)
		}
		s, err := readState(packed.NewReader(raw))
		if err != nil {
			return nil, fmt.Errorf("unpack join state: %w", err)
		}
		return s, nil
	}
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

// appendState appends s in binary: maps in the order of their keys, so that one state has
// one encoding.
func appendState(dst []byte, s *JoinState) []byte {
	dst = packed.AppendTime(dst, s.Input)
	st := s.Stats
	for _, n := range []int64{st.Arrivals, st.Redelivered, st.Duplicates, st.Late, st.Complete, st.Incomplete} {
		dst = binary.AppendVarint(dst, n)
	}
	dst = binary.AppendUvarint(dst, uint64(len(s.Applied)))
	for _, tp := range sortedKeys(s.Applied) {
		dst = packed.AppendString(dst, tp)
		dst = binary.AppendVarint(dst, s.Applied[tp])
	}
	for _, ids := range [][]string{s.Done, s.Queue} {
		dst = binary.AppendUvarint(dst, uint64(len(ids)))
		for _, id := range ids {
			dst = packed.AppendString(dst, id)
		}
	}
	dst = binary.AppendUvarint(dst, uint64(len(s.Pending)))
	for _, id := range sortedKeys(s.Pending) {
		pj := s.Pending[id]
		dst = packed.AppendString(dst, id)
		dst = packed.AppendTime(dst, pj.Deadline)
		dst = binary.AppendVarint(dst, int64(pj.Duplicates))
		dst = binary.AppendUvarint(dst, uint64(len(pj.Rows)))
		for _, topic := range sortedKeys(pj.Rows) {
			dst = packed.AppendString(dst, topic)
			dst = schemas.AppendJoinArrival(dst, pj.Rows[topic])
		}
	}
	return dst
}

// readState reads what appendState wrote.
func readState(r *packed.Reader) (*JoinState, error) {
	s := &JoinState{Input: r.Time()}
	st := &s.Stats
	for _, n := range []*int64{&st.Arrivals, &st.Redelivered, &st.Duplicates, &st.Late, &st.Complete, &st.Incomplete} {
		*n = r.Varint()
	}
	n := r.Count("applied offsets")
	s.Applied = make(map[string]int64, n)
	for range n {
		tp := r.Text()
		s.Applied[tp] = r.Varint()
	}
	for _, ids := range []*[]string{&s.Done, &s.Queue} {
		n := r.Count("ids")
		if n > 0 {
			*ids = make([]string, 0, n)
		}
		for i := 0; i < n && r.Err() == nil; i++ {
			*ids = append(*ids, r.Text())
		}
	}
	n = r.Count("pending events")
	s.Pending = make(map[string]*PendingJoin, n)
	for i := 0; i < n && r.Err() == nil; i++ {
		id := r.Text()
		pj := &PendingJoin{Deadline: r.Time(), Duplicates: int(r.Varint())}
		rows := r.Count("rows")
		pj.Rows = make(map[string]schemas.JoinArrival, rows)
		for j := 0; j < rows && r.Err() == nil; j++ {
			topic := r.Text()
			pj.Rows[topic] = schemas.ReadJoinArrival(r)
		}
		s.Pending[id] = pj
	}
	r.Done()
	return s, r.Err()
}

// sortedKeys are m's keys in order.
func sortedKeys[V any](m map[string]V) []string {
	//workflowcheck:ignore the keys are sorted before anything uses them
	return slices.Sorted(maps.Keys(m))
}
