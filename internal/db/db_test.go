package db

import (
	"path/filepath"
	"testing"

	"github.com/tributary-dev/tributary/internal/sqlitefile"
)

// A new results file has small pages, and its connection lets the WAL grow to
// sqlitefile.WALBytes before a checkpoint.
func TestOpenMakesASmallPagedFile(t *testing.T) {
	g, err := Open(filepath.Join(t.TempDir(), "results.db"), nil)
	if err != nil {
		t.Fatal(err)
	}
	sqlDB, err := g.DB()
	if err != nil {
		t.Fatal(err)
	}
	defer sqlDB.Close()
	var pageSize, checkpoint int
	var mode string
	if err := g.Raw("PRAGMA page_size").Scan(&pageSize).Error; err != nil {
		t.Fatal(err)
	}
	if err := g.Raw("PRAGMA wal_autocheckpoint").Scan(&checkpoint).Error; err != nil {
		t.Fatal(err)
	}
	if err := g.Raw("PRAGMA journal_mode").Scan(&mode).Error; err != nil {
		t.Fatal(err)
	}
	if pageSize != resultsPageSize || checkpoint != sqlitefile.CheckpointPages(resultsPageSize) || mode != "wal" {
		t.Errorf("page size %d, wal_autocheckpoint %d, journal %s; want %d, %d, wal",
			pageSize, checkpoint, mode, resultsPageSize, sqlitefile.CheckpointPages(resultsPageSize))
	}
}
