package embedded

import (
	"database/sql"
	"fmt"
)

// keptVisibilityIndexes are the indexes of Temporal's SQLite visibility table the embedded
// server keeps: the namespace's executions newest first (the UI's list), and by
// execution time, workflow id, workflow type and status, the UI's filters.
//
// Temporal's schema gives the table 58 indexes, one for every system and pre-allocated
// custom search attribute, and every workflow start and close writes a row into each. A
// query on a column without its index still answers, from a scan of the namespace's
// rows. Measured with the ceiling probe (2,000 workflows started, signalled and
// completed; one task queue partition): all 58 indexes, 78 to 84 workflows/s and 520 KB
// written per workflow; these five, 118 to 132 workflows/s and 97 KB.
var keptVisibilityIndexes = map[string]bool{
	"default_idx":       true,
	"by_execution_time": true,
	"by_workflow_id":    true,
	"by_workflow_type":  true,
	"by_status":         true,
}

// lightenVisibility drops every other index of the visibility table in the SQLite file at
// path, and says which it dropped: none once it has run. The full-text tables of the
// keyword-list and text attributes stay, kept current by the schema's triggers.
func lightenVisibility(path string) (dropped []string, err error) {
	db, err := sql.Open(SQLiteDriver, "file:"+path)
	if err != nil {
		return nil, fmt.Errorf("open %s: %w", path, err)
	}
	defer db.Close()
	names, err := visibilityIndexes(db)
	if err != nil {
		return nil, fmt.Errorf("read the visibility indexes of %s: %w", path, err)
	}
	for _, name := range names {
		if keptVisibilityIndexes[name] {
			continue
		}
		if _, err := db.Exec(`DROP INDEX IF EXISTS "` + name + `"`); err != nil {
			return dropped, fmt.Errorf("drop visibility index %s in %s: %w", name, path, err)
		}
		dropped = append(dropped, name)
	}
	return dropped, db.Close()
}

// visibilityIndexes names the indexes of the visibility table that its schema made (not
// the primary key's own).
func visibilityIndexes(db *sql.DB) ([]string, error) {
	rows, err := db.Query(`SELECT name FROM sqlite_master
		WHERE type = 'index' AND tbl_name = 'executions_visibility' AND sql IS NOT NULL`)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var names []string
	for rows.Next() {
		var name string
		if err := rows.Scan(&name); err != nil {
			return nil, err
		}
		names = append(names, name)
	}
	return names, rows.Err()
}
