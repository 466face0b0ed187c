package app

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"path/filepath"
	"strconv"
	"strings"
	"sync"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/tributary-dev/tributary/bridge"
	"github.com/tributary-dev/tributary/internal/config"
	"github.com/tributary-dev/tributary/internal/embedded"
)

// Roles say what a process runs.
type Roles struct {
	Worker bool
	Bridge bool
	// API serves the HTTP API and dashboard on Config.APIAddress.
	API bool
}

// ParseRoles reads a role list: "all", "none", or names among worker, bridge and api
// separated by commas.
func ParseRoles(s string) (Roles, error) {
	switch s {
	case "all":
		return Roles{Worker: true, Bridge: true, API: true}, nil
	case "none":
		return Roles{}, nil
	}
	var r Roles
	for _, name := range strings.Split(s, ",") {
		switch strings.TrimSpace(name) {
		case "worker":
			r.Worker = true
		case "bridge":
			r.Bridge = true
		case "api":
			r.API = true
		default:
			return Roles{}, fmt.Errorf("role %q: want worker, bridge, api (comma-separated), all or none", name)
		}
	}
	return r, nil
}

// Running is what Run started, handed to its ready callback.
type Running struct {
	// JoinBridge is the join's bridge, nil without the bridge role.
	JoinBridge *bridge.Bridge
	// WindowBridges are the window pipelines' bridges by pipeline name.
	WindowBridges map[string]*bridge.Bridge
	// SensorsBridge is the sensors pipeline's bridge, nil without the bridge role.
	SensorsBridge *bridge.Bridge
	// APIAddress is where the HTTP API listens, empty without the API role.
	APIAddress string
	// MetricsAddress is where /metrics listens on its own, empty when not asked for.
	MetricsAddress string
}

// Run runs the roles until ctx ends, then shuts them down: the bridge commits what it
// stored, the worker finishes its tasks. ready is called once everything runs.
func Run(ctx context.Context, d *Deps, roles Roles, ready func(*Running)) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	if roles.Worker {
		w := d.NewWorker()
		if err := w.Start(); err != nil {
			return fmt.Errorf("start worker: %w", err)
		}
		defer w.Stop()
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := d.Relay.Run(ctx); err != nil {
				errs <- fmt.Errorf("outbox relay: %w", err)
				cancel()
			}
		}()
	}
	running := &Running{WindowBridges: map[string]*bridge.Bridge{}}
	var readies []chan struct{}
	if roles.Bridge {
		start := func(name string, b *bridge.Bridge) {
			wg.Add(1)
			go func() {
				defer wg.Done()
				if err := b.Run(ctx); err != nil {
					errs <- fmt.Errorf("%s bridge: %w", name, err)
					cancel()
				}
			}()
		}
		joinReady := make(chan struct{})
		b, err := d.NewJoinBridge(joinReady)
		if err != nil {
			return err
		}
		running.JoinBridge = b
		readies = append(readies, joinReady)
		start("join", b)
		sensorsReady := make(chan struct{})
		if running.SensorsBridge, err = d.NewSensorsBridge(sensorsReady); err != nil {
			cancel()
			wg.Wait()
			return err
		}
		readies = append(readies, sensorsReady)
		start("sensors", running.SensorsBridge)
		for _, spec := range WindowPipelines() {
			r := make(chan struct{})
			wb, err := d.NewWindowBridge(spec, r)
			if err != nil {
				cancel()
				wg.Wait()
				return err
			}
			running.WindowBridges[spec.Name] = wb
			readies = append(readies, r)
			start(spec.Name, wb)
		}
	}
	if roles.API && d.Config.APIAddress != "" {
		apiReady := make(chan struct{})
		readies = append(readies, apiReady)
		srv := d.NewAPI()
		wg.Add(1)
		go func() {
			defer wg.Done()
			err := srv.Serve(ctx, d.Config.APIAddress, func(addr string) {
				running.APIAddress = addr
				close(apiReady)
			})
			if err != nil {
				errs <- err
				cancel()
			}
		}()
	}
	if d.Config.MetricsAddress != "" {
		metricsReady := make(chan struct{})
		readies = append(readies, metricsReady)
		wg.Add(1)
		go func() {
			defer wg.Done()
			err := d.Metrics.Serve(ctx, d.Config.MetricsAddress, func(addr string) {
				running.MetricsAddress = addr
				close(metricsReady)
			})
			if err != nil {
				errs <- fmt.Errorf("%w (set -metrics or %s)", err, config.EnvMetrics)
				cancel()
			}
		}()
	}
	allReady := true
	for _, r := range readies {
		select {
		case <-r:
		case <-ctx.Done():
			allReady = false
		}
		if !allReady {
			break
		}
	}
	if allReady && ready != nil {
		ready(running)
	}
	<-ctx.Done()
	wg.Wait()
	close(errs)
	return <-errs
}

// Stack is the embedded broker and Temporal server of `starter dev`.
type Stack struct {
	Broker   *embedded.Broker
	Temporal *embedded.Temporal
	// Metrics are the embedded server's own; a process serving the stack adds them to its
	// /metrics (metrics.Set.Include).
	Metrics *prometheus.Registry
}

// StartStack starts the embedded broker and Temporal server under the state directory,
// printing a ready line with the address of each.
func StartStack(cfg config.Config, log *slog.Logger, out io.Writer) (*Stack, error) {
	port := func(addr, flagName string) (int, error) {
		i := strings.LastIndex(addr, ":")
		p, err := strconv.Atoi(addr[i+1:])
		if err != nil || i < 0 {
			return 0, fmt.Errorf("%s %q: want host:port", flagName, addr)
		}
		return p, nil
	}
	kport, err := port(cfg.KafkaBootstrap, "-kafka")
	if err != nil {
		return nil, err
	}
	tport, err := port(cfg.TemporalAddress, "-temporal")
	if err != nil {
		return nil, err
	}
	broker, err := embedded.StartBroker(embedded.BrokerOptions{Port: kport, DataDir: filepath.Join(cfg.StateDir, "kafka"), Partitions: cfg.Partitions, Log: log})
	if err != nil {
		return nil, err
	}
	fmt.Fprintf(out, "kafka     ready  %s (data in %s)\n", broker.Address, filepath.Join(cfg.StateDir, "kafka"))
	serverMetrics := prometheus.NewRegistry()
	tmp, err := embedded.StartTemporal(embedded.TemporalOptions{
		Metrics:       serverMetrics,
		DatabaseFile:  filepath.Join(cfg.StateDir, "temporal.db"),
		PostgresURL:   cfg.TemporalDatabase,
		Port:          tport,
		UIPort:        cfg.TemporalUIPort,
		Namespaces:    []string{cfg.Namespace},
		HistoryShards: int32(cfg.HistoryShards),
		Logger:        log,
	})
	if err != nil {
		broker.Close()
		return nil, err
	}
	fmt.Fprintf(out, "temporal  ready  %s (namespace %s, data in %s)\n", tmp.Address, cfg.Namespace, cfg.TemporalStore())
	if tmp.UIAddress != "" {
		fmt.Fprintf(out, "ui        ready  http://%s\n", tmp.UIAddress)
	}
	return &Stack{Broker: broker, Temporal: tmp, Metrics: serverMetrics}, nil
}

// Close stops Temporal, then the broker.
func (s *Stack) Close() {
	_ = s.Temporal.Stop()
	s.Broker.Close()
}
