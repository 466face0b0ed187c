package sqlitefile

import (
	"database/sql"
	"fmt"
	"log/slog"
	"time"
)

// Checkpointer writes a database's WAL back into its file from a connection of its own,
// so that the writers' commits need not: SQLite runs an automatic checkpoint inside the
// commit that takes the WAL past its limit, and every transaction queued behind that
// commit waits for it.
type Checkpointer struct {
	db   *sql.DB
	stop chan struct{}
	done chan struct{}
}

// StartCheckpointer checkpoints the database at path, through the database/sql driver
// named driver, every interval until Stop. Its checkpoints are passive: they copy what the
// WAL holds without waiting for a writer or a reader, and a writer that finds the WAL
// copied begins it again from the start. Writers keep their automatic checkpoint at
// WALBytes for when this one falls behind.
func StartCheckpointer(driver, path string, interval time.Duration, log *slog.Logger) (*Checkpointer, error) {
	db, err := sql.Open(driver, "file:"+path)
	if err != nil {
		return nil, fmt.Errorf("open %s to checkpoint it: %w", path, err)
	}
	db.SetMaxOpenConns(1)
	c := &Checkpointer{db: db, stop: make(chan struct{}), done: make(chan struct{})}
	go func() {
		defer close(c.done)
		tick := time.NewTicker(interval)
		defer tick.Stop()
		for {
			select {
			case <-c.stop:
				return
			case <-tick.C:
			}
			// The pragma answers busy, frames in the WAL, frames copied.
			var busy, frames, copied int
			if err := db.QueryRow("PRAGMA wal_checkpoint(PASSIVE)").Scan(&busy, &frames, &copied); err != nil {
				log.Warn("checkpoint", "file", path, "err", err)
			}
		}
	}()
	return c, nil
}

// Stop ends the checkpoints and closes the connection.
func (c *Checkpointer) Stop() error {
	close(c.stop)
	<-c.done
	return c.db.Close()
}
