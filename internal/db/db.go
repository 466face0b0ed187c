// Package db opens Tributary's results database: SQLite by default, PostgreSQL by URL.
package db

import (
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/mattn/go-sqlite3"
	"gorm.io/driver/postgres"
	"gorm.io/driver/sqlite"
	"gorm.io/gorm"
	"gorm.io/gorm/logger"

	"github.com/tributary-dev/tributary/internal/outbox"
	"github.com/tributary-dev/tributary/internal/sqlitefile"
	"github.com/tributary-dev/tributary/schemas"
)

// Open connects to url (a postgres:// URL, or a SQLite file path with an optional sqlite://
// prefix) and migrates the schema.
func Open(url string, log *slog.Logger) (*gorm.DB, error) {
	if log == nil {
		log = slog.Default()
	}
	var dialector gorm.Dialector
	sqliteFile := ""
	switch {
	case IsPostgres(url):
		dialector = postgres.Open(url)
	default:
		sqliteFile = sqlitePath(url)
		if err := os.MkdirAll(filepath.Dir(sqliteFile), 0o755); err != nil {
			return nil, fmt.Errorf("create directory for %s: %w", sqliteFile, err)
		}
		_, pageSize, err := sqlitefile.Prepare(sqliteDriver, sqliteFile, resultsPageSize)
		if err != nil {
			return nil, err
		}
		// WAL lets readers (the API, the starter's reports) run beside the writer; an
		// immediate transaction lock and a busy timeout queue writers instead of failing them.
		dialector = sqlite.New(sqlite.Config{DriverName: checkpointedDriver(pageSize),
			DSN: "file:" + sqliteFile + "?_journal_mode=WAL&_synchronous=NORMAL&_busy_timeout=10000&_txlock=immediate&_foreign_keys=on"})
	}
	g, err := gorm.Open(dialector, &gorm.Config{
		Logger:                 logger.Discard,
		SkipDefaultTransaction: true,
		NowFunc:                func() time.Time { return time.Now().UTC() },
	})
	if err != nil {
		return nil, fmt.Errorf("open database %s: %w", url, err)
	}
	if sqliteFile != "" {
		sqlDB, err := g.DB()
		if err != nil {
			return nil, err
		}
		// One connection: writers queue in Go instead of in SQLite's busy handler, which
		// sleeps for milliseconds at a time. Other processes still read beside it (WAL).
		sqlDB.SetMaxOpenConns(1)
	}
	if err := Migrate(g); err != nil {
		return nil, err
	}
	log.Debug("database ready", "url", url)
	return g, nil
}

// StartCheckpointer copies the WAL of the SQLite results file at url into it every
// interval, from a connection of its own (sqlitefile.Checkpointer), so that FinishJoins
// and the other writers seldom meet a checkpoint in their commits; for PostgreSQL it
// returns nil.
func StartCheckpointer(url string, interval time.Duration, log *slog.Logger) (*sqlitefile.Checkpointer, error) {
	if IsPostgres(url) {
		return nil, nil
	}
	return sqlitefile.StartCheckpointer(sqliteDriver, sqlitePath(url), interval, log)
}

// sqlitePath is the file a SQLite results url names: a path, with or without sqlite://.
func sqlitePath(url string) string { return strings.TrimPrefix(url, "sqlite://") }

// sqliteDriver is the database/sql name of the SQLite driver beneath gorm's dialector (mattn's).
const sqliteDriver = "sqlite3"

// resultsPageSize is the page size of a new results SQLite file: small pages write less per
// transaction (see internal/sqlitefile), and at 1,024 bytes a join row of a few hundred
// bytes still fits in its page.
const resultsPageSize = 1024

// checkpointed are the drivers registered so far, by page size.
var checkpointed struct {
	sync.Mutex
	names map[int]string
}

// checkpointedDriver is a SQLite driver whose connections checkpoint their WAL at
// sqlitefile.WALBytes in pages of pageSize bytes, registered on first use: the setting
// belongs to each connection, and mattn's DSN has no parameter for it. The lock is held
// until the driver is registered, so no caller gets a name sql.Open does not know yet.
func checkpointedDriver(pageSize int) string {
	checkpointed.Lock()
	defer checkpointed.Unlock()
	if name, ok := checkpointed.names[pageSize]; ok {
		return name
	}
	name := fmt.Sprintf("%s-wal-%d", sqliteDriver, pageSize)
	pragma := fmt.Sprintf("PRAGMA wal_autocheckpoint = %d", sqlitefile.CheckpointPages(pageSize))
	sql.Register(name, &sqlite3.SQLiteDriver{ConnectHook: func(c *sqlite3.SQLiteConn) error {
		_, err := c.Exec(pragma, nil)
		return err
	}})
	if checkpointed.names == nil {
		checkpointed.names = map[int]string{}
	}
	checkpointed.names[pageSize] = name
	return name
}

// ErrNoDatabase is what OpenExisting answers for a SQLite file that is not there.
var ErrNoDatabase = errors.New("no results database")

// OpenExisting opens a results database that must exist already: a command that reads
// results (verify, the reports) must not create an empty one and then report everything
// missing. A PostgreSQL server refuses a database it does not have by itself.
func OpenExisting(url string, log *slog.Logger) (*gorm.DB, error) {
	if !IsPostgres(url) {
		file := sqlitePath(url)
		if _, err := os.Stat(file); errors.Is(err, os.ErrNotExist) {
			return nil, fmt.Errorf("%w at %s: run this where the stack keeps its state (`starter dev` makes it), or point -state-dir or -database at it", ErrNoDatabase, file)
		} else if err != nil {
			return nil, fmt.Errorf("results database %s: %w", file, err)
		}
	}
	return Open(url, log)
}

// IsPostgres reports whether url names a PostgreSQL database rather than a SQLite file.
func IsPostgres(url string) bool {
	return strings.HasPrefix(url, "postgres://") || strings.HasPrefix(url, "postgresql://")
}

// Migrate creates or updates every table.
func Migrate(g *gorm.DB) error {
	if err := g.AutoMigrate(schemas.Models()...); err != nil {
		return fmt.Errorf("migrate: %w", err)
	}
	for _, table := range schemas.JoinTables {
		if err := g.Table(table).AutoMigrate(&schemas.DataRow{}); err != nil {
			return fmt.Errorf("migrate %s: %w", table, err)
		}
	}
	return outbox.MigrateDedup(g)
}
