package activities

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/confluentinc/confluent-kafka-go/v2/kafka"
	"gorm.io/gorm"
	"gorm.io/gorm/clause"

	"github.com/tributary-dev/tributary/internal/kafkaio"
	"github.com/tributary-dev/tributary/internal/outbox"
	"github.com/tributary-dev/tributary/schemas"
)

// FinishedJoin is an event id whose join is over: all three topics arrived, or its deadline passed.
type FinishedJoin struct {
	EventID string
	// Status is schemas.JoinComplete or schemas.JoinIncomplete.
	Status string
	// Rows are the arrivals, at most one per topic, in topic order.
	Rows       []schemas.JoinArrival
	Duplicates int
}

// FinishJoinsRequest is one workflow's batch of finished events and of rows that came after
// their event was final.
type FinishJoinsRequest struct {
	// Writer names the workflow run asking; see schemas.JoinedEvent.Writer.
	Writer string
	Events []FinishedJoin
	Late   []schemas.JoinArrival
}

// FinishJoinsResult says which events another run had already finished: their rows were
// recorded as late and no ack was sent for them; and which this run had.
type FinishJoinsResult struct {
	AlreadyFinal []string
	// Kept are the events an earlier attempt of this run stored with fewer rows than asked
	// now, by event id (see FinishJoins).
	Kept map[string]KeptJoin
}

// KeptJoin is an event stored by an earlier attempt of the same run, which stands.
type KeptJoin struct {
	// Status is the stored status, acked then.
	Status string
	// LateRows is how many of the rows asked now it lacks: they were recorded as late.
	LateRows int
}

// FinishJoins stores each finished event's rows (topicN in table dataN), its joined row and
// its ack (in the outbox, which relays it exactly once) in one transaction. An event that
// another workflow run already finished is not written again: its rows become late records
// and it gets no second ack. An event this run already finished is left as it is, so
// nothing is counted or acked twice. That is a retried attempt of this activity, or a
// retried workflow task: the local activity ran in a task that then failed (the server
// killed, a timeout), and the retried task, deciding again, may have applied rows that came
// meanwhile (signals only add to a history) and finished the event with more rows. The
// stored event stands, as acked, and the rows it lacks are recorded as late, so each row is
// in its event or late, once.
func (a *Activities) FinishJoins(ctx context.Context, req FinishJoinsRequest) (FinishJoinsResult, error) {
	var res FinishJoinsResult
	now := time.Now().UTC()
	var joined []schemas.JoinedEvent
	err := a.DB.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		final, err := finishedBy(tx, req.Events)
		if err != nil {
			return err
		}
		rows := map[string][]schemas.DataRow{}
		joined = joined[:0]
		var acks []*kafka.Message
		late := append([]schemas.JoinArrival(nil), req.Late...)
		for _, ev := range req.Events {
			if stored, ok := final[ev.EventID]; ok {
				if stored.Writer != req.Writer {
					res.AlreadyFinal = append(res.AlreadyFinal, ev.EventID)
					late = append(late, ev.Rows...)
					continue
				}
				// Finished by this run already: its rows and ack are written, and are not
				// written again; rows the stored event lacks are late.
				had := map[string]bool{}
				for _, t := range strings.Split(stored.Topics, ",") {
					had[t] = true
				}
				k := KeptJoin{Status: stored.Status}
				for _, r := range ev.Rows {
					if !had[r.Topic] {
						late = append(late, r)
						k.LateRows++
					}
				}
				if k.LateRows > 0 || k.Status != ev.Status {
					if res.Kept == nil {
						res.Kept = map[string]KeptJoin{}
					}
					res.Kept[ev.EventID] = k
				}
				continue
			}
			j := schemas.JoinedEvent{EventID: ev.EventID, Status: ev.Status, Duplicates: ev.Duplicates, Writer: req.Writer, StoredAt: now}
			var topics []string
			for _, r := range ev.Rows {
				table, ok := schemas.JoinTables[r.Topic]
				if !ok {
					return fmt.Errorf("event %s: row from unknown topic %q", ev.EventID, r.Topic)
				}
				rows[table] = append(rows[table], schemas.DataRow{EventID: r.EventID, CreatedAt: r.CreatedAt.UTC(), Fields: string(r.Fields), Partition: r.Partition, Offset: r.Offset})
				topics = append(topics, r.Topic)
				if j.FirstAt.IsZero() || r.CreatedAt.Before(j.FirstAt) {
					j.FirstAt = r.CreatedAt.UTC()
				}
				if r.CreatedAt.After(j.LastAt) {
					j.LastAt = r.CreatedAt.UTC()
				}
			}
			j.Topics = strings.Join(topics, ",")
			joined = append(joined, j)
			// The ack is made in the transaction that stores its event; CreatedAt is that moment.
			ack := schemas.Ack{Version: schemas.RecordVersion, EventID: ev.EventID, Status: ev.Status, Duplicates: ev.Duplicates,
				Arrivals: make(map[string]time.Time, len(ev.Rows)), CreatedAt: now}
			for _, r := range ev.Rows {
				ack.Arrivals[r.Topic] = r.CreatedAt
			}
			b, err := json.Marshal(ack)
			if err != nil {
				return fmt.Errorf("encode ack %s: %w", ack.EventID, err)
			}
			acks = append(acks, kafkaio.Message(schemas.TopicAck, []byte(ack.EventID), b))
		}
		for _, table := range []string{"data1", "data2", "data3"} {
			if len(rows[table]) == 0 {
				continue
			}
			if err := tx.Table(table).Clauses(clause.OnConflict{UpdateAll: true}).CreateInBatches(rows[table], 200).Error; err != nil {
				return fmt.Errorf("upsert %d rows into %s: %w", len(rows[table]), table, err)
			}
		}
		if len(joined) > 0 {
			if err := tx.Clauses(clause.OnConflict{UpdateAll: true}).CreateInBatches(joined, 200).Error; err != nil {
				return fmt.Errorf("upsert %d joined events: %w", len(joined), err)
			}
		}
		if late, err = NotStored(tx, late); err != nil {
			return err
		}
		if err := recordLate(tx, schemas.PipelineJoin, late, "duplicate: event already final", now); err != nil {
			return err
		}
		return outbox.Add(tx, outbox.ByKey, acks...)
	})
	if err != nil {
		return res, fmt.Errorf("store %d finished joins: %w", len(req.Events), err)
	}
	for _, j := range joined {
		a.Metrics.AckDelay(now.Sub(j.LastAt))
	}
	if len(res.AlreadyFinal) > 0 {
		a.log().Info("events already final elsewhere; their rows are recorded as late", "writer", req.Writer, "events", len(res.AlreadyFinal))
	}
	a.kick()
	return res, nil
}

// lookupChunk is how many event ids one lookup names, well under the databases' limits on
// a statement's parameters.
const lookupChunk = 500

// finishedBy returns the events already stored: the run that stored them, their topics and
// their status.
func finishedBy(tx *gorm.DB, events []FinishedJoin) (map[string]schemas.JoinedEvent, error) {
	final := make(map[string]schemas.JoinedEvent)
	ids := make([]string, 0, len(events))
	for _, ev := range events {
		ids = append(ids, ev.EventID)
	}
	for chunk := range slices.Chunk(ids, lookupChunk) {
		var found []schemas.JoinedEvent
		if err := tx.Select("event_id", "writer", "topics", "status").Where("event_id IN ?", chunk).Find(&found).Error; err != nil {
			return nil, fmt.Errorf("look up finished events: %w", err)
		}
		for _, f := range found {
			final[f.EventID] = f
		}
	}
	return final, nil
}

// NotStored drops the rows that are already stored as their event's own rows: the same
// record again, not a late one. A shard takes its rows by update, and an update the server
// lost with a crash is sent again by the bridge; if the lost task had already finished the
// event (its finish is a local activity), the retried decision may have finished it from
// fewer rows, and the resent row then reaches a finished event. A per-event workflow's
// rows sent again after a bridge crash, behind the last commit, find it closed, and the
// bridge records them as late through here. Each record is in its event or late, never
// both.
func NotStored(tx *gorm.DB, late []schemas.JoinArrival) ([]schemas.JoinArrival, error) {
	if len(late) == 0 {
		return late, nil
	}
	type source struct {
		event     string
		partition int32
		offset    int64
	}
	stored := map[string]map[source]bool{}
	byTable := map[string][]string{}
	for _, r := range late {
		if table, ok := schemas.JoinTables[r.Topic]; ok {
			byTable[table] = append(byTable[table], r.EventID)
		}
	}
	for table, ids := range byTable {
		stored[table] = map[source]bool{}
		for chunk := range slices.Chunk(ids, lookupChunk) {
			var found []schemas.DataRow
			if err := tx.Table(table).Select("event_id", "partition", "offset").Where("event_id IN ?", chunk).Find(&found).Error; err != nil {
				return nil, fmt.Errorf("look up stored rows in %s: %w", table, err)
			}
			for _, f := range found {
				stored[table][source{f.EventID, f.Partition, f.Offset}] = true
			}
		}
	}
	return slices.DeleteFunc(late, func(r schemas.JoinArrival) bool {
		return stored[schemas.JoinTables[r.Topic]][source{r.EventID, r.Partition, r.Offset}]
	}), nil
}

// recordLate stores records that came after their key was final; a record recorded twice stays one row.
func recordLate(tx *gorm.DB, pipeline string, rows []schemas.JoinArrival, reason string, at time.Time) error {
	if len(rows) == 0 {
		return nil
	}
	late := make([]schemas.LateRecord, 0, len(rows))
	for _, r := range rows {
		late = append(late, schemas.LateRecord{Topic: r.Topic, Partition: r.Partition, Offset: r.Offset, Pipeline: pipeline, Key: r.EventID, Reason: reason, At: at})
	}
	if err := tx.Clauses(clause.OnConflict{DoNothing: true}).CreateInBatches(late, 200).Error; err != nil {
		return fmt.Errorf("record %d late rows: %w", len(late), err)
	}
	return nil
}
