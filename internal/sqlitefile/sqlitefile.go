// Package sqlitefile prepares Tributary's SQLite files, the Temporal server's and the
// results', for how they are written: many small transactions, each appended to the
// write-ahead log page by page.
//
// A transaction appends every page it changes to the WAL, whole, and a checkpoint later
// writes each changed page back into the database file. The servers' transactions change a
// few bytes in many pages (a row and its entries in each index: Temporal's visibility table
// alone has a dozen), so the page size, not the data, sets what they write. Smaller pages
// and a WAL allowed to grow to WALBytes before each checkpoint cut the bytes written per
// workflow about fourfold (`starter bench ceiling`; README, "Measured").
package sqlitefile

import (
	"database/sql"
	"fmt"
	"time"
)

// WALBytes is how large a WAL grows before the commit that passes it checkpoints it into
// the database file. SQLite's default, 1,000 pages, would checkpoint a small-paged file
// every few hundred kilobytes and write its busiest pages back again and again; at 64 MiB
// rather than 16, `starter bench join` wrote 2.40 and 2.41 million blocks against 2.79
// and 2.82, but each such checkpoint held the commits queued behind it (p99 ack delay at
// 200 events/s 169 ms against 92 to 121), which the Temporal file's Checkpointer spares.
const WALBytes = 64 << 20

// CheckpointEvery is how often a Checkpointer copies a file's WAL into it, off the commits;
// the commits' own checkpoint at WALBytes stays for when the WAL grows faster. The
// embedded Temporal server's file and the results file each have one. Measured with
// `starter bench join` under /usr/bin/time -v, one run each, on the Temporal file: every
// 2 s, 2,584,312 blocks written; every 5 s, 2,480,048, and p99 ack delay at 200 events/s
// 112 ms; the commits' checkpoint alone, 2.40 million and 169 ms. On the results file
// (`bench join -per-event 0 -sharded 60000`, runs in turn with the commits' checkpoint
// alone): every 5 s, 10,742, 10,789, 10,829, 9,421 and 11,105 events/s over four shards
// against 9,065, 9,211, 9,042, 10,581 and 10,259, and as many blocks in the two runs
// that counted them; every second, 10,172 and 10,481, and 5% more blocks.
const CheckpointEvery = 5 * time.Second

// Prepare opens the database at path through the database/sql driver named driver,
// creating it if need be. A database with no tables yet gets pages of pageSize bytes and WAL
// mode, in that order: a page size holds only until the file has content or is in WAL mode.
// It reports whether the database had no tables, and the page size it has.
func Prepare(driver, path string, pageSize int) (empty bool, actual int, err error) {
	db, err := sql.Open(driver, "file:"+path)
	if err != nil {
		return false, 0, fmt.Errorf("open %s: %w", path, err)
	}
	defer db.Close()
	var tables int
	if err := db.QueryRow("SELECT count(*) FROM sqlite_master").Scan(&tables); err != nil {
		return false, 0, fmt.Errorf("read the schema of %s: %w", path, err)
	}
	if tables == 0 {
		// The page size is written with the first page: make one and drop it again.
		for _, stmt := range []string{
			fmt.Sprintf("PRAGMA page_size = %d", pageSize),
			"PRAGMA journal_mode = WAL",
			"CREATE TABLE tributary_created (x)",
			"DROP TABLE tributary_created",
		} {
			if _, err := db.Exec(stmt); err != nil {
				return false, 0, fmt.Errorf("prepare %s: %s: %w", path, stmt, err)
			}
		}
	}
	if err := db.QueryRow("PRAGMA page_size").Scan(&actual); err != nil {
		return false, 0, fmt.Errorf("read the page size of %s: %w", path, err)
	}
	return tables == 0, actual, db.Close()
}

// CheckpointPages is the wal_autocheckpoint, in pages of pageSize bytes, that lets the WAL
// reach WALBytes.
func CheckpointPages(pageSize int) int {
	if pageSize <= 0 {
		return 1000 // SQLite's own
	}
	return WALBytes / pageSize
}
