package schemas

import "time"

// InputProgress is how far the bridges have delivered one input partition into Temporal
// (internal/watermark keeps it). Its fields only ever grow: each states a fact about
// records already delivered, which no later crash or rebalance can make false.
type InputProgress struct {
	Pipeline  string `gorm:"primaryKey;size:100"`
	Topic     string `gorm:"primaryKey;size:200"`
	Partition int32  `gorm:"primaryKey;autoIncrement:false"`
	// NextOffset is the offset after the last record delivered.
	NextOffset int64 `gorm:"not null"`
	// EventMs is the newest event time (Unix ms) among the records delivered.
	EventMs int64 `gorm:"not null"`
	// CaughtUpMs is the latest time (Unix ms) at which every record the partition held had
	// been delivered: the partition was read to its log end.
	CaughtUpMs int64 `gorm:"not null"`
	// Owner is the bridge that wrote last.
	Owner     string    `gorm:"size:200"`
	UpdatedAt time.Time `gorm:"not null"`
}

// TableName is "input_progress".
func (InputProgress) TableName() string { return "input_progress" }

// Watermark is the partition's input watermark: the event time delivered so far, or the
// time it was last read to its end, whichever is later.
func (p InputProgress) Watermark() time.Time {
	return time.UnixMilli(max(p.EventMs, p.CaughtUpMs)).UTC()
}
