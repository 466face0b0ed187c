package pgtest_test

import (
	"testing"

	"github.com/tributary-dev/tributary/internal/db"
	"github.com/tributary-dev/tributary/internal/pgtest"
	"github.com/tributary-dev/tributary/schemas"
)

// The server takes Tributary's schema and a write, and is gone after the test.
func TestServerTakesTheSchema(t *testing.T) {
	url := pgtest.Start(t)
	g, err := db.Open(url, nil)
	if err != nil {
		t.Fatal(err)
	}
	if g.Name() != "postgres" {
		t.Fatalf("opened %s", g.Name())
	}
	if err := g.Create(&schemas.LateRecord{Topic: "t", Partition: 1, Offset: 2, Pipeline: "p", Key: "k", Reason: "r"}).Error; err != nil {
		t.Fatal(err)
	}
	var n int64
	if err := g.Model(&schemas.LateRecord{}).Count(&n).Error; err != nil || n != 1 {
		t.Fatalf("count %d, %v", n, err)
	}
	if s, err := g.DB(); err == nil {
		s.Close()
	}
}
