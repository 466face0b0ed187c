package bench

import (
	"bufio"
	"bytes"
	"database/sql"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"time"

	"github.com/tributary-dev/tributary/internal/embedded"
	"github.com/tributary-dev/tributary/internal/joinsim"
	"github.com/tributary-dev/tributary/internal/sqlitefile"
	"github.com/tributary-dev/tributary/schemas"
)

// Reference is how fast this machine does the two pieces of work that bound the join's
// figures, measured alone before the scenarios. The machines this project is measured on
// are VMs of one size whose speed differs from one to the next by more than any change
// moves a rate (the same code routed a join row, `go test -bench JoinRoute ./bridge`, in
// 1.2 to 1.3 µs on one and 3.0 to 3.5 µs on another), so a rate is read beside its
// machine's reference, not against another machine's rate.
type Reference struct {
	// CPU is the processor's model name and Cores how many the process may use.
	CPU   string
	Cores int
	// RowDecode is one join row of the bench's shape validated and decoded, as the bridge
	// does with every record: single-threaded Go.
	RowDecode time.Duration
	// SQLiteCommit is one small transaction on a file set up as the embedded Temporal
	// server's (its pure-Go driver, WAL, synchronous=NORMAL, 512-byte pages, one
	// connection): the server commits every start, task and close this way, one at a time.
	SQLiteCommit time.Duration
}

// Best of referenceRounds rounds: a neighbour's burst lengthens a round, never shortens it.
const (
	referenceRounds  = 3
	referenceRows    = 100_000
	referenceCommits = 1_000
)

// MeasureReference times the reference work in a temporary directory it removes again.
func MeasureReference() (Reference, error) {
	ref := Reference{CPU: cpuModel(), Cores: runtime.GOMAXPROCS(0)}
	var err error
	if ref.RowDecode, err = bestOf(timeRowDecode); err != nil {
		return ref, err
	}
	dir, err := os.MkdirTemp("", "tributary-reference-")
	if err != nil {
		return ref, err
	}
	defer os.RemoveAll(dir)
	round := 0
	ref.SQLiteCommit, err = bestOf(func() (time.Duration, error) {
		round++
		return timeSQLiteCommits(filepath.Join(dir, fmt.Sprintf("round%d.db", round)))
	})
	return ref, err
}

func (r Reference) String() string {
	return fmt.Sprintf("%s, %d cores; a join row decoded in %s, a SQLite commit (the server's driver and settings) in %s",
		r.CPU, r.Cores, r.RowDecode.Round(time.Nanosecond), r.SQLiteCommit.Round(100*time.Nanosecond))
}

// bestOf runs measure referenceRounds times and keeps the shortest result.
func bestOf(measure func() (time.Duration, error)) (time.Duration, error) {
	var best time.Duration
	for i := range referenceRounds {
		d, err := measure()
		if err != nil {
			return 0, err
		}
		if i == 0 || d < best {
			best = d
		}
	}
	return best, nil
}

// timeRowDecode is the time per row of decoding the rows of generated events in turn.
func timeRowDecode() (time.Duration, error) {
	plan := joinsim.Plan{RunID: "reference", Events: 300, Seed: 1, NAFraction: 0.05}
	created := time.Date(2026, 11, 24, 10, 0, 0, 0, time.UTC)
	var keys, values [][]byte
	for i := range plan.Events {
		ev := plan.Generate(i)
		for _, topic := range schemas.JoinTopics {
			if fields, ok := ev.Rows[topic]; ok {
				keys = append(keys, []byte(ev.ID))
				values = append(values, joinsim.Row(ev.ID, fields, created))
			}
		}
	}
	start := time.Now()
	for i := range referenceRows {
		n := i % len(values)
		if _, err := schemas.DecodeJoinRow(keys[n], values[n], created); err != nil {
			return 0, fmt.Errorf("reference row %d: %w", n, err)
		}
	}
	return time.Since(start) / referenceRows, nil
}

// timeSQLiteCommits is the time per commit of referenceCommits transactions, each an
// insert into an indexed table and an update of one row, as a small Temporal write does.
func timeSQLiteCommits(path string) (time.Duration, error) {
	driver := embedded.SQLiteDriver
	if _, _, err := sqlitefile.Prepare(driver, path, embedded.TemporalPageSize); err != nil {
		return 0, err
	}
	// The pragmas as the server's SQLite plugin passes them to the driver.
	dsn := url.Values{}
	for name, value := range embedded.TemporalPragmas() {
		dsn.Add("_pragma", name+"="+value)
	}
	db, err := sql.Open(driver, "file:"+path+"?"+dsn.Encode())
	if err != nil {
		return 0, fmt.Errorf("open %s: %w", path, err)
	}
	defer db.Close()
	db.SetMaxOpenConns(1)
	var mode string
	if err := db.QueryRow("PRAGMA journal_mode").Scan(&mode); err != nil || mode != embedded.TemporalPragmas()["journal_mode"] {
		return 0, fmt.Errorf("reference file %s in journal mode %q (%v), want the server's", path, mode, err)
	}
	for _, stmt := range []string{
		"CREATE TABLE rows (id INTEGER PRIMARY KEY, run TEXT NOT NULL, data BLOB NOT NULL)",
		"CREATE INDEX rows_by_run ON rows (run, id)",
		"CREATE TABLE head (id INTEGER PRIMARY KEY, next INTEGER NOT NULL)",
		"INSERT INTO head VALUES (1, 0)",
	} {
		if _, err := db.Exec(stmt); err != nil {
			return 0, fmt.Errorf("set up %s: %s: %w", path, stmt, err)
		}
	}
	data := bytes.Repeat([]byte{0x5a}, 300)
	start := time.Now()
	for i := range referenceCommits {
		tx, err := db.Begin()
		if err != nil {
			return 0, err
		}
		if _, err := tx.Exec("INSERT INTO rows (id, run, data) VALUES (?, ?, ?)", i, fmt.Sprintf("run-%d", i%97), data); err != nil {
			_ = tx.Rollback()
			return 0, fmt.Errorf("reference insert: %w", err)
		}
		if _, err := tx.Exec("UPDATE head SET next = ? WHERE id = 1", i+1); err != nil {
			_ = tx.Rollback()
			return 0, fmt.Errorf("reference update: %w", err)
		}
		if err := tx.Commit(); err != nil {
			return 0, fmt.Errorf("reference commit: %w", err)
		}
	}
	return time.Since(start) / referenceCommits, nil
}

// cpuModel is the first processor's model name, "unknown" where the system does not say.
func cpuModel() string {
	f, err := os.Open("/proc/cpuinfo")
	if err != nil {
		return "unknown"
	}
	defer f.Close()
	s := bufio.NewScanner(f)
	for s.Scan() {
		if name, ok := strings.CutPrefix(s.Text(), "model name"); ok {
			return strings.TrimSpace(strings.TrimPrefix(strings.TrimSpace(name), ":"))
		}
	}
	return "unknown"
}
