package app_test

import (
	"testing"

	"github.com/tributary-dev/tributary/internal/config"
	"github.com/tributary-dev/tributary/internal/pgtest"
	"github.com/tributary-dev/tributary/internal/testenv"
)

// resultDatabases are the databases the end-to-end tests run on: SQLite, the default, and
// PostgreSQL, a server of the test's own (internal/pgtest) holding both the results and
// the embedded Temporal server's data, as in the compose stack.
var resultDatabases = []string{"sqlite", "postgres"}

// forEachDatabase runs test once per results database, as a subtest with a fresh stack's
// configuration.
func forEachDatabase(t *testing.T, test func(t *testing.T, cfg config.Config)) {
	for _, name := range resultDatabases {
		t.Run(name, func(t *testing.T) { test(t, databaseConfig(t, name)) })
	}
}

// databaseConfig is a test stack's configuration on the named database.
func databaseConfig(t *testing.T, name string) config.Config {
	cfg := testenv.Config(t)
	if name == "postgres" {
		cfg.DatabaseURL = pgtest.Start(t)
		cfg.TemporalDatabase = pgtest.WithDatabase(cfg.DatabaseURL, "temporal")
	}
	return cfg
}
