package schemas

import (
	"encoding/json"
	"fmt"
	"slices"
	"strconv"
	"time"

	"github.com/tributary-dev/tributary/window"
)

// Topics of the window pipelines.
const (
	// TopicLikes receives like events keyed by video id.
	TopicLikes = "likes"
	// TopicTransactions receives e-commerce transactions keyed by transaction id.
	TopicTransactions = "transactions"
	// TopicTransactionsAggregate receives one record per closed 3-second window.
	TopicTransactionsAggregate = "transactions_aggregate"
)

// LikesOutputTopics maps a likes window size to its output topic.
var LikesOutputTopics = map[time.Duration]string{
	time.Minute:      "video_aggregations_1",
	5 * time.Minute:  "video_aggregations_5",
	10 * time.Minute: "video_aggregations_10",
}

// Window pipeline names.
const (
	PipelineLikes        = "likes"
	PipelineTransactions = "transactions"
)

// LateTopic names the topic a pipeline's late records are copied to.
func LateTopic(pipeline string) string { return pipeline + ".late" }

// Like is one like of a video.
type Like struct {
	Version int       `json:"v"`
	VideoID string    `json:"video_id"`
	At      time.Time `json:"at"`
}

// LikeRecord is the record of one like of a video at a time: its key (the video id, so a
// video's likes stay in one partition) and its JSON value.
func LikeRecord(videoID string, at time.Time) (key, value []byte, err error) {
	value, err = json.Marshal(Like{Version: RecordVersion, VideoID: videoID, At: at.UTC()})
	if err != nil {
		return nil, nil, fmt.Errorf("encode a like of %s: %w", videoID, err)
	}
	return []byte(videoID), value, nil
}

// Transaction is one fake e-commerce transaction. The ten user ids each start with a
// different digit d, and a user always pays 10 x d (0 counting as 10), so every window's
// sum is known from its count per user.
type Transaction struct {
	Version int       `json:"v"`
	ID      string    `json:"id"`
	UserID  string    `json:"user_id"`
	Amount  float64   `json:"amount"`
	Status  string    `json:"status"`
	At      time.Time `json:"at"`
}

// Transaction statuses.
const (
	StatusPaid     = "paid"
	StatusFailed   = "failed"
	StatusRefunded = "refunded"
)

// WindowResult is one closed window's aggregate, written once with absolute values and
// keyed by what it describes.
type WindowResult struct {
	Pipeline    string    `gorm:"primaryKey;size:32"`
	Key         string    `gorm:"primaryKey;size:200"`
	SizeSeconds int64     `gorm:"primaryKey"`
	WindowStart time.Time `gorm:"primaryKey"`
	Count       int64     `gorm:"not null"`
	Sum         float64   `gorm:"not null"`
	Min         float64   `gorm:"not null"`
	Max         float64   `gorm:"not null"`
	Avg         float64   `gorm:"not null"`
	FirstAt     time.Time `gorm:"not null"`
	LastAt      time.Time `gorm:"not null"`
	ClosedAt    time.Time `gorm:"not null"`
	// Writer names the workflow run that closed the window; see JoinedEvent.Writer.
	Writer string `gorm:"size:300;not null"`
}

// WindowOutput is the record a closed window writes to its output topic, keyed by
// WindowKey so that a repeat is recognisable.
type WindowOutput struct {
	Version     int       `json:"v"`
	Pipeline    string    `json:"pipeline"`
	Key         string    `json:"key"`
	SizeSeconds int64     `json:"size_seconds"`
	WindowStart time.Time `json:"window_start"`
	WindowEnd   time.Time `json:"window_end"`
	Count       int64     `json:"count"`
	Sum         float64   `json:"sum"`
	Min         float64   `json:"min"`
	Max         float64   `json:"max"`
	Avg         float64   `json:"avg"`
}

// OffsetRange is the span of one partition's offsets (inclusive) that a window batch covers.
type OffsetRange struct {
	Topic     string `json:"t"`
	Partition int32  `json:"p"`
	From      int64  `json:"f"`
	To        int64  `json:"o"`
}

// TopicPartition names the range's partition, as TopicPartition does.
func (r OffsetRange) TopicPartition() string { return TopicPartition(r.Topic, r.Partition) }

// TopicPartition names a partition as workflows key what they applied of it:
// "topic/partition".
func TopicPartition(topic string, partition int32) string {
	return topic + "/" + strconv.FormatInt(int64(partition), 10)
}

// WindowPartial is the bridge's pre-aggregate of one key's records in one window.
type WindowPartial struct {
	Key         string         `json:"k"`
	SizeSeconds int64          `json:"s"`
	Start       time.Time      `json:"w"`
	Partial     window.Partial `json:"a"`
}

// WindowKey identifies one key's window of one size: "key|size in seconds|start", the start
// in RFC 3339 (UTC). The bridge groups partials by it, the window workflow keys its open
// windows by it, and a closed window's output record is keyed by it.
func WindowKey(key string, sizeSeconds int64, start time.Time) string {
	return key + "|" + strconv.FormatInt(sizeSeconds, 10) + "|" + start.UTC().Format(time.RFC3339Nano)
}

// WindowBatch is what a bridge batch carries to one window workflow: partials, and the
// offsets of every partition they were built from.
type WindowBatch struct {
	Ranges   []OffsetRange   `json:"r"`
	Partials []WindowPartial `json:"a"`
	// Watermark is the pipeline's input watermark as the sender knew it: every record of
	// the input up to it has been applied (internal/watermark).
	Watermark time.Time `json:"w,omitzero"`
}

// LateSpan is what a window workflow keeps of a batch it answered with late partials:
// the batch's offset ranges and the windows (WindowKey) it found closed. Only that answer
// says which records were late, and a sender can lose it (killed, stopped, its connection
// cut before the answer came). The records sent again in other batches overlap offsets the
// workflow applied, and its rejection carries the spans over them, so the new sender can
// tell which of its records were late: those in a span's ranges with a window in it.
type LateSpan struct {
	Ranges  []OffsetRange `json:"r"`
	Windows []string      `json:"w"`
	At      time.Time     `json:"t"`
}

// Overlaps reports whether the span covers any offset of r.
func (s LateSpan) Overlaps(r OffsetRange) bool {
	for _, own := range s.Ranges {
		if own.Topic == r.Topic && own.Partition == r.Partition && own.From <= r.To && r.From <= own.To {
			return true
		}
	}
	return false
}

// Covers reports whether the record at offset of topic/partition was in the span's batch
// and in its late window windowKey.
func (s LateSpan) Covers(topic string, partition int32, offset int64, windowKey string) bool {
	if !slices.Contains(s.Windows, windowKey) {
		return false
	}
	return s.Overlaps(OffsetRange{Topic: topic, Partition: partition, From: offset, To: offset})
}

// WindowAck is a window workflow's answer to a batch: which partials came for windows
// already closed (their records are late).
type WindowAck struct {
	Late []int `json:"late,omitempty"`
}
