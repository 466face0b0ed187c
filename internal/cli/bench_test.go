package cli

import (
	"bytes"
	"strings"
	"testing"
	"time"

	"github.com/tributary-dev/tributary/internal/bench"
)

// TestBenchTable: one row per scenario, bytes written and processor time per record, and
// each rate as a share of the ceiling measured beside it.
func TestBenchTable(t *testing.T) {
	jr := bench.JoinResult{CeilingAccepted: 120, CeilingApplied: 40, CeilingCalls: 2000, CeilingUsage: bench.Usage{CPU: 10 * time.Second},
		StartCeiling: 80, StartCeilingUsage: bench.Usage{CPU: 8 * time.Second},
		PerEvent: bench.Throughput{Events: 1000, Elapsed: 50 * time.Second, Signals: 3000, HistoryEvents: 14000, Usage: bench.Usage{PeakRSS: 300 << 20, Written: 5_000_000, CPU: 12 * time.Second}},
		Sharded: []bench.ShardedRuns{
			{Shards: 4, Throughput: bench.Throughput{Events: 10000, Elapsed: 4 * time.Second, Signals: 2000, Usage: bench.Usage{CPU: 3 * time.Second}}},
			{Shards: 1, Latency: bench.Latency{Rate: 200, Events: 4000, Usage: bench.Usage{CPU: 20 * time.Second}}},
		},
		Original: bench.Latency{Rate: 5, Events: 100},
		Machine:  bench.Reference{CPU: "Model 7", Cores: 2, RowDecode: 3 * time.Microsecond, SQLiteCommit: 90 * time.Microsecond},
	}
	wr := bench.WindowResult{Plain: map[string]float64{"likes": 100000},
		Runs: []bench.WindowRun{{Pipeline: "likes", Mode: "pre-aggregated", Records: 50000, Elapsed: time.Second, Updates: 100, HistoryEvents: 600, Produced: 80000}}}
	var out bytes.Buffer
	printAll(&out, jr, wr, []bench.Ceiling{{Store: "PostgreSQL", Accepted: 300, Applied: 100, Usage: bench.Usage{PeakRSS: 200 << 20}}})
	table := out.String()
	for _, want := range []string{
		"machine: Model 7, 2 cores; a join row decoded in 3µs, a SQLite commit (the server's driver and settings) in 90µs",
		"| server | SignalWithStart calls answered (ceiling) | 120 |",
		"| server on PostgreSQL | SignalWithStart calls answered (ceiling) | 300 |",
		"| server | workflows started, signalled, completed (ceiling) | 40 | – | – | – | – | 0 MiB | 0 B | 5.00ms | – |",                          // 10 s of CPU for 2,000 workflows
		"| server on PostgreSQL | workflows started, signalled, completed (ceiling) | 100 | – | – | – | – | 200 MiB | – | – | 250% of SQLite's |", // 100/s beside SQLite's 40/s
		"| join, events | one workflow per event id | 20 | 3000.0 | 14000 |",                                                                      // 1,000 events in 50 s, 3 signals and 14 history events each
		"| server | workflows started eagerly with their input, completed (ceiling) | 80 | – | – | – | – | 0 MiB | 0 B | 4.00ms | 200% of the first |",
		"| 300 MiB | 5000 B | 12.00ms | 50% (25% of eager starts) |", // 5 MB and 12 s of CPU for 1,000 events; 20/s of a 40/s ceiling, of an 80/s one
		"| 300µs | – |", // the sharded run's 3 s of CPU for 10,000 events
		"| join, events | sharded (4) | 2500 | 200.0 |",                         // 10,000 in 4 s
		"| join, ack delay | the original's workload, sharded (4) at 5/s | 5 |", // the original's rate, with the first shard count
		"| join, ack delay | sharded (1) at 200/s | 200 | – | – |",              // the second shard count's latency run
		"| 5.00ms | – |\n", // its 20 s of CPU for 4,000 events
		"| likes, records | pre-aggregated | 50000 | 2.0 | 12 |", // 100 updates and 600 history events for 50,000 records
		"| likes, records | broker, produced (idempotent, acks=all) (ceiling) | 80000 |",
		"| 50% |\n| likes, records | plain in-memory consumer (ceiling) | 100000", // half the plain consumer
	} {
		if !strings.Contains(table, want) {
			t.Errorf("the table lacks %q:\n%s", want, table)
		}
	}
	if strings.Contains(table, "one workflow per event id at") {
		t.Errorf("a latency run that did not run has a row:\n%s", table)
	}
}

// TestShardCountsFlag: -shards takes a comma-separated list of positive counts, and writes
// its default the way it reads one.
func TestShardCountsFlag(t *testing.T) {
	got, err := parseInts(" 4,1 ")
	if err != nil || len(got) != 2 || got[0] != 4 || got[1] != 1 {
		t.Fatalf("parseInts(\" 4,1 \") = %v, %v; want [4 1]", got, err)
	}
	for _, bad := range []string{"", "0", "4,,1", "four", "-2"} {
		if n, err := parseInts(bad); err == nil {
			t.Errorf("parseInts(%q) = %v, want an error", bad, n)
		}
	}
	if s := joinInts([]int{4, 1}); s != "4,1" {
		t.Errorf("joinInts = %q, want 4,1", s)
	}
}
