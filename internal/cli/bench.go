package cli

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"runtime/pprof"

	"github.com/tributary-dev/tributary/internal/bench"
)

// benchCmd is `starter bench join`: a fresh embedded stack, measured.
func benchCmd(ctx context.Context, args []string, out io.Writer, log *slog.Logger) error {
	if len(args) > 0 && args[0] == "windows" {
		return benchWindows(ctx, args[1:], out, log)
	}
	if len(args) == 0 || args[0] != "join" {
		return errors.New("usage: starter bench join|windows [flags]")
	}
	o := bench.DefaultJoinOptions()
	fs := flag.NewFlagSet("bench join", flag.ContinueOnError)
	fs.IntVar(&o.CeilingCalls, "ceiling-calls", o.CeilingCalls, "SignalWithStart calls of the ceiling probe")
	fs.IntVar(&o.PerEventEvents, "per-event", o.PerEventEvents, "events of the per-event throughput run")
	fs.IntVar(&o.ShardedEvents, "sharded", o.ShardedEvents, "events of the sharded throughput run")
	fs.IntVar(&o.Shards, "shards", o.Shards, "shard workflows of the sharded runs")
	fs.Float64Var(&o.LatencyRate, "rate", o.LatencyRate, "events per second of the sharded latency run")
	fs.Float64Var(&o.PerEventLatencyRate, "per-event-rate", o.PerEventLatencyRate, "events per second of the per-event latency run")
	fs.DurationVar(&o.LatencyDuration, "duration", o.LatencyDuration, "length of each latency run")
	cpuProfile := fs.String("cpuprofile", "", "write a CPU profile of the whole run to this file")
	if err := fs.Parse(args[1:]); err != nil {
		return err
	}
	if *cpuProfile != "" {
		f, err := os.Create(*cpuProfile)
		if err != nil {
			return err
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			return err
		}
		defer pprof.StopCPUProfile()
	}
	r, err := bench.RunJoin(ctx, o, out, log)
	if err != nil {
		return err
	}
	printBench(out, r)
	return nil
}

func printBench(out io.Writer, r bench.JoinResult) {
	fmt.Fprintln(out, "\njoin bench (embedded stack: kfake, Temporal on SQLite, SQLite results)")
	fmt.Fprintf(out, "  server ceiling: SignalWithStart accepted %.0f/s, applied (started, signalled, completed) %.0f/s\n", r.CeilingAccepted, r.CeilingApplied)
	fmt.Fprintln(out, "\n  mode                 events   events/s   signals/event   vs ceiling")
	row := func(name string, t bench.Throughput) {
		fmt.Fprintf(out, "  %-18s %8d %10.0f %15.2f %11.0f%%\n", name, t.Events, t.PerSecond(), float64(t.Signals)/float64(t.Events), 100*t.PerSecond()/r.CeilingApplied)
	}
	row("per event id", r.PerEvent)
	row(fmt.Sprintf("sharded (%d)", r.Shards), r.Sharded)
	fmt.Fprintln(out, "\n  ack delay at a steady rate        p50       p90       p99       max")
	lat := func(name string, l bench.Latency) {
		d := l.Report.Delays
		fmt.Fprintf(out, "  %-28s %9s %9s %9s %9s\n", fmt.Sprintf("%s, %.0f/s", name, l.Rate), ms(d.Quantile(0.5)), ms(d.Quantile(0.9)), ms(d.Quantile(0.99)), ms(d.Max))
	}
	lat("per event id", r.PerEventLatency)
	lat(fmt.Sprintf("sharded (%d)", r.Shards), r.ShardedLatency)
	fmt.Fprintln(out)
	fmt.Fprint(out, DelayChart(r.ShardedLatency.Report.Delays, 40))
}

// benchWindows is `starter bench windows`.
func benchWindows(ctx context.Context, args []string, out io.Writer, log *slog.Logger) error {
	o := bench.DefaultWindowOptions()
	fs := flag.NewFlagSet("bench windows", flag.ContinueOnError)
	fs.IntVar(&o.Records, "records", o.Records, "records per pre-aggregated run")
	fs.IntVar(&o.PerRecordRecords, "per-record", o.PerRecordRecords, "records of the one-update-per-record runs")
	fs.IntVar(&o.Videos, "videos", o.Videos, "videos the likes are spread over")
	fs.IntVar(&o.Shards, "shards", o.Shards, "workflows per pipeline in the sharded runs")
	if err := fs.Parse(args); err != nil {
		return err
	}
	r, err := bench.RunWindows(ctx, o, out, log)
	if err != nil {
		return err
	}
	fmt.Fprintln(out, "\nwindow bench (embedded stack; records/s until the bridge committed the last record)")
	fmt.Fprintln(out, "  pipeline       mode                          records   records/s   updates/1000 records   vs plain consumer")
	for _, run := range r.Runs {
		fmt.Fprintf(out, "  %-14s %-28s %8d %11.0f %22.1f %18.1f%%\n", run.Pipeline, run.Mode, run.Records, run.PerSecond(), run.ActionsPer1000(), 100*run.PerSecond()/r.Plain[run.Pipeline])
	}
	for p, v := range r.Plain {
		fmt.Fprintf(out, "  plain in-memory consumer, %s: %.0f records/s\n", p, v)
	}
	return nil
}
