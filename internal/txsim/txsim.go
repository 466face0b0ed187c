// Package txsim makes the transactions pipeline's input, whose right answer is known by
// construction, and checks the pipeline's windows against a computation of its own.
package txsim

import (
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"slices"
	"strconv"
	"time"

	"github.com/confluentinc/confluent-kafka-go/v2/kafka"
	"gorm.io/gorm"

	"github.com/tributary-dev/tributary/internal/kafkaio"
	"github.com/tributary-dev/tributary/pipelines"
	"github.com/tributary-dev/tributary/schemas"
)

// Users are the ten user ids; user i's id starts with the digit i.
var Users = []string{
	"0f3a9c1e", "1b7d2e4f", "2c8e3f5a", "3d9f4a6b", "4e0a5b7c",
	"5f1b6c8d", "6a2c7d9e", "7b3d8e0f", "8c4e9f1a", "9d5f0a2b",
}

// Amount is what a user always pays: ten times the leading digit of its id, 0 counting as 10.
func Amount(userID string) float64 {
	d := int(userID[0] - '0')
	if d == 0 {
		d = 10
	}
	return float64(10 * d)
}

// Generate returns transaction n of a run; 70% are paid, 20% failed, 10% refunded.
func Generate(runID string, seed uint64, n int, at time.Time) schemas.Transaction {
	rng := rand.New(rand.NewPCG(seed, uint64(n)))
	user := Users[rng.IntN(len(Users))]
	status := schemas.StatusPaid
	switch r := rng.Float64(); {
	case r >= 0.9:
		status = schemas.StatusRefunded
	case r >= 0.7:
		status = schemas.StatusFailed
	}
	return schemas.Transaction{Version: schemas.RecordVersion, ID: runID + "-" + strconv.Itoa(n), UserID: user, Amount: Amount(user), Status: status, At: at.UTC()}
}

// Produce sends n transactions at rate per second (0: as fast as the producer goes), event
// time the moment each is made, and calls progress after each thousand.
func Produce(ctx context.Context, p *kafkaio.Producer, runID string, seed uint64, n int, rate float64, progress func(int)) error {
	start := time.Now()
	var batch []*kafka.Message
	for i := range n {
		if rate > 0 {
			if wait := time.Until(start.Add(time.Duration(float64(i) / rate * float64(time.Second)))); wait > 0 {
				select {
				case <-ctx.Done():
					return ctx.Err()
				case <-time.After(wait):
				}
			}
		}
		tx := Generate(runID, seed, i, time.Now())
		b, _ := json.Marshal(tx)
		batch = append(batch, kafkaio.Message(schemas.TopicTransactions, []byte(tx.ID), b))
		if len(batch) >= 1000 || (rate > 0 && rate < 1000) {
			if err := p.Send(ctx, batch...); err != nil {
				return err
			}
			batch = batch[:0]
			if progress != nil {
				progress(i + 1)
			}
		}
	}
	if err := p.Send(ctx, batch...); err != nil {
		return err
	}
	if progress != nil {
		progress(n)
	}
	return nil
}

// Window is one recomputed window.
type Window struct {
	Start      time.Time
	Count      int64
	Sum        float64
	ByUser     map[string]int64
	FromStored *schemas.WindowResult
}

// Verification compares the pipeline's windows with a computation from the topic.
type Verification struct {
	Records     int
	Paid        int
	Late        int
	Windows     int
	Open        int
	Differences []string
}

// Verify reads the whole transactions topic, recomputes every 3-second window of paid
// transactions (leaving out windows not closed yet at asOf, and, with excludeLate, the
// records the pipeline recorded as late), checks each sum against its count per user, and
// compares with the rows in the database. A record replayed after its window was final is
// recorded late although its first delivery counted: after a replay, verify without
// excludeLate.
func Verify(ctx context.Context, bootstrap string, db *gorm.DB, asOf time.Time, excludeLate bool) (Verification, error) {
	var v Verification
	spec := pipelines.Transactions()
	ws := spec.Windows[0]
	var late []schemas.LateRecord
	if err := db.WithContext(ctx).Where("pipeline = ?", spec.Name).Find(&late).Error; err != nil {
		return v, err
	}
	isLate := map[string]bool{}
	for _, l := range late {
		isLate[fmt.Sprintf("%d/%d", l.Partition, l.Offset)] = true
	}
	windows := map[time.Time]*Window{}
	err := kafkaio.ReadTopic(ctx, bootstrap, spec.Topic, func(m *kafka.Message) error {
		v.Records++
		var tx schemas.Transaction
		if json.Unmarshal(m.Value, &tx) != nil || tx.Status != schemas.StatusPaid {
			return nil
		}
		if _, err := spec.Extract(m.Key, m.Value); err != nil {
			return nil
		}
		v.Paid++
		if isLate[fmt.Sprintf("%d/%d", m.TopicPartition.Partition, m.TopicPartition.Offset)] {
			v.Late++
			if excludeLate {
				return nil
			}
		}
		start := ws.Starts(tx.At)[0]
		w := windows[start]
		if w == nil {
			w = &Window{Start: start, ByUser: map[string]int64{}}
			windows[start] = w
		}
		w.Count++
		w.Sum += tx.Amount
		w.ByUser[tx.UserID]++
		return nil
	})
	if err != nil {
		return v, err
	}
	var stored []schemas.WindowResult
	if err := db.WithContext(ctx).Where("pipeline = ?", spec.Name).Find(&stored).Error; err != nil {
		return v, err
	}
	got := map[time.Time]schemas.WindowResult{}
	for _, r := range stored {
		got[r.WindowStart.UTC()] = r
	}
	starts := make([]time.Time, 0, len(windows))
	for s := range windows {
		starts = append(starts, s)
	}
	slices.SortFunc(starts, func(a, b time.Time) int { return a.Compare(b) })
	for _, s := range starts {
		w := windows[s]
		if !ws.Closed(s, asOf) {
			v.Open++
			continue
		}
		v.Windows++
		var known float64
		for u, c := range w.ByUser {
			known += Amount(u) * float64(c)
		}
		if known != w.Sum {
			v.Differences = append(v.Differences, fmt.Sprintf("window %s: recomputed sum %.0f, but its counts per user say %.0f", s.Format(time.RFC3339), w.Sum, known))
		}
		r, ok := got[s]
		switch {
		case !ok:
			v.Differences = append(v.Differences, fmt.Sprintf("window %s: %d paid transactions, no row", s.Format(time.RFC3339), w.Count))
		case r.Count != w.Count || r.Sum != w.Sum || r.Avg != w.Sum/float64(w.Count):
			v.Differences = append(v.Differences, fmt.Sprintf("window %s: row count %d sum %.0f avg %.2f, recomputed count %d sum %.0f avg %.2f",
				s.Format(time.RFC3339), r.Count, r.Sum, r.Avg, w.Count, w.Sum, w.Sum/float64(w.Count)))
		}
		delete(got, s)
	}
	for s, r := range got {
		if ws.Closed(s, asOf) {
			v.Differences = append(v.Differences, fmt.Sprintf("window %s: row with count %d, but no paid transactions in the topic", s.Format(time.RFC3339), r.Count))
		}
	}
	return v, nil
}
