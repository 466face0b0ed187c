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

// TestKillNineChangesNothing builds the starter, runs the stack and a second bridge and
// worker as processes of their own under load, kills them with SIGKILL (the whole stack
// once, for 8 s), and checks that every window equals the recomputation from the topic, no
// record is late that reached the broker in time, every event is acked once as complete,
// and no window output is written twice.
func TestKillNineChangesNothing(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the starter and runs processes for two minutes")
	}
	dir := t.TempDir()
	bin := filepath.Join(dir, "starter")
	build := exec.Command("go", "build", "-o", bin, "../../starter")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("build the starter: %v\n%s", err, out)
	}
	var out bytes.Buffer
	ctx, cancel := context.WithTimeout(context.Background(), 8*time.Minute)
	defer cancel()
	rep, err := chaos.Run(ctx, chaos.Options{
		Starter: bin, Dir: filepath.Join(dir, "state"), Seed: 7,
		Duration: 40 * time.Second, TxRate: 300, JoinRate: 50, Kills: 3, StackDown: 8 * time.Second, JoinShards: 4,
		Out: &out,
	})
	t.Logf("%s\n%s\n%s", out.String(), chaos.TableHeader, rep.Row())
	if err != nil {
		dumpLogs(t, filepath.Join(dir, "state", "logs"))
		t.Fatal(err)
	}
	if len(rep.Faults) != 4 {
		t.Errorf("%d faults done, want 4", len(rep.Faults))
	}
	o := rep.Outcome
	if !o.Clean() {
		t.Errorf("outcome %+v", o)
	}
	if o.Paid == 0 || o.Events == 0 || o.Windows < 10 {
		t.Errorf("too little went through: %+v", o)
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
