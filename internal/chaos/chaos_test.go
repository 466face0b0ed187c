package chaos_test

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/tributary-dev/tributary/internal/chaos"
)

// TestKillNineChangesNothing builds the starter, runs the stack, two bridges and two
// workers as processes of their own under load on all four pipelines, and does ten faults
// to them (seed 7): workers and bridges killed, bridges stopped past their session timeout,
// a third bridge added and removed, both workers stopped 10 s, the whole stack killed for
// 8 s. Then every closed window must equal the recomputation from its topic, no record be
// late that reached the broker in time, every join event be acked once, every visit and
// sensor minute equal the computation from the trajectories, and no output be written
// twice. `starter chaos` runs the long version.
func TestKillNineChangesNothing(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the starter and runs processes for three minutes")
	}
	dir := t.TempDir()
	bin := filepath.Join(dir, "starter")
	build := exec.Command("go", "build", "-o", bin, "../../starter")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("build the starter: %v\n%s", err, out)
	}
	var out bytes.Buffer
	ctx, cancel := context.WithTimeout(context.Background(), 12*time.Minute)
	defer cancel()
	rep, err := chaos.Run(ctx, chaos.Options{
		Starter: bin, Dir: filepath.Join(dir, "state"), Seed: 7, Duration: time.Minute,
		Rates:  chaos.Rates{Tx: 300, Join: 50, Likes: 50, Videos: 10, Travelers: 1},
		Faults: 8, StackDown: 8 * time.Second, WorkersDown: 10 * time.Second, JoinShards: 4,
		Out: &out,
	})
	t.Logf("%s\n%s", out.String(), rep.Table())
	if err != nil {
		dumpLogs(t, filepath.Join(dir, "state", "logs"))
		t.Fatal(err)
	}
	if len(rep.Faults) != 10 {
		t.Errorf("%d faults done, want 10", len(rep.Faults))
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
