// Package schemas holds Tributary's data contracts: the records on its topics, the rows in
// its database, and the names of both. Producers, the bridge, workflows and activities all
// read their names from here.
package schemas

// Topics of the join pipeline.
const (
	TopicJoin1 = "topic1"
	TopicJoin2 = "topic2"
	TopicJoin3 = "topic3"
	// TopicAck receives one record per event id once it reached all three topics, or once its
	// deadline passed without them (status incomplete).
	TopicAck = "ack"
)

// JoinTopics are the join's input topics in table order: topicN is stored in table dataN.
var JoinTopics = []string{TopicJoin1, TopicJoin2, TopicJoin3}

// Pipeline names, as stored in rows and used in consumer group ids.
const (
	PipelineJoin = "join"
)

// RecordVersion is the schema version every record Tributary writes carries.
const RecordVersion = 1
