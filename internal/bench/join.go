// Package bench measures the join pipeline on a fresh embedded stack: the server's
// SignalWithStart ceiling, the throughput of both join modes, and ack delay at a steady rate.
package bench

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/confluentinc/confluent-kafka-go/v2/kafka"
	"go.temporal.io/sdk/client"

	"github.com/tributary-dev/tributary/internal/app"
	"github.com/tributary-dev/tributary/internal/config"
	"github.com/tributary-dev/tributary/internal/joinsim"
	"github.com/tributary-dev/tributary/internal/kafkaio"
	"github.com/tributary-dev/tributary/internal/metrics"
	"github.com/tributary-dev/tributary/internal/progress"
	"github.com/tributary-dev/tributary/schemas"
	"github.com/tributary-dev/tributary/workflows"
)

// JoinOptions size the join bench.
type JoinOptions struct {
	CeilingCalls int
	// CeilingOnly stops after the ceiling probe.
	CeilingOnly bool
	// PerEventEvents sizes the per-event throughput run; zero skips both per-event runs.
	PerEventEvents int
	ShardedEvents  int
	// Shards are the shard counts the sharded runs are made with, each on its own: the
	// throughput run, then the latency run at LatencyRate. The original's workload runs
	// with the first.
	Shards          []int
	LatencyRate     float64
	LatencyDuration time.Duration
	// PerEventLatencyRate is the steady rate per-event latency is measured at; it must stay
	// below the per-event mode's throughput, or the run only measures a growing queue.
	PerEventLatencyRate float64
	// OriginalRate is the original join system's own workload, sharded: a steady few events
	// per second, whose ack delay its README reports (zero skips the run).
	OriginalRate float64
	// TemporalDatabase is where the server keeps its data: "" is SQLite, TemporalAuto a
	// private PostgreSQL server, a postgres:// URL a server of the user's.
	TemporalDatabase string
}

// DefaultJoinOptions are the sizes the README's figures come from.
func DefaultJoinOptions() JoinOptions {
	return JoinOptions{CeilingCalls: 2000, PerEventEvents: 3000, ShardedEvents: 30000, Shards: []int{4, 1},
		LatencyRate: 200, LatencyDuration: 20 * time.Second, PerEventLatencyRate: 20, OriginalRate: 5}
}

// Throughput is one run of events sent as fast as possible.
type Throughput struct {
	Events  int
	Elapsed time.Duration
	// Signals is how many signals or updates the bridge sent for them.
	Signals int64
	// HistoryEvents is how many history events the server wrote for them.
	HistoryEvents int64
	Report        joinsim.Report
	Usage         Usage
}

// PerSecond is events resolved per second, from the first row's creation to the last ack.
func (t Throughput) PerSecond() float64 { return float64(t.Events) / t.Elapsed.Seconds() }

// Latency is a run at a steady rate.
type Latency struct {
	Rate   float64
	Events int
	// Signals and Batches are the bridge's deliveries (signals, updates or starts) and
	// batches over the run.
	Signals, Batches int64
	Report           joinsim.Report
	Usage            Usage
}

// JoinResult is everything the bench measured.
type JoinResult struct {
	// Machine is the machine's speed at the reference work, measured before the stack
	// starts (not by a run of the ceiling alone).
	Machine Reference
	// CeilingAccepted is SignalWithStart calls per second the server returned from;
	// CeilingApplied is how fast the started workflows took their signal and completed.
	CeilingAccepted, CeilingApplied float64
	// CeilingCalls is how many workflows the ceiling probe started.
	CeilingCalls int
	CeilingUsage Usage
	// CeilingRequests is the server's persistence requests (main and visibility stores) per
	// workflow of the probe: on SQLite each is a turn on the one connection.
	CeilingRequests float64
	// StartCeiling is how fast workflows started with their input and eager execution, as
	// the bridge starts a per-event join, completed (as many as CeilingCalls).
	StartCeiling         float64
	StartCeilingUsage    Usage
	StartCeilingRequests float64
	PerEvent             Throughput
	PerEventLatency      Latency
	// Sharded are the sharded runs, one per shard count of JoinOptions.Shards.
	Sharded []ShardedRuns
	// Original is the sharded join at the original system's rate (OriginalRate), with the
	// first shard count.
	Original Latency
}

// RunJoin starts a fresh embedded stack in a temporary directory and measures.
func RunJoin(ctx context.Context, opts JoinOptions, out io.Writer, log *slog.Logger) (JoinResult, error) {
	if len(opts.Shards) == 0 || slices.ContainsFunc(opts.Shards, func(n int) bool { return n < 1 }) {
		return JoinResult{}, fmt.Errorf("join bench: shard counts must be at least 1, got %v", opts.Shards)
	}
	res := JoinResult{CeilingCalls: opts.CeilingCalls}
	if !opts.CeilingOnly {
		var err error
		if res.Machine, err = MeasureReference(); err != nil {
			return res, fmt.Errorf("reference work: %w", err)
		}
		fmt.Fprintf(out, "machine: %s\n", res.Machine)
	}
	temporalDB, dropTemporalDB, err := temporalDatabase(opts.TemporalDatabase, log)
	if err != nil {
		return res, err
	}
	defer dropTemporalDB()
	deps, closeStack, err := freshStack(ctx, log, func(c *config.Config) {
		c.Join.Deadline = time.Minute
		c.TemporalDatabase = temporalDB
	})
	if err != nil {
		return res, err
	}
	defer closeStack()
	cfg := deps.Config
	b := &bencher{deps: deps, out: out, log: log}
	defer b.close()

	stop, running, err := b.roles(ctx, cfg)
	if err != nil {
		return res, err
	}
	fmt.Fprintln(out, "embedded stack up; warming the producer and the topics")
	if _, err := b.produce(ctx, "warm", 50, 0); err != nil {
		return res, err
	}
	if _, err := b.await(ctx, "warm", 50, time.Minute); err != nil {
		return res, err
	}
	mark := markUsage()
	ceiling, err := b.ceiling(ctx, opts.CeilingCalls)
	if err != nil {
		return res, err
	}
	res.CeilingAccepted, res.CeilingApplied, res.CeilingRequests = ceiling.accepted, ceiling.applied, ceiling.requests
	res.CeilingUsage = mark.since()
	if opts.CeilingOnly {
		stop()
		return res, nil
	}
	mark = markUsage()
	starts, err := b.startCeiling(ctx, opts.CeilingCalls)
	if err != nil {
		return res, err
	}
	res.StartCeiling, res.StartCeilingRequests = starts.applied, starts.requests
	res.StartCeilingUsage = mark.since()
	if opts.PerEventEvents > 0 {
		if res.PerEvent, err = b.throughput(ctx, "pe", opts.PerEventEvents, running); err != nil {
			return res, err
		}
		if res.PerEventLatency, err = b.latency(ctx, "pel", opts.PerEventLatencyRate, opts.LatencyDuration, running); err != nil {
			return res, err
		}
	}
	stop()

	for i, shards := range opts.Shards {
		runs, err := b.sharded(ctx, cfg, opts, shards, i == 0, &res)
		res.Sharded = append(res.Sharded, runs)
		if err != nil {
			return res, err
		}
	}
	return res, nil
}

// ShardedRuns are the sharded join's runs with one number of shards.
type ShardedRuns struct {
	Shards     int
	Throughput Throughput
	Latency    Latency
}

// sharded makes the sharded runs with the given number of shards; with original, it runs
// the original's workload after them, into res.
func (b *bencher) sharded(ctx context.Context, cfg config.Config, opts JoinOptions, shards int, original bool, res *JoinResult) (ShardedRuns, error) {
	runs := ShardedRuns{Shards: shards}
	cfg.Join.Shards = shards
	stop, running, err := b.roles(ctx, cfg)
	if err != nil {
		return runs, err
	}
	defer stop()
	tag := fmt.Sprintf("sh%d", shards)
	if runs.Throughput, err = b.throughput(ctx, tag, opts.ShardedEvents, running); err != nil {
		return runs, err
	}
	if runs.Latency, err = b.latency(ctx, tag+"l", opts.LatencyRate, opts.LatencyDuration, running); err != nil {
		return runs, err
	}
	if original && opts.OriginalRate > 0 {
		res.Original, err = b.latency(ctx, "orig", opts.OriginalRate, opts.LatencyDuration, running)
	}
	return runs, err
}

type bencher struct {
	deps *app.Deps
	out  io.Writer
	log  *slog.Logger
	// producer sends every run's rows. It is made once and warmed by the first run: a
	// producer made per run spent its first third of a second connecting and getting its
	// idempotent producer id, and the rows it was given meanwhile (the first 60 at 200/s)
	// carried that wait into their ack delay, which was the p99 of every latency run.
	producer *kafkaio.Producer
}

// close closes the producer, if one was made.
func (b *bencher) close() {
	if b.producer != nil {
		b.producer.Close()
	}
}

// roles runs a worker and a bridge with cfg until stop is called.
func (b *bencher) roles(ctx context.Context, cfg config.Config) (stop func(), running *app.Running, err error) {
	b.deps.Config = cfg
	return startRoles(ctx, b.deps)
}

// produce sends events of a clean plan (every topic, no repeats) at rate per second, or as
// fast as the producer goes when rate is 0, and returns when all are acknowledged by the broker.
func (b *bencher) produce(ctx context.Context, run string, events int, rate float64) (joinsim.Plan, error) {
	plan := joinsim.Plan{RunID: run, Events: events, Seed: 1}
	if b.producer == nil {
		p, err := kafkaio.NewProducer(b.deps.Config.KafkaBootstrap, b.log, nil)
		if err != nil {
			return plan, err
		}
		b.producer = p
	}
	p := b.producer
	start := time.Now()
	var wg sync.WaitGroup
	var failed atomic.Value
	var batch []*kafka.Message
	send := func() {
		msgs := batch
		batch = nil
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := p.Send(ctx, msgs...); err != nil {
				failed.Store(err)
			}
		}()
	}
	for n := range events {
		if rate > 0 {
			if wait := time.Until(start.Add(time.Duration(float64(n) / rate * float64(time.Second)))); wait > 0 {
				time.Sleep(wait)
			}
		}
		ev := plan.Generate(n)
		now := time.Now().UTC()
		for _, topic := range schemas.JoinTopics {
			batch = append(batch, kafkaio.Message(topic, []byte(ev.ID), joinsim.Row(ev.ID, ev.Rows[topic], now)))
		}
		if rate > 0 || len(batch) >= 3000 {
			send()
		}
	}
	if len(batch) > 0 {
		send()
	}
	wg.Wait()
	if err, _ := failed.Load().(error); err != nil {
		return plan, err
	}
	return plan, nil
}

// await reads the run's acks until every event has one.
func (b *bencher) await(ctx context.Context, run string, events int, limit time.Duration) (joinsim.Report, error) {
	var rep joinsim.Report
	from, err := b.startOffsets()
	if err != nil {
		return rep, err
	}
	bar := progress.New(b.out, "  acks "+run, events)
	deadline := time.Now().Add(limit)
	for rep.Resolved() < events {
		if time.Now().After(deadline) {
			bar.Done()
			return rep, fmt.Errorf("run %s: %d of %d events acked after %s", run, rep.Resolved(), events, limit)
		}
		if from, err = joinsim.Collect(ctx, b.deps.Config.KafkaBootstrap, run, from, time.Second, &rep); err != nil {
			return rep, err
		}
		if err := ctx.Err(); err != nil { // interrupted: Collect returns what it has
			bar.Done()
			return rep, err
		}
		bar.Set(rep.Resolved())
	}
	bar.Done()
	return rep, nil
}

// startOffsets reads acks from the beginning: runs are told apart by their id prefix.
func (b *bencher) startOffsets() (joinsim.Offsets, error) {
	end, err := joinsim.EndOffsets(b.deps.Config.KafkaBootstrap, []string{schemas.TopicAck})
	if err != nil {
		return nil, err
	}
	return joinsim.Offsets{schemas.TopicAck: make([]int64, len(end[schemas.TopicAck]))}, nil
}

func (b *bencher) throughput(ctx context.Context, run string, events int, r *app.Running) (Throughput, error) {
	fmt.Fprintf(b.out, "throughput: %d events as fast as possible (%s)\n", events, run)
	_, before, err := historyEvents(ctx, b.deps)
	if err != nil {
		return Throughput{}, err
	}
	mark := markUsage()
	signals := r.JoinBridge.Stats.Signals.Load()
	if _, err := b.produce(ctx, run, events, 0); err != nil {
		return Throughput{}, err
	}
	rep, err := b.await(ctx, run, events, 10*time.Minute)
	if err != nil {
		return Throughput{}, err
	}
	t := Throughput{Events: events, Elapsed: rep.LastAck.Sub(rep.FirstArrival), Signals: r.JoinBridge.Stats.Signals.Load() - signals,
		Report: rep, Usage: mark.since()}
	_, after, err := historyEvents(ctx, b.deps)
	t.HistoryEvents = after - before
	return t, err
}

func (b *bencher) latency(ctx context.Context, run string, rate float64, d time.Duration, r *app.Running) (Latency, error) {
	events := int(rate * d.Seconds())
	fmt.Fprintf(b.out, "latency: %d events at %.0f/s (%s)\n", events, rate, run)
	mark := markUsage()
	stats := &r.JoinBridge.Stats
	signals, batches := stats.Signals.Load(), stats.Batches.Load()
	if _, err := b.produce(ctx, run, events, rate); err != nil {
		return Latency{}, err
	}
	rep, err := b.await(ctx, run, events, 5*time.Minute)
	return Latency{Rate: rate, Events: events, Signals: stats.Signals.Load() - signals, Batches: stats.Batches.Load() - batches,
		Report: rep, Usage: mark.since()}, err
}

// ceiling measures the server alone: n SignalWithStart calls, 32 at a time, each starting a
// workflow that takes its signal and ends.
func (b *bencher) ceiling(ctx context.Context, n int) (probed, error) {
	fmt.Fprintf(b.out, "ceiling: %d SignalWithStart calls to new workflows, 32 at a time\n", n)
	c := b.deps.Temporal
	return b.probe(ctx, n, workflows.CeilingWorkflowID, func(i int) error {
		_, err := c.SignalWithStartWorkflow(ctx, workflows.CeilingWorkflowID(i), workflows.SignalJoinArrivals,
			schemas.JoinSignal{}, client.StartWorkflowOptions{TaskQueue: workflows.TaskQueue}, workflows.WorkflowSignalCeiling)
		return err
	})
}

// startCeiling measures the server the way a per-event join is started: n workflows
// started with their input and eager execution, 32 at a time, each ending at once.
func (b *bencher) startCeiling(ctx context.Context, n int) (probed, error) {
	fmt.Fprintf(b.out, "ceiling: %d eager starts of workflows with their input, 32 at a time\n", n)
	c := b.deps.Temporal
	return b.probe(ctx, n, workflows.StartCeilingWorkflowID, func(i int) error {
		_, err := c.ExecuteWorkflow(ctx, client.StartWorkflowOptions{ID: workflows.StartCeilingWorkflowID(i), TaskQueue: workflows.TaskQueue,
			EnableEagerStart: true}, workflows.WorkflowStartCeiling, schemas.JoinSignal{})
		return err
	})
}

// probed is what one probe measured: calls answered and workflows completed per second,
// and the server's persistence requests per workflow.
type probed struct {
	accepted, applied, requests float64
}

// probe makes n calls, 32 at a time, each starting the workflow id(i), and returns the
// calls answered per second, the workflows completed per second until the last closed, and
// the server's persistence requests per workflow.
func (b *bencher) probe(ctx context.Context, n int, id func(int) string, call func(i int) error) (probed, error) {
	c := b.deps.Temporal
	requestsBefore := persistenceRequests(b.deps.Metrics)
	ids := make(chan int)
	var wg sync.WaitGroup
	var failed atomic.Value
	start := time.Now()
	for range 32 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range ids {
				if err := call(i); err != nil {
					failed.Store(err)
				}
			}
		}()
	}
	for i := range n {
		ids <- i
	}
	close(ids)
	wg.Wait()
	acceptedIn := time.Since(start)
	if err, _ := failed.Load().(error); err != nil {
		return probed{}, fmt.Errorf("start: %w", err)
	}
	bar := progress.New(b.out, "  completed", n)
	var done atomic.Int64
	sem := make(chan struct{}, 64)
	for i := range n {
		sem <- struct{}{}
		wg.Add(1)
		go func() {
			defer func() { <-sem; wg.Done() }()
			if err := c.GetWorkflow(ctx, id(i), "").Get(ctx, nil); err != nil {
				failed.Store(err)
			}
			bar.Set(int(done.Add(1)))
		}()
	}
	wg.Wait()
	bar.Done()
	if err, _ := failed.Load().(error); err != nil {
		return probed{}, fmt.Errorf("ceiling workflow: %w", err)
	}
	// The last workflow's close time bounds the applied rate.
	last, err := lastClose(ctx, c, n, id)
	if err != nil {
		return probed{}, err
	}
	// The server's counters reach the registry once per report: wait for the report that
	// counts the last workflow's close.
	select {
	case <-ctx.Done():
		return probed{}, ctx.Err()
	case <-time.After(metrics.ReportInterval + 100*time.Millisecond):
	}
	return probed{
		accepted: float64(n) / acceptedIn.Seconds(),
		applied:  float64(n) / last.Sub(start).Seconds(),
		requests: (persistenceRequests(b.deps.Metrics) - requestsBefore) / float64(n),
	}, nil
}

// persistenceRequests is the embedded server's persistence requests so far, to its main
// and visibility stores alike; zero where its metrics are not gathered.
func persistenceRequests(m *metrics.Set) float64 {
	// Gather returns every family it could read beside the error of any it could not
	// (registries that name one family differently): the server's counters are among them.
	families, _ := m.Gather()
	var n float64
	for _, f := range families {
		if name := f.GetName(); name == "persistence_requests" || name == "visibility_persistence_requests" {
			for _, series := range f.GetMetric() {
				n += series.GetCounter().GetValue()
			}
		}
	}
	return n
}

func lastClose(ctx context.Context, c client.Client, n int, id func(int) string) (time.Time, error) {
	var last time.Time
	for i := range n {
		d, err := c.DescribeWorkflowExecution(ctx, id(i), "")
		if err != nil {
			return last, err
		}
		if t := d.WorkflowExecutionInfo.GetCloseTime().AsTime(); t.After(last) {
			last = t
		}
	}
	return last, nil
}
