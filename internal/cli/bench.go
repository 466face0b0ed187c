package cli

import (
	"context"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"runtime/pprof"
	"strconv"
	"strings"

	"github.com/tributary-dev/tributary/internal/bench"
)

// benchJoin is `starter bench join`: a fresh embedded stack, measured.
func benchJoin(ctx context.Context, args []string, out io.Writer, log *slog.Logger) error {
	o := bench.DefaultJoinOptions()
	fs := flag.NewFlagSet("bench join", flag.ContinueOnError)
	fs.IntVar(&o.CeilingCalls, "ceiling-calls", o.CeilingCalls, "SignalWithStart calls of the ceiling probe")
	fs.IntVar(&o.PerEventEvents, "per-event", o.PerEventEvents, "events of the per-event throughput run (0 skips the per-event runs)")
	fs.IntVar(&o.ShardedEvents, "sharded", o.ShardedEvents, "events of the sharded throughput run")
	fs.Func("shards", fmt.Sprintf("shard counts of the sharded runs, comma-separated, each measured on its own (default %s)", joinInts(o.Shards)), func(v string) error {
		n, err := parseInts(v)
		o.Shards = n
		return err
	})
	fs.Float64Var(&o.LatencyRate, "rate", o.LatencyRate, "events per second of the sharded latency run")
	fs.Float64Var(&o.PerEventLatencyRate, "per-event-rate", o.PerEventLatencyRate, "events per second of the per-event latency run")
	fs.DurationVar(&o.LatencyDuration, "duration", o.LatencyDuration, "length of each latency run")
	fs.StringVar(&o.TemporalDatabase, "temporal-database", "", "the server's database: empty is SQLite; "+bench.TemporalAuto+" a PostgreSQL server of the bench's own; or a postgres:// URL (the bench makes and drops a database of its own there)")
	cpuProfile := fs.String("cpuprofile", "", "write a CPU profile of the whole run to this file")
	if err := fs.Parse(args); err != nil {
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
	printBench(out, r, o.TemporalDatabase)
	return nil
}

func printBench(out io.Writer, r bench.JoinResult, temporalDB string) {
	store := "SQLite"
	if temporalDB != "" {
		store = "PostgreSQL"
	}
	fmt.Fprintf(out, "\njoin bench (embedded stack: kfake, Temporal on %s, SQLite results)\n", store)
	fmt.Fprintf(out, "  machine: %s\n", r.Machine)
	fmt.Fprintf(out, "  server ceiling: SignalWithStart accepted %.0f/s, applied (started, signalled, completed) %.0f/s\n", r.CeilingAccepted, r.CeilingApplied)
	fmt.Fprintf(out, "  server ceiling: CPU %s and %.1f persistence requests per workflow\n", cpuMs(r.CeilingUsage.CPUPer(r.CeilingCalls)), r.CeilingRequests)
	if r.StartCeiling > 0 {
		fmt.Fprintf(out, "  server ceiling: started eagerly with their input, completed %.0f/s, CPU %s and %.1f persistence requests per workflow\n", r.StartCeiling,
			cpuMs(r.StartCeilingUsage.CPUPer(r.CeilingCalls)), r.StartCeilingRequests)
	}
	fmt.Fprintln(out, "\n  mode                 events   events/s     calls/event   vs ceiling   vs eager   CPU/event")
	row := func(name string, t bench.Throughput) {
		eager := "–"
		if r.StartCeiling > 0 {
			eager = fmt.Sprintf("%.0f%%", 100*t.PerSecond()/r.StartCeiling)
		}
		fmt.Fprintf(out, "  %-18s %8d %10.0f %15.2f %11.0f%% %10s %11s\n", name, t.Events, t.PerSecond(), float64(t.Signals)/float64(t.Events), 100*t.PerSecond()/r.CeilingApplied,
			eager, cpuMs(t.Usage.CPUPer(t.Events)))
	}
	if r.PerEvent.Events > 0 {
		row("per event id", r.PerEvent)
	}
	for _, s := range r.Sharded {
		row(fmt.Sprintf("sharded (%d)", s.Shards), s.Throughput)
	}
	fmt.Fprintln(out, "\n  ack delay at a steady rate        p50       p90       p99       max   calls/event   events/batch   CPU/event")
	lat := func(name string, l bench.Latency) {
		if l.Events == 0 {
			return
		}
		d := l.Report.Delays
		fmt.Fprintf(out, "  %-28s %9s %9s %9s %9s %13.2f %14.2f %11s\n", fmt.Sprintf("%s, %.0f/s", name, l.Rate), ms(d.Quantile(0.5)), ms(d.Quantile(0.9)), ms(d.Quantile(0.99)), ms(d.Max),
			float64(l.Signals)/float64(l.Events), float64(l.Events)/float64(max(l.Batches, 1)), cpuMs(l.Usage.CPUPer(l.Events)))
	}
	lat("per event id", r.PerEventLatency)
	for _, s := range r.Sharded {
		lat(fmt.Sprintf("sharded (%d)", s.Shards), s.Latency)
	}
	lat("the original's workload", r.Original)
	for _, s := range r.Sharded {
		fmt.Fprintf(out, "\n  sharded (%d) at %.0f/s\n", s.Shards, s.Latency.Rate)
		fmt.Fprint(out, DelayChart(s.Latency.Report.Delays, 40))
	}
}

// parseInts reads a comma-separated list of positive whole numbers.
func parseInts(v string) ([]int, error) {
	var out []int
	for _, f := range strings.Split(v, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil || n < 1 {
			return nil, fmt.Errorf("%q is not a positive whole number", f)
		}
		out = append(out, n)
	}
	return out, nil
}

// joinInts writes numbers as parseInts reads them.
func joinInts(ns []int) string {
	fs := make([]string, len(ns))
	for i, n := range ns {
		fs[i] = strconv.Itoa(n)
	}
	return strings.Join(fs, ",")
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
	fmt.Fprintln(out, "  pipeline       mode                          records   records/s   updates/1000 records   vs plain consumer   peak RSS   CPU/record")
	for _, run := range r.Runs {
		fmt.Fprintf(out, "  %-14s %-28s %8d %11.0f %22.1f %18.1f%% %6d MiB %12s\n", run.Pipeline, run.Mode, run.Records, run.PerSecond(), run.ActionsPer1000(),
			100*run.PerSecond()/r.Plain[run.Pipeline], run.Usage.PeakRSS>>20, cpuMs(run.Usage.CPUPer(run.Records)))
	}
	for p, v := range r.Plain {
		fmt.Fprintf(out, "  plain in-memory consumer, %s: %.0f records/s\n", p, v)
	}
	return nil
}

// benchSensors is `starter bench sensors`.
func benchSensors(ctx context.Context, args []string, out io.Writer, log *slog.Logger) error {
	o := bench.DefaultSensorOptions()
	fs := flag.NewFlagSet("bench sensors", flag.ContinueOnError)
	fs.IntVar(&o.Travelers, "travelers", o.Travelers, "travelers, all in view within the same 10 seconds")
	fs.IntVar(&o.Sensors, "sensors", o.Sensors, "sensors")
	fs.IntVar(&o.Legs, "legs", o.Legs, "sensors each traveler crosses")
	shards := fs.Int("shards", 8, "traveler shards of the sharded run (the per-traveler run always runs)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	o.Shards = []int{0, *shards}
	runs, err := bench.RunSensors(ctx, o, out, log)
	if err != nil {
		return err
	}
	fmt.Fprintf(out, "\nsensors bench (embedded stack; a backlog of readings from %d concurrent travelers)\n", o.Travelers)
	fmt.Fprintln(out, "  mode                       readings   committed/s   stored/s   per 1000 readings: signals  updates  runs  history events")
	for _, r := range runs {
		fmt.Fprintf(out, "  %-26s %8d %13.0f %10.0f %27.1f %8.1f %5.1f %15.0f\n", bench.SensorMode(r.Shards), r.Readings,
			float64(r.Readings)/r.Committed.Seconds(), float64(r.Readings)/r.Stored.Seconds(),
			r.Per1000(r.Signals), r.Per1000(r.Updates), r.Per1000(r.Runs), r.Per1000(r.HistoryEvents))
	}
	fmt.Fprintln(out, "  committed/s: until the bridge committed the last reading; stored/s: until the last visit row, an idle gap (2 s) after the last reading")
	return nil
}

// benchAll is `starter bench all`: the join and window benches, each scenario on a fresh
// embedded stack, in one table beside the ceilings measured in the same run.
func benchAll(ctx context.Context, args []string, out io.Writer, log *slog.Logger) error {
	jo, wo := bench.DefaultJoinOptions(), bench.DefaultWindowOptions()
	fs := flag.NewFlagSet("bench all", flag.ContinueOnError)
	fs.IntVar(&jo.ShardedEvents, "sharded", jo.ShardedEvents, "events of the sharded join throughput run")
	fs.IntVar(&jo.PerEventEvents, "per-event", jo.PerEventEvents, "events of the per-event join throughput run")
	fs.IntVar(&wo.Records, "records", wo.Records, "records per pre-aggregated window run")
	fs.IntVar(&wo.PerRecordRecords, "per-record", wo.PerRecordRecords, "records of the one-update-per-record window runs")
	pg := fs.String("temporal-database", bench.TemporalAuto, "where the second server ceiling runs: "+bench.TemporalAuto+" (a PostgreSQL server of the bench's own), a postgres:// URL, or none")
	if err := fs.Parse(args); err != nil {
		return err
	}
	jr, err := bench.RunJoin(ctx, jo, out, log)
	if err != nil {
		return err
	}
	// The join's rows now, so that a window run that fails or is stopped leaves them shown.
	printAll(out, jr, bench.WindowResult{}, nil)
	wr, err := bench.RunWindows(ctx, wo, out, log)
	if err != nil {
		return err
	}
	var onPG []bench.Ceiling
	if *pg != "none" {
		// The second ceiling is a comparison: without a PostgreSQL server (no binaries, a
		// URL that does not answer) the table still comes, without that row.
		c, err := bench.RunCeiling(ctx, jo.CeilingCalls, *pg, out, log)
		if err != nil {
			fmt.Fprintf(out, "no ceiling on PostgreSQL: %v\n", err)
		} else {
			onPG = append(onPG, c)
		}
	}
	printAll(out, jr, wr, onPG)
	return nil
}

// benchCeiling is `starter bench ceiling`: the server alone, on SQLite and on PostgreSQL.
func benchCeiling(ctx context.Context, args []string, out io.Writer, log *slog.Logger) error {
	fs := flag.NewFlagSet("bench ceiling", flag.ContinueOnError)
	calls := fs.Int("calls", bench.DefaultJoinOptions().CeilingCalls, "SignalWithStart calls, each to a new workflow")
	pg := fs.String("temporal-database", bench.TemporalAuto, "the PostgreSQL the second run uses: "+bench.TemporalAuto+" (a server of the bench's own) or a postgres:// URL")
	if err := fs.Parse(args); err != nil {
		return err
	}
	var runs []bench.Ceiling
	for _, choice := range []string{"", *pg} {
		c, err := bench.RunCeiling(ctx, *calls, choice, out, log)
		if err != nil {
			return err
		}
		runs = append(runs, c)
	}
	fmt.Fprintf(out, "\nserver ceiling, %d workflows (embedded Temporal, one process)\n", *calls)
	fmt.Fprintln(out, "  store        SignalWithStart answered/s   started, signalled, completed/s   peak RSS   written per workflow   CPU per workflow")
	for _, c := range runs {
		fmt.Fprintf(out, "  %-12s %26.0f %33.0f %6d MiB %17d B %18s\n", c.Store, c.Accepted, c.Applied, c.Usage.PeakRSS>>20, c.Usage.Written/int64(*calls),
			cpuMs(c.Usage.CPUPer(*calls)))
	}
	fmt.Fprintln(out, "  CPU is the bench process's: on PostgreSQL, the server's own processes are not in it")
	return nil
}

// printAll writes the one table of `starter bench all`: rate, Temporal actions and history
// events per 1,000 records, delay, the process's peak memory and bytes written, and the rate
// as a share of the ceiling that bounds it (the server's workflow rate for per-event joins,
// the plain in-memory consumer for windows), beside the ceilings themselves.
func printAll(out io.Writer, jr bench.JoinResult, wr bench.WindowResult, others []bench.Ceiling) {
	fmt.Fprintf(out, "\nmachine: %s\n", jr.Machine)
	fmt.Fprintln(out, "\n| scenario | mode | per second | actions / 1,000 | history events / 1,000 | p50 | p99 | peak RSS | written per record | CPU per record | vs ceiling |")
	fmt.Fprintln(out, "|---|---|---|---|---|---|---|---|---|---|---|")
	// row prints one scenario; n is the records or events it counts per (0: no such column).
	row := func(scenario, mode string, rate, actions float64, history int64, p50, p99 string, u bench.Usage, n int, ceiling string) {
		written, events, perK, cpu := "–", "–", "–", "–"
		if actions > 0 {
			perK = fmt.Sprintf("%.1f", actions)
		}
		if n > 0 {
			written = fmt.Sprintf("%d B", u.Written/int64(n))
			cpu = cpuMs(u.CPUPer(n))
			if history > 0 {
				events = fmt.Sprintf("%.0f", 1000*float64(history)/float64(n))
			}
		}
		fmt.Fprintf(out, "| %s | %s | %.0f | %s | %s | %s | %s | %d MiB | %s | %s | %s |\n", scenario, mode, rate, perK, events, p50, p99, u.PeakRSS>>20, written, cpu, ceiling)
	}
	share := func(v, of float64) string {
		if of <= 0 {
			return "–"
		}
		return fmt.Sprintf("%.0f%%", 100*v/of)
	}
	ceiling := func(scenario, mode string, rate float64) {
		fmt.Fprintf(out, "| %s | %s (ceiling) | %.0f | – | – | – | – | – | – | – | – |\n", scenario, mode, rate)
	}
	ceiling("server", "SignalWithStart calls answered", jr.CeilingAccepted)
	row("server", "workflows started, signalled, completed (ceiling)", jr.CeilingApplied, 0, 0, "–", "–", jr.CeilingUsage, jr.CeilingCalls, "–")
	row("server", "workflows started eagerly with their input, completed (ceiling)", jr.StartCeiling, 0, 0, "–", "–", jr.StartCeilingUsage, jr.CeilingCalls,
		share(jr.StartCeiling, jr.CeilingApplied)+" of the first")
	for _, c := range others {
		ceiling("server on "+c.Store, "SignalWithStart calls answered", c.Accepted)
		row("server on "+c.Store, "workflows started, signalled, completed (ceiling)", c.Applied, 0, 0, "–", "–", c.Usage, 0, share(c.Applied, jr.CeilingApplied)+" of SQLite's")
	}
	tput := func(mode string, t bench.Throughput, ceiling string) {
		if t.Events == 0 {
			return
		}
		d := t.Report.Delays
		row("join, events", mode, t.PerSecond(), 1000*float64(t.Signals)/float64(t.Events), t.HistoryEvents, ms(d.Quantile(0.5)), ms(d.Quantile(0.99)), t.Usage, t.Events, ceiling)
	}
	tput("one workflow per event id", jr.PerEvent, share(jr.PerEvent.PerSecond(), jr.CeilingApplied)+" ("+share(jr.PerEvent.PerSecond(), jr.StartCeiling)+" of eager starts)")
	for _, s := range jr.Sharded {
		tput(fmt.Sprintf("sharded (%d)", s.Shards), s.Throughput, "–")
	}
	lat := func(mode string, l bench.Latency) {
		if l.Events == 0 {
			return
		}
		d := l.Report.Delays
		row("join, ack delay", fmt.Sprintf("%s at %.0f/s", mode, l.Rate), l.Rate, 0, 0, ms(d.Quantile(0.5)), ms(d.Quantile(0.99)), l.Usage, l.Events, "–")
	}
	lat("one workflow per event id", jr.PerEventLatency)
	for _, s := range jr.Sharded {
		lat(fmt.Sprintf("sharded (%d)", s.Shards), s.Latency)
	}
	if len(jr.Sharded) > 0 {
		lat(fmt.Sprintf("the original's workload, sharded (%d)", jr.Sharded[0].Shards), jr.Original)
	}
	produced := map[string]float64{}
	for _, r := range wr.Runs {
		row(r.Pipeline+", records", r.Mode, r.PerSecond(), r.ActionsPer1000(), r.HistoryEvents, "–", "–", r.Usage, r.Records, share(r.PerSecond(), wr.Plain[r.Pipeline]))
		produced[r.Pipeline] = max(produced[r.Pipeline], r.Produced)
	}
	for _, p := range []string{"transactions", "likes"} {
		if v := wr.Plain[p]; v > 0 {
			ceiling(p+", records", "plain in-memory consumer", v)
		}
		if v := produced[p]; v > 0 {
			ceiling(p+", records", "broker, produced (idempotent, acks=all)", v)
		}
	}
	fmt.Fprintln(out, "\npeak RSS and bytes written are the bench process's: stack, roles and load are one process")
}
