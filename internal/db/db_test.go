package db

import (
	"database/sql"
	"fmt"
	"path/filepath"
	"sync"
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

// Callers racing for a page size's driver all get one that database/sql already knows.
func TestCheckpointedDriverIsRegisteredBeforeItIsNamed(t *testing.T) {
	dir := t.TempDir()
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	for i := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			d, err := sql.Open(checkpointedDriver(2048), filepath.Join(dir, fmt.Sprintf("f%d.db", i)))
			if err == nil {
				err = d.Ping()
				d.Close()
			}
			errs <- err
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Error(err)
		}
	}
}
