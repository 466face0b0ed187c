package schemas

import "time"

// JoinTables maps each join input topic to its relation, as the original system stored
// sim_fileN rows in table dataN.
var JoinTables = map[string]string{TopicJoin1: "data1", TopicJoin2: "data2", TopicJoin3: "data3"}

// DataRow is one stored join input row; the same model serves tables data1..data3.
type DataRow struct {
	EventID   string    `gorm:"primaryKey;size:200"`
	CreatedAt time.Time `gorm:"not null"`
	// Fields is the row's topic-specific columns as a JSON object.
	Fields string `gorm:"not null"`
	// Partition and Offset say which record this row came from.
	Partition int32 `gorm:"not null"`
	Offset    int64 `gorm:"not null"`
}

// JoinedEvent is one event id's join result. It is written once, with its rows, in the
// transaction that precedes the ack.
type JoinedEvent struct {
	EventID string `gorm:"primaryKey;size:200"`
	// Status is JoinComplete or JoinIncomplete.
	Status string `gorm:"size:16;not null;index"`
	// Topics lists the topics that arrived, comma-separated in topic order.
	Topics string `gorm:"size:64;not null"`
	// FirstAt and LastAt are the creation times of the event's oldest and newest rows.
	FirstAt    time.Time `gorm:"not null"`
	LastAt     time.Time `gorm:"not null"`
	Duplicates int       `gorm:"not null"`
	// Writer identifies the workflow run that finished the event, so that its own retried
	// activity is told apart from a second finish of the same id (a duplicate).
	Writer   string    `gorm:"size:300;not null"`
	StoredAt time.Time `gorm:"not null"`
}

// LateRecord is an input record that arrived after its key's result was final: a duplicate
// join row after the ack, or a record for a closed window. Keyed by its Kafka coordinates, so
// recording it twice counts it once.
type LateRecord struct {
	Topic     string `gorm:"primaryKey;size:200"`
	Partition int32  `gorm:"primaryKey"`
	Offset    int64  `gorm:"primaryKey"`
	Pipeline  string `gorm:"size:32;not null;index"`
	Key       string `gorm:"size:200;not null;index"`
	Reason    string `gorm:"size:200;not null"`
	At        time.Time
}

// DeadLetter is an input record sent to a dead-letter topic, kept beside the outbox record
// that carries it there, so that dashboards count and list them. Keyed by its source
// coordinates: a batch delivered again records none twice.
type DeadLetter struct {
	Topic     string    `gorm:"primaryKey;size:200"`
	Partition int32     `gorm:"primaryKey"`
	Offset    int64     `gorm:"primaryKey"`
	Pipeline  string    `gorm:"size:32;not null;index"`
	Key       string    `gorm:"size:200;not null"`
	Reason    string    `gorm:"size:500;not null"`
	At        time.Time `gorm:"index"`
}

// Models lists every table Tributary migrates; DataRow is migrated once per join table.
func Models() []any {
	return []any{&JoinedEvent{}, &LateRecord{}, &DeadLetter{}, &WindowResult{}, &Visit{}, &OutboxRecord{}, &OutboxLease{}, &InputProgress{}, &StagePending{}}
}
