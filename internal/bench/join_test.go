package bench

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"testing"
	"time"

	"github.com/tributary-dev/tributary/internal/app"
	"github.com/tributary-dev/tributary/internal/config"
	"github.com/tributary-dev/tributary/internal/embedded"
	"github.com/tributary-dev/tributary/internal/kafkaio"
	"github.com/tributary-dev/tributary/schemas"
)

// TestAwaitStopsWhenInterrupted: waiting for acks that never come ends as soon as the
// bench is interrupted (Ctrl-C, SIGTERM), not at the run's time limit.
func TestAwaitStopsWhenInterrupted(t *testing.T) {
	broker, err := embedded.StartLoopbackBroker(1)
	if err != nil {
		t.Fatal(err)
	}
	defer broker.Close()
	if err := kafkaio.EnsureTopics(context.Background(), broker.Address, 1, schemas.TopicAck); err != nil {
		t.Fatal(err)
	}
	cfg := config.Default()
	cfg.KafkaBootstrap = broker.Address
	b := &bencher{deps: &app.Deps{Config: cfg}, out: io.Discard, log: slog.New(slog.DiscardHandler)}
	ctx, cancel := context.WithCancel(context.Background())
	time.AfterFunc(500*time.Millisecond, cancel)
	done := make(chan error, 1)
	go func() {
		_, err := b.await(ctx, "never", 1, 10*time.Minute)
		done <- err
	}()
	select {
	case err := <-done:
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("await ended with %v, want the interruption", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("await still waiting 30 s after the interruption")
	}
}

// TestProbeCountsTheServersRequests runs both ceiling probes on a fresh embedded stack, a
// few workflows each: every workflow completes, and the server's persistence requests
// are counted per workflow (a start, a task and a close each take at least one).
func TestProbeCountsTheServersRequests(t *testing.T) {
	ctx := context.Background()
	log := slog.New(slog.DiscardHandler)
	deps, stopStack, err := freshStack(ctx, log, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer stopStack()
	b := &bencher{deps: deps, out: io.Discard, log: log}
	stopRoles, _, err := b.roles(ctx, deps.Config)
	if err != nil {
		t.Fatal(err)
	}
	defer stopRoles()
	const n = 20
	for name, probe := range map[string]func(context.Context, int) (probed, error){"SignalWithStart": b.ceiling, "eager start": b.startCeiling} {
		p, err := probe(ctx, n)
		if err != nil {
			t.Fatalf("%s probe: %v", name, err)
		}
		t.Logf("%s probe: %.1f workflows/s, %.1f persistence requests per workflow", name, p.applied, p.requests)
		if p.applied <= 0 || p.requests < 3 {
			t.Errorf("%s probe: %.1f workflows/s, %.1f persistence requests per workflow; want both measured, at least 3 requests", name, p.applied, p.requests)
		}
	}
}
