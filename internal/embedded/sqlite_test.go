package embedded

import (
	"database/sql"
	"maps"
	"path/filepath"
	"slices"
	"strconv"
	"testing"

	"go.temporal.io/server/common/config"
	sqliteplugin "go.temporal.io/server/common/persistence/sql/sqlplugin/sqlite"
	sqliteschema "go.temporal.io/server/schema/sqlite"

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
	want := strconv.Itoa(sqlitefile.CheckpointPages(TemporalPageSize))
	if got := conf.ConnectAttributes["wal_autocheckpoint"]; got != want {
		t.Errorf("wal_autocheckpoint %q, want %s", got, want)
	}
	empty, size, err := sqlitefile.Prepare(SQLiteDriver, file, 4096)
	if err != nil || empty || size != TemporalPageSize {
		t.Errorf("the file: no tables %v, page size %d, %v; want its schema in %d-byte pages", empty, size, err, TemporalPageSize)
	}
	// Opening it again keeps the file, its schema and its namespaces.
	if _, err := sqliteConfig(opts); err != nil {
		t.Fatalf("opening an existing file: %v", err)
	}
}

// indexesOf lists the indexes of the visibility table in the SQLite file at path.
func indexesOf(t *testing.T, path string) map[string]bool {
	t.Helper()
	db, err := sql.Open(SQLiteDriver, "file:"+path)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	names, err := visibilityIndexes(db)
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]bool{}
	for _, name := range names {
		got[name] = true
	}
	return got
}

// A new file keeps only the visibility indexes the UI's list and filters use; a file made
// with Temporal's full schema loses the others on its next start.
func TestVisibilityKeepsTheListIndexesOnly(t *testing.T) {
	file := filepath.Join(t.TempDir(), "temporal.db")
	opts := TemporalOptions{DatabaseFile: file, Namespaces: []string{"default"}}
	if _, err := sqliteConfig(opts); err != nil {
		t.Fatal(err)
	}
	if got := indexesOf(t, file); !maps.Equal(got, keptVisibilityIndexes) {
		t.Errorf("new file: visibility indexes %v, want %v", slices.Sorted(maps.Keys(got)), slices.Sorted(maps.Keys(keptVisibilityIndexes)))
	}
	if dropped, err := lightenVisibility(file); err != nil || len(dropped) != 0 {
		t.Errorf("again: dropped %v (%v), want none", dropped, err)
	}

	old := filepath.Join(t.TempDir(), "old.db")
	conf := &config.SQL{PluginName: sqliteplugin.PluginName, DatabaseName: old, ConnectAttributes: map[string]string{"mode": "rwc"}}
	if err := sqliteschema.SetupSchema(conf); err != nil {
		t.Fatal(err)
	}
	full := indexesOf(t, old)
	if len(full) <= len(keptVisibilityIndexes) {
		t.Fatalf("Temporal's schema has %d visibility indexes; the test needs more than the %d kept", len(full), len(keptVisibilityIndexes))
	}
	for name := range keptVisibilityIndexes {
		if !full[name] {
			t.Errorf("Temporal's schema has no index %s to keep", name)
		}
	}
	if _, err := sqliteConfig(TemporalOptions{DatabaseFile: old, Namespaces: []string{"default"}}); err != nil {
		t.Fatal(err)
	}
	if got := indexesOf(t, old); !maps.Equal(got, keptVisibilityIndexes) {
		t.Errorf("old file after a start: visibility indexes %v", slices.Sorted(maps.Keys(got)))
	}
}
