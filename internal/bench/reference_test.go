package bench

import (
	"os"
	"runtime"
	"strings"
	"testing"
)

// TestMeasureReference times the reference work for real: both figures are measured, a
// commit to a file costs more than decoding a row in memory, and the files are removed.
func TestMeasureReference(t *testing.T) {
	tmp := t.TempDir()
	t.Setenv("TMPDIR", tmp)
	ref, err := MeasureReference()
	if err != nil {
		t.Fatal(err)
	}
	if ref.RowDecode <= 0 || ref.SQLiteCommit <= ref.RowDecode {
		t.Errorf("row decode %s, SQLite commit %s: want both measured, the commit the longer", ref.RowDecode, ref.SQLiteCommit)
	}
	if ref.Cores != runtime.GOMAXPROCS(0) || ref.CPU == "" {
		t.Errorf("machine %q with %d cores, want the processor's name and %d", ref.CPU, ref.Cores, runtime.GOMAXPROCS(0))
	}
	for _, want := range []string{ref.RowDecode.String(), "cores"} {
		if !strings.Contains(ref.String(), want) {
			t.Errorf("%q does not say %q", ref, want)
		}
	}
	left, err := os.ReadDir(tmp)
	if err != nil || len(left) != 0 {
		t.Errorf("left behind in the temporary directory: %v (%v)", left, err)
	}
}
