// Package packed is the binary form Tributary gives what it carries through Temporal's
// history in bulk (a join shard's rows, its state over continue-as-new): varints, byte
// strings with their length before them, times as their JSON form keeps them, and the
// whole compressed behind a version byte.
package packed

import (
	"bytes"
	"compress/flate"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"time"
)

// AppendBytes appends b with its length before it; nil and empty are told apart, as JSON
// tells a missing member from an empty one.
func AppendBytes(dst, b []byte) []byte {
	if b == nil {
		return binary.AppendUvarint(dst, 0)
	}
	dst = binary.AppendUvarint(dst, uint64(len(b))+1)
	return append(dst, b...)
}

// AppendString appends s as AppendBytes does a non-nil b.
func AppendString(dst []byte, s string) []byte {
	dst = binary.AppendUvarint(dst, uint64(len(s))+1)
	return append(dst, s...)
}

// AppendTime appends a time as seconds, nanoseconds and its zone's offset, which is what
// its JSON form keeps of it.
func AppendTime(dst []byte, t time.Time) []byte {
	_, off := t.Zone()
	dst = binary.AppendVarint(dst, t.Unix())
	dst = binary.AppendUvarint(dst, uint64(t.Nanosecond()))
	return binary.AppendVarint(dst, int64(off))
}

// Compress returns version followed by raw, deflated at the fastest level: the data is
// written once per command and read once per replay, and the fastest level costs about a
// third of the default's CPU for about a third more bytes.
func Compress(version byte, raw []byte) ([]byte, error) {
	var out bytes.Buffer
	out.Grow(len(raw)/3 + 64)
	out.WriteByte(version)
	zw, err := flate.NewWriter(&out, flate.BestSpeed)
	if err != nil {
		return nil, err
	}
	if _, err := zw.Write(raw); err != nil {
		return nil, err
	}
	if err := zw.Close(); err != nil {
		return nil, err
	}
	return out.Bytes(), nil
}

// Decompress inflates what Compress made with version, refusing more than limit bytes, so
// that a corrupt or hostile input cannot make it allocate without end.
func Decompress(version byte, b []byte, limit int) ([]byte, error) {
	if len(b) == 0 || b[0] != version {
		return nil, errors.New("not of this packed form (version byte)")
	}
	raw, err := io.ReadAll(io.LimitReader(flate.NewReader(bytes.NewReader(b[1:])), int64(limit)+1))
	if err != nil {
		return nil, err
	}
	if len(raw) > limit {
		return nil, fmt.Errorf("more than %d bytes unpacked", limit)
	}
	return raw, nil
}

// Reader reads packed members in order, keeping the first error; after one, every read
// gives the zero value.
type Reader struct {
	b   []byte
	err error
}

// NewReader reads b.
func NewReader(b []byte) *Reader { return &Reader{b: b} }

// Err is the first error met, or, once Done was called, trailing bytes.
func (r *Reader) Err() error { return r.err }

// Len is the number of bytes left.
func (r *Reader) Len() int { return len(r.b) }

// Fail records that what was read is not a valid what.
func (r *Reader) Fail(what string) {
	if r.err == nil {
		r.err = fmt.Errorf("malformed %s", what)
	}
	r.b = nil
}

// Done fails the read if bytes are left over.
func (r *Reader) Done() {
	if r.err == nil && len(r.b) > 0 {
		r.Fail("trailing bytes")
	}
}

// Uvarint reads an unsigned varint.
func (r *Reader) Uvarint() uint64 {
	v, n := binary.Uvarint(r.b)
	if n <= 0 {
		r.Fail("length or number")
		return 0
	}
	r.b = r.b[n:]
	return v
}

// Varint reads a signed varint.
func (r *Reader) Varint() int64 {
	v, n := binary.Varint(r.b)
	if n <= 0 {
		r.Fail("number")
		return 0
	}
	r.b = r.b[n:]
	return v
}

// Count reads a number of items still to come, each at least one byte long.
func (r *Reader) Count(what string) int {
	n := r.Uvarint()
	if r.err == nil && n > uint64(len(r.b)) {
		r.Fail(what)
		return 0
	}
	return int(n)
}

// Bytes reads what AppendBytes wrote: nil for nil. The result shares the reader's memory.
func (r *Reader) Bytes() []byte {
	n := r.Uvarint()
	if n == 0 || r.err != nil {
		return nil
	}
	n--
	if n > uint64(len(r.b)) {
		r.Fail("length")
		return nil
	}
	b := r.b[:n:n]
	r.b = r.b[n:]
	return b
}

// Text reads what AppendString (or AppendBytes) wrote, as a string. (Not String, which
// would make a Reader a fmt.Stringer that reads on when printed.)
func (r *Reader) Text() string { return string(r.Bytes()) }

// Time reads what AppendTime wrote.
func (r *Reader) Time() time.Time {
	sec, nsec, off := r.Varint(), r.Uvarint(), r.Varint()
	if r.err != nil {
		return time.Time{}
	}
	if nsec >= uint64(time.Second) || off <= -86400 || off >= 86400 {
		r.Fail("time")
		return time.Time{}
	}
	t := time.Unix(sec, int64(nsec))
	if off == 0 {
		return t.UTC()
	}
	return t.In(time.FixedZone("", int(off)))
}
