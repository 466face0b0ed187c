package embedded

import (
	"path/filepath"
	"strconv"
	"testing"

	"github.com/tributary-dev/tributary/internal/sqlitefile"
)

// A new Temporal file has the small pages that keep the server's writes small, its
// schema, and connections that checkpoint the WAL at sqlitefile.WALBytes.
func TestTemporalSQLiteFileHasSmallPages(t *testing.T) {
	file := filepath.Join(t.TempDir(), "temporal.db")
	opts := TemporalOptions{DatabaseFile: file, Namespaces: []string{"default"}}
	conf, err := sqliteConfig(opts)
	if err != nil {
		t.Fatal(err)
	}
	want := strconv.Itoa(sqlitefile.CheckpointPages(temporalPageSize))
	if got := conf.ConnectAttributes["wal_autocheckpoint"]; got != want {
		t.Errorf("wal_autocheckpoint %q, want %s", got, want)
	}
	empty, size, err := sqlitefile.Prepare(sqliteDriver, file, 4096)
	if err != nil || empty || size != temporalPageSize {
		t.Errorf("the file: no tables %v, page size %d, %v; want its schema in %d-byte pages", empty, size, err, temporalPageSize)
	}
	// Opening it again keeps the file, its schema and its namespaces.
	if _, err := sqliteConfig(opts); err != nil {
		t.Fatalf("opening an existing file: %v", err)
	}
}
