package schemas

import (
	"bytes"
	"compress/flate"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"time"
)

// joinPackVersion is the first byte of a packed JoinSignal.
const joinPackVersion = 1

// maxUnpacked bounds what UnpackJoinSignal inflates, so that a corrupt or hostile input
// cannot make it allocate without end: far above any update the bridge sends.
const maxUnpacked = 256 << 20

// PackJoinSignal encodes a JoinSignal compactly: each arrival's members in binary, the
// fields as they came, and the whole compressed. A shard's update carries its rows this
// way: in JSON, rows of the original's shape took about 410 bytes each; packed, about 95.
// The history that stores the updates grows that much slower, and a shard continues as
// new that much less often.
func PackJoinSignal(s JoinSignal) ([]byte, error) {
	var raw []byte
	raw = appendTime(raw, s.Watermark)
	raw = binary.AppendUvarint(raw, uint64(len(s.Arrivals)))
	for _, a := range s.Arrivals {
		raw = appendBytes(raw, []byte(a.EventID))
		raw = appendBytes(raw, []byte(a.Topic))
		raw = binary.AppendVarint(raw, int64(a.Partition))
		raw = binary.AppendVarint(raw, a.Offset)
		raw = appendTime(raw, a.CreatedAt)
		raw = appendBytes(raw, a.Fields)
	}
	var out bytes.Buffer
	out.WriteByte(joinPackVersion)
	zw, err := flate.NewWriter(&out, flate.BestSpeed)
	if err != nil {
		return nil, fmt.Errorf("pack join signal: %w", err)
	}
	if _, err := zw.Write(raw); err != nil {
		return nil, fmt.Errorf("pack join signal: %w", err)
	}
	if err := zw.Close(); err != nil {
		return nil, fmt.Errorf("pack join signal: %w", err)
	}
	return out.Bytes(), nil
}

// UnpackJoinSignal decodes what PackJoinSignal made.
func UnpackJoinSignal(b []byte) (JoinSignal, error) {
	var s JoinSignal
	if len(b) == 0 || b[0] != joinPackVersion {
		return s, errors.New("unpack join signal: not a packed join signal (version byte)")
	}
	raw, err := io.ReadAll(io.LimitReader(flate.NewReader(bytes.NewReader(b[1:])), maxUnpacked+1))
	if err != nil {
		return s, fmt.Errorf("unpack join signal: %w", err)
	}
	if len(raw) > maxUnpacked {
		return s, fmt.Errorf("unpack join signal: more than %d bytes unpacked", maxUnpacked)
	}
	r := packReader{b: raw}
	s.Watermark = r.time()
	n := r.uvarint()
	if r.err == nil && n > uint64(len(raw)) { // every arrival takes several bytes
		r.fail("arrival count")
	}
	if r.err == nil {
		s.Arrivals = make([]JoinArrival, 0, n)
	}
	for i := uint64(0); i < n && r.err == nil; i++ {
		a := JoinArrival{EventID: string(r.bytes()), Topic: string(r.bytes())}
		p := r.varint()
		if p < math.MinInt32 || p > math.MaxInt32 {
			r.fail("partition")
		}
		a.Partition = int32(p)
		a.Offset = r.varint()
		a.CreatedAt = r.time()
		if f := r.bytes(); f != nil {
			a.Fields = json.RawMessage(f)
		}
		s.Arrivals = append(s.Arrivals, a)
	}
	if r.err == nil && len(r.b) > 0 {
		r.fail("trailing bytes")
	}
	if r.err != nil {
		return JoinSignal{}, fmt.Errorf("unpack join signal: %w", r.err)
	}
	return s, nil
}

// appendBytes appends b with its length before it; nil and empty are told apart, as JSON
// tells a missing field from an empty one.
func appendBytes(dst, b []byte) []byte {
	if b == nil {
		return binary.AppendUvarint(dst, 0)
	}
	dst = binary.AppendUvarint(dst, uint64(len(b))+1)
	return append(dst, b...)
}

// appendTime appends a time as seconds, nanoseconds and its zone's offset, which is what
// its JSON form keeps of it.
func appendTime(dst []byte, t time.Time) []byte {
	_, off := t.Zone()
	dst = binary.AppendVarint(dst, t.Unix())
	dst = binary.AppendUvarint(dst, uint64(t.Nanosecond()))
	return binary.AppendVarint(dst, int64(off))
}

// packReader reads a packed signal's members, keeping the first error.
type packReader struct {
	b   []byte
	err error
}

func (r *packReader) fail(what string) {
	if r.err == nil {
		r.err = fmt.Errorf("malformed %s", what)
	}
	r.b = nil
}

func (r *packReader) uvarint() uint64 {
	v, n := binary.Uvarint(r.b)
	if n <= 0 {
		r.fail("length or number")
		return 0
	}
	r.b = r.b[n:]
	return v
}

func (r *packReader) varint() int64 {
	v, n := binary.Varint(r.b)
	if n <= 0 {
		r.fail("number")
		return 0
	}
	r.b = r.b[n:]
	return v
}

// bytes reads what appendBytes wrote: nil for nil.
func (r *packReader) bytes() []byte {
	n := r.uvarint()
	if n == 0 || r.err != nil {
		return nil
	}
	n--
	if n > uint64(len(r.b)) {
		r.fail("length")
		return nil
	}
	b := r.b[:n:n]
	r.b = r.b[n:]
	return b
}

func (r *packReader) time() time.Time {
	sec, nsec, off := r.varint(), r.uvarint(), r.varint()
	if r.err != nil {
		return time.Time{}
	}
	if nsec >= uint64(time.Second) || off <= -86400 || off >= 86400 {
		r.fail("time")
		return time.Time{}
	}
	t := time.Unix(sec, int64(nsec))
	if off == 0 {
		return t.UTC()
	}
	return t.In(time.FixedZone("", int(off)))
}
