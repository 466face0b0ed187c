package schemas

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"strconv"
	"strings"
	"time"
)

// JoinRow is one row sent to a join input topic: an event id, when the row was created,
// and the topic's own fields (numbers, or null for a missing value).
type JoinRow struct {
	Version   int             `json:"v"`
	EventID   string          `json:"id"`
	CreatedAt time.Time       `json:"created_at"`
	Fields    json.RawMessage `json:"fields"`
}

// MaxEventIDLen bounds event ids; they become workflow ids and primary keys.
const MaxEventIDLen = 200

// DecodeJoinRow parses and validates a join record in either of two shapes:
//
//   - the versioned envelope, {"v":1,"id":"...","created_at":"...","fields":{...}};
//   - the original simulator's flat row, as pandas' row.to_json() writes it: no version,
//     the id a number (102.0) or a string, every other member a feature (a number, or null
//     for NA), and the creation time, unless the row has a created_at, the Kafka record's
//     timestamp (recordTime; zero when the record has none).
//
// A numeric id becomes the string the original's ack consumer made of it, str(int(id)).
// The error says what is wrong, for the dead-letter header.
func DecodeJoinRow(key, value []byte, recordTime time.Time) (JoinRow, error) {
	if err := CheckRecord(value); err != nil {
		return JoinRow{}, err
	}
	r, plain := decodeEnvelope(value)
	if !plain {
		var err error
		if r, err = decodeEnvelopeJSON(value); err != nil {
			if !isFlatRow(value) {
				return r, fmt.Errorf("not a join row: %w", err)
			}
			if r, err = decodeFlatRow(value, recordTime); err != nil {
				return r, fmt.Errorf("not a join row: %w", err)
			}
		}
	}
	if r.Version != RecordVersion {
		return r, fmt.Errorf("schema version %d, want %d", r.Version, RecordVersion)
	}
	if r.EventID == "" || len(r.EventID) > MaxEventIDLen || strings.ContainsAny(r.EventID, "\x00/") {
		return r, fmt.Errorf("event id %q: want 1 to %d characters, no '/' or NUL", r.EventID, MaxEventIDLen)
	}
	if len(key) > 0 && string(key) != r.EventID {
		return r, fmt.Errorf("record key %q differs from event id %q", key, r.EventID)
	}
	if r.CreatedAt.IsZero() {
		return r, errors.New("created_at is missing")
	}
	if r.CreatedAt.Before(MinEventTime) {
		return r, fmt.Errorf("created_at %s is before %s", r.CreatedAt.Format(time.RFC3339Nano), MinEventTime.Format(time.RFC3339))
	}
	if !plain { // decodeEnvelope checked the fields as it read them
		if err := checkFields(r.Fields); err != nil {
			return r, err
		}
	}
	return r, nil
}

// decodeEnvelopeJSON reads the versioned envelope with the json decoder, which takes any
// spelling of it (escapes, member names in another case) and says what is wrong.
func decodeEnvelopeJSON(value []byte) (JoinRow, error) {
	var r JoinRow
	dec := json.NewDecoder(bytes.NewReader(value))
	dec.DisallowUnknownFields()
	err := dec.Decode(&r)
	return r, err
}

var errFieldsNotObject = errors.New("fields must be a JSON object")

// checkFields requires fields to be a JSON object whose members are each a number or null;
// fields are stored, not aggregated, so any finite number will do. It walks the bytes in
// place rather than decoding a map, since every join row passes here (go test -bench
// JoinRoute ./bridge), and relies on the caller's decoder having checked that fields is
// well-formed JSON. Every member is checked, so a name given twice is checked twice.
func checkFields(raw []byte) error {
	i := skipSpace(raw, 0)
	if i >= len(raw) || raw[i] != '{' {
		return errFieldsNotObject
	}
	i++
	for {
		i = skipSpace(raw, i)
		if i >= len(raw) {
			return errFieldsNotObject
		}
		switch raw[i] {
		case '}':
			return nil
		case ',':
			i++
			continue
		case '"':
		default:
			return errFieldsNotObject
		}
		nameStart := i
		if i = skipString(raw, i); i < 0 {
			return errFieldsNotObject
		}
		name := raw[nameStart:i]
		if i = skipSpace(raw, i); i >= len(raw) || raw[i] != ':' {
			return errFieldsNotObject
		}
		if i = skipSpace(raw, i+1); i >= len(raw) {
			return errFieldsNotObject
		}
		switch c := raw[i]; {
		case c == 'n': // null, the decoder saw it whole
			i += len("null")
		case c == '-' || '0' <= c && c <= '9':
			end := i
			for end < len(raw) && isNumberByte(raw[end]) {
				end++
			}
			if num := raw[i:end]; !inRange(num) {
				return fmt.Errorf("field %q: %s is out of range", memberName(name), raw[i:end])
			}
			i = end
		default:
			return fmt.Errorf("field %q must be a number or null", memberName(name))
		}
	}
}

// inRange reports whether a well-formed JSON number is within float64's range. Without an
// exponent, fewer than 309 digits are, and need no parsing.
func inRange(num []byte) bool {
	if !bytes.ContainsAny(num, "eE") && len(num) <= 300 {
		return true
	}
	_, err := strconv.ParseFloat(string(num), 64)
	return err == nil
}

// skipSpace returns the index of the first byte at or after i that is not JSON white space.
func skipSpace(b []byte, i int) int {
	for i < len(b) && (b[i] == ' ' || b[i] == '\t' || b[i] == '\n' || b[i] == '\r') {
		i++
	}
	return i
}

// skipString returns the index after the JSON string that opens at b[i], or -1 if it does
// not close.
func skipString(b []byte, i int) int {
	for i++; i < len(b); i++ {
		switch b[i] {
		case '\\':
			i++
		case '"':
			return i + 1
		}
	}
	return -1
}

func isNumberByte(c byte) bool {
	return '0' <= c && c <= '9' || c == '-' || c == '+' || c == '.' || c == 'e' || c == 'E'
}

// memberName is a quoted member name as text, for an error message.
func memberName(quoted []byte) string {
	var name string
	if json.Unmarshal(quoted, &name) != nil {
		return string(quoted)
	}
	return name
}

// isFlatRow reports whether value is a JSON object with no version member: the original
// simulator's shape. An object with one is an envelope, and held to it.
func isFlatRow(value []byte) bool {
	var members map[string]json.RawMessage
	if json.NewDecoder(bytes.NewReader(value)).Decode(&members) != nil {
		return false
	}
	_, versioned := members["v"]
	return !versioned
}

// maxExactID bounds a numeric id: beyond 2^53 a float no longer names one integer.
const maxExactID = 1 << 53

// decodeFlatRow reads the original simulator's flat row, keeping its features in the order
// they came, each value as written (102.0 stays 102.0, as the original stored it).
func decodeFlatRow(value []byte, recordTime time.Time) (JoinRow, error) {
	r := JoinRow{Version: RecordVersion}
	dec := json.NewDecoder(bytes.NewReader(value))
	dec.UseNumber()
	if _, err := dec.Token(); err != nil { // the opening brace; isFlatRow saw an object
		return r, err
	}
	var fields bytes.Buffer
	fields.WriteByte('{')
	seen := map[string]bool{}
	var hasID bool
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return r, err
		}
		name, _ := tok.(string)
		var raw json.RawMessage
		if err := dec.Decode(&raw); err != nil {
			return r, err
		}
		if seen[name] {
			return r, fmt.Errorf("member %q appears twice", name)
		}
		seen[name] = true
		switch name {
		case "id":
			id, err := flatID(raw)
			if err != nil {
				return r, err
			}
			r.EventID, hasID = id, true
		case "created_at":
			at, err := flatTime(raw)
			if err != nil {
				return r, err
			}
			r.CreatedAt = at
		default:
			if fields.Len() > 1 {
				fields.WriteByte(',')
			}
			k, _ := json.Marshal(name)
			fields.Write(k)
			fields.WriteByte(':')
			fields.Write(raw)
		}
	}
	if _, err := dec.Token(); err != nil { // the closing brace
		return r, err
	}
	if _, err := dec.Token(); err != io.EOF {
		return r, errors.New("data after the row")
	}
	fields.WriteByte('}')
	if !hasID {
		return r, errors.New(`a row without a version needs an "id"`)
	}
	if r.CreatedAt.IsZero() {
		r.CreatedAt = recordTime.UTC()
	}
	r.Fields = json.RawMessage(fields.Bytes())
	return r, nil
}

// flatID is a flat row's id: a string as it is, a number as str(int(id)).
func flatID(raw json.RawMessage) (string, error) {
	var v any
	d := json.NewDecoder(bytes.NewReader(raw))
	d.UseNumber()
	if err := d.Decode(&v); err != nil {
		return "", err
	}
	switch id := v.(type) {
	case string:
		return id, nil
	case json.Number:
		f, err := id.Float64()
		if err != nil || math.Abs(f) >= maxExactID {
			return "", fmt.Errorf("id %s is out of range", id)
		}
		return strconv.FormatInt(int64(math.Trunc(f)), 10), nil
	default:
		return "", fmt.Errorf("id must be a number or a string, got %s", raw)
	}
}

// flatTime is a flat row's created_at: an RFC 3339 time, or Unix milliseconds as pandas
// writes a datetime.
func flatTime(raw json.RawMessage) (time.Time, error) {
	var v any
	d := json.NewDecoder(bytes.NewReader(raw))
	d.UseNumber()
	if err := d.Decode(&v); err != nil {
		return time.Time{}, err
	}
	switch at := v.(type) {
	case string:
		t, err := time.Parse(time.RFC3339Nano, at)
		if err != nil {
			return time.Time{}, fmt.Errorf("created_at: %w", err)
		}
		return t.UTC(), nil
	case json.Number:
		ms, err := at.Int64()
		if err != nil {
			return time.Time{}, fmt.Errorf("created_at %s: want Unix milliseconds", at)
		}
		return time.UnixMilli(ms).UTC(), nil
	default:
		return time.Time{}, fmt.Errorf("created_at must be a time or Unix milliseconds, got %s", raw)
	}
}

// Join outcomes.
const (
	JoinComplete   = "complete"
	JoinIncomplete = "incomplete"
)

// Ack is the record the join writes to TopicAck, keyed by event id.
type Ack struct {
	Version int    `json:"v"`
	EventID string `json:"id"`
	// Status is JoinComplete or JoinIncomplete.
	Status string `json:"status"`
	// Arrivals maps each topic that arrived to the creation time of its row.
	Arrivals map[string]time.Time `json:"arrivals"`
	// Duplicates counts repeated rows recognised before the ack.
	Duplicates int `json:"duplicates"`
	// CreatedAt is when the ack was made, after the joined event was stored.
	CreatedAt time.Time `json:"created_at"`
}

// LatestArrival is the creation time of the event's newest row: ack delay is measured from it.
func (a Ack) LatestArrival() time.Time {
	var t time.Time
	for _, at := range a.Arrivals {
		if at.After(t) {
			t = at
		}
	}
	return t
}

// JoinArrival is one validated join row as the bridge signals it to a workflow, with the
// Kafka coordinates it came from so the workflow can recognise a redelivery.
type JoinArrival struct {
	EventID   string          `json:"id"`
	Topic     string          `json:"t"`
	Partition int32           `json:"p"`
	Offset    int64           `json:"o"`
	CreatedAt time.Time       `json:"c"`
	Fields    json.RawMessage `json:"f"`
}

// JoinSignal is the payload of one join signal: a key's arrivals from one bridge batch, in
// offset order per partition.
type JoinSignal struct {
	Arrivals []JoinArrival `json:"a"`
	// Watermark is the join's input watermark as the bridge knew it (internal/watermark).
	Watermark time.Time `json:"w,omitzero"`
}
