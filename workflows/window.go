package workflows

import (
	"cmp"
	"fmt"
	"slices"
	"strings"
	"time"

	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/workflow"

	"github.com/tributary-dev/tributary/activities"
	"github.com/tributary-dev/tributary/schemas"
	"github.com/tributary-dev/tributary/window"
)

// WindowParams configure a WindowWorkflow: one key, a shard of keys, or a whole stream.
type WindowParams struct {
	Pipeline string
	Windows  []window.Spec
	// Idle ends the run once no window is open and nothing arrived for this long; 0 runs
	// until continue-as-new (shards and global keys).
	Idle time.Duration
	// MaxUpdates makes the run continue as new after this many batches; the server allows
	// at most 2,000 updates per run.
	MaxUpdates int
	State      *WindowState
	// Pins are the versions the run takes, as in JoinParams.
	Pins Pins `json:",omitzero"`
}

// WindowState is a WindowWorkflow's serialisable state.
type WindowState struct {
	// Open windows by schemas.WindowKey.
	Open map[string]*OpenWindow
	// Applied maps schemas.TopicPartition to the last offset of the last batch applied.
	Applied map[string]int64
	// Watermark is the newest event time aggregated.
	Watermark time.Time
	// Input is the pipeline's input watermark as this workflow knows it: windows close
	// when it passes their end plus grace (runs of version input-watermark).
	Input time.Time
	// Late keeps the batches answered with late partials, for a sender that lost the answer
	// (schemas.LateSpan), for lateSpanRetention and at most maxLateSpans of them.
	Late  []schemas.LateSpan `json:",omitempty"`
	Stats WindowStats
}

// A sender that lost an answer with late partials sends the same records again within
// seconds (its successor takes the partitions over after the group's session timeout), or
// minutes when the workflows were down. Late batches are rare outside outages, so a few
// hundred spans cover an outage's worth.
const (
	lateSpanRetention = 30 * time.Minute
	maxLateSpans      = 500
)

// OpenWindow is a window still taking records.
type OpenWindow struct {
	Key         string
	SizeSeconds int64
	Start       time.Time
	CloseAt     time.Time
	Partial     window.Partial
}

// WindowStats count what a window workflow (across its runs) has seen.
type WindowStats struct {
	Batches      int64
	Records      int64
	LatePartials int64
	LateRecords  int64
	Closed       int64
	// AlreadyFinal counts windows another run had already written; what this run
	// aggregated into them was dropped.
	AlreadyFinal int64
}

// WindowStatus answers QueryStatus.
type WindowStatus struct {
	Open      int
	Watermark time.Time
	Input     time.Time
	Applied   map[string]int64
	Stats     WindowStats
}

// WindowWorkflow aggregates a key's (or shard's) records into event-time windows, closes
// each once its pipeline's input watermark passes its end plus grace, and flushes closed
// windows through a local activity. A partial for a window already closed is late. The
// timer at a window's close time only says when to look: while the input is behind (a
// bridge down, a backlog), the window waits for it. Runs recorded before that change
// close by the clock or the newest event time aggregated, whichever came first.
func WindowWorkflow(ctx workflow.Context, p WindowParams) error {
	ctx = withPins(ctx, p.Pins)
	w := newWindower(p)
	w.pruneSources = version(ctx, versionPruneSources) == 1
	w.recorded = recordedWrites(ctx)
	if byInputWatermark(ctx) {
		w.in = &inputClock{pipeline: p.Pipeline, at: &w.state.Input}
		if p.Pipeline == schemas.PipelineSensors {
			w.in.stage = byStageWatermark(ctx)
		}
	}
	if err := workflow.SetQueryHandler(ctx, QueryStatus, w.status); err != nil {
		return err
	}
	if err := workflow.SetQueryHandler(ctx, QueryOpen, w.openWindows); err != nil {
		return err
	}
	updates := 0
	lastActive := workflow.Now(ctx)
	err := workflow.SetUpdateHandlerWithOptions(ctx, UpdateWindowBatch,
		func(ctx workflow.Context, b schemas.WindowBatch) (schemas.WindowAck, error) {
			updates++
			lastActive = workflow.Now(ctx)
			ack := w.apply(b, workflow.Now(ctx))
			w.dirty = true
			return ack, nil
		},
		workflow.UpdateHandlerOptions{Validator: w.validate})
	if err != nil {
		return fmt.Errorf("register update: %w", err)
	}
	for {
		if err := w.flushDue(ctx); err != nil {
			return err
		}
		w.prune(workflow.Now(ctx))
		if p.MaxUpdates > 0 && updates >= p.MaxUpdates || workflow.GetInfo(ctx).GetContinueAsNewSuggested() {
			return w.continueAsNew(ctx, p)
		}
		next := w.nextClose()
		if w.in != nil && !next.IsZero() && w.in.refresh(ctx, next) {
			continue // the input has passed a window's close: flush it
		}
		wait := time.Duration(0)
		if !next.IsZero() {
			if w.in != nil {
				next = w.in.wake(next)
			}
			wait = max(next.Sub(workflow.Now(ctx)), time.Millisecond)
		} else if p.Idle > 0 {
			wait = max(lastActive.Add(p.Idle).Sub(workflow.Now(ctx)), time.Millisecond)
		}
		w.dirty = false
		if wait == 0 {
			if err := workflow.Await(ctx, func() bool { return w.dirty }); err != nil {
				return err
			}
			continue
		}
		if _, err := workflow.AwaitWithTimeout(ctx, wait, func() bool { return w.dirty }); err != nil {
			return err
		}
		if p.Idle > 0 && len(w.state.Open) == 0 && !workflow.Now(ctx).Before(lastActive.Add(p.Idle)) {
			// Let updates that were accepted finish before the run ends.
			if err := workflow.Await(ctx, func() bool { return workflow.AllHandlersFinished(ctx) }); err != nil {
				return err
			}
			if len(w.state.Open) == 0 {
				return nil
			}
		}
	}
}

// versionPruneSources is the change id of dropping finished visit sources from Applied.
const versionPruneSources = "prune-visit-sources"

type windower struct {
	// pruneSources drops the Applied entries of visit sources once final (see prune).
	pruneSources bool
	// recorded flushes through runRecorded; runs recorded before use runDurably.
	recorded bool
	// in judges closes by the input watermark; nil in runs recorded before that change.
	in    *inputClock
	p     WindowParams
	state *WindowState
	dirty bool
	specs map[int64]window.Spec
}

func newWindower(p WindowParams) *windower {
	s := p.State
	if s == nil {
		s = &WindowState{}
	}
	// Open windows are keyed by schemas.WindowKey. A state carried over by a run of an older
	// version may spell its keys otherwise, so they are made again from the windows.
	open := make(map[string]*OpenWindow, len(s.Open))
	for _, k := range workflow.DeterministicKeys(s.Open) {
		ow := s.Open[k]
		open[schemas.WindowKey(ow.Key, ow.SizeSeconds, ow.Start)] = ow
	}
	s.Open = open
	if s.Applied == nil {
		s.Applied = map[string]int64{}
	}
	w := &windower{p: p, state: s, specs: map[int64]window.Spec{}}
	for _, sp := range p.Windows {
		w.specs[int64(sp.Size/time.Second)] = sp
	}
	return w
}

func (w *windower) status() (WindowStatus, error) {
	return WindowStatus{Open: len(w.state.Open), Watermark: w.state.Watermark, Input: w.state.Input, Applied: w.state.Applied, Stats: w.state.Stats}, nil
}

// openWindows answers QueryOpen: the windows of key still taking records (every key's
// when key is empty), by key, size and start, with what they aggregated so far. Like the
// interactive queries of Kafka Streams, it reads the live state, not the results table.
func (w *windower) openWindows(key string) ([]OpenWindow, error) {
	out := []OpenWindow{}
	for _, id := range workflow.DeterministicKeys(w.state.Open) {
		if o := w.state.Open[id]; key == "" || o.Key == key {
			out = append(out, *o)
		}
	}
	slices.SortFunc(out, func(a, b OpenWindow) int {
		return cmp.Or(cmp.Compare(a.Key, b.Key), cmp.Compare(a.SizeSeconds, b.SizeSeconds), a.Start.Compare(b.Start))
	})
	return out, nil
}

// validate accepts a batch only if every range starts past what was applied of its
// partition; otherwise it answers with the Applied map, and no history is written.
func (w *windower) validate(b schemas.WindowBatch) error {
	for _, r := range b.Ranges {
		if applied, ok := w.state.Applied[r.TopicPartition()]; ok && r.From <= applied {
			return newOffsetsAppliedError(
				fmt.Sprintf("batch range %s [%d,%d] overlaps applied offset %d", r.TopicPartition(), r.From, r.To, applied),
				w.appliedCopy(), w.lateOver(b.Ranges))
		}
	}
	for _, pt := range b.Partials {
		if _, ok := w.specs[pt.SizeSeconds]; !ok {
			return temporal.NewNonRetryableApplicationError(fmt.Sprintf("no %ds windows in pipeline %s", pt.SizeSeconds, w.p.Pipeline), ErrorTypeUnknownWindow, nil)
		}
	}
	return nil
}

// appliedCopy is the Applied map as it is now, for an answer encoded later.
func (w *windower) appliedCopy() map[string]int64 {
	out := make(map[string]int64, len(w.state.Applied))
	for _, k := range workflow.DeterministicKeys(w.state.Applied) {
		out[k] = w.state.Applied[k]
	}
	return out
}

// lateOver is the late spans that cover any offset of ranges.
func (w *windower) lateOver(ranges []schemas.OffsetRange) []schemas.LateSpan {
	var out []schemas.LateSpan
	for _, s := range w.state.Late {
		if slices.ContainsFunc(ranges, s.Overlaps) {
			out = append(out, s)
		}
	}
	return out
}

// rememberLate keeps a batch's late windows for a repeat of its records (schemas.LateSpan),
// dropping spans past their retention.
func (w *windower) rememberLate(b schemas.WindowBatch, late []int, now time.Time) {
	w.state.Late = slices.DeleteFunc(w.state.Late, func(s schemas.LateSpan) bool { return now.Sub(s.At) > lateSpanRetention })
	if len(late) == 0 {
		return
	}
	span := schemas.LateSpan{Ranges: slices.Clone(b.Ranges), At: now}
	for _, i := range late {
		pt := b.Partials[i]
		span.Windows = append(span.Windows, schemas.WindowKey(pt.Key, pt.SizeSeconds, pt.Start))
	}
	w.state.Late = append(w.state.Late, span)
	if n := len(w.state.Late) - maxLateSpans; n > 0 {
		w.state.Late = slices.Delete(w.state.Late, 0, n)
	}
}

// apply merges a batch: a partial for a window the input watermark has passed (its close
// time, counting the watermark the batch carries) is late; one for an open window joins
// it; any other opens its window. A record is late only if it reached its partition after
// the partition was read past the window's close, or after records dated past it.
func (w *windower) apply(b schemas.WindowBatch, now time.Time) schemas.WindowAck {
	var ack schemas.WindowAck
	for _, r := range b.Ranges {
		w.state.Applied[r.TopicPartition()] = r.To
	}
	w.state.Stats.Batches++
	if w.in != nil {
		w.in.observe(b.Watermark)
	}
	horizon := w.horizon(now)
	for i, pt := range b.Partials {
		id := schemas.WindowKey(pt.Key, pt.SizeSeconds, pt.Start)
		w.state.Stats.Records += pt.Partial.Count
		spec := w.specs[pt.SizeSeconds]
		if ow, ok := w.state.Open[id]; ok && (w.in == nil || !spec.Closed(pt.Start, horizon)) {
			ow.Partial.Merge(pt.Partial)
			continue
		}
		if spec.Closed(pt.Start, horizon) {
			ack.Late = append(ack.Late, i)
			w.state.Stats.LatePartials++
			w.state.Stats.LateRecords += pt.Partial.Count
			continue
		}
		w.state.Open[id] = &OpenWindow{Key: pt.Key, SizeSeconds: pt.SizeSeconds, Start: pt.Start, CloseAt: spec.CloseAt(pt.Start), Partial: pt.Partial}
	}
	for _, pt := range b.Partials {
		if pt.Partial.Last.After(w.state.Watermark) {
			w.state.Watermark = pt.Partial.Last
		}
	}
	w.rememberLate(b, ack.Late, now)
	return ack
}

// prune drops the Applied entries of visit sources (schemas.VisitSourcePrefix) whose every
// window is final. A Kafka partition's entry is kept for good, but a traveler's visits at a
// sensor are a source of their own, and a busy sensor would otherwise carry one entry per
// traveler it ever saw. Such an entry's offset is its last visit's end: once the watermark
// or the clock is past that end plus the longest window and its grace, every window the
// visit touched is closed, so a repeat of it could only be late, never applied.
func (w *windower) prune(now time.Time) {
	if !w.pruneSources {
		return
	}
	horizon := w.horizon(now)
	var span time.Duration
	for _, sp := range w.p.Windows {
		span = max(span, sp.Size+sp.Grace)
	}
	for _, k := range workflow.DeterministicKeys(w.state.Applied) {
		if strings.HasPrefix(k, schemas.VisitSourcePrefix) && time.UnixMilli(w.state.Applied[k]).Add(span).Before(horizon) {
			delete(w.state.Applied, k)
		}
	}
}

// horizon is the time a window is final at: the input watermark, or (runs recorded before
// it) the clock or the newest event time aggregated, whichever is later.
func (w *windower) horizon(now time.Time) time.Time {
	if w.in != nil {
		return w.in.now()
	}
	return latest(now, w.state.Watermark)
}

// nextClose is the earliest close time of an open window, zero when none is open.
func (w *windower) nextClose() time.Time {
	var next time.Time
	for _, id := range workflow.DeterministicKeys(w.state.Open) {
		if c := w.state.Open[id].CloseAt; next.IsZero() || c.Before(next) {
			next = c
		}
	}
	return next
}

// flushDue closes the windows whose close time the clock or the watermark has reached and
// writes them, in window order.
func (w *windower) flushDue(ctx workflow.Context) error {
	now := workflow.Now(ctx)
	horizon := w.horizon(now)
	var due []activities.ClosedWindow
	for _, id := range workflow.DeterministicKeys(w.state.Open) {
		ow := w.state.Open[id]
		if ow.CloseAt.After(horizon) {
			continue
		}
		due = append(due, activities.ClosedWindow{Key: ow.Key, SizeSeconds: ow.SizeSeconds, Start: ow.Start, Partial: ow.Partial})
		delete(w.state.Open, id)
	}
	if len(due) == 0 {
		return nil
	}
	req := activities.FlushRequest{Pipeline: w.p.Pipeline, Writer: runWriter(ctx), Windows: due, ClosedAt: now}
	var a *activities.Activities
	var res activities.FlushResult
	run := runDurably
	if w.recorded {
		run = runRecorded
	}
	if err := run(ctx, a.FlushWindows, &res, req); err != nil {
		return fmt.Errorf("flush %d windows: %w", len(due), err)
	}
	w.state.Stats.Closed += int64(len(due) - len(res.AlreadyFinal))
	w.state.Stats.AlreadyFinal += int64(len(res.AlreadyFinal))
	return nil
}

// continueAsNew waits for accepted updates to finish, flushes what is due, and carries the
// state into a new run.
func (w *windower) continueAsNew(ctx workflow.Context, p WindowParams) error {
	if err := workflow.Await(ctx, func() bool { return workflow.AllHandlersFinished(ctx) }); err != nil {
		return err
	}
	if err := w.flushDue(ctx); err != nil {
		return err
	}
	p.State, p.Pins = w.state, CurrentPins
	return workflow.NewContinueAsNewError(ctx, WindowWorkflow, p)
}
