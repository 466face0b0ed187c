package cli

import (
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/tributary-dev/tributary/internal/joinsim"
	"github.com/tributary-dev/tributary/workflows"
)

// printJoinReport prints a run's outcome and a chart of its ack delays.
func printJoinReport(out io.Writer, runID string, r workflows.SimulationProgress) {
	rep := r.Report
	fmt.Fprintf(out, "\njoin run %s\n", runID)
	row := func(label string, v any) { fmt.Fprintf(out, "  %-24s %v\n", label, v) }
	row("events sent", fmt.Sprintf("%d (%d rows, %d repeated, %d malformed)", r.Produced.Events, r.Produced.Rows, r.Produced.Duplicated, r.Produced.Malformed))
	row("acked (complete)", rep.Acked)
	row("incomplete", rep.Incomplete)
	row("duplicates recognised", fmt.Sprintf("%d (%d before the ack, %d after)", r.Duplicates(), rep.Duplicates, r.Late))
	row("dead-lettered", rep.DeadLettered)
	if twice := rep.AckRecords - rep.Resolved(); twice > 0 {
		row("acked more than once", twice)
	}
	if r.TimedOut {
		row("no ack yet", r.Total-rep.Resolved())
	}
	d := rep.Delays
	if d.Count == 0 {
		return
	}
	fmt.Fprintf(out, "  %-24s p50 %s  p90 %s  p99 %s  max %s\n", "ack delay", ms(d.Quantile(0.5)), ms(d.Quantile(0.9)), ms(d.Quantile(0.99)), ms(d.Max))
	fmt.Fprintln(out)
	fmt.Fprint(out, DelayChart(d, 40))
}

func ms(d time.Duration) string {
	switch {
	case d < 10*time.Millisecond:
		return fmt.Sprintf("%.2fms", float64(d)/1e6)
	case d < time.Second:
		return fmt.Sprintf("%.1fms", float64(d)/1e6)
	default:
		return fmt.Sprintf("%.2fs", d.Seconds())
	}
}

// cpuMs writes processor time per record: microseconds below a millisecond.
func cpuMs(d time.Duration) string {
	switch {
	case d <= 0:
		return "–"
	case d < time.Millisecond:
		return fmt.Sprintf("%.0fµs", float64(d)/1e3)
	default:
		return fmt.Sprintf("%.2fms", float64(d)/1e6)
	}
}

// delayBands are the chart's rows: each counts the delays up to its bound.
var delayBands = []time.Duration{
	time.Millisecond, 2 * time.Millisecond, 5 * time.Millisecond, 10 * time.Millisecond, 20 * time.Millisecond,
	50 * time.Millisecond, 100 * time.Millisecond, 200 * time.Millisecond, 500 * time.Millisecond, time.Second,
}

// DelayChart draws a horizontal bar chart of a delay histogram in bands of 1-2-5 steps.
func DelayChart(h joinsim.Histogram, width int) string {
	counts := make([]int64, len(delayBands)+1)
	for k, n := range h.Buckets {
		upper := joinsim.BucketUpper(k)
		i := 0
		for i < len(delayBands) && upper > delayBands[i] {
			i++
		}
		counts[i] += n
	}
	var peak int64
	for _, c := range counts {
		peak = max(peak, c)
	}
	var b strings.Builder
	b.WriteString("  ack delay distribution\n")
	for i, c := range counts {
		label := "> " + ms(delayBands[len(delayBands)-1])
		if i < len(delayBands) {
			label = "≤ " + ms(delayBands[i])
		}
		bar := 0
		if peak > 0 {
			bar = int(float64(c) / float64(peak) * float64(width))
		}
		if c > 0 && bar == 0 {
			bar = 1
		}
		fmt.Fprintf(&b, "  %9s │%s %d\n", label, strings.Repeat("▇", bar), c)
	}
	return b.String()
}
