// Package testenv starts the embedded stack for tests: a broker, a Temporal server, the
// results database, the worker and the bridge, on free loopback ports in a temporary
// directory, all stopped by t.Cleanup.
package testenv

import (
	"context"
	"log/slog"
	"os"
	"strconv"
	"testing"
	"time"

	"github.com/tributary-dev/tributary/internal/app"
	"github.com/tributary-dev/tributary/internal/config"
	"github.com/tributary-dev/tributary/internal/embedded"
)

// Env is a running stack.
type Env struct {
	Config config.Config
	Stack  *app.Stack
	Deps   *app.Deps
	Log    *slog.Logger
	// Running is what the last RunRoles started.
	Running *app.Running
	cancel  context.CancelFunc
	done    chan error
	closed  bool
}

// FreePort returns a loopback port nothing listens on, reserved for this test process
// (embedded.FreePorts): a port the kernel handed out and took back could go to another
// test binary's connection before the server binds it.
func FreePort(t testing.TB) int {
	t.Helper()
	ports, err := embedded.FreePorts("127.0.0.1", 1)
	if err != nil {
		t.Fatal(err)
	}
	return ports[0]
}

// Logger logs warnings and errors to the test output (TRIBUTARY_TEST_LOG=debug for more).
func Logger(t testing.TB) *slog.Logger {
	level := slog.LevelWarn
	if os.Getenv("TRIBUTARY_TEST_LOG") == "debug" {
		level = slog.LevelDebug
	}
	return slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: level}))
}

type testWriter struct{ t testing.TB }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(string(p))
	return len(p), nil
}

// Config returns a configuration on free ports in a fresh state directory.
func Config(t testing.TB) config.Config {
	cfg := config.Default()
	cfg.StateDir = t.TempDir()
	cfg.KafkaBootstrap = "127.0.0.1:" + strconv.Itoa(FreePort(t))
	cfg.TemporalAddress = "127.0.0.1:" + strconv.Itoa(FreePort(t))
	cfg.TemporalUIPort = 0
	cfg.APIAddress = "127.0.0.1:" + strconv.Itoa(FreePort(t))
	return cfg
}

// Start runs the stack with cfg and every role, and waits until the bridges own partitions
// and the API listens.
func Start(t testing.TB, cfg config.Config) *Env {
	t.Helper()
	e := StartStack(t, cfg)
	e.RunRoles(t, app.Roles{Worker: true, Bridge: true, API: true})
	return e
}

// StartStack runs the broker, Temporal and the connections, without worker or bridge.
func StartStack(t testing.TB, cfg config.Config) *Env {
	t.Helper()
	log := Logger(t)
	stack, err := app.StartStack(cfg, log, testWriter{t})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	deps, err := app.Connect(ctx, cfg, log)
	if err != nil {
		stack.Close()
		t.Fatal(err)
	}
	deps.Metrics.Include(stack.Metrics)
	e := &Env{Config: cfg, Stack: stack, Deps: deps, Log: log}
	t.Cleanup(func() { e.Close(t) })
	return e
}

// Close stops the roles, the connections and the stack, as a Ctrl-C of `starter dev` would.
func (e *Env) Close(t testing.TB) {
	if e.closed {
		return
	}
	e.closed = true
	e.StopRoles(t)
	e.Deps.Close()
	e.Stack.Close()
}

// RunRoles starts the worker and/or bridge and waits until they run.
func (e *Env) RunRoles(t testing.TB, roles app.Roles) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	e.cancel = cancel
	e.done = make(chan error, 1)
	ready := make(chan struct{})
	go func() {
		e.done <- app.Run(ctx, e.Deps, roles, func(r *app.Running) {
			e.Running = r
			close(ready)
		})
	}()
	select {
	case <-ready:
	case err := <-e.done:
		t.Fatalf("roles ended early: %v", err)
	case <-time.After(time.Minute):
		t.Fatal("worker and bridge not ready after a minute")
	}
}

// StopRoles stops the worker and bridge, as Ctrl-C would.
func (e *Env) StopRoles(t testing.TB) {
	if e.cancel == nil {
		return
	}
	e.cancel()
	if err := <-e.done; err != nil {
		t.Errorf("roles: %v", err)
	}
	e.cancel = nil
}

// Poll is how often tests check a condition they wait for (require.Eventually's tick).
const Poll = 50 * time.Millisecond
