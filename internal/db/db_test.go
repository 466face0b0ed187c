package db

import (
	"database/sql"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"gorm.io/gorm"

	"github.com/tributary-dev/tributary/internal/sqlitefile"
	"github.com/tributary-dev/tributary/schemas"
)

// A new results file has small pages, and its connection lets the WAL grow to
// sqlitefile.WALBytes before a checkpoint.
func TestOpenMakesASmallPagedFile(t *testing.T) {
	g := openResults(t, filepath.Join(t.TempDir(), "results.db"))
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

// StartCheckpointer copies a results file's WAL into the file, off the writers' commits,
// and has nothing to do for PostgreSQL.
func TestStartCheckpointerCopiesTheResultsWAL(t *testing.T) {
	if c, err := StartCheckpointer("postgres://tributary@127.0.0.1/x", time.Millisecond, nil); c != nil || err != nil {
		t.Fatalf("StartCheckpointer on PostgreSQL = %v, %v; want nil, nil", c, err)
	}
	path := filepath.Join(t.TempDir(), "results.db")
	g := openResults(t, "sqlite://"+path)
	written := writeMiB(t, g)
	size := fileSize(t, path)
	if size >= written {
		t.Fatalf("the file has %d bytes before any checkpoint; the %d bytes of rows should still be in the WAL", size, written)
	}
	c, err := StartCheckpointer("sqlite://"+path, 10*time.Millisecond, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for fileSize(t, path) < written && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if err := c.Stop(); err != nil {
		t.Error(err)
	}
	if s := fileSize(t, path); s < written {
		t.Errorf("the file has %d bytes after the checkpoints, want the %d bytes of rows", s, written)
	}
}

// openResults opens the results database at url, closed when the test ends.
func openResults(t testing.TB, url string) *gorm.DB {
	t.Helper()
	g, err := Open(url, nil)
	if err != nil {
		t.Fatal(err)
	}
	sqlDB, err := g.DB()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { sqlDB.Close() })
	return g
}

// writeMiB writes a MiB of rows into data1 and returns how many bytes that was.
func writeMiB(t testing.TB, g *gorm.DB) int64 {
	t.Helper()
	fields := `{"v":"` + strings.Repeat("x", 1000) + `"}`
	rows := make([]schemas.DataRow, 1024)
	for i := range rows {
		rows[i] = schemas.DataRow{EventID: fmt.Sprintf("ck-%d", i), CreatedAt: time.Now().UTC(), Fields: fields, Offset: int64(i)}
	}
	if err := g.Table("data1").CreateInBatches(rows, 100).Error; err != nil {
		t.Fatal(err)
	}
	return int64(len(rows) * len(fields))
}

func fileSize(t testing.TB, path string) int64 {
	t.Helper()
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	return fi.Size()
}
