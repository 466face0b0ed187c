package workflows

import (
	"fmt"
	"slices"
	"time"

	"go.temporal.io/sdk/workflow"

	"github.com/tributary-dev/tributary/activities"
	"github.com/tributary-dev/tributary/schemas"
	"github.com/tributary-dev/tributary/travel"
)

// TravelerParams configure a TravelerWorkflow. One code path serves both modes: per
// traveler id (Sharded false; the run ends once its traveler went quiet) and sharded (a
// long-running workflow that follows many travelers and continues as new).
type TravelerParams struct {
	Sharded bool
	// Disorder is how far out of event-time order readings may arrive.
	Disorder time.Duration
	// IdleGap ends a visit when its traveler sent no reading of it for this long.
	IdleGap time.Duration
	// MaxHistory makes a shard continue as new after this many history events, even before
	// the server suggests it; 0 waits for the suggestion.
	MaxHistory int
	// FlushDelay lets ended visits wait up to this long to be flushed together, so that a
	// shard sends the window workflows fewer, larger updates; 0 flushes after every signal.
	FlushDelay time.Duration
	State      *TravelerState
	// Pins are the versions the run takes, as in JoinParams.
	Pins Pins `json:",omitzero"`
}

// TravelerState is a TravelerWorkflow's serialisable state.
type TravelerState struct {
	Travelers map[string]*TravelerTrack
	// Applied maps schemas.TopicPartition to the highest offset applied: a redelivered reading at
	// or below it is ignored.
	Applied map[string]int64
	// Input is the readings' input watermark as this workflow knows it: visits end when it
	// passes their traveler's last reading plus the idle gap (runs of version input-watermark).
	Input time.Time
	// Mark is the highest stage mark of the deliveries applied; Cleared and ClearedOldest
	// are the mark and the oldest held reading last recorded (watermark.Clear), in runs of
	// version stage-watermark.
	Mark          int64     `json:",omitzero"`
	Cleared       int64     `json:",omitzero"`
	ClearedOldest time.Time `json:",omitzero"`
	Stats         TravelerStats
}

// TravelerTrack is one traveler being followed.
type TravelerTrack struct {
	Tracker travel.Tracker
	// LastArrival is when its last reading arrived: IdleGap plus Disorder after it, the
	// traveler's visits end. It is input time (the reading's own time, or the input
	// watermark if later) in runs of version input-watermark, workflow time in older ones.
	LastArrival time.Time
}

// TravelerStats count what a TravelerWorkflow (or shard, across runs) has seen.
type TravelerStats struct {
	Readings    int64 // readings applied
	Redelivered int64 // at or below the applied offset, ignored
	Stale       int64 // beyond the allowed disorder, or of a visit already final
	Rejected    int64 // impossible jumps, dead-lettered
	Visits      int64 // visits stored
	// LatePartials are visit minutes that reached a sensor minute already closed.
	LatePartials int64
}

// TravelerStatus answers QueryStatus.
type TravelerStatus struct {
	// Following is how many travelers have readings or visits not yet final.
	Following int
	Stats     TravelerStats
}

// TravelerCurrent answers QueryCurrent: a traveler's live visits.
type TravelerCurrent struct {
	TravelerID string
	Known      bool
	Open       []travel.Visit
	// Pending readings wait for the allowed disorder to pass.
	Pending int
}

// TravelerWorkflow follows travelers through sensors' views: it orders each traveler's
// readings by event time within the allowed disorder, measures speeds between consecutive
// readings of a visit, ends a visit after an idle gap, and flushes ended visits (rows,
// speeds per sensor minute, refused readings) through an activity.
func TravelerWorkflow(ctx workflow.Context, p TravelerParams) (TravelerStats, error) {
	ctx = withPins(ctx, p.Pins)
	t := newTravelers(ctx, p)
	if byInputWatermark(ctx) {
		t.in = (&inputClock{pipeline: schemas.PipelineSensors, at: &t.state.Input}).holdReads(ctx)
	}
	// Version 1 flushes through a regular activity: a local one holds its workflow task
	// while it waits for the window workflows' updates, and a thousand travelers flushing
	// at once then held every workflow task slot those updates needed.
	t.flushAsActivity = version(ctx, versionFlushActivity) == 1
	t.stage = byStageWatermark(ctx)
	if err := workflow.SetQueryHandler(ctx, QueryCurrent, t.current); err != nil {
		return TravelerStats{}, fmt.Errorf("register query: %w", err)
	}
	status := func() (TravelerStatus, error) {
		return TravelerStatus{Following: len(t.state.Travelers), Stats: t.state.Stats}, nil
	}
	if err := workflow.SetQueryHandler(ctx, QueryStatus, status); err != nil {
		return TravelerStats{}, fmt.Errorf("register query: %w", err)
	}
	signals := workflow.GetSignalChannel(ctx, SignalTravelerReadings)
	due := func() bool { return continueAsNewDue(ctx, p.MaxHistory) }
	err := runEntity[schemas.TravelerSignal](ctx, []workflow.ReceiveChannel{signals}, t, p.Sharded, due, func() error {
		p.State, p.Pins = t.state, CurrentPins
		return workflow.NewContinueAsNewError(ctx, TravelerWorkflow, p)
	})
	return t.state.Stats, err
}

// versionFlushActivity is the change id of flushing visits through a regular activity.
const versionFlushActivity = "flush-visits-activity"

type travelers struct {
	// in ends visits by the input watermark; nil in runs recorded before that change.
	in              *inputClock
	flushAsActivity bool
	// stage records, after each settle, the oldest reading this workflow holds, so that the
	// sensor minutes wait for it (watermark.Clear; version stage-watermark).
	stage  bool
	p      TravelerParams
	state  *TravelerState
	writer string
	// closed and rejected wait for the next flush, since heldSince.
	closed    []travel.Visit
	rejected  []travel.Rejected
	heldSince time.Time
}

// maxHeldVisits flushes held visits at once when this many are waiting.
const maxHeldVisits = 500

func newTravelers(ctx workflow.Context, p TravelerParams) *travelers {
	s := p.State
	if s == nil {
		s = &TravelerState{}
	}
	if s.Travelers == nil {
		s.Travelers = map[string]*TravelerTrack{}
	}
	if s.Applied == nil {
		s.Applied = map[string]int64{}
	}
	return &travelers{p: p, state: s, writer: runWriter(ctx)}
}

// current answers for one traveler; a per-traveler workflow also answers an empty id.
func (t *travelers) current(travelerID string) (TravelerCurrent, error) {
	if travelerID == "" && !t.p.Sharded {
		for _, id := range workflow.DeterministicKeys(t.state.Travelers) {
			travelerID = id
		}
	}
	out := TravelerCurrent{TravelerID: travelerID}
	if tr, ok := t.state.Travelers[travelerID]; ok {
		out.Known, out.Open, out.Pending = true, tr.Tracker.OpenVisits(), len(tr.Tracker.Pending)
	}
	return out, nil
}

// apply takes one signal's readings: redeliveries are dropped by offset; a traveler new to
// this run first learns from the database where its stored visits end.
func (t *travelers) apply(ctx workflow.Context, s schemas.TravelerSignal) {
	if t.in != nil {
		t.in.observe(s.Watermark)
	}
	t.state.Mark = max(t.state.Mark, s.Mark)
	fresh := s.Readings[:0:0]
	var unknown []string
	for _, r := range s.Readings {
		tp := schemas.TopicPartition(r.Ref.Topic, r.Ref.Partition)
		if w, seen := t.state.Applied[tp]; seen && r.Ref.Offset <= w {
			t.state.Stats.Redelivered++
			continue
		}
		t.state.Applied[tp] = r.Ref.Offset
		fresh = append(fresh, r)
		if _, ok := t.state.Travelers[r.TravelerID]; !ok && !slices.Contains(unknown, r.TravelerID) {
			unknown = append(unknown, r.TravelerID)
		}
	}
	floors := t.floors(ctx, unknown)
	now := workflow.Now(ctx)
	for _, r := range fresh {
		tr := t.state.Travelers[r.TravelerID]
		if tr == nil {
			tr = &TravelerTrack{Tracker: travel.Tracker{Disorder: t.p.Disorder, IdleGap: t.p.IdleGap, Floor: floors[r.TravelerID]}}
			t.state.Travelers[r.TravelerID] = tr
		}
		tr.LastArrival = t.arrival(now, tr, r)
		closed, rejected := tr.Tracker.Add(r)
		t.closed = append(t.closed, closed...)
		t.rejected = append(t.rejected, rejected...)
		t.state.Stats.Readings++
	}
}

// floors asks the database where the stored visits of travelers new to this run end.
func (t *travelers) floors(ctx workflow.Context, ids []string) map[string]map[string]time.Time {
	out := map[string]map[string]time.Time{}
	if len(ids) == 0 {
		return out
	}
	var a *activities.Activities
	if err := runDurably(ctx, a.TravelerFloors, &out, ids); err != nil {
		// Retried until the workflow is cancelled; only cancellation gets here.
		workflow.GetLogger(ctx).Warn("traveler floors", "err", err)
	}
	return out
}

// arrival is the time a reading counts as arrived at: workflow time in older runs; else the
// reading's own time, or the input watermark if that is later (readings replayed from long
// ago still get the full idle gap), never before the traveler's last.
func (t *travelers) arrival(now time.Time, tr *TravelerTrack, r travel.Reading) time.Time {
	if t.in == nil {
		return now
	}
	return latest(r.At, t.in.now(), tr.LastArrival)
}

// nextIdle is when the first followed traveler goes quiet, zero when none is followed.
func (t *travelers) nextIdle() time.Time {
	var next time.Time
	for _, id := range workflow.DeterministicKeys(t.state.Travelers) {
		at := t.state.Travelers[id].LastArrival.Add(t.p.IdleGap + t.p.Disorder)
		if next.IsZero() || at.Before(next) {
			next = at
		}
	}
	return next
}

// nextWake is when the workflow has something to do without a signal: a traveler goes
// quiet, or held visits are due; zero when neither.
func (t *travelers) nextWake() time.Time {
	next := t.nextIdle()
	if t.in != nil && !next.IsZero() {
		next = t.in.wake(next)
	}
	if len(t.closed)+len(t.rejected) > 0 {
		if due := t.heldSince.Add(t.p.FlushDelay); next.IsZero() || due.Before(next) {
			next = due
		}
	}
	return next
}

// settle ends the visits of travelers gone quiet and flushes what became final. Unless
// forced, ended visits wait up to FlushDelay to go with others.
func (t *travelers) settle(ctx workflow.Context, force bool) (bool, error) {
	now := workflow.Now(ctx)
	quiet := now // what a traveler's quiet time is judged against
	if t.in != nil {
		if next := t.nextIdle(); !next.IsZero() {
			t.in.refresh(ctx, next)
		}
		quiet = t.in.now()
	}
	for _, id := range workflow.DeterministicKeys(t.state.Travelers) {
		tr := t.state.Travelers[id]
		if quiet.Before(tr.LastArrival.Add(t.p.IdleGap + t.p.Disorder)) {
			continue
		}
		closed, rejected := tr.Tracker.Flush()
		t.closed = append(t.closed, closed...)
		t.rejected = append(t.rejected, rejected...)
		t.state.Stats.Stale += tr.Tracker.Stale
		delete(t.state.Travelers, id)
	}
	held := len(t.closed) + len(t.rejected)
	if held == 0 {
		t.clearStage(ctx)
		return false, nil
	}
	if t.heldSince.IsZero() {
		t.heldSince = now
	}
	if !force && held < maxHeldVisits && now.Before(t.heldSince.Add(t.p.FlushDelay)) {
		t.clearStage(ctx)
		return false, nil
	}
	t.heldSince = time.Time{}
	req := activities.FlushVisitsRequest{Writer: t.writer, Visits: t.closed, Rejected: t.rejected}
	t.closed, t.rejected = nil, nil
	var a *activities.Activities
	var res activities.FlushVisitsResult
	var err error
	if t.flushAsActivity {
		err = workflow.ExecuteActivity(workflow.WithActivityOptions(ctx, flushOptions), a.FlushVisits, req).Get(ctx, &res)
	} else {
		err = runDurably(ctx, a.FlushVisits, &res, req)
	}
	if err != nil {
		return true, fmt.Errorf("flush %d visits: %w", len(req.Visits), err)
	}
	t.state.Stats.Visits += int64(len(req.Visits))
	t.state.Stats.Rejected += int64(len(req.Rejected))
	t.state.Stats.LatePartials += int64(res.LatePartials)
	t.clearStage(ctx)
	return true, nil
}

// clearStage records the oldest reading the workflow still holds (in a visit open or ended
// and not flushed, or waiting out the disorder) once it has applied a new stage mark or
// that oldest reading changed. A record refused because a delivery not applied yet came
// meanwhile is made again after it. A record that fails only delays the sensor minutes,
// which wait on the old record meanwhile; the next settle tries again.
func (t *travelers) clearStage(ctx workflow.Context) {
	if !t.stage || t.state.Mark == 0 {
		return
	}
	oldest := t.oldestHeld()
	if t.state.Mark == t.state.Cleared && oldest.Equal(t.state.ClearedOldest) {
		return
	}
	var a *activities.Activities
	var ok bool
	req := activities.ClearStageRequest{Pipeline: schemas.PipelineSensors, WorkflowID: workflow.GetInfo(ctx).WorkflowExecution.ID,
		Mark: t.state.Mark, Oldest: oldest}
	err := workflow.ExecuteLocalActivity(workflow.WithLocalActivityOptions(ctx, watermarkOptions), a.ClearStage, req).Get(ctx, &ok)
	if err != nil {
		workflow.GetLogger(ctx).Warn("clear stage marks", "err", err)
		return
	}
	if ok {
		t.state.Cleared, t.state.ClearedOldest = req.Mark, oldest
	}
}

// oldestHeld is the event time of the oldest reading the workflow holds: in a visit open or
// ended and waiting to be flushed, or waiting out the disorder; zero when it holds none.
func (t *travelers) oldestHeld() time.Time {
	var oldest time.Time
	note := func(at time.Time) {
		if !at.IsZero() && (oldest.IsZero() || at.Before(oldest)) {
			oldest = at
		}
	}
	for _, v := range t.closed {
		note(v.Entered)
	}
	for _, id := range workflow.DeterministicKeys(t.state.Travelers) {
		tr := t.state.Travelers[id].Tracker
		for _, r := range tr.Pending {
			note(r.At)
		}
		for _, v := range tr.OpenVisits() {
			note(v.Entered)
		}
	}
	return oldest.UTC()
}

// finished reports that a per-traveler run's traveler went quiet and its visits are stored.
func (t *travelers) finished() bool { return len(t.state.Travelers) == 0 }
