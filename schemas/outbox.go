package schemas

import "time"

// TopicOutboxPosition is a one-partition topic that holds no records: the outbox relay's
// consumer group owns its partition (so one relay runs at a time) and commits, inside each
// Kafka transaction, the id of the next outbox row to relay.
const TopicOutboxPosition = "tributary.outbox-position"

// OutboxRecord is an output record written in the same database transaction as the result
// it announces; the relay sends it to Kafka exactly once (see internal/outbox).
type OutboxRecord struct {
	ID uint64 `gorm:"primaryKey;autoIncrement"`
	// Dedup names the output, so that a second write of it (a retried activity) adds no
	// row: a topic and record key, or a topic and the source record's coordinates.
	Dedup string `gorm:"size:500;not null;uniqueIndex"`
	Topic string `gorm:"size:200;not null"`
	Key   []byte
	Value []byte
	// Headers are the record's headers as a JSON array of {"k","v"} objects.
	Headers   string
	CreatedAt time.Time `gorm:"not null"`
}

// TableName is "outbox".
func (OutboxRecord) TableName() string { return "outbox" }
