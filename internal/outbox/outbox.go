// Package outbox sends Tributary's output records (acks, window outputs, late copies,
// dead letters found by workflows) exactly once.
//
// An activity does not produce: it writes each record as an outbox row in the database
// transaction that stores the result the record announces, keyed by what the record is,
// so a retried activity adds nothing. The Relay sends the rows in id order with Kafka's
// transactional producer and commits, inside the same Kafka transaction, the id of the
// next row as the offset of a consumer group on TopicOutboxPosition. A relay killed
// anywhere either committed the records and its position together or neither: the next
// relay aborts what was left open (same transactional id, which also fences the old one)
// and resends from the committed position. Relays take turns by a lease in the database,
// so that they do not fence each other back and forth. Readers of the output topics read
// committed records only (librdkafka's default isolation level), as Kafka Connect's
// exactly-once sources require.
package outbox

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"strconv"

	"github.com/confluentinc/confluent-kafka-go/v2/kafka"
	"gorm.io/gorm"
	"gorm.io/gorm/clause"

	"github.com/tributary-dev/tributary/internal/kafkaio"
	"github.com/tributary-dev/tributary/schemas"
)

// advisoryLock serialises outbox writers on PostgreSQL for the rest of their transaction,
// so rows become visible in id order and the relay never passes an id whose transaction
// has yet to commit. SQLite has a single writer already.
const advisoryLock = 7_301_994

// ByKey is the identity of a record that is the only one of its key on its topic: an ack,
// a window's output.
func ByKey(m *kafka.Message) string {
	return *m.TopicPartition.Topic + "\x00" + string(m.Key)
}

// BySource is the identity of a copy of an input record (a late copy, a dead letter): its
// topic and the source record's coordinates, from the copy's headers.
func BySource(m *kafka.Message) string {
	return *m.TopicPartition.Topic + "\x00" + kafkaio.Header(m, kafkaio.HeaderSourceTopic) + "/" +
		kafkaio.Header(m, kafkaio.HeaderSourcePartition) + "/" + kafkaio.Header(m, kafkaio.HeaderSourceOffset)
}

type header struct {
	K string `json:"k"`
	V []byte `json:"v"`
}

// Add writes records to the outbox within tx; identity names each record (ByKey,
// BySource), and a record whose identity already has a row is not written again. Relayed
// rows are deleted after Retention, so a writer that may run again later still makes each
// record once per result: the result's own row says it was written (see FinishJoins).
func Add(tx *gorm.DB, identity func(*kafka.Message) string, msgs ...*kafka.Message) error {
	if len(msgs) == 0 {
		return nil
	}
	if tx.Name() == "postgres" {
		if err := tx.Exec("SELECT pg_advisory_xact_lock(?)", advisoryLock).Error; err != nil {
			return fmt.Errorf("outbox lock: %w", err)
		}
	}
	rows := make([]schemas.OutboxRecord, 0, len(msgs))
	now := tx.NowFunc()
	for _, m := range msgs {
		r := schemas.OutboxRecord{Dedup: dedupKey(identity(m)), Topic: *m.TopicPartition.Topic, Key: m.Key, Value: m.Value, CreatedAt: now}
		if len(m.Headers) > 0 {
			hs := make([]header, len(m.Headers))
			for i, h := range m.Headers {
				hs[i] = header{K: h.Key, V: h.Value}
			}
			b, err := json.Marshal(hs)
			if err != nil {
				return fmt.Errorf("outbox headers: %w", err)
			}
			r.Headers = string(b)
		}
		rows = append(rows, r)
	}
	if err := tx.Clauses(clause.OnConflict{Columns: []clause.Column{{Name: "dedup"}}, DoNothing: true}).CreateInBatches(rows, 200).Error; err != nil {
		return fmt.Errorf("write %d outbox records: %w", len(rows), err)
	}
	return nil
}

// dedupKey is what the outbox stores of a record's identity. An identity holds a record
// key, any bytes, NUL and invalid UTF-8 among them, which a PostgreSQL text column refuses
// (the bridge retried such a write forever), so the key is text of printable ASCII:
//
//   - "=" and the identity with every byte outside '!'..'~', and '%', written %XX. Keys
//     of one topic sort together and in the order of the records' keys, so a batch of
//     acks for ids that follow each other lands on a few pages of the unique index. A
//     hash there scattered each insert to a page of its own: a third of a join finish's
//     time (go test -bench FinishJoins ./activities).
//   - "#" and the identity's SHA-256 in hex when the first form would pass
//     maxOrderedDedup bytes.
//
// Keys stored before the ordered form are the bare SHA-256; MigrateDedup rewrites them.
func dedupKey(identity string) string {
	const hexDigits = "0123456789ABCDEF"
	b := make([]byte, 0, len(identity)+8)
	b = append(b, '=')
	for i := 0; i < len(identity); i++ {
		c := identity[i]
		if c > ' ' && c <= '~' && c != '%' {
			b = append(b, c)
		} else {
			b = append(b, '%', hexDigits[c>>4], hexDigits[c&15])
		}
		if len(b) > maxOrderedDedup {
			sum := sha256.Sum256([]byte(identity))
			return "#" + hex.EncodeToString(sum[:])
		}
	}
	return string(b)
}

// maxOrderedDedup bounds the ordered form of a dedup key, under the column's 500.
const maxOrderedDedup = 400

// MigrateDedup rewrites the dedup keys stored as a bare SHA-256, before the ordered form,
// to the form dedupKey makes now, so that a record written before an upgrade and written
// again after it is still recognised. A row's identity is read back from the row: a copy
// of an input record (dead letter, late copy) carries its source's headers and was named
// BySource; every other record ByKey.
func MigrateDedup(g *gorm.DB) error {
	for {
		var rows []schemas.OutboxRecord
		err := g.Where("dedup NOT LIKE ? AND dedup NOT LIKE ?", "=%", "#%").Order("id").Limit(batchRows).Find(&rows).Error
		if err != nil {
			return fmt.Errorf("outbox: find dedup keys to migrate: %w", err)
		}
		if len(rows) == 0 {
			return nil
		}
		err = g.Transaction(func(tx *gorm.DB) error {
			for _, r := range rows {
				m, err := message(r)
				if err != nil {
					return err
				}
				identity := ByKey(m)
				if kafkaio.Header(m, kafkaio.HeaderSourceTopic) != "" {
					identity = BySource(m)
				}
				if err := tx.Model(&schemas.OutboxRecord{}).Where("id = ?", r.ID).Update("dedup", dedupKey(identity)).Error; err != nil {
					return fmt.Errorf("outbox: migrate the dedup key of row %d: %w", r.ID, err)
				}
			}
			return nil
		})
		if err != nil {
			return err
		}
	}
}

// message turns an outbox row back into the record it holds.
func message(r schemas.OutboxRecord) (*kafka.Message, error) {
	m := kafkaio.Message(r.Topic, r.Key, r.Value)
	if r.Headers != "" {
		var hs []header
		if err := json.Unmarshal([]byte(r.Headers), &hs); err != nil {
			return nil, fmt.Errorf("outbox row %d headers: %w", r.ID, err)
		}
		for _, h := range hs {
			m.Headers = append(m.Headers, kafka.Header{Key: h.K, Value: h.V})
		}
	}
	m.Headers = append(m.Headers, kafka.Header{Key: HeaderOutboxID, Value: []byte(strconv.FormatUint(r.ID, 10))})
	return m, nil
}

// HeaderOutboxID carries the outbox row id a record was relayed from.
const HeaderOutboxID = "tributary-outbox-id"
