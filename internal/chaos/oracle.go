package chaos

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"math"
	"slices"
	"strings"
	"time"

	"github.com/confluentinc/confluent-kafka-go/v2/kafka"
	"gorm.io/gorm"

	"github.com/tributary-dev/tributary/internal/kafkaio"
	"github.com/tributary-dev/tributary/internal/sensorsim"
	"github.com/tributary-dev/tributary/pipelines"
	"github.com/tributary-dev/tributary/schemas"
)

// Check is one pipeline's outputs compared with what its input topics hold. Every count
// but Records, Checked, Late and Excused should be zero.
type Check struct {
	Pipeline string
	// Records are the run's input records (join: events, three rows each).
	Records int
	// Checked are the results judged: closed windows, acked events, visits and minutes.
	Checked int
	// Wrong of them differ from the recomputation.
	Wrong int
	// Late records were set aside as late (join: events acked incomplete); WronglyLate of
	// them had reached the broker in time, so must not have been.
	Late, WronglyLate int
	// Lost are records (join: events) missing from results; Duplicated those counted
	// twice, plus output records written twice.
	Lost, Duplicated int
	// Excused results were not judged: the broker had some of their input only after
	// their result was due, so they may rightly differ (sensors).
	Excused int
	// Differences describe the first results that differ.
	Differences []string
	// travelers are the first travelers whose visits differ, for explainTravelers.
	travelers []string
}

func (c *Check) differ(format string, args ...any) {
	c.Wrong++
	c.describe(format, args...)
}

// describe keeps the description of one of the first results found wrong.
func (c *Check) describe(format string, args ...any) {
	if len(c.Differences) < 5 {
		c.Differences = append(c.Differences, fmt.Sprintf(format, args...))
	}
}

// noteTraveler keeps one of the first travelers whose visits differ.
func (c *Check) noteTraveler(id string) {
	if len(c.travelers) < 3 && !slices.Contains(c.travelers, id) {
		c.travelers = append(c.travelers, id)
	}
}

// Outcome holds one Check per pipeline.
type Outcome struct {
	Checks []Check
}

// Clean reports whether nothing was wrong, wrongly late, lost or duplicated.
func (o Outcome) Clean() bool {
	for _, c := range o.Checks {
		if c.Wrong+c.WronglyLate+c.Lost+c.Duplicated > 0 {
			return false
		}
	}
	return len(o.Checks) > 0
}

// Pending says what is not clean yet.
func (o Outcome) Pending(err error) string {
	if err != nil {
		return err.Error()
	}
	var parts, details []string
	for _, c := range o.Checks {
		if n := c.Wrong + c.WronglyLate + c.Lost + c.Duplicated; n > 0 {
			parts = append(parts, fmt.Sprintf("%s %d wrong, %d wrongly late, %d lost, %d duplicated", c.Pipeline, c.Wrong, c.WronglyLate, c.Lost, c.Duplicated))
			for _, d := range c.Differences {
				details = append(details, "\n  "+c.Pipeline+": "+d)
			}
		}
	}
	if len(parts) == 0 {
		return "clean so far"
	}
	return strings.Join(parts, "; ") + strings.Join(details, "")
}

// judge compares the outputs with the inputs: windows closed by asOf, every event, every
// visit of a trip ended an idle gap before asOf.
func judge(ctx context.Context, bootstrap string, db *gorm.DB, l *load, asOf time.Time) (Outcome, error) {
	var o Outcome
	tx := windowCheck{spec: pipelines.Transactions(), decode: func(m *kafka.Message) (windowRecord, bool) {
		var t struct {
			ID     string    `json:"id"`
			Amount float64   `json:"amount"`
			Status string    `json:"status"`
			At     time.Time `json:"at"`
		}
		if json.Unmarshal(m.Value, &t) != nil || !strings.HasPrefix(t.ID, l.runID+"-") || t.Status != schemas.StatusPaid {
			return windowRecord{}, false
		}
		return windowRecord{key: pipelines.GlobalKey, at: t.At, value: t.Amount, ref: ref{'t', t.ID}}, true
	}}
	likes := windowCheck{spec: pipelines.Likes(), decode: func(m *kafka.Message) (windowRecord, bool) {
		var like struct {
			VideoID string    `json:"video_id"`
			At      time.Time `json:"at"`
		}
		if json.Unmarshal(m.Value, &like) != nil || !strings.HasPrefix(like.VideoID, l.runID+"-") {
			return windowRecord{}, false
		}
		return windowRecord{key: like.VideoID, at: like.At, value: 1, ref: likeRef(like.VideoID, like.At)}, true
	}}
	for _, w := range []windowCheck{tx, likes} {
		c, err := w.run(ctx, bootstrap, db, l, asOf)
		if err != nil {
			return o, err
		}
		o.Checks = append(o.Checks, c)
	}
	j, err := joinCheck(ctx, bootstrap, l)
	if err != nil {
		return o, err
	}
	s, err := sensorsCheck(ctx, bootstrap, db, l, asOf)
	if err != nil {
		return o, err
	}
	o.Checks = append(o.Checks, j, s)
	inputs := map[string][]string{schemas.PipelineTransactions: {schemas.TopicTransactions}, schemas.PipelineLikes: {schemas.TopicLikes},
		schemas.PipelineJoin: schemas.JoinTopics, schemas.PipelineSensors: {schemas.TopicSensorReadings}}
	for i := range o.Checks {
		if err := deadLetters(ctx, bootstrap, l.runID, &o.Checks[i], inputs[o.Checks[i].Pipeline]); err != nil {
			return o, err
		}
	}
	return o, nil
}

// deadLetters counts as wrong every record of the run found in the dead-letter topic of
// one of a pipeline's input topics: the load sends only good records, so a dead letter is
// a delivery refused for good that should have been retried.
func deadLetters(ctx context.Context, bootstrap, runID string, c *Check, topics []string) error {
	for _, t := range topics {
		err := kafkaio.ReadTopic(ctx, bootstrap, kafkaio.DLQTopic(t), func(m *kafka.Message) error {
			if bytes.Contains(m.Value, []byte(runID)) {
				c.differ("dead-lettered from %s[%s]@%s: %s", t, kafkaio.Header(m, kafkaio.HeaderSourcePartition),
					kafkaio.Header(m, kafkaio.HeaderSourceOffset), kafkaio.Header(m, kafkaio.HeaderReason))
			}
			return nil
		})
		if err != nil {
			return fmt.Errorf("read the dead letters of %s: %w", t, err)
		}
	}
	return nil
}

// windowRecord is what the oracle reads of an input record, decoded its own way.
type windowRecord struct {
	key   string
	at    time.Time
	value float64
	ref   ref
}

// windowCheck recomputes a window pipeline's windows from its input topic.
type windowCheck struct {
	spec   pipelines.Spec
	decode func(*kafka.Message) (windowRecord, bool)
}

// windowSum is one window recomputed: counted are its records not recorded late, set aside
// those recorded late.
type windowSum struct {
	counted, setAside int64
	sum               float64
}

func (w windowCheck) run(ctx context.Context, bootstrap string, db *gorm.DB, l *load, asOf time.Time) (Check, error) {
	c := Check{Pipeline: w.spec.Name}
	lateAt, err := lateRecords(ctx, db, w.spec.Name)
	if err != nil {
		return c, err
	}
	type windowID struct {
		key   string
		size  time.Duration
		start time.Time
	}
	closeAt := func(id windowID) time.Time { return id.start.Add(id.size + w.spec.Windows[0].Grace) }
	sums := map[windowID]*windowSum{}
	wrongly := map[windowID]*wronglyLate{}
	err = kafkaio.ReadTopic(ctx, bootstrap, w.spec.Topic, func(m *kafka.Message) error {
		r, ok := w.decode(m)
		if !ok {
			return nil
		}
		c.Records++
		_, late := lateAt[recordAt{m.TopicPartition.Partition, int64(m.TopicPartition.Offset)}]
		for i, ws := range w.spec.Windows {
			id := windowID{r.key, ws.Size, r.at.UTC().Truncate(ws.Size)}
			// Late for any window means late for the smallest, which closes first: it is
			// late wrongly if the broker had it before that one closed.
			if late && i == 0 {
				c.Late++
				if acked := l.ackedAt(r.ref); !acked.IsZero() && acked.Before(closeAt(id)) {
					c.WronglyLate++
					wl := wrongly[id]
					if wl == nil {
						wl = &wronglyLate{offsets: map[int32][2]int64{}}
						wrongly[id] = wl
					}
					wl.add(m, acked, lateAt[recordAt{m.TopicPartition.Partition, int64(m.TopicPartition.Offset)}])
				}
			}
			s := sums[id]
			if s == nil {
				s = &windowSum{}
				sums[id] = s
			}
			if late {
				s.setAside++
			} else {
				s.counted++
				s.sum += r.value
			}
		}
		return nil
	})
	if err != nil {
		return c, fmt.Errorf("read %s: %w", w.spec.Topic, err)
	}
	for id, wl := range wrongly {
		c.describe("%s %s window %s (closes %s): %s", id.key, id.size, id.start.Format(time.RFC3339),
			closeAt(id).Sub(l.start).Round(time.Millisecond), wl.String(l.start))
	}
	var rows []schemas.WindowResult
	if err := db.WithContext(ctx).Where("pipeline = ?", w.spec.Name).Find(&rows).Error; err != nil {
		return c, fmt.Errorf("read %s windows: %w", w.spec.Name, err)
	}
	stored := map[windowID]schemas.WindowResult{}
	for _, r := range rows {
		stored[windowID{r.Key, time.Duration(r.SizeSeconds) * time.Second, r.WindowStart.UTC()}] = r
	}
	for id, s := range sums {
		if asOf.Before(closeAt(id)) {
			continue
		}
		c.Checked++
		r, ok := stored[id]
		delete(stored, id)
		// The smallest windows left out exactly the records set aside; a larger window may
		// still have been open for some of them.
		lo, hi := s.counted, s.counted
		if id.size != w.spec.Windows[0].Size {
			hi += s.setAside
		}
		switch {
		case !ok && lo == 0: // it held only late records
		case !ok:
			c.Lost += int(lo)
			c.differ("%s %s window %s: %d records, no row", id.key, id.size, id.start.Format(time.RFC3339), lo)
		case r.Count < lo:
			c.Lost += int(lo - r.Count)
			c.differ("%s %s window %s: count %d, recomputed %d", id.key, id.size, id.start.Format(time.RFC3339), r.Count, lo)
		case r.Count > hi:
			c.Duplicated += int(r.Count - hi)
			c.differ("%s %s window %s: count %d, recomputed %d", id.key, id.size, id.start.Format(time.RFC3339), r.Count, hi)
		case lo == hi && math.Abs(r.Sum-s.sum) > 1e-6*math.Max(1, math.Abs(s.sum)):
			c.differ("%s %s window %s: sum %g, recomputed %g", id.key, id.size, id.start.Format(time.RFC3339), r.Sum, s.sum)
		}
	}
	for id, r := range stored { // the run has a state directory of its own
		if !asOf.Before(closeAt(id)) {
			c.Duplicated += int(r.Count)
			c.differ("%s %s window %s: a row of count %d, no records", id.key, id.size, id.start.Format(time.RFC3339), r.Count)
		}
	}
	twice, err := outputsTwice(ctx, bootstrap, w.spec.OutputTopics, &c)
	c.Duplicated += twice
	return c, err
}

// wronglyLate gathers one window's records recorded late though the broker had them
// before the window closed: where they are, when the broker acknowledged them and when
// the bridge recorded them late.
type wronglyLate struct {
	n                 int
	offsets           map[int32][2]int64 // first and last offset per partition
	firstAck, lastAck time.Time
	firstRec, lastRec time.Time
}

func (w *wronglyLate) add(m *kafka.Message, acked time.Time, rec schemas.LateRecord) {
	w.n++
	p, o := m.TopicPartition.Partition, int64(m.TopicPartition.Offset)
	if r, ok := w.offsets[p]; ok {
		w.offsets[p] = [2]int64{min(r[0], o), max(r[1], o)}
	} else {
		w.offsets[p] = [2]int64{o, o}
	}
	if w.firstAck.IsZero() || acked.Before(w.firstAck) {
		w.firstAck = acked
	}
	w.lastAck = maxTime(w.lastAck, acked)
	if w.firstRec.IsZero() || rec.At.Before(w.firstRec) {
		w.firstRec = rec.At
	}
	w.lastRec = maxTime(w.lastRec, rec.At)
}

// String is relative to the run's start.
func (w *wronglyLate) String(start time.Time) string {
	rel := func(t time.Time) string { return "t+" + t.Sub(start).Round(time.Millisecond).String() }
	parts := slices.Sorted(maps.Keys(w.offsets))
	var where []string
	for _, p := range parts {
		r := w.offsets[p]
		where = append(where, fmt.Sprintf("[%d]@%d-%d", p, r[0], r[1]))
	}
	return fmt.Sprintf("%d records wrongly late at %s, acknowledged %s..%s, recorded late %s..%s",
		w.n, strings.Join(where, " "), rel(w.firstAck), rel(w.lastAck), rel(w.firstRec), rel(w.lastRec))
}

func maxTime(a, b time.Time) time.Time {
	if b.After(a) {
		return b
	}
	return a
}

// recordAt names an input record by its partition and offset, as late records are keyed
// (a window pipeline reads one topic).
type recordAt struct {
	partition int32
	offset    int64
}

// lateRecords are a pipeline's late records by where they are in its input.
func lateRecords(ctx context.Context, db *gorm.DB, pipeline string) (map[recordAt]schemas.LateRecord, error) {
	var late []schemas.LateRecord
	if err := db.WithContext(ctx).Where("pipeline = ?", pipeline).Find(&late).Error; err != nil {
		return nil, fmt.Errorf("read %s late records: %w", pipeline, err)
	}
	out := make(map[recordAt]schemas.LateRecord, len(late))
	for _, r := range late {
		out[recordAt{r.Partition, r.Offset}] = r
	}
	return out, nil
}

// outputsTwice counts the output records, on any of the topics, whose key was written
// before (every window's output must be written once), and describes the first in c.
func outputsTwice(ctx context.Context, bootstrap string, topics map[time.Duration]string, c *Check) (int, error) {
	twice := 0
	for _, topic := range topics {
		seen := map[string]kafka.TopicPartition{}
		err := kafkaio.ReadTopic(ctx, bootstrap, topic, func(m *kafka.Message) error {
			k := string(m.Key)
			if first, ok := seen[k]; ok {
				twice++
				c.describe("%s key %s written twice: [%d]@%d and [%d]@%d", topic, k,
					first.Partition, first.Offset, m.TopicPartition.Partition, m.TopicPartition.Offset)
				return nil
			}
			seen[k] = m.TopicPartition
			return nil
		})
		if err != nil {
			return twice, fmt.Errorf("read %s: %w", topic, err)
		}
	}
	return twice, nil
}

// joinCheck reads the acks: every event acked once, complete unless the broker had one of
// its rows only after the deadline.
func joinCheck(ctx context.Context, bootstrap string, l *load) (Check, error) {
	c := Check{Pipeline: schemas.PipelineJoin}
	l.mu.Lock()
	c.Records = l.events
	l.mu.Unlock()
	acks := map[string][]string{}
	err := kafkaio.ReadTopic(ctx, bootstrap, schemas.TopicAck, func(m *kafka.Message) error {
		var a schemas.Ack
		if json.Unmarshal(m.Value, &a) != nil || !strings.HasPrefix(a.EventID, l.runID+"-e") {
			return nil
		}
		acks[a.EventID] = append(acks[a.EventID], fmt.Sprintf("%s with %d rows, created %s, at %s[%d]@%d (written %s)",
			a.Status, len(a.Arrivals), a.CreatedAt.Format("15:04:05.000"), *m.TopicPartition.Topic,
			m.TopicPartition.Partition, m.TopicPartition.Offset, m.Timestamp.Format("15:04:05.000")))
		if a.Status != schemas.JoinComplete {
			c.Late++
			if l.completeInTime(a.EventID) {
				c.WronglyLate++
				c.describe("acked %s at %s with %d of %d rows (ack at %s[%d]@%d): %s", a.Status,
					a.CreatedAt.Format("15:04:05.000"), len(a.Arrivals), len(schemas.JoinTopics),
					*m.TopicPartition.Topic, m.TopicPartition.Partition, m.TopicPartition.Offset, l.describeEvent(a.EventID))
			}
		}
		return nil
	})
	if err != nil {
		return c, fmt.Errorf("read acks: %w", err)
	}
	for id, got := range acks {
		c.Checked++
		c.Duplicated += len(got) - 1
		if len(got) > 1 {
			c.describe("%s acked %d times: %s; %s", id, len(got), strings.Join(got, "; "), l.describeEvent(id))
		}
	}
	c.Lost = c.Records - c.Checked
	return c, nil
}

// sensorsCheck compares the visits and sensor minutes with the computation from the
// trajectories. A trip any of whose readings reached the broker more than a second after
// it was due is excused, as are the minutes it falls in: the input watermark may rightly
// have ended its visit before the rest came.
func sensorsCheck(ctx context.Context, bootstrap string, db *gorm.DB, l *load, asOf time.Time) (Check, error) {
	c := Check{Pipeline: schemas.PipelineSensors}
	l.mu.Lock()
	trips, traffic := l.trips, l.traffic[:l.readings]
	l.mu.Unlock()
	c.Records = len(traffic)
	if len(trips) == 0 {
		return c, nil
	}
	excused := map[string]bool{} // traveler@sensor
	sent := map[ref]bool{}
	for _, d := range traffic {
		r := readingRef(d.Reading.TravelerID, d.Reading.At)
		sent[r] = true
		if acked := l.ackedAt(r); acked.IsZero() || acked.After(d.Delivered.Add(time.Second)) {
			excused[d.Reading.TravelerID+"@"+d.Reading.SensorID] = true
		}
	}
	var done []sensorsim.Trip // trips sent whole whose visits are due by asOf
	for _, t := range trips {
		whole := true
		for _, r := range t.Readings {
			whole = whole && sent[readingRef(t.TravelerID, r.At)]
		}
		if whole && !asOf.Before(t.Readings[len(t.Readings)-1].At.Add(l.visitDue)) {
			done = append(done, t)
		}
	}
	wantVisits, wantMinutes := sensorsim.Expected(done)
	var visits []schemas.Visit
	if err := db.WithContext(ctx).Where("traveler_id LIKE ?", l.runID+"-%").Find(&visits).Error; err != nil {
		return c, fmt.Errorf("read visits: %w", err)
	}
	stored := map[string][]schemas.Visit{}
	for _, v := range visits {
		stored[v.TravelerID+"@"+v.SensorID] = append(stored[v.TravelerID+"@"+v.SensorID], v)
	}
	near := func(a, b float64) bool { return math.Abs(a-b) <= 1e-9*math.Max(1, math.Abs(b)) }
	for id, w := range wantVisits {
		if excused[id] {
			c.Excused++
			continue
		}
		c.Checked++
		got := stored[id]
		switch {
		case len(got) == 0:
			c.Lost += w.Readings
			c.differ("visit %s: not stored", id)
			c.noteTraveler(w.TravelerID)
		case len(got) > 1:
			c.Duplicated += len(got) - 1
			c.differ("visit %s: stored %d times (split)", id, len(got))
			c.noteTraveler(w.TravelerID)
		default:
			g := got[0]
			if !g.Entered.Equal(w.Entered) || !g.Left.Equal(w.Left) || g.Readings != w.Readings ||
				!near(g.MinSpeed, w.MinSpeed) || !near(g.MaxSpeed, w.MaxSpeed) || !near(g.AvgSpeed, w.AvgSpeed) {
				c.differ("visit %s: stored %d readings %s..%s, want %d %s..%s", id, g.Readings, g.Entered, g.Left, w.Readings, w.Entered, w.Left)
				c.noteTraveler(w.TravelerID)
			}
		}
	}
	// Minutes: excused if any trip in them is, judged once closed.
	excusedMinute := map[string]bool{}
	for _, t := range trips {
		if !excused[t.TravelerID+"@"+t.SensorID] {
			continue
		}
		for _, m := range t.Expected().Minutes {
			excusedMinute[sensorsim.MinuteKey(t.SensorID, t.Type, m.Start)] = true
		}
	}
	var rows []schemas.WindowResult
	if err := db.WithContext(ctx).Where("pipeline = ? AND key LIKE ?", schemas.PipelineSensors, l.runID+"-%").Find(&rows).Error; err != nil {
		return c, fmt.Errorf("read sensor minutes: %w", err)
	}
	minutes := map[string]schemas.WindowResult{}
	for _, r := range rows {
		s, typ := schemas.SplitSensorKey(r.Key)
		minutes[sensorsim.MinuteKey(s, typ, r.WindowStart)] = r
	}
	for k, w := range wantMinutes {
		if w.Start.Add(time.Minute + SensorGrace).After(asOf) {
			continue
		}
		if excusedMinute[k] {
			c.Excused++
			continue
		}
		c.Checked++
		r, ok := minutes[k]
		switch {
		case !ok:
			c.Lost += int(w.Count)
			c.differ("sensor minute %s: no row", k)
		case r.Count != w.Count || !near(r.Min, w.Min) || !near(r.Max, w.Max) || !near(r.Avg, w.Avg()):
			c.differ("sensor minute %s: count %d min %.4f max %.4f avg %.4f, want %d %.4f %.4f %.4f",
				k, r.Count, r.Min, r.Max, r.Avg, w.Count, w.Min, w.Max, w.Avg())
		}
	}
	late, err := lateRecords(ctx, db, schemas.PipelineSensors)
	if err != nil {
		return c, err
	}
	for _, r := range late {
		rest, ok := strings.CutPrefix(r.Topic, schemas.VisitSourcePrefix+l.runID+"-")
		if !ok {
			continue
		}
		c.Late++
		if traveler, sensor, ok := strings.Cut(l.runID+"-"+rest, "/"); ok && !excused[traveler+"@"+sensor] {
			c.WronglyLate++
		}
	}
	twice, err := outputsTwice(ctx, bootstrap, map[time.Duration]string{time.Minute: schemas.TopicSensorMetrics}, &c)
	c.Duplicated += twice
	return c, err
}
