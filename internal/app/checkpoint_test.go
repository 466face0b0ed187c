package app_test

import (
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/tributary-dev/tributary/internal/sqlitefile"
	"github.com/tributary-dev/tributary/internal/testenv"
	"github.com/tributary-dev/tributary/schemas"
)

// The connections a process makes copy the SQLite results file's WAL into the file from a
// checkpointer of their own: a MiB of rows reaches the file within a few of its intervals,
// long before the commits' own checkpoint at sqlitefile.WALBytes would copy it.
func TestResultsFileIsCheckpointedOffTheCommits(t *testing.T) {
	cfg := testenv.Config(t)
	env := testenv.StartStack(t, cfg)
	path := cfg.Database()
	before := fileSize(t, path)
	fields := `{"v":"` + strings.Repeat("x", 1000) + `"}`
	rows := make([]schemas.DataRow, 1024)
	for i := range rows {
		rows[i] = schemas.DataRow{EventID: fmt.Sprintf("ck-%d", i), CreatedAt: time.Now().UTC(), Fields: fields, Offset: int64(i)}
	}
	if err := env.Deps.DB.Table("data1").CreateInBatches(rows, 100).Error; err != nil {
		t.Fatal(err)
	}
	want := before + int64(len(rows)*len(fields))
	deadline := time.Now().Add(4 * sqlitefile.CheckpointEvery)
	for fileSize(t, path) < want && time.Now().Before(deadline) {
		time.Sleep(testenv.Poll)
	}
	if s := fileSize(t, path); s < want {
		t.Errorf("the results file has %d bytes %s after a MiB of rows was written, want %d: its WAL was not checkpointed",
			s, 4*sqlitefile.CheckpointEvery, want)
	}
}

func fileSize(t testing.TB, path string) int64 {
	t.Helper()
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	return fi.Size()
}
