package activities

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/confluentinc/confluent-kafka-go/v2/kafka"

	"github.com/tributary-dev/tributary/internal/joinsim"
	"github.com/tributary-dev/tributary/internal/kafkaio"
	"github.com/tributary-dev/tributary/schemas"
)

// JoinSimulation describes a simulated join run's input, from generation or from files.
type JoinSimulation struct {
	Plan joinsim.Plan
	// FromDir, when set, sends the rows of the three CSV/XLSX files found there instead.
	FromDir string
}

// ChunkRequest asks for events [From, To) of a simulation, paced at Rate events per second
// (0: as fast as the producer goes).
type ChunkRequest struct {
	Sim      JoinSimulation
	From, To int
	Rate     float64
}

// ChunkResult counts the records a chunk sent.
type ChunkResult struct {
	Events, Rows, Duplicated, Malformed int
}

var fileSources sync.Map // dir+run id → *joinsim.FileSource

func (a *Activities) source(sim JoinSimulation) (joinsim.Source, error) {
	if sim.FromDir == "" {
		return sim.Plan, nil
	}
	key := sim.FromDir + "\x00" + sim.Plan.RunID
	if s, ok := fileSources.Load(key); ok {
		return s.(*joinsim.FileSource), nil
	}
	fs, err := joinsim.LoadFiles(sim.FromDir)
	if err != nil {
		return nil, err
	}
	s := joinsim.NewFileSource(sim.Plan.RunID, fs)
	fileSources.Store(key, s)
	return s, nil
}

// CountJoinEvents returns how many events the simulation's input has.
func (a *Activities) CountJoinEvents(_ context.Context, sim JoinSimulation) (int, error) {
	s, err := a.source(sim)
	if err != nil {
		return 0, err
	}
	return s.Len(), nil
}

// ProduceJoinChunk sends a chunk's rows to topic1..3 (key = event id), paced to the rate.
// A retry sends the chunk again; the join recognises the repeated rows as duplicates.
func (a *Activities) ProduceJoinChunk(ctx context.Context, req ChunkRequest) (ChunkResult, error) {
	var res ChunkResult
	src, err := a.source(req.Sim)
	if err != nil {
		return res, err
	}
	start := time.Now()
	var msgs []*kafka.Message
	flush := func() error {
		err := a.Producer.Send(ctx, msgs...)
		msgs = msgs[:0]
		return err
	}
	for n := req.From; n < min(req.To, src.Len()); n++ {
		if req.Rate > 0 {
			due := start.Add(time.Duration(float64(n-req.From) / req.Rate * float64(time.Second)))
			if wait := time.Until(due); wait > 0 {
				if err := flush(); err != nil {
					return res, fmt.Errorf("send chunk [%d,%d): %w", req.From, req.To, err)
				}
				select {
				case <-ctx.Done():
					return res, ctx.Err()
				case <-time.After(time.Until(due)):
				}
			}
		}
		ev := src.Event(n)
		key := []byte(ev.ID)
		for _, topic := range schemas.JoinTopics {
			fields, ok := ev.Rows[topic]
			if !ok {
				continue
			}
			v := joinsim.Row(ev.ID, fields, time.Now().UTC())
			msgs = append(msgs, kafkaio.Message(topic, key, v))
			res.Rows++
		}
		for _, topic := range ev.Duplicated {
			msgs = append(msgs, kafkaio.Message(topic, key, joinsim.Row(ev.ID, ev.Rows[topic], time.Now().UTC())))
			res.Duplicated++
		}
		if ev.Malformed != "" {
			msgs = append(msgs, kafkaio.Message(ev.Malformed, key, joinsim.MalformedRow(ev.ID, time.Now().UTC())))
			res.Malformed++
		}
		res.Events++
		if len(msgs) >= 3000 {
			if err := flush(); err != nil {
				return res, fmt.Errorf("send chunk [%d,%d): %w", req.From, req.To, err)
			}
		}
	}
	if err := flush(); err != nil {
		return res, fmt.Errorf("send chunk [%d,%d): %w", req.From, req.To, err)
	}
	return res, nil
}

// JoinResultOffsets returns where the ack and dead-letter topics end now, so that a run
// reads only its own results.
func (a *Activities) JoinResultOffsets(_ context.Context) (joinsim.Offsets, error) {
	return joinsim.EndOffsets(a.Bootstrap, joinsim.ResultTopics())
}

// CollectRequest continues reading a run's results.
type CollectRequest struct {
	RunID  string
	From   joinsim.Offsets
	Report joinsim.Report
	Budget time.Duration
}

// CollectResult is the report so far and where to go on reading.
type CollectResult struct {
	Next   joinsim.Offsets
	Report joinsim.Report
	// Late counts the run's rows recorded in late_records (duplicates after the ack).
	Late int64
}

// CollectJoinResults reads the run's acks and dead letters for up to the budget and counts
// its late rows in the database.
func (a *Activities) CollectJoinResults(ctx context.Context, req CollectRequest) (CollectResult, error) {
	res := CollectResult{Report: req.Report}
	next, err := joinsim.Collect(ctx, a.Bootstrap, req.RunID, req.From, req.Budget, &res.Report)
	if err != nil {
		return res, err
	}
	res.Next = next
	if err := a.DB.WithContext(ctx).Model(&schemas.LateRecord{}).
		Where("pipeline = ? AND key LIKE ?", schemas.PipelineJoin, req.RunID+"-%").Count(&res.Late).Error; err != nil {
		return res, fmt.Errorf("count late rows of run %s: %w", req.RunID, err)
	}
	return res, nil
}
