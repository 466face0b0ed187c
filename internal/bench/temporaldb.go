package bench

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/url"
	"strings"
	"time"

	"gorm.io/driver/postgres"
	"gorm.io/gorm"
	"gorm.io/gorm/logger"

	"github.com/tributary-dev/tributary/internal/pgserver"
)

// TemporalAuto asks a bench for Temporal on a PostgreSQL server of its own (Debian's
// server binaries, durable settings comparable to SQLite's), started and removed by it.
const TemporalAuto = "auto"

// temporalDatabase resolves where a bench run's Temporal server keeps its data. "" is
// SQLite; TemporalAuto starts a private PostgreSQL server; a postgres:// URL names a
// server the user runs. On a server, every run gets a new database, so no run meets an
// earlier run's workflows, and done drops it again.
func temporalDatabase(choice string, log *slog.Logger) (dbURL string, done func(), err error) {
	if choice == "" {
		return "", func() {}, nil
	}
	stopServer := func() {}
	if choice == TemporalAuto {
		if choice, stopServer, err = pgserver.Start(pgserver.Options{Durable: true}); err != nil {
			return "", nil, fmt.Errorf("a PostgreSQL server for Temporal: %w", err)
		}
	}
	u, err := url.Parse(choice)
	if err != nil || (u.Scheme != "postgres" && u.Scheme != "postgresql") {
		stopServer()
		return "", nil, fmt.Errorf("-temporal-database: want %q or a postgres:// URL", TemporalAuto)
	}
	base := strings.TrimPrefix(u.Path, "/")
	if base == "" {
		base = "temporal"
	}
	name := fmt.Sprintf("%s_bench_%d", base, time.Now().UnixNano())
	u.Path = "/" + name
	return u.String(), func() {
		if err := dropDatabases(u, name, name+"_visibility"); err != nil {
			log.Warn("bench databases left on the server", "databases", name+", "+name+"_visibility", "err", err)
		}
		stopServer()
	}, nil
}

// dropDatabases drops names on u's server, connected through its admin database.
func dropDatabases(u *url.URL, names ...string) error {
	admin := *u
	admin.Path = "/postgres"
	g, err := gorm.Open(postgres.Open(admin.String()), &gorm.Config{Logger: logger.Discard})
	if err != nil {
		return err
	}
	if s, err := g.DB(); err == nil {
		defer s.Close()
	}
	for _, n := range names {
		if err := g.Exec(`DROP DATABASE IF EXISTS "` + n + `" WITH (FORCE)`).Error; err != nil {
			return fmt.Errorf("drop %s: %w", n, err)
		}
	}
	return nil
}

// Ceiling is the server's own rate, measured alone on a fresh stack.
type Ceiling struct {
	// Store says where the server kept its data.
	Store string
	// Accepted is SignalWithStart calls answered per second; Applied is workflows
	// started, signalled and completed per second.
	Accepted, Applied float64
	Usage             Usage
}

// RunCeiling measures the server's ceiling on a fresh embedded stack with Temporal on the
// database choice names ("" SQLite, TemporalAuto, or a postgres:// URL).
func RunCeiling(ctx context.Context, calls int, choice string, out io.Writer, log *slog.Logger) (Ceiling, error) {
	o := DefaultJoinOptions()
	o.CeilingCalls, o.CeilingOnly, o.TemporalDatabase = calls, true, choice
	store := "SQLite"
	if choice != "" {
		store = "PostgreSQL"
	}
	fmt.Fprintf(out, "server ceiling with Temporal on %s\n", store)
	r, err := RunJoin(ctx, o, out, log)
	return Ceiling{Store: store, Accepted: r.CeilingAccepted, Applied: r.CeilingApplied, Usage: r.CeilingUsage}, err
}
