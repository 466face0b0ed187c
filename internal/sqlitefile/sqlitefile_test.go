package sqlitefile

import (
	"database/sql"
	"log/slog"
	"os"
	"path/filepath"
	"testing"
	"time"

	_ "github.com/mattn/go-sqlite3"
	_ "modernc.org/sqlite"
)

// Both SQLite drivers Tributary uses get the page size asked for on a new file, in WAL
// mode; a file with tables keeps the page size it was made with.
func TestPrepareSetsThePageSizeOfANewFileOnly(t *testing.T) {
	for _, driver := range []string{"sqlite3", "sqlite"} {
		t.Run(driver, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "new.db")
			empty, size, err := Prepare(driver, path, 512)
			if err != nil || !empty || size != 512 {
				t.Fatalf("new file: empty %v, page size %d, %v; want true, 512", empty, size, err)
			}
			db, err := sql.Open(driver, "file:"+path)
			if err != nil {
				t.Fatal(err)
			}
			defer db.Close()
			var mode string
			if err := db.QueryRow("PRAGMA journal_mode").Scan(&mode); err != nil || mode != "wal" {
				t.Errorf("journal mode %q (%v), want wal", mode, err)
			}
			if _, err := db.Exec("CREATE TABLE t (x)"); err != nil {
				t.Fatal(err)
			}
			if empty, size, err = Prepare(driver, path, 1024); err != nil || empty || size != 512 {
				t.Errorf("again: empty %v, page size %d, %v; want false, 512", empty, size, err)
			}

			old := filepath.Join(t.TempDir(), "old.db")
			odb, err := sql.Open(driver, "file:"+old)
			if err != nil {
				t.Fatal(err)
			}
			defer odb.Close()
			if _, err := odb.Exec("CREATE TABLE t (x)"); err != nil {
				t.Fatal(err)
			}
			if empty, size, err = Prepare(driver, old, 512); err != nil || empty || size != 4096 {
				t.Errorf("a file with tables: empty %v, page size %d, %v; want false, 4096", empty, size, err)
			}
		})
	}
	if got := CheckpointPages(512); got*512 != WALBytes {
		t.Errorf("CheckpointPages(512) = %d", got)
	}
}

// The checkpointer copies what a writer left in the WAL into the database file, where the
// writer's own checkpoint never runs.
func TestCheckpointerCopiesTheWAL(t *testing.T) {
	path := filepath.Join(t.TempDir(), "wal.db")
	if _, _, err := Prepare("sqlite", path, 512); err != nil {
		t.Fatal(err)
	}
	w, err := sql.Open("sqlite", "file:"+path+"?_pragma=wal_autocheckpoint(0)")
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	w.SetMaxOpenConns(1)
	if _, err := w.Exec("CREATE TABLE t (x BLOB)"); err != nil {
		t.Fatal(err)
	}
	for range 64 {
		if _, err := w.Exec("INSERT INTO t VALUES (randomblob(16384))"); err != nil {
			t.Fatal(err)
		}
	}
	size := func() int64 {
		fi, err := os.Stat(path)
		if err != nil {
			t.Fatal(err)
		}
		return fi.Size()
	}
	if s := size(); s >= 1<<20 {
		t.Fatalf("the file has %d bytes before any checkpoint; the rows should still be in the WAL", s)
	}
	c, err := StartCheckpointer("sqlite", path, 10*time.Millisecond, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for size() < 1<<20 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if err := c.Stop(); err != nil {
		t.Error(err)
	}
	if s := size(); s < 1<<20 {
		t.Errorf("the file has %d bytes after the checkpoints, want the 1 MiB of rows", s)
	}
	var n int
	if err := w.QueryRow("SELECT count(*) FROM t").Scan(&n); err != nil || n != 64 {
		t.Errorf("%d rows (%v), want 64", n, err)
	}
}
