package chaos_test

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/tributary-dev/tributary/internal/chaos"
	"github.com/tributary-dev/tributary/internal/pgtest"
)

// TestKillNineChangesNothing builds the starter, runs the stack, two bridges and two
// workers as processes of their own under load on all four pipelines, and does ten faults
// to them (seed 7): workers and bridges killed, bridges stopped past their session timeout,
// a third bridge added and removed, both workers stopped 10 s, the whole stack killed for
// 8 s. Then every closed window must equal the recomputation from its topic, no record be
// late that reached the broker in time, every join event be acked once, every visit and
// sensor minute equal the computation from the trajectories, and no output be written
// twice. It runs with the results in SQLite and again in PostgreSQL (a server of the
// test's own, which the faults leave alone). `starter chaos` runs the long version.
func TestKillNineChangesNothing(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the starter and runs processes for three minutes")
	}
	for _, database := range []string{"sqlite", "postgres"} {
		t.Run(database, func(t *testing.T) {
			o := chaos.Options{Seed: 7, Duration: time.Minute, Faults: 8, StackDown: 8 * time.Second, WorkersDown: 10 * time.Second}
			if database == "postgres" {
				o.Database = pgtest.Start(t)
			}
			rep := runChaos(t, o)
			if len(rep.Faults) != 10 {
				t.Errorf("%d faults done, want 10", len(rep.Faults))
			}
		})
	}
}

// TestStackKilledAsAStoppedBridgeResumes aims at one interleaving, three times: a bridge
// stopped past its session timeout is resumed at the moment the whole stack is killed, so
// its deliveries from before the stop and its successor's are in flight when the server
// dies, and the broker is reloaded after a crash again and again (one open transaction left
// by each kill must stay aborted through the next ones).
func TestStackKilledAsAStoppedBridgeResumes(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the starter and runs processes for two minutes")
	}
	s := time.Second
	var plan []chaos.Fault
	for i, bridge := range []string{"bridge-2", "bridge-1", "bridge-2"} {
		at := time.Duration(8+32*i) * s
		plan = append(plan,
			chaos.Fault{At: at, Kind: chaos.FaultStop, Targets: []string{bridge}, Down: 12 * s},
			chaos.Fault{At: at + 12*s, Kind: chaos.FaultKill, Targets: []string{"stack"}, Down: 8 * s})
	}
	rep := runChaos(t, chaos.Options{Seed: 11, Duration: 100 * s, Plan: plan})
	if len(rep.Faults) != len(plan) {
		t.Errorf("%d faults done, want %d", len(rep.Faults), len(plan))
	}
}

// keepEnv names a directory under which a run's state is kept rather than removed.
const keepEnv = "TRIBUTARY_CHAOS_KEEP"

// runChaos builds the starter and runs the suite with o (the rates and shards of the tests
// unless set), failing the test on any difference.
func runChaos(t *testing.T, o chaos.Options) chaos.Report {
	t.Helper()
	dir := t.TempDir()
	if keep := os.Getenv(keepEnv); keep != "" {
		// A failed run is read afterwards: the broker's and Temporal's state, the results
		// database and every process's log stay where the caller asked.
		dir = filepath.Join(keep, fmt.Sprintf("%s-%d", t.Name(), time.Now().Unix()))
		t.Logf("state kept in %s", dir)
	}
	o.Starter = filepath.Join(dir, "starter")
	build := exec.Command("go", "build", "-o", o.Starter, "../../starter")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("build the starter: %v\n%s", err, out)
	}
	o.Dir = filepath.Join(dir, "state")
	if o.Rates == (chaos.Rates{}) {
		o.Rates = chaos.Rates{Tx: 300, Join: 50, Likes: 50, Videos: 10, Travelers: 1}
	}
	if o.JoinShards == 0 {
		o.JoinShards = 4
	}
	var out bytes.Buffer
	o.Out = &out
	ctx, cancel := context.WithTimeout(context.Background(), 12*time.Minute)
	defer cancel()
	rep, err := chaos.Run(ctx, o)
	t.Logf("%s\n%s", out.String(), rep.Table())
	if err != nil {
		dumpLogs(t, filepath.Join(o.Dir, "logs"))
		t.Fatal(err)
	}
	if !rep.Outcome.Clean() {
		t.Error("the outputs differ from the inputs")
	}
	if len(rep.Outcome.Checks) != 4 {
		t.Fatalf("%d pipelines checked, want 4", len(rep.Outcome.Checks))
	}
	for _, c := range rep.Outcome.Checks {
		if c.Records == 0 || c.Checked == 0 {
			t.Errorf("%s: too little went through: %+v", c.Pipeline, c)
		}
	}
	if rep.PeakRSS["bridge"] == 0 {
		t.Error("no bridge memory sampled")
	}
	return rep
}

// dumpLogs prints the ends of the processes' logs.
func dumpLogs(t *testing.T, dir string) {
	files, _ := filepath.Glob(filepath.Join(dir, "*.log"))
	for _, f := range files {
		b, _ := os.ReadFile(f)
		if len(b) > 4000 {
			b = b[len(b)-4000:]
		}
		t.Logf("--- %s\n%s", filepath.Base(f), b)
	}
}
