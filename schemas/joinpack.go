package schemas

import (
	"encoding/binary"
	"encoding/json"
	"fmt"
	"math"

	"github.com/tributary-dev/tributary/internal/packed"
)

// joinPackVersion is the first byte of a packed JoinSignal.
const joinPackVersion = 1

// MaxUnpacked bounds what a packed form inflates to, so that a corrupt or hostile input
// cannot make its reader allocate without end: far above any update the bridge sends, or
// any state a shard carries (whose packed form stays under 1.5 MiB).
const MaxUnpacked = 256 << 20

// PackJoinSignal encodes a JoinSignal compactly: each arrival's members in binary, the
// fields as they came, and the whole compressed. A shard's update carries its rows this
// way: in JSON, rows of the original's shape took about 410 bytes each; packed, about 95.
// The history that stores the updates grows that much slower, and a shard continues as
// new that much less often.
func PackJoinSignal(s JoinSignal) ([]byte, error) {
	var raw []byte
	raw = packed.AppendTime(raw, s.Watermark)
	raw = binary.AppendUvarint(raw, uint64(len(s.Arrivals)))
	for _, a := range s.Arrivals {
		raw = AppendJoinArrival(raw, a)
	}
	out, err := packed.Compress(joinPackVersion, raw)
	if err != nil {
		return nil, fmt.Errorf("pack join signal: %w", err)
	}
	return out, nil
}

// UnpackJoinSignal decodes what PackJoinSignal made.
func UnpackJoinSignal(b []byte) (JoinSignal, error) {
	var s JoinSignal
	raw, err := packed.Decompress(joinPackVersion, b, MaxUnpacked)
	if err != nil {
		return s, fmt.Errorf("unpack join signal: %w", err)
	}
	r := packed.NewReader(raw)
	s.Watermark = r.Time()
	n := r.Count("arrival count")
	if r.Err() == nil {
		s.Arrivals = make([]JoinArrival, 0, n)
	}
	for i := 0; i < n && r.Err() == nil; i++ {
		s.Arrivals = append(s.Arrivals, ReadJoinArrival(r))
	}
	r.Done()
	if err := r.Err(); err != nil {
		return JoinSignal{}, fmt.Errorf("unpack join signal: %w", err)
	}
	return s, nil
}

// AppendJoinArrival appends a's members in binary, its fields as they came.
func AppendJoinArrival(dst []byte, a JoinArrival) []byte {
	dst = packed.AppendString(dst, a.EventID)
	dst = packed.AppendString(dst, a.Topic)
	dst = binary.AppendVarint(dst, int64(a.Partition))
	dst = binary.AppendVarint(dst, a.Offset)
	dst = packed.AppendTime(dst, a.CreatedAt)
	return packed.AppendBytes(dst, a.Fields)
}

// ReadJoinArrival reads what AppendJoinArrival wrote; its fields share r's memory.
func ReadJoinArrival(r *packed.Reader) JoinArrival {
	a := JoinArrival{EventID: r.Text(), Topic: r.Text()}
	p := r.Varint()
	if p < math.MinInt32 || p > math.MaxInt32 {
		r.Fail("partition")
	}
	a.Partition = int32(p)
	a.Offset = r.Varint()
	a.CreatedAt = r.Time()
	if f := r.Bytes(); f != nil {
		a.Fields = json.RawMessage(f)
	}
	return a
}
