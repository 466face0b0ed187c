package activities

import (
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"time"

	"github.com/confluentinc/confluent-kafka-go/v2/kafka"
	"gorm.io/gorm/clause"

	"github.com/tributary-dev/tributary/internal/kafkaio"
	"github.com/tributary-dev/tributary/internal/outbox"
	"github.com/tributary-dev/tributary/schemas"
	"github.com/tributary-dev/tributary/travel"
	"github.com/tributary-dev/tributary/window"
)

// WindowSender hands window pieces to the window workflow of a key, exactly once: a piece
// whose range the workflow already applied is skipped, not applied again. It returns how
// many of the pieces' partials came for windows already closed.
type WindowSender interface {
	SendPieces(ctx context.Context, key string, pieces []schemas.WindowPiece) (late int, err error)
}

// FlushVisitsRequest is what a TravelerWorkflow made final since its last flush.
type FlushVisitsRequest struct {
	Writer   string
	Visits   []travel.Visit
	Rejected []travel.Rejected
}

// FlushVisitsResult says how many visit partials reached sensor minutes already closed.
type FlushVisitsResult struct {
	LatePartials int
}

// FlushVisits upserts each visit's row (its values follow from its readings, so a retry
// writes the same row), hands its speeds by minute to the sensors window pipeline, keyed
// "sensor|type", and dead-letters the readings the workflow refused, with the reason.
func (a *Activities) FlushVisits(ctx context.Context, req FlushVisitsRequest) (FlushVisitsResult, error) {
	var res FlushVisitsResult
	if len(req.Visits) > 0 {
		now := time.Now().UTC()
		rows := make([]schemas.Visit, len(req.Visits))
		for i, v := range req.Visits {
			rows[i] = schemas.Visit{TravelerID: v.TravelerID, SensorID: v.SensorID, Entered: v.Entered.UTC(), Left: v.Left.UTC(), Type: v.Type,
				Readings: v.Readings, MinSpeed: v.MinSpeed, MaxSpeed: v.MaxSpeed, AvgSpeed: v.AvgSpeed, Writer: req.Writer, StoredAt: now}
		}
		err := a.DB.WithContext(ctx).Clauses(clause.OnConflict{UpdateAll: true}).CreateInBatches(rows, 200).Error
		if err != nil {
			return res, fmt.Errorf("store %d visits: %w", len(rows), err)
		}
		pieces := VisitPieces(req.Visits)
		for _, key := range slices.Sorted(maps.Keys(pieces)) {
			late, err := a.Windows.SendPieces(ctx, key, pieces[key])
			if err != nil {
				return res, fmt.Errorf("send speeds of %s: %w", key, err)
			}
			res.LatePartials += late
		}
	}
	if len(req.Rejected) > 0 {
		msgs := make([]*kafka.Message, len(req.Rejected))
		for i, r := range req.Rejected {
			b, err := json.Marshal(schemas.NewSensorReading(r.Reading))
			if err != nil {
				return res, err
			}
			ref := r.Reading.Ref
			m := &kafka.Message{TopicPartition: kafka.TopicPartition{Topic: &ref.Topic, Partition: ref.Partition, Offset: kafka.Offset(ref.Offset)}, Key: []byte(r.Reading.TravelerID), Value: b}
			msgs[i] = kafkaio.DeadLetter(m, r.Reason)
		}
		// Each dead letter is named by its source reading, so a retry adds none.
		if err := outbox.Add(a.DB.WithContext(ctx), outbox.BySource, msgs...); err != nil {
			return res, fmt.Errorf("dead-letter %d readings: %w", len(msgs), err)
		}
		a.kick()
	}
	return res, nil
}

// VisitPieces turns visits into window pieces by "sensor|type": one piece per visit, with
// one partial per minute in which the visit's speed was measured, valued at the traveler's
// mean speed in that minute. A window's count is then the travelers measured in it.
func VisitPieces(visits []travel.Visit) map[string][]schemas.WindowPiece {
	out := map[string][]schemas.WindowPiece{}
	size := int64(time.Minute / time.Second)
	for _, v := range visits {
		if len(v.Minutes) == 0 {
			continue // a single reading measures no speed
		}
		key := schemas.SensorKey(v.SensorID, v.Type)
		piece := schemas.WindowPiece{Range: schemas.VisitRange(v)}
		for _, m := range v.Minutes {
			mean := m.Mean()
			piece.Partials = append(piece.Partials, schemas.WindowPartial{Key: key, SizeSeconds: size, Start: m.Start.UTC(),
				Partial: window.Partial{Count: 1, Sum: mean, Min: mean, Max: mean, First: m.First.UTC(), Last: m.Last.UTC()}})
		}
		out[key] = append(out[key], piece)
	}
	return out
}

// TravelerFloors returns, per traveler and sensor, when the traveler's last stored visit at
// that sensor ended: a new run of a traveler's workflow drops readings up to there, which
// belong to visits already final.
func (a *Activities) TravelerFloors(ctx context.Context, travelerIDs []string) (map[string]map[string]time.Time, error) {
	out := map[string]map[string]time.Time{}
	for chunk := range slices.Chunk(travelerIDs, 500) {
		var rows []schemas.Visit
		err := a.DB.WithContext(ctx).Select("traveler_id", "sensor_id", "left_at").Where("traveler_id IN ?", chunk).Find(&rows).Error
		if err != nil {
			return nil, fmt.Errorf("look up the last visits of %d travelers: %w", len(chunk), err)
		}
		for _, r := range rows {
			if out[r.TravelerID] == nil {
				out[r.TravelerID] = map[string]time.Time{}
			}
			if l := r.Left.UTC(); l.After(out[r.TravelerID][r.SensorID]) {
				out[r.TravelerID][r.SensorID] = l
			}
		}
	}
	return out, nil
}
