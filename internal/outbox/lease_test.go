package outbox

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"gorm.io/driver/sqlite"
	"gorm.io/gorm"
	"gorm.io/gorm/logger"

	"github.com/tributary-dev/tributary/schemas"
)

// TestLeaseTakesTurns: one holder at a time; another gets the lease only once it ran out
// or was released, and the first cannot renew it then.
func TestLeaseTakesTurns(t *testing.T) {
	// A results file opened here: the package internal/db opens it with imports this one.
	g, err := gorm.Open(sqlite.Open(filepath.Join(t.TempDir(), "results.db")), &gorm.Config{Logger: logger.Discard})
	require.NoError(t, err)
	require.NoError(t, g.AutoMigrate(schemas.Models()...))
	ctx := context.Background()
	clock := time.UnixMilli(1_700_000_000_000)
	now := func() time.Time { return clock }
	a := lease{db: g, name: "relay", holder: "a", ttl: 6 * time.Second, now: now}
	b := lease{db: g, name: "relay", holder: "b", ttl: 6 * time.Second, now: now}

	claim := func(l lease) bool {
		t.Helper()
		held, err := l.claim(ctx)
		require.NoError(t, err)
		return held
	}
	require.True(t, claim(a), "a free lease is taken")
	require.False(t, claim(b), "a held lease is not")
	clock = clock.Add(5 * time.Second)
	require.True(t, claim(a), "its holder renews it")
	clock = clock.Add(5 * time.Second)
	require.False(t, claim(b), "renewed, it has not run out yet")
	clock = clock.Add(2 * time.Second)
	require.True(t, claim(b), "run out, another takes it")
	require.False(t, claim(a), "the old holder cannot renew it then")
	require.NoError(t, a.release(ctx))
	require.False(t, claim(a), "a release by a former holder changes nothing")
	require.NoError(t, b.release(ctx))
	require.True(t, claim(a), "released, it is free at once")
}
