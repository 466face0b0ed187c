// Package chaos runs Tributary the way its users do, in processes of its own (the stack of
// `starter dev`, plus a second bridge and a second worker), sends transactions and join
// events through an outside producer, kills processes with SIGKILL at moments drawn from a
// seed (the extra roles, and once the whole stack), and then compares the outputs with
// what the input topics hold: windows, late records, acks and output records.
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
	"time"

	"github.com/tributary-dev/tributary/internal/db"
	"github.com/tributary-dev/tributary/internal/embedded"
	"github.com/tributary-dev/tributary/internal/progress"
)

// Options configure a run.
type Options struct {
	// Starter is the starter binary: `dev` runs the stack, `workers` the extra roles.
	Starter string
	// Dir holds the stack's state and every process's log.
	Dir  string
	Seed uint64
	// Duration is how long the load runs; faults fall within it.
	Duration         time.Duration
	TxRate, JoinRate float64
	// Kills is how many times an extra bridge or worker is killed (and started again).
	Kills int
	// StackDown is how long the whole stack stays down after it is killed once, halfway;
	// 0 never kills it.
	StackDown time.Duration
	// JoinShards is the join's shard count (0: one workflow per event).
	JoinShards int
	// Settle bounds the wait for outputs to catch up after the load.
	Settle time.Duration
	Out    io.Writer
	Log    *slog.Logger
}

func (o *Options) setDefaults() {
	if o.Duration == 0 {
		o.Duration = 90 * time.Second
	}
	if o.TxRate == 0 {
		o.TxRate = 500
	}
	if o.JoinRate == 0 {
		o.JoinRate = 100
	}
	if o.Settle == 0 {
		o.Settle = 3 * time.Minute
	}
	if o.Out == nil {
		o.Out = io.Discard
	}
	if o.Log == nil {
		o.Log = slog.Default()
	}
}

// Fault is one thing done to a process.
type Fault struct {
	At     time.Duration
	Target string
	// Down is how long it stayed down.
	Down time.Duration
}

// Report is a run's faults and outcome.
type Report struct {
	Seed    uint64
	Faults  []Fault
	Outcome Outcome
}

// Run runs the stack under load and faults and judges what came out.
func Run(ctx context.Context, o Options) (Report, error) {
	o.setDefaults()
	rep := Report{Seed: o.Seed}
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
		"-join-shards", strconv.Itoa(o.JoinShards), "-join-deadline", joinDeadline.String()}
	stack := &proc{name: "stack", bin: o.Starter, logDir: logs, ready: "Press Ctrl-C to stop.",
		args: append([]string{"dev", "-ui-port", "0", "-api", ""}, common...)}
	extras := map[string]*proc{
		"bridge": {name: "bridge", bin: o.Starter, logDir: logs, args: append([]string{"workers", "-role", "bridge"}, common...)},
		"worker": {name: "worker", bin: o.Starter, logDir: logs, args: append([]string{"workers", "-role", "worker"}, common...)},
	}
	all := []*proc{extras["bridge"], extras["worker"], stack}
	defer func() {
		for _, p := range all {
			p.stop(10 * time.Second)
		}
	}()
	fmt.Fprintf(o.Out, "stack     starting (state and logs in %s)\n", o.Dir)
	if err := stack.start(ctx, 3*time.Minute); err != nil {
		return rep, err
	}
	for _, name := range []string{"bridge", "worker"} {
		if err := extras[name].start(ctx, 0); err != nil {
			return rep, err
		}
	}
	runID := fmt.Sprintf("chaos%d", o.Seed)
	l, err := newLoad(kafkaAddr, runID, o.Seed)
	if err != nil {
		return rep, err
	}

	// The faults, drawn from the seed before anything runs, so a seed names a run.
	rng := rand.New(rand.NewPCG(o.Seed, o.Seed^0x9e3779b97f4a7c15))
	var plan []Fault
	for range o.Kills {
		at := time.Duration((0.1 + 0.8*rng.Float64()) * float64(o.Duration))
		target := []string{"bridge", "worker"}[rng.IntN(2)]
		plan = append(plan, Fault{At: at, Target: target, Down: time.Duration(1+rng.IntN(3)) * time.Second})
	}
	if o.StackDown > 0 {
		plan = append(plan, Fault{At: o.Duration / 2, Target: "stack", Down: o.StackDown})
	}
	slices.SortFunc(plan, func(a, b Fault) int { return int(a.At - b.At) })

	start := time.Now()
	var wg sync.WaitGroup
	var faultErr error
	var mu sync.Mutex
	fctx, stopFaults := context.WithCancel(ctx)
	wg.Add(1)
	go func() {
		defer wg.Done()
		// Faults do not overlap: each waits until the one before is back.
		for _, f := range plan {
			select {
			case <-fctx.Done():
				return
			case <-time.After(time.Until(start.Add(f.At))):
			}
			p := stack
			if f.Target != "stack" {
				p = extras[f.Target]
			}
			p.kill()
			f.At = time.Since(start) // later than planned if it waited for the one before
			fmt.Fprintf(o.Out, "\nt+%-6s kill -9 %s, back in %s\n", f.At.Truncate(100*time.Millisecond), f.Target, f.Down)
			select {
			case <-fctx.Done():
				return
			case <-time.After(f.Down):
			}
			if err := p.start(fctx, 3*time.Minute); err != nil {
				mu.Lock()
				faultErr = errors.Join(faultErr, fmt.Errorf("restart %s: %w", f.Target, err))
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
	err = l.run(ctx, o.Duration, o.TxRate, o.JoinRate, func(e time.Duration) {
		if s := int(e.Seconds()); s != shown {
			shown = s
			bar.Set(s)
		}
	})
	bar.Done()
	if err != nil {
		stopFaults()
		wg.Wait()
		return rep, err
	}
	wg.Wait() // the last restart, if one is under way
	stopFaults()
	if faultErr != nil {
		return rep, faultErr
	}
	fctx2, cancel := context.WithTimeout(ctx, o.Settle)
	defer cancel()
	if err := l.finish(fctx2); err != nil {
		return rep, err
	}
	results, err := db.Open(filepath.Join(o.Dir, "tributary.db"), o.Log)
	if err != nil {
		return rep, err
	}
	defer func() {
		if s, err := results.DB(); err == nil {
			_ = s.Close()
		}
	}()
	// Wait for the outputs to catch up with the last record sent (its window closes 4 s
	// after it), then judge.
	last := time.Now()
	fmt.Fprintln(o.Out, "settling: waiting for every window and ack")
	for {
		asOf := time.Now().Add(-time.Second)
		if asOf.After(last.Add(5 * time.Second)) {
			asOf = last.Add(5 * time.Second)
		}
		out, err := judge(fctx2, kafkaAddr, results, l, asOf)
		if err == nil && out.settled() && asOf.Equal(last.Add(5*time.Second)) {
			out.WronglyLate, err = wronglyLate(ctx, kafkaAddr, results, l)
			rep.Outcome = out
			return rep, err
		}
		select {
		case <-fctx2.Done():
			out.WronglyLate, _ = wronglyLate(ctx, kafkaAddr, results, l)
			rep.Outcome = out
			return rep, fmt.Errorf("outputs did not settle within %s: %+v (last error: %v)", o.Settle, out, err)
		case <-time.After(2 * time.Second):
		}
	}
}

// joinDeadline is the join's deadline in the run.
const joinDeadline = 5 * time.Second

// TableHeader is the header of Report.Row's markdown table.
const TableHeader = "| seed | faults | windows equal to the input | paid transactions late (wrongly) | join events acked / twice / incomplete (wrongly) | window output keys written twice |\n|---|---|---|---|---|---|"

// Row is the report as a row of a markdown table.
func (r Report) Row() string {
	var fs []string
	for _, f := range r.Faults {
		fs = append(fs, fmt.Sprintf("%s@%s (%s)", f.Target, f.At.Truncate(time.Second), f.Down))
	}
	o := r.Outcome
	return fmt.Sprintf("| %d | %s | %d of %d | %d of %d (%d) | %d of %d / %d / %d (%d) | %d of %d |",
		r.Seed, strings.Join(fs, ", "), o.Equal, o.Windows, o.Late, o.Paid, o.WronglyLate,
		o.Acked, o.Events, o.AckedTwice, o.Incomplete, o.WronglyIncomplete, o.OutputTwice, o.OutputKeys)
}
