// Package chaos runs Tributary the way its users run it, in processes of their own (the
// embedded broker and Temporal of `starter dev -roles none`, two bridges and two workers),
// feeds all four pipelines through an outside producer, does faults drawn from a seed to
// the processes (SIGKILL, SIGSTOP past the group's session timeout, a bridge added and
// removed, the workers stopped, the whole stack killed), and then compares the outputs with
// what the input topics hold: windows, late records, acks, visits and output records.
package chaos

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/tributary-dev/tributary/internal/db"
	"github.com/tributary-dev/tributary/internal/embedded"
	"github.com/tributary-dev/tributary/internal/progress"
	"github.com/tributary-dev/tributary/pipelines"
)

// Settings the run gives every process, so that joins, visits and sensor minutes end
// within a short run.
const (
	joinDeadline   = 5 * time.Second
	SensorIdleGap  = 3 * time.Second
	sensorDisorder = time.Second
	// SensorGrace leaves a sensor minute open long enough for its visits (5 m of view:
	// at most about 6 s at walking pace) to end and reach it.
	SensorGrace = 45 * time.Second
)

// Options configure a run.
type Options struct {
	// Starter is the starter binary: `dev -roles none` runs the stack, `workers` the roles.
	Starter string
	// Dir holds the stack's state and every process's log.
	Dir string
	// Database is the results database every process uses: a postgres:// URL, or empty for
	// tributary.db in Dir.
	Database string
	Seed     uint64
	// Duration is how long the load runs; faults are planned within it.
	Duration time.Duration
	Rates    Rates
	// Faults is how many faults are done to bridges and workers, kinds, targets and times
	// drawn from the seed: SIGKILL a bridge, a worker or one of each; SIGSTOP a bridge past
	// its session timeout; add a third bridge and remove it.
	Faults int
	// StackDown is how long the whole stack stays down after it is killed once, halfway;
	// 0 never kills it.
	StackDown time.Duration
	// WorkersDown, if set, stops both workers (SIGSTOP) once for this long, a quarter in:
	// Temporal runs no task, the bridges' deliveries wait, and they must pause their
	// partitions rather than buffer the input.
	WorkersDown time.Duration
	// Plan, if set, is done instead of faults drawn from the seed (Faults, StackDown and
	// WorkersDown are then ignored): a run aimed at one interleaving.
	Plan []Fault
	// JoinShards is the join's shard count (0: one workflow per event).
	JoinShards int
	// Settle bounds the wait for outputs to catch up after the load.
	Settle time.Duration
	Out    io.Writer
	Log    *slog.Logger
}

func (o *Options) setDefaults() {
	if o.Duration == 0 {
		o.Duration = 3 * time.Minute
	}
	if o.Rates == (Rates{}) {
		o.Rates = Rates{Tx: 500, Join: 100, Likes: 100, Videos: 20, Travelers: 2}
	}
	if o.Settle == 0 {
		o.Settle = 4 * time.Minute
	}
	if o.Out == nil {
		o.Out = io.Discard
	}
	if o.Log == nil {
		o.Log = slog.Default()
	}
}

// Fault kinds.
const (
	FaultKill        = "kill -9"
	FaultStop        = "SIGSTOP"
	FaultAddBridge   = "add"
	FaultStopWorkers = "SIGSTOP workers"
)

// Fault is one thing done to processes.
type Fault struct {
	At      time.Duration
	Kind    string
	Targets []string
	// Down is how long it lasted: until a restart, SIGCONT, or the added bridge's removal.
	Down time.Duration
}

func (f Fault) String() string {
	return fmt.Sprintf("t+%s %s %s (%s)", f.At.Truncate(time.Second), f.Kind, strings.Join(f.Targets, "+"), f.Down)
}

// Report is a run's faults and outcome.
type Report struct {
	Seed    uint64
	Faults  []Fault
	Outcome Outcome
	// PeakRSS is the largest resident set of any process of a role (stack, bridge,
	// worker), in bytes, over the whole run.
	PeakRSS map[string]int64
}

// plan is the run's faults in time order: the given Plan, or those drawn from the seed.
func plan(o Options) []Fault {
	faults := slices.Clone(o.Plan)
	if o.Plan == nil {
		faults = draw(o)
	}
	slices.SortStableFunc(faults, func(a, b Fault) int { return int(a.At - b.At) })
	return faults
}

// draw draws the faults from the seed, before anything runs, so that a seed names a run.
func draw(o Options) []Fault {
	rng := rand.New(rand.NewPCG(o.Seed, o.Seed^0x9e3779b97f4a7c15))
	bridge := func() string { return fmt.Sprintf("bridge-%d", 1+rng.IntN(2)) }
	worker := func() string { return fmt.Sprintf("worker-%d", 1+rng.IntN(2)) }
	secs := func(lo, hi int) time.Duration { return time.Duration(lo+rng.IntN(hi-lo+1)) * time.Second }
	var faults []Fault
	for range o.Faults {
		f := Fault{At: time.Duration((0.05 + 0.85*rng.Float64()) * float64(o.Duration))}
		switch rng.IntN(5) {
		case 0:
			f.Kind, f.Targets, f.Down = FaultKill, []string{bridge()}, secs(1, 5)
		case 1:
			f.Kind, f.Targets, f.Down = FaultKill, []string{worker()}, secs(1, 5)
		case 2:
			f.Kind, f.Targets, f.Down = FaultKill, []string{bridge(), worker()}, secs(1, 5)
		case 3:
			// Past the 10 s session timeout: the group moves its partitions away, and the
			// bridge finds out only once it runs again.
			f.Kind, f.Targets, f.Down = FaultStop, []string{bridge()}, secs(11, 15)
		case 4:
			f.Kind, f.Targets, f.Down = FaultAddBridge, []string{"bridge-3"}, secs(3, 8)
		}
		faults = append(faults, f)
	}
	if o.StackDown > 0 {
		faults = append(faults, Fault{At: o.Duration / 2, Kind: FaultKill, Targets: []string{"stack"}, Down: o.StackDown})
	}
	if o.WorkersDown > 0 {
		faults = append(faults, Fault{At: o.Duration / 4, Kind: FaultStopWorkers, Targets: []string{"worker-1", "worker-2"}, Down: o.WorkersDown})
	}
	return faults
}

// Run runs the stack under load and faults and judges what came out.
func Run(ctx context.Context, o Options) (Report, error) {
	o.setDefaults()
	rep := Report{Seed: o.Seed, PeakRSS: map[string]int64{}}
	logs := filepath.Join(o.Dir, "logs")
	if err := os.MkdirAll(logs, 0o755); err != nil {
		return rep, err
	}
	ports, err := embedded.FreePorts("127.0.0.1", 2)
	if err != nil {
		return rep, err
	}
	kafkaAddr, temporalAddr := "127.0.0.1:"+strconv.Itoa(ports[0]), "127.0.0.1:"+strconv.Itoa(ports[1])
	common := []string{"-state-dir", o.Dir, "-kafka", kafkaAddr, "-temporal", temporalAddr,
		"-join-shards", strconv.Itoa(o.JoinShards), "-join-deadline", joinDeadline.String(),
		"-sensor-idle-gap", SensorIdleGap.String(), "-sensor-disorder", sensorDisorder.String(), "-sensor-grace", SensorGrace.String()}
	results := filepath.Join(o.Dir, "tributary.db")
	if o.Database != "" {
		results = o.Database
		common = append(common, "-database", o.Database)
	}
	procs := map[string]*proc{
		"stack": {name: "stack", bin: o.Starter, logDir: logs, ready: "Press Ctrl-C to stop.",
			args: append([]string{"dev", "-roles", "none", "-ui-port", "0", "-api", ""}, common...)},
	}
	for _, role := range []string{"bridge", "worker"} {
		for i := 1; i <= 3; i++ {
			name := fmt.Sprintf("%s-%d", role, i)
			procs[name] = &proc{name: name, bin: o.Starter, logDir: logs, args: append([]string{"workers", "-role", role}, common...)}
		}
	}
	defer func() {
		for _, p := range procs {
			p.stop(10 * time.Second)
		}
	}()
	fmt.Fprintf(o.Out, "stack     starting (state and logs in %s)\n", o.Dir)
	if err := procs["stack"].start(ctx, 3*time.Minute); err != nil {
		return rep, err
	}
	for _, name := range []string{"bridge-1", "bridge-2", "worker-1", "worker-2"} {
		if err := procs[name].start(ctx, 0); err != nil {
			return rep, err
		}
	}
	sampling, stopSampling := context.WithCancel(ctx)
	sampled := make(chan struct{})
	go func() {
		defer close(sampled)
		t := time.NewTicker(500 * time.Millisecond)
		defer t.Stop()
		for {
			for _, p := range procs {
				p.sampleRSS()
			}
			select {
			case <-sampling.Done():
				return
			case <-t.C:
			}
		}
	}()
	defer func() {
		stopSampling()
		<-sampled
		for name, p := range procs {
			role, _, _ := strings.Cut(name, "-")
			rep.PeakRSS[role] = max(rep.PeakRSS[role], p.peak())
		}
	}()

	runID := fmt.Sprintf("chaos%d", o.Seed)
	l, err := newLoad(kafkaAddr, runID, o.Seed)
	if err != nil {
		return rep, err
	}
	faults := plan(o)
	start := time.Now()
	var wg sync.WaitGroup
	var faultErr error
	var mu sync.Mutex
	fctx, stopFaults := context.WithCancel(ctx)
	wg.Add(1)
	go func() {
		defer wg.Done()
		// Faults do not overlap: each waits until the one before is over.
		for _, f := range faults {
			if !sleep(fctx, time.Until(start.Add(f.At))) {
				return
			}
			f.At = time.Since(start) // later than planned if it waited for the one before
			fmt.Fprintf(o.Out, "\n%s\n", f)
			if err := do(fctx, f, procs); err != nil {
				mu.Lock()
				faultErr = errors.Join(faultErr, fmt.Errorf("%s: %w", f, err))
				mu.Unlock()
				return
			}
			mu.Lock()
			rep.Faults = append(rep.Faults, f)
			mu.Unlock()
		}
	}()
	bar := progress.New(o.Out, "load (s)", int(o.Duration.Seconds()))
	shown := -1
	err = l.run(ctx, o.Duration, o.Rates, func(e time.Duration) {
		if s := int(e.Seconds()); s != shown {
			shown = s
			bar.Set(s)
		}
	})
	bar.Done()
	loadEnd := time.Now()
	if err != nil {
		stopFaults()
		wg.Wait()
		return rep, err
	}
	wg.Wait() // the faults planned within the load, the last of which may still be going on
	stopFaults()
	if faultErr != nil {
		return rep, faultErr
	}
	sctx, cancel := context.WithTimeout(ctx, o.Settle)
	defer cancel()
	if err := l.finish(sctx); err != nil {
		return rep, err
	}
	judged, err := db.Open(results, o.Log)
	if err != nil {
		return rep, err
	}
	defer func() {
		if s, err := judged.DB(); err == nil {
			_ = s.Close()
		}
	}()
	// Judge once the outputs have caught up with everything due by the target: the last
	// transactions window and join deadline after the load, and at least the first likes
	// minute and the first sensor minute.
	target := slices.MaxFunc([]time.Time{
		loadEnd.Add(5 * time.Second),
		start.Truncate(time.Minute).Add(time.Minute + pipelines.Likes().Windows[0].Grace),
		start.Truncate(time.Minute).Add(time.Minute + SensorGrace),
	}, func(a, b time.Time) int { return a.Compare(b) })
	fmt.Fprintf(o.Out, "settling: waiting for every result due by t+%s\n", target.Sub(start).Truncate(time.Second))
	said := time.Now()
	for {
		asOf := time.Now().Add(-time.Second)
		if asOf.After(target) {
			asOf = target
		}
		out, err := judge(sctx, kafkaAddr, judged, l, asOf)
		if err == nil || len(rep.Outcome.Checks) == 0 {
			// A judgement cut short by the deadline keeps the last whole one in the report.
			rep.Outcome = out
		}
		if err == nil && out.Clean() && asOf.Equal(target) {
			return rep, nil
		}
		if time.Since(said) > 20*time.Second {
			said = time.Now()
			fmt.Fprintf(o.Out, "settling: %s\n", out.Pending(err))
		}
		if !sleep(sctx, 2*time.Second) {
			// Something is stuck: every process writes its goroutines to its log (Go's
			// SIGQUIT) before it ends.
			for _, c := range rep.Outcome.Checks {
				fmt.Fprint(o.Out, explainTravelers(ctx, temporalAddr, judged, l, c.travelers))
			}
			for _, p := range procs {
				p.signal(syscall.SIGQUIT)
			}
			return rep, fmt.Errorf("outputs did not settle within %s (%s; goroutine dumps in the logs)", o.Settle, rep.Outcome.Pending(err))
		}
	}
}

// do carries out one fault and waits until it is over.
func do(ctx context.Context, f Fault, procs map[string]*proc) error {
	switch f.Kind {
	case FaultKill:
		for _, t := range f.Targets {
			procs[t].kill()
		}
		if !sleep(ctx, f.Down) {
			return nil
		}
		for _, t := range f.Targets {
			if err := procs[t].start(ctx, 3*time.Minute); err != nil {
				return err
			}
		}
	case FaultStop, FaultStopWorkers:
		for _, t := range f.Targets {
			procs[t].signal(syscall.SIGSTOP)
		}
		sleep(ctx, f.Down)
		for _, t := range f.Targets {
			procs[t].signal(syscall.SIGCONT)
		}
	case FaultAddBridge:
		for _, t := range f.Targets {
			if err := procs[t].start(ctx, 0); err != nil {
				return err
			}
		}
		sleep(ctx, f.Down)
		for _, t := range f.Targets {
			procs[t].stop(30 * time.Second)
		}
	default:
		return fmt.Errorf("unknown fault kind %q", f.Kind)
	}
	return nil
}

// sleep waits d, reporting false if ctx ended first.
func sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}

// Table is the report as markdown: the faults, then one row per pipeline.
func (r Report) Table() string {
	var b strings.Builder
	fmt.Fprintf(&b, "seed %d, %d faults:\n", r.Seed, len(r.Faults))
	for _, f := range r.Faults {
		fmt.Fprintf(&b, "- %s\n", f)
	}
	fmt.Fprintf(&b, "\npeak RSS: stack %s, bridge %s, worker %s\n\n", mib(r.PeakRSS["stack"]), mib(r.PeakRSS["bridge"]), mib(r.PeakRSS["worker"]))
	b.WriteString("| pipeline | input records | results checked | wrong | late (wrongly) | lost | duplicated | excused |\n|---|---|---|---|---|---|---|---|\n")
	for _, c := range r.Outcome.Checks {
		fmt.Fprintf(&b, "| %s | %d | %d | %d | %d (%d) | %d | %d | %d |\n",
			c.Pipeline, c.Records, c.Checked, c.Wrong, c.Late, c.WronglyLate, c.Lost, c.Duplicated, c.Excused)
	}
	for _, c := range r.Outcome.Checks {
		for _, d := range c.Differences {
			fmt.Fprintf(&b, "\n%s: %s", c.Pipeline, d)
		}
	}
	return b.String()
}

func mib(n int64) string { return fmt.Sprintf("%d MiB", n>>20) }
