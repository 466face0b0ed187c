package schemas

import "time"

// TopicOutboxPosition is a one-partition topic that holds no records: the outbox relay
// commits, inside each Kafka transaction, the id of the next outbox row to relay as the
// offset of its consumer group (a group no consumer joins) on it.
const TopicOutboxPosition = "tributary.outbox-position"

// OutboxRecord is an output record written in the same database transaction as the result
// it announces; the relay sends it to Kafka exactly once (see internal/outbox).
type OutboxRecord struct {
	ID uint64 `gorm:"primaryKey;autoIncrement"`
	// Dedup names the output, so that a second write of it (a retried activity) adds no
	// row: the SHA-256, in hex, of a topic and record key, or of a topic and the source
	// record's coordinates.
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

// OutboxLease is whose turn it is to relay the outbox: the relay whose lease has not run out
// sends, the others wait and take over once it does (see internal/outbox).
type OutboxLease struct {
	Name   string `gorm:"primaryKey;size:100"`
	Holder string `gorm:"size:200;not null"`
	// UntilMs is when (Unix ms) the lease runs out unless its holder renews it.
	UntilMs int64 `gorm:"not null"`
}

// TableName is "outbox_leases".
func (OutboxLease) TableName() string { return "outbox_leases" }
