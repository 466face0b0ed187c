package schemas

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"

	"github.com/tributary-dev/tributary/travel"
)

// Names of the sensors pipeline.
const (
	// TopicSensorReadings receives traveler positions, keyed by traveler id.
	TopicSensorReadings = "sensor-readings"
	// TopicSensorMetrics receives one record per closed minute of a sensor and traveler type.
	TopicSensorMetrics = "sensor_metrics_1"
	// PipelineSensors names the pipeline in rows, consumer groups and window workflows.
	PipelineSensors = "sensors"
)

// Coord is a position in metres. JSON has no NaN or infinity, so a coordinate may also be
// the string "NaN", "Inf" or "-Inf" (as some sensors write it); validation turns those away.
type Coord float64

// MarshalJSON writes a number, or a string for a value JSON cannot hold.
func (c Coord) MarshalJSON() ([]byte, error) {
	f := float64(c)
	if math.IsNaN(f) || math.IsInf(f, 0) {
		return json.Marshal(strconv.FormatFloat(f, 'g', -1, 64))
	}
	return json.Marshal(f)
}

// UnmarshalJSON reads a number or a numeric string.
func (c *Coord) UnmarshalJSON(b []byte) error {
	s := string(b)
	if strings.HasPrefix(s, `"`) {
		if err := json.Unmarshal(b, &s); err != nil {
			return err
		}
	}
	f, err := strconv.ParseFloat(s, 64)
	if err != nil {
		return fmt.Errorf("coordinate %s is not a number", b)
	}
	*c = Coord(f)
	return nil
}

// SensorReading is one record of TopicSensorReadings: where a sensor saw a traveler, in
// metres in the sensor's own frame, and when.
type SensorReading struct {
	Version    int       `json:"v"`
	SensorID   string    `json:"sensor_id"`
	TravelerID string    `json:"traveler_id"`
	Type       string    `json:"traveler_type"`
	X          Coord     `json:"x"`
	Y          Coord     `json:"y"`
	At         time.Time `json:"t"`
}

// NewSensorReading is the record of a reading.
func NewSensorReading(r travel.Reading) SensorReading {
	return SensorReading{Version: RecordVersion, SensorID: r.SensorID, TravelerID: r.TravelerID, Type: r.Type, X: Coord(r.X), Y: Coord(r.Y), At: r.At}
}

// DecodeSensorReading parses a sensor record and checks it as travel.Validate does. The
// error says what is wrong.
func DecodeSensorReading(key, value []byte) (travel.Reading, error) {
	var s SensorReading
	if err := CheckRecord(value); err != nil {
		return travel.Reading{}, err
	}
	dec := json.NewDecoder(bytes.NewReader(value))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&s); err != nil {
		return travel.Reading{}, fmt.Errorf("not a sensor reading: %w", err)
	}
	if s.Version != RecordVersion {
		return travel.Reading{}, fmt.Errorf("schema version %d, want %d", s.Version, RecordVersion)
	}
	for _, id := range []string{s.SensorID, s.TravelerID} {
		if len(id) > MaxEventIDLen || strings.ContainsAny(id, "\x00/|") {
			return travel.Reading{}, fmt.Errorf("id %q: want at most %d characters, no '/', '|' or NUL", id, MaxEventIDLen)
		}
	}
	if len(key) > 0 && string(key) != s.TravelerID {
		return travel.Reading{}, fmt.Errorf("record key %q differs from traveler id %q", key, s.TravelerID)
	}
	r := travel.Reading{SensorID: s.SensorID, TravelerID: s.TravelerID, Type: s.Type, X: float64(s.X), Y: float64(s.Y), At: s.At.UTC()}
	if err := travel.Validate(r); err != nil {
		return r, err
	}
	if r.At.Before(MinEventTime) {
		return r, fmt.Errorf("reading time %s is before %s", r.At.Format(time.RFC3339Nano), MinEventTime.Format(time.RFC3339))
	}
	return r, nil
}

// SensorKey is the window key of a sensor and traveler type: "sensor|type".
func SensorKey(sensorID, travelerType string) string { return sensorID + "|" + travelerType }

// SplitSensorKey undoes SensorKey.
func SplitSensorKey(key string) (sensorID, travelerType string) {
	i := strings.LastIndexByte(key, '|')
	if i < 0 {
		return key, ""
	}
	return key[:i], key[i+1:]
}

// TravelerSignal carries a batch of one workflow's readings, in offset order per partition.
type TravelerSignal struct {
	Readings []travel.Reading
	// Watermark is the readings' input watermark as the bridge knew it (internal/watermark).
	Watermark time.Time `json:",omitzero"`
	// Mark is the stage mark the bridge reserved for this delivery (StagePending); 0 from
	// bridges that keep no stage marks.
	Mark int64 `json:",omitzero"`
}

// Visit is one traveler's stay in one sensor's view, written when it ends. Its values follow
// from the readings alone, so writing it again writes the same row.
type Visit struct {
	TravelerID string    `gorm:"primaryKey;size:200"`
	SensorID   string    `gorm:"primaryKey;size:200;index:idx_visits_sensor_entered,priority:1"`
	Entered    time.Time `gorm:"column:entered_at;primaryKey;index:idx_visits_sensor_entered,priority:2"`
	Left       time.Time `gorm:"column:left_at;not null;index"`
	Type       string    `gorm:"size:16;not null;index"`
	Readings   int       `gorm:"not null"`
	MinSpeed   float64   `gorm:"not null"`
	MaxSpeed   float64   `gorm:"not null"`
	AvgSpeed   float64   `gorm:"not null"`
	// Writer names the workflow run that ended the visit.
	Writer   string    `gorm:"size:300;not null"`
	StoredAt time.Time `gorm:"not null"`
}

// VisitSourcePrefix starts the source name of visit ranges.
const VisitSourcePrefix = "visit/"

// VisitRange is the source range a visit's window partials carry: the visits of one
// traveler at one sensor form a sequence, each spanning its entry to its end in Unix
// milliseconds, and a visit starts after the previous one ended.
func VisitRange(v travel.Visit) OffsetRange {
	return OffsetRange{Topic: VisitSourcePrefix + v.TravelerID + "/" + v.SensorID, From: v.Entered.UnixMilli(), To: v.Left.UnixMilli()}
}

// WindowPiece is a set of window partials built from one source range: the unit a window
// workflow accepts or recognises as already applied.
type WindowPiece struct {
	Range    OffsetRange
	Partials []WindowPartial
}

// StagePending is what one workflow of a pipeline's first stage (a TravelerWorkflow) holds
// of its input and has not yet handed on: the stage after it (the sensor minutes) must not
// close a window its held input may still reach. Bridges reserve a mark before each
// delivery and, once the server accepted it, lower SinceMs to the delivery's oldest event
// time; the workflow, having applied every delivery up to a mark, raises SinceMs to the
// oldest input it still holds (0: none) and records the mark as cleared.
type StagePending struct {
	Pipeline   string `gorm:"primaryKey;size:100"`
	WorkflowID string `gorm:"primaryKey;size:300"`
	// Reserved is the last mark a bridge took; Written the last whose delivery lowered
	// SinceMs; Cleared the last the workflow had applied when it set SinceMs.
	Reserved, Written, Cleared int64
	// SinceMs is the oldest event time (Unix ms) held unflushed, 0 when nothing is.
	SinceMs int64 `gorm:"index"`
}

// TableName is "stage_pending".
func (StagePending) TableName() string { return "stage_pending" }
