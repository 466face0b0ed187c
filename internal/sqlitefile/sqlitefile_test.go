package sqlitefile

import (
	"database/sql"
	"path/filepath"
	"testing"

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
