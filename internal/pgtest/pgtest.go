// Package pgtest gives a test a PostgreSQL server of its own (internal/pgserver), set for
// speed, stopped and removed when the test ends.
package pgtest

import (
	"testing"

	"github.com/tributary-dev/tributary/internal/pgserver"
)

// Start runs a server for t and returns the URL of a database of its own.
func Start(t testing.TB) string {
	t.Helper()
	url, stop, err := pgserver.Start(pgserver.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(stop)
	return url
}

// WithDatabase is url naming another database on the same server.
func WithDatabase(url, name string) string { return pgserver.WithDatabase(url, name) }
