package bench

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"strconv"
	"time"

	"github.com/confluentinc/confluent-kafka-go/v2/kafka"

	"github.com/tributary-dev/tributary/bridge"
	"github.com/tributary-dev/tributary/internal/config"
	"github.com/tributary-dev/tributary/internal/joinsim"
	"github.com/tributary-dev/tributary/internal/kafkaio"
	"github.com/tributary-dev/tributary/internal/progress"
	"github.com/tributary-dev/tributary/internal/txsim"
	"github.com/tributary-dev/tributary/pipelines"
	"github.com/tributary-dev/tributary/schemas"
)

// WindowOptions size the window bench.
type WindowOptions struct {
	Records          int
	PerRecordRecords int
	Videos           int
	Shards           int
}

// DefaultWindowOptions are the sizes the README's figures come from. A pre-aggregated run
// of 100,000 records lasted about a second, of which the fixed costs (the first fetch, the
// group's one-second commit interval that the rate waits for) were a large part, so the
// runs take a million.
func DefaultWindowOptions() WindowOptions {
	return WindowOptions{Records: 1000000, PerRecordRecords: 1000, Videos: 200, Shards: 8}
}

// WindowRun is one pipeline in one mode.
type WindowRun struct {
	Pipeline, Mode string
	Records        int
	Elapsed        time.Duration
	Updates        int64
	// HistoryEvents is how many history events the server wrote for the run.
	HistoryEvents int64
	// Produced is how fast the project's producer (idempotent, acks=all) wrote the records
	// to the broker before the run, in records per second.
	Produced float64
	Usage    Usage
}

// PerSecond is records taken in per second, until the bridge committed the last one.
func (r WindowRun) PerSecond() float64 { return float64(r.Records) / r.Elapsed.Seconds() }

// ActionsPer1000 is Temporal updates per thousand records.
func (r WindowRun) ActionsPer1000() float64 { return 1000 * float64(r.Updates) / float64(r.Records) }

// WindowResult is the window bench's table.
type WindowResult struct {
	Runs []WindowRun
	// Plain is, per pipeline, the records per second of an in-memory consumer that decodes
	// and aggregates the same records with no Temporal: the ceiling.
	Plain map[string]float64
}

type windowMode struct {
	name      string
	shards    int
	perRecord bool
}

// RunWindows measures likes and transactions in three modes, each on a fresh stack.
func RunWindows(ctx context.Context, o WindowOptions, out io.Writer, log *slog.Logger) (WindowResult, error) {
	res := WindowResult{Plain: map[string]float64{}}
	modes := []windowMode{{"one update per record", 0, true}, {"pre-aggregated", 0, false}, {fmt.Sprintf("pre-aggregated, %d shards", o.Shards), o.Shards, false}}
	for _, pipeline := range []string{schemas.PipelineTransactions, schemas.PipelineLikes} {
		for i, m := range modes {
			n := o.Records
			if m.perRecord {
				n = o.PerRecordRecords
			}
			fmt.Fprintf(out, "%s, %s: %d records\n", pipeline, m.name, n)
			run, plain, err := windowRun(ctx, pipeline, m, n, o.Videos, i == 1, out, log)
			if err != nil {
				return res, fmt.Errorf("%s %s: %w", pipeline, m.name, err)
			}
			res.Runs = append(res.Runs, run)
			if plain > 0 {
				res.Plain[pipeline] = plain
			}
		}
	}
	return res, nil
}

func windowRun(ctx context.Context, pipeline string, m windowMode, n, videos int, measurePlain bool, out io.Writer, log *slog.Logger) (WindowRun, float64, error) {
	run := WindowRun{Pipeline: pipeline, Mode: m.name, Records: n}
	deps, closeStack, err := freshStack(ctx, log, func(c *config.Config) { c.Windows.Shards, c.Windows.PerRecord = m.shards, m.perRecord })
	if err != nil {
		return run, 0, err
	}
	defer closeStack()
	cfg := deps.Config
	spec, _ := pipelines.ByName(pipeline)
	produceStart := time.Now()
	if err := produceWindowRecords(ctx, deps.Producer, spec, n, videos); err != nil {
		return run, 0, err
	}
	run.Produced = float64(n) / time.Since(produceStart).Seconds()
	var plain float64
	if measurePlain {
		if plain, err = plainConsumer(ctx, cfg.KafkaBootstrap, spec, n); err != nil {
			return run, 0, err
		}
	}
	stopRoles, running, err := startRoles(ctx, deps)
	if err != nil {
		return run, 0, err
	}
	defer stopRoles()
	// Measured from the moment the bridge owns its partitions: group joins are not the
	// pipeline's throughput.
	mark := markUsage()
	start := time.Now()
	if err := waitCommitted(ctx, cfg.KafkaBootstrap, pipeline, spec.Topic, n, out); err != nil {
		return run, 0, err
	}
	run.Elapsed = time.Since(start)
	run.Updates = running.WindowBridges[pipeline].Pipeline().(*bridge.Window).Updates()
	run.Usage = mark.since()
	stopRoles()
	if _, run.HistoryEvents, err = historyEvents(ctx, deps); err != nil {
		return run, 0, err
	}
	return run, plain, nil
}

func produceWindowRecords(ctx context.Context, p *kafkaio.Producer, spec pipelines.Spec, n, videos int) error {
	rng := rand.New(rand.NewPCG(1, 1))
	var batch []*kafka.Message
	for i := range n {
		var key, value []byte
		var err error
		if spec.Name == schemas.PipelineLikes {
			key, value, err = schemas.LikeRecord("video-"+strconv.Itoa(rng.IntN(videos)), time.Now())
		} else {
			tx := txsim.Generate("bench", 1, i, time.Now())
			key = []byte(tx.ID)
			value, err = json.Marshal(tx)
		}
		if err != nil {
			return err
		}
		batch = append(batch, kafkaio.Message(spec.Topic, key, value))
		if len(batch) == 5000 {
			if err := p.Send(ctx, batch...); err != nil {
				return err
			}
			batch = batch[:0]
		}
	}
	return p.Send(ctx, batch...)
}

// plainConsumer reads the n records with a consumer of its own, decodes and aggregates them
// in memory, and returns records per second: what the machine does with no Temporal at all.
func plainConsumer(ctx context.Context, bootstrap string, spec pipelines.Spec, n int) (float64, error) {
	conf := kafkaio.ConsumerConfig(bootstrap, "bench-plain")
	c, err := kafka.NewConsumer(&conf)
	if err != nil {
		return 0, err
	}
	defer c.Close()
	if err := c.Subscribe(spec.Topic, nil); err != nil {
		return 0, err
	}
	type wkey struct {
		key   string
		size  time.Duration
		start int64
	}
	agg := map[wkey]float64{}
	seen := 0
	var start time.Time
	for seen < n {
		if ctx.Err() != nil {
			return 0, ctx.Err()
		}
		ev := c.Poll(100)
		m, ok := ev.(*kafka.Message)
		if !ok {
			continue
		}
		if start.IsZero() {
			start = time.Now()
		}
		seen++
		it, err := spec.Extract(m.Key, m.Value)
		if err != nil {
			continue
		}
		for _, ws := range spec.Windows {
			for _, st := range ws.Starts(it.At) {
				agg[wkey{it.Key, ws.Size, st.UnixNano()}] += it.Value
			}
		}
	}
	return float64(n) / time.Since(start).Seconds(), nil
}

// waitCommitted shows a progress bar until the pipeline's consumer group has committed the
// end of topic (n records).
func waitCommitted(ctx context.Context, bootstrap, pipeline, topic string, n int, out io.Writer) error {
	end, err := joinsim.EndOffsets(bootstrap, []string{topic})
	if err != nil {
		return err
	}
	bar := progress.New(out, "  committed", n)
	group := bridge.GroupID(pipeline)
	for {
		parts, err := kafkaio.GroupOffsets(ctx, bootstrap, group, topic)
		if err != nil {
			return err
		}
		var committed, total int64
		for _, p := range parts {
			total += end[topic][p.Partition]
			if p.Offset > 0 {
				committed += int64(p.Offset)
			}
		}
		bar.Set(int(committed))
		if committed >= total {
			bar.Done()
			return nil
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(200 * time.Millisecond):
		}
	}
}
