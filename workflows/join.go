package workflows

import (
	"fmt"
	"time"

	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/workflow"

	"github.com/tributary-dev/tributary/activities"
	"github.com/tributary-dev/tributary/schemas"
)

// MaxRunUpdates is the most updates the server takes in one workflow run
// (limit.workflowExecution.maxTotalUpdates); it refuses the rest.
const MaxRunUpdates = 2000

// JoinShardUpdates is how many updates a shard takes before it continues as new, well under
// MaxRunUpdates.
const JoinShardUpdates = 1000

// JoinParams configure a JoinWorkflow. One code path serves both modes: per event id
// (Sharded false; the run ends with its event) and sharded (a long-running workflow that
// tracks many event ids and continues as new to bound its history).
type JoinParams struct {
	Sharded bool
	// Deadline is how long an event id waits, from its first row, for the other topics.
	Deadline time.Duration
	// RecentDone is how many finished event ids a shard remembers to recognise a late
	// duplicate at once; older ones are recognised by the database when they finish again.
	RecentDone int
	// MaxHistory makes a shard continue as new after this many history events, even before
	// the server suggests it. 0 means only when suggested.
	MaxHistory int
	// MaxUpdates makes a shard continue as new after this many updates; 0 means
	// JoinShardUpdates.
	MaxUpdates int
	// First are the rows a per-event run is started with (pinned set 2 on): the bridge
	// starts the run with its event's rows, and signals only the rows of later batches.
	// Runs started by SignalWithStart have none.
	First *schemas.JoinSignal `json:",omitempty"`
	// State is carried over continue-as-new by runs recorded before PackedState.
	State *JoinState
	// PackedState is the state a run carries over continue-as-new, packed (packState):
	// compressed, it stays under the server's limit on a command's payloads with three
	// times as many rows pending or more.
	PackedState []byte
	// Pins are the versions of the code's changes the run takes (CurrentPins for runs the
	// bridges start and runs continued as new; zero asks GetVersion, as older runs did).
	Pins Pins `json:",omitzero"`
}

// JoinState is everything a JoinWorkflow knows; it is small and serialisable.
type JoinState struct {
	// Pending holds event ids still waiting for a topic.
	Pending map[string]*PendingJoin
	// Queue lists pending ids in order of first arrival, which is also deadline order.
	Queue []string
	// Applied maps schemas.TopicPartition to the highest offset applied: a redelivered record
	// at or below it is ignored.
	Applied map[string]int64
	// Done lists the most recently finished ids (sharded mode), oldest first.
	Done []string
	// Input is the join's input watermark as this workflow knows it: deadlines fall due
	// when it passes them (runs of version input-watermark).
	Input time.Time
	Stats JoinStats
}

// PendingJoin is one event id's arrivals so far.
type PendingJoin struct {
	Rows map[string]schemas.JoinArrival
	// Deadline is when the event is given up as incomplete: input time (the join's input
	// watermark) in runs of version input-watermark, workflow time in older ones.
	Deadline   time.Time
	Duplicates int
}

// JoinStats count what a JoinWorkflow (or shard, across its runs) has seen.
type JoinStats struct {
	Arrivals    int64 // rows applied
	Redelivered int64 // records at or below the applied offset, ignored
	Duplicates  int64 // second rows for a topic before the event finished
	Late        int64 // rows for an event already finished
	Complete    int64
	Incomplete  int64
}

// JoinStatus answers QueryStatus.
type JoinStatus struct {
	Pending int
	// Topics of the pending event, in per-event mode.
	Topics []string
	Stats  JoinStats
}

// JoinResult is a per-event JoinWorkflow's outcome.
type JoinResult struct {
	Status     string
	Duplicates int
}

// JoinWorkflow joins rows of the three join topics by event id. When an id has a row from
// every topic, or its deadline passes first, one local activity stores its rows and joined
// event and emits its ack. The deadline counts in input time: an event is incomplete once
// the join's input watermark has passed its first row's time plus the deadline, so rows
// that wait in Kafka behind an outage or a backlog still complete it.
func JoinWorkflow(ctx workflow.Context, p JoinParams) (JoinResult, error) {
	ctx = withPins(ctx, p.Pins)
	j, err := newJoiner(ctx, p)
	if err != nil {
		return JoinResult{}, err
	}
	if byInputWatermark(ctx) {
		j.in = (&inputClock{pipeline: schemas.PipelineJoin, at: &j.state.Input}).holdReads(ctx)
	}
	if err := workflow.SetQueryHandler(ctx, QueryStatus, j.status); err != nil {
		return JoinResult{}, fmt.Errorf("register query: %w", err)
	}
	signals := workflow.GetSignalChannel(ctx, SignalJoinArrivals)
	// A shard takes its rows as updates (bridge.Join): an update is stored with the workflow
	// task that accepts it, the loop applies and settles its rows in that same task, and the
	// bridge hears back once the task is stored. The handlers only queue the rows, so that
	// they are applied where signals are, never while a finish is under way. Bridges send
	// the rows packed (UpdateJoinRows); the JSON update is what earlier bridges sent.
	// Signals stay for the per-event runs and for the histories recorded before.
	updates := workflow.NewBufferedChannel(ctx, MaxRunUpdates) // never full: a run takes no more
	accepted := 0
	take := func(ctx workflow.Context, s schemas.JoinSignal) {
		accepted++
		updates.Send(ctx, s)
	}
	err = workflow.SetUpdateHandler(ctx, UpdateJoinArrivals, func(ctx workflow.Context, s schemas.JoinSignal) error {
		take(ctx, s)
		return nil
	})
	if err != nil {
		return JoinResult{}, fmt.Errorf("register update: %w", err)
	}
	err = workflow.SetUpdateHandler(ctx, UpdateJoinRows, func(ctx workflow.Context, packed []byte) error {
		s, err := schemas.UnpackJoinSignal(packed)
		if err != nil {
			return temporal.NewNonRetryableApplicationError(err.Error(), ErrorTypeMalformedRows, err)
		}
		take(ctx, s)
		return nil
	})
	if err != nil {
		return JoinResult{}, fmt.Errorf("register update: %w", err)
	}
	maxUpdates := p.MaxUpdates
	if maxUpdates <= 0 || maxUpdates > MaxRunUpdates {
		maxUpdates = JoinShardUpdates
	}
	putOff := -1 // updates accepted when continue-as-new was last put off
	due := func() bool {
		if putOff >= 0 && accepted < putOff+carryRetry(maxUpdates) {
			return false
		}
		return continueAsNewDue(ctx, p.MaxHistory) || accepted >= maxUpdates
	}
	inputs := []workflow.ReceiveChannel{signals, updates}
	if p.First != nil {
		first := workflow.NewBufferedChannel(ctx, 1)
		first.Send(ctx, *p.First)
		inputs = append([]workflow.ReceiveChannel{first}, inputs...)
	}
	err = runEntity[schemas.JoinSignal](ctx, inputs, j, p.Sharded, due, func() error {
		packed, err := packState(j.state, version(ctx, versionBinaryState) >= 1)
		if err != nil {
			return err
		}
		if len(packed) > maxCarried {
			workflow.GetLogger(ctx).Warn("join state too large to continue as new; the run goes on until its pending events shrink",
				"packed", len(packed), "limit", maxCarried, "pending", len(j.state.Pending), "updates", accepted)
			putOff = accepted
			return nil
		}
		p.State, p.PackedState, p.Pins = nil, packed, CurrentPins
		return workflow.NewContinueAsNewError(ctx, JoinWorkflow, p)
	})
	if err != nil {
		return JoinResult{}, err
	}
	return *j.result, nil
}

// versionBinaryState is the change id of packing a shard's state in binary (packState).
const versionBinaryState = "binary-join-state"

type joiner struct {
	p     JoinParams
	state *JoinState
	// in judges deadlines by the input watermark; nil in runs recorded before that change.
	in *inputClock
	// lastBase is the newest deadline base given, so deadlines keep the queue's order.
	lastBase time.Time
	writer   string
	// ready are ids that got all topics since the last finish, in order.
	ready []string
	late  []schemas.JoinArrival
	// done is state.Done as a set.
	done   map[string]bool
	result *JoinResult
}

func newJoiner(ctx workflow.Context, p JoinParams) (*joiner, error) {
	s := p.State
	if p.PackedState != nil {
		var err error
		if s, err = unpackState(p.PackedState); err != nil {
			return nil, err
		}
	}
	if s == nil {
		s = &JoinState{}
	}
	if s.Pending == nil {
		s.Pending = map[string]*PendingJoin{}
	}
	if s.Applied == nil {
		s.Applied = map[string]int64{}
	}
	j := &joiner{p: p, state: s, writer: runWriter(ctx), done: map[string]bool{}}
	for _, id := range s.Done {
		j.done[id] = true
	}
	return j, nil
}

func (j *joiner) status() (JoinStatus, error) {
	st := JoinStatus{Pending: len(j.state.Pending), Stats: j.state.Stats}
	if !j.p.Sharded {
		for _, id := range j.state.Queue {
			if pj := j.state.Pending[id]; pj != nil {
				for _, t := range schemas.JoinTopics {
					if _, ok := pj.Rows[t]; ok {
						st.Topics = append(st.Topics, t)
					}
				}
			}
		}
	}
	return st, nil
}

// apply takes one signal's arrivals: redeliveries are dropped by offset, rows for finished
// ids become late, repeated topics count as duplicates, and complete ids become ready.
func (j *joiner) apply(ctx workflow.Context, s schemas.JoinSignal) {
	s0 := j.state
	if j.in != nil {
		j.in.observe(s.Watermark)
	}
	for _, a := range s.Arrivals {
		tp := schemas.TopicPartition(a.Topic, a.Partition)
		if w, seen := s0.Applied[tp]; seen && a.Offset <= w {
			s0.Stats.Redelivered++
			continue
		}
		s0.Applied[tp] = a.Offset
		s0.Stats.Arrivals++
		if j.done[a.EventID] || (!j.p.Sharded && j.result != nil) {
			s0.Stats.Late++
			j.late = append(j.late, a)
			continue
		}
		pj := s0.Pending[a.EventID]
		if pj == nil {
			pj = &PendingJoin{Rows: map[string]schemas.JoinArrival{}, Deadline: j.deadlineBase(ctx, a).Add(j.p.Deadline)}
			s0.Pending[a.EventID] = pj
			s0.Queue = append(s0.Queue, a.EventID)
		}
		if _, dup := pj.Rows[a.Topic]; dup {
			pj.Duplicates++
			s0.Stats.Duplicates++
			continue
		}
		pj.Rows[a.Topic] = a
		if len(pj.Rows) == len(schemas.JoinTopics) {
			j.ready = append(j.ready, a.EventID)
		}
	}
}

// deadlineBase is the time an event's deadline counts from: its first row's time, or the
// input watermark if that is later (rows replayed from long ago still get the full
// deadline), and never before the base of an earlier event, so deadlines follow the order
// of first arrival. Older runs count from the clock.
func (j *joiner) deadlineBase(ctx workflow.Context, first schemas.JoinArrival) time.Time {
	if j.in == nil {
		return workflow.Now(ctx)
	}
	if q := j.state.Queue; j.lastBase.IsZero() && len(q) > 0 && j.state.Pending[q[len(q)-1]] != nil {
		j.lastBase = j.state.Pending[q[len(q)-1]].Deadline.Add(-j.p.Deadline) // carried from the last run
	}
	j.lastBase = latest(first.CreatedAt, j.in.now(), j.lastBase)
	return j.lastBase
}

// headDeadline is the earliest deadline of a pending id, or zero when none is pending.
func (j *joiner) headDeadline() time.Time {
	q := j.state.Queue
	for len(q) > 0 && j.state.Pending[q[0]] == nil {
		q = q[1:]
	}
	j.state.Queue = q
	if len(q) == 0 {
		return time.Time{}
	}
	return j.state.Pending[q[0]].Deadline
}

// nextWake is when the earliest deadline falls due by the clock, or zero when none is
// pending.
func (j *joiner) nextWake() time.Time {
	d := j.headDeadline()
	if j.in == nil || d.IsZero() {
		return d
	}
	return j.in.wake(d)
}

// settle stores and acks whatever is ready or past its deadline, and the late rows; it
// holds nothing back, so force changes nothing.
func (j *joiner) settle(ctx workflow.Context, _ bool) (bool, error) {
	now := workflow.Now(ctx)
	if j.in != nil {
		if d := j.headDeadline(); !d.IsZero() {
			j.in.refresh(ctx, d)
		}
		now = j.in.now()
	}
	req := j.collect(now)
	if len(req.Events) == 0 && len(req.Late) == 0 {
		return false, nil
	}
	return true, j.finish(ctx, req)
}

// finished reports that a per-event run has stored and acked its event.
func (j *joiner) finished() bool { return j.result != nil }

// collect takes the ready ids and those past their deadline out of Pending.
func (j *joiner) collect(now time.Time) activities.FinishJoinsRequest {
	req := activities.FinishJoinsRequest{Writer: j.writer, Late: j.late}
	j.late = nil
	take := func(id, status string) {
		pj := j.state.Pending[id]
		if pj == nil {
			return
		}
		ev := activities.FinishedJoin{EventID: id, Status: status, Duplicates: pj.Duplicates}
		for _, t := range schemas.JoinTopics {
			if r, ok := pj.Rows[t]; ok {
				ev.Rows = append(ev.Rows, r)
			}
		}
		req.Events = append(req.Events, ev)
		delete(j.state.Pending, id)
	}
	for _, id := range j.ready {
		take(id, schemas.JoinComplete)
	}
	j.ready = nil
	for _, id := range j.state.Queue {
		pj := j.state.Pending[id]
		if pj == nil {
			continue
		}
		if pj.Deadline.After(now) {
			break
		}
		take(id, schemas.JoinIncomplete)
	}
	return req
}

func (j *joiner) finish(ctx workflow.Context, req activities.FinishJoinsRequest) error {
	var a *activities.Activities
	var res activities.FinishJoinsResult
	if err := runDurably(ctx, a.FinishJoins, &res, req); err != nil {
		return fmt.Errorf("finish %d joins: %w", len(req.Events), err)
	}
	already := map[string]bool{}
	for _, id := range res.AlreadyFinal {
		already[id] = true
	}
	for _, ev := range req.Events {
		status := ev.Status
		if k, ok := res.Kept[ev.EventID]; ok {
			status = k.Status
			j.state.Stats.Late += int64(k.LateRows)
		}
		switch {
		case already[ev.EventID]:
			j.state.Stats.Late += int64(len(ev.Rows))
		case status == schemas.JoinComplete:
			j.state.Stats.Complete++
		default:
			j.state.Stats.Incomplete++
		}
		j.remember(ev.EventID)
		if !j.p.Sharded {
			j.result = &JoinResult{Status: status, Duplicates: ev.Duplicates}
		}
	}
	return nil
}

// remember keeps a finished id in the bounded recent set of a shard.
func (j *joiner) remember(id string) {
	if !j.p.Sharded || j.p.RecentDone <= 0 {
		j.done[id] = true
		return
	}
	j.state.Done = append(j.state.Done, id)
	j.done[id] = true
	for len(j.state.Done) > j.p.RecentDone {
		delete(j.done, j.state.Done[0])
		j.state.Done = j.state.Done[1:]
	}
}
