package bench

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strconv"
	"sync"

	"github.com/tributary-dev/tributary/internal/app"
	"github.com/tributary-dev/tributary/internal/config"
	"github.com/tributary-dev/tributary/internal/embedded"
)

// freshStack starts an embedded stack (broker, Temporal, connections; no roles yet) on free
// loopback ports in a new temporary directory, with the default configuration as adjust
// leaves it. stop closes everything and removes the directory.
func freshStack(ctx context.Context, log *slog.Logger, adjust func(*config.Config)) (deps *app.Deps, stop func(), err error) {
	dir, err := os.MkdirTemp("", "tributary-bench-")
	if err != nil {
		return nil, nil, err
	}
	cfg := config.Default()
	cfg.StateDir, cfg.TemporalUIPort, cfg.APIAddress = dir, 0, ""
	cfg.KafkaBootstrap = "127.0.0.1:" + strconv.Itoa(freePort())
	cfg.TemporalAddress = "127.0.0.1:" + strconv.Itoa(freePort())
	if adjust != nil {
		adjust(&cfg)
	}
	stack, err := app.StartStack(cfg, log, io.Discard)
	if err != nil {
		os.RemoveAll(dir)
		return nil, nil, err
	}
	deps, err = app.Connect(ctx, cfg, log)
	if err != nil {
		stack.Close()
		os.RemoveAll(dir)
		return nil, nil, err
	}
	// The server's own metrics beside the process's: the ceiling counts its persistence requests.
	deps.Metrics.Include(stack.Metrics)
	return deps, func() {
		deps.Close()
		stack.Close()
		os.RemoveAll(dir)
	}, nil
}

// startRoles runs a worker and the bridges on deps until stop is called.
func startRoles(ctx context.Context, deps *app.Deps) (stop func(), running *app.Running, err error) {
	rctx, cancel := context.WithCancel(ctx)
	ready := make(chan *app.Running, 1)
	done := make(chan error, 1)
	go func() {
		done <- app.Run(rctx, deps, app.Roles{Worker: true, Bridge: true}, func(r *app.Running) { ready <- r })
	}()
	select {
	case running = <-ready:
	case err := <-done:
		cancel()
		return nil, nil, fmt.Errorf("worker and bridge: %w", err)
	}
	var once sync.Once
	return func() { once.Do(func() { cancel(); <-done }) }, running, nil
}

// freePort is a loopback port reserved for this process (embedded.FreePorts), 0 if none.
func freePort() int {
	ports, err := embedded.FreePorts("127.0.0.1", 1)
	if err != nil {
		return 0
	}
	return ports[0]
}
