// Package sensorsim simulates traffic past sensors (Scenario), sends it to the sensors topic and
// computes, independently of the pipeline, the visit rows and sensor minutes it implies.
package sensorsim

import (
	"context"
	"encoding/json"
	"fmt"
	"math"
	"strconv"
	"time"

	"github.com/confluentinc/confluent-kafka-go/v2/kafka"

	"github.com/tributary-dev/tributary/internal/kafkaio"
	"github.com/tributary-dev/tributary/schemas"
	"github.com/tributary-dev/tributary/travel"
)

// Produce sends the deliveries in order. In real time each is sent when the clock reaches
// its delivery time (the scenario should start now); otherwise as fast as the producer
// goes. progress is called with the count sent so far.
func Produce(ctx context.Context, p *kafkaio.Producer, deliveries []Delivery, realTime bool, progress func(int)) error {
	var batch []*kafka.Message
	flush := func(sent int) error {
		if err := p.Send(ctx, batch...); err != nil {
			return fmt.Errorf("send %d readings: %w", len(batch), err)
		}
		batch = batch[:0]
		if progress != nil {
			progress(sent)
		}
		return nil
	}
	for i, d := range deliveries {
		if realTime {
			if wait := time.Until(d.Delivered); wait > 0 {
				if err := flush(i); err != nil {
					return err
				}
				select {
				case <-ctx.Done():
					return ctx.Err()
				case <-time.After(wait):
				}
			}
		}
		b, err := json.Marshal(schemas.NewSensorReading(d.Reading))
		if err != nil {
			return err
		}
		batch = append(batch, kafkaio.Message(schemas.TopicSensorReadings, []byte(d.Reading.TravelerID), b))
		if len(batch) >= 1000 {
			if err := flush(i + 1); err != nil {
				return err
			}
		}
	}
	return flush(len(deliveries))
}

// Minute is what one sensor minute of one traveler type must hold: the travelers whose
// speed was measured in it, and min, max and sum of their mean speeds there.
type Minute struct {
	SensorID, Type string
	Start          time.Time
	Count          int64
	Min, Max, Sum  float64
}

// Avg is the mean of the travelers' mean speeds.
func (m Minute) Avg() float64 { return m.Sum / float64(m.Count) }

// MinuteKey names a sensor minute as "sensor|type|unix seconds".
func MinuteKey(sensorID, travelerType string, start time.Time) string {
	return schemas.SensorKey(sensorID, travelerType) + "|" + strconv.FormatInt(start.Unix(), 10)
}

// Expected returns the visit each trip makes (by "traveler@sensor") and the sensor minutes
// they make (by MinuteKey), from the trips' true readings.
func Expected(trips []Trip) (map[string]travel.Visit, map[string]*Minute) {
	visits := map[string]travel.Visit{}
	minutes := map[string]*Minute{}
	for _, t := range trips {
		v := t.Expected()
		visits[t.TravelerID+"@"+t.SensorID] = v
		for _, m := range v.Minutes {
			k := MinuteKey(t.SensorID, t.Type, m.Start)
			mean := m.Mean()
			e := minutes[k]
			if e == nil {
				e = &Minute{SensorID: t.SensorID, Type: t.Type, Start: m.Start, Min: math.Inf(1), Max: math.Inf(-1)}
				minutes[k] = e
			}
			e.Count++
			e.Sum += mean
			e.Min = math.Min(e.Min, mean)
			e.Max = math.Max(e.Max, mean)
		}
	}
	return visits, minutes
}

// Summary describes a simulation for people.
type Summary struct {
	Travelers, Trips, Readings int
	Bad                        map[string]int
	// ByType holds, per traveler type, its travelers and their mean true speed.
	ByType map[string]TypeSummary
	First  time.Time
	Last   time.Time
}

// TypeSummary is one traveler type's share of a simulation.
type TypeSummary struct {
	Travelers int
	MeanSpeed float64
}

// Summarize counts a scenario's trips and deliveries.
func Summarize(trips []Trip, deliveries []Delivery) Summary {
	s := Summary{Trips: len(trips), Bad: map[string]int{}, ByType: map[string]TypeSummary{}}
	seen := map[string]bool{}
	for _, t := range trips {
		if seen[t.TravelerID] {
			continue
		}
		seen[t.TravelerID] = true
		ts := s.ByType[t.Type]
		ts.MeanSpeed = (ts.MeanSpeed*float64(ts.Travelers) + t.Speed) / float64(ts.Travelers+1)
		ts.Travelers++
		s.ByType[t.Type] = ts
	}
	s.Travelers = len(seen)
	for _, d := range deliveries {
		if d.Bad != "" {
			s.Bad[d.Bad]++
			continue
		}
		s.Readings++
		if s.First.IsZero() || d.Reading.At.Before(s.First) {
			s.First = d.Reading.At
		}
		if d.Reading.At.After(s.Last) {
			s.Last = d.Reading.At
		}
	}
	return s
}

// BadTotal is the number of bad readings sent.
func (s Summary) BadTotal() int {
	n := 0
	for _, c := range s.Bad {
		n += c
	}
	return n
}
