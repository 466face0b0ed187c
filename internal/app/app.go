// Package app wires Tributary's parts together: it connects the clients a role needs, builds
// the Temporal worker and the bridges, and runs the embedded stack for `starter dev`.
package app

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"time"

	"go.temporal.io/sdk/client"
	sdklog "go.temporal.io/sdk/log"
	"go.temporal.io/sdk/worker"
	"go.temporal.io/sdk/workflow"
	"gorm.io/gorm"

	"github.com/tributary-dev/tributary/activities"
	"github.com/tributary-dev/tributary/bridge"
	"github.com/tributary-dev/tributary/internal/api"
	"github.com/tributary-dev/tributary/internal/config"
	"github.com/tributary-dev/tributary/internal/db"
	"github.com/tributary-dev/tributary/internal/embedded"
	"github.com/tributary-dev/tributary/internal/kafkaio"
	"github.com/tributary-dev/tributary/internal/metrics"
	"github.com/tributary-dev/tributary/internal/outbox"
	"github.com/tributary-dev/tributary/internal/sqlitefile"
	"github.com/tributary-dev/tributary/pipelines"
	"github.com/tributary-dev/tributary/schemas"
	"github.com/tributary-dev/tributary/workflows"
)

// WindowPipelines are the window pipelines every stack runs.
func WindowPipelines() []pipelines.Spec {
	return []pipelines.Spec{pipelines.Likes(), pipelines.Transactions()}
}

// Topics lists every topic Tributary creates: inputs, their dead-letter topics, outputs.
func Topics() []string {
	var ts []string
	for _, t := range schemas.JoinTopics {
		ts = append(ts, t, kafkaio.DLQTopic(t))
	}
	ts = append(ts, schemas.TopicAck)
	for _, p := range WindowPipelines() {
		ts = append(ts, p.Topics()...)
	}
	return append(ts, pipelines.Sensors(0).Topics()...)
}

// Deps are the connections shared by the worker and the bridge of one process.
type Deps struct {
	Config   config.Config
	Log      *slog.Logger
	Temporal client.Client
	DB       *gorm.DB
	Producer *kafkaio.Producer
	// SensorWindows is where traveler workflows' FlushVisits sends visit speeds: the
	// sensors window pipeline. One per process, so that its update count covers them all.
	SensorWindows *bridge.PieceSender
	// Relay sends the outbox's records; the worker role runs it.
	Relay *outbox.Relay
	// Metrics are this process's, served on /metrics.
	Metrics *metrics.Set
	// checkpointer copies a SQLite results file's WAL into it off the commits.
	checkpointer *sqlitefile.Checkpointer
}

// Connect checks every pipeline spec, creates the topics, opens the database (a SQLite one with its
// checkpointer, db.StartCheckpointer), starts a producer and dials Temporal,
// retrying the dial until ctx ends (the server may still be starting).
func Connect(ctx context.Context, cfg config.Config, log *slog.Logger) (*Deps, error) {
	for _, spec := range append(WindowPipelines(), pipelines.Sensors(cfg.SensorGrace)) {
		if err := spec.Validate(); err != nil {
			return nil, fmt.Errorf("window pipeline %s: %w", spec.Name, err)
		}
	}
	d := &Deps{Config: cfg, Log: log, Metrics: metrics.New()}
	err := waitFor(ctx, log, "Kafka", cfg.KafkaBootstrap, func(ctx context.Context) error {
		return errors.Join(kafkaio.EnsureTopics(ctx, cfg.KafkaBootstrap, cfg.Partitions, Topics()...),
			kafkaio.EnsureTopics(ctx, cfg.KafkaBootstrap, 1, schemas.TopicOutboxPosition))
	})
	if err != nil {
		return nil, err
	}
	err = waitFor(ctx, log, "the database", cfg.Database(), func(context.Context) error {
		var err error
		d.DB, err = db.Open(cfg.Database(), log)
		return err
	})
	if err != nil {
		return nil, err
	}
	if d.checkpointer, err = db.StartCheckpointer(cfg.Database(), sqlitefile.CheckpointEvery, log); err != nil {
		d.Close()
		return nil, err
	}
	d.Metrics.WatchLateRecords(d.DB)
	if d.Producer, err = kafkaio.NewProducer(cfg.KafkaBootstrap, log, nil); err != nil {
		d.Close()
		return nil, err
	}
	d.Metrics.WatchRecreated("producer", d.Producer.Recreated.Load)
	if d.Temporal, err = DialTemporal(ctx, cfg, log, d.Metrics); err != nil {
		d.Close()
		return nil, err
	}
	sensorWindows, err := d.windowRouter(pipelines.Sensors(cfg.SensorGrace))
	if err != nil {
		d.Close()
		return nil, err
	}
	d.SensorWindows = bridge.NewPieceSender(sensorWindows)
	d.Relay = &outbox.Relay{DB: d.DB, Bootstrap: cfg.KafkaBootstrap, Log: log.With("component", "outbox")}
	return d, nil
}

// waitFor runs step until it succeeds or ctx ends, each attempt bounded to 20 s, backing
// off up to 5 s between attempts. It says once that it waits for what, and once that it
// is there: a role started before its dependencies (compose, a restart) waits for them.
func waitFor(ctx context.Context, log *slog.Logger, what, where string, step func(context.Context) error) error {
	wait := 100 * time.Millisecond
	for attempt := 0; ; attempt++ {
		actx, cancel := context.WithTimeout(ctx, 20*time.Second)
		err := step(actx)
		cancel()
		if err == nil {
			if attempt > 0 {
				log.Info(what+" is there", "at", where, "attempts", attempt+1)
			}
			return nil
		}
		if attempt == 0 {
			log.Info("waiting for "+what, "at", where, "err", err)
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%s at %s: %w", what, where, errors.Join(err, ctx.Err()))
		case <-time.After(wait):
		}
		wait = min(2*wait, 5*time.Second)
	}
}

// DialTemporal connects to the frontend, retrying with backoff until ctx ends; the SDK
// reports its metrics into m (none when nil).
func DialTemporal(ctx context.Context, cfg config.Config, log *slog.Logger, m *metrics.Set) (client.Client, error) {
	opts := client.Options{
		HostPort:       cfg.TemporalAddress,
		Namespace:      cfg.Namespace,
		Logger:         sdklog.NewStructuredLogger(log.With("component", "temporal-sdk")),
		MetricsHandler: m.SDKHandler(),
		PayloadLimits:  client.PayloadLimitOptions{PayloadSizeWarning: embedded.PayloadWarnBytes},
	}
	if isLoopback(cfg.TemporalAddress) {
		// Compressing requests to a server on the same machine only costs CPU.
		opts.ConnectionOptions.GrpcCompression = &client.GrpcCompressionNone{}
	}
	var c client.Client
	err := waitFor(ctx, log, "Temporal", cfg.TemporalAddress, func(ctx context.Context) error {
		var err error
		c, err = client.DialContext(ctx, opts)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("dial (set -temporal or %s): %w", config.EnvTemporal, err)
	}
	return c, nil
}

func isLoopback(hostport string) bool {
	host, _, err := net.SplitHostPort(hostport)
	if err != nil {
		return false
	}
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// Close releases what Connect opened.
func (d *Deps) Close() {
	if d.SensorWindows != nil {
		d.SensorWindows.Close()
	}
	if d.Temporal != nil {
		d.Temporal.Close()
	}
	if d.Producer != nil {
		d.Producer.Close()
	}
	if d.checkpointer != nil {
		if err := d.checkpointer.Stop(); err != nil {
			d.Log.Warn("stop the results checkpointer", "err", err)
		}
	}
	if d.DB != nil {
		if sqlDB, err := d.DB.DB(); err == nil {
			_ = sqlDB.Close()
		}
	}
	d.Metrics.Close()
}

// Activities returns the activity struct the worker registers.
func (d *Deps) Activities() *activities.Activities {
	return &activities.Activities{DB: d.DB, Producer: d.Producer, Bootstrap: d.Config.KafkaBootstrap, Log: d.Log, Windows: d.SensorWindows, Kick: d.Relay.Kick, Metrics: d.Metrics}
}

// RegisterWorkflows adds every workflow to a worker or a replayer, under its name in workflows/names.go.
func RegisterWorkflows(r worker.WorkflowRegistry) {
	r.RegisterWorkflowWithOptions(workflows.JoinWorkflow, workflow.RegisterOptions{Name: workflows.WorkflowJoin})
	r.RegisterWorkflowWithOptions(workflows.SimulateJoinWorkflow, workflow.RegisterOptions{Name: workflows.WorkflowSimulateJoin})
	r.RegisterWorkflowWithOptions(workflows.WindowWorkflow, workflow.RegisterOptions{Name: workflows.WorkflowWindow})
	r.RegisterWorkflowWithOptions(workflows.TravelerWorkflow, workflow.RegisterOptions{Name: workflows.WorkflowTraveler})
	r.RegisterWorkflowWithOptions(workflows.SignalCeilingWorkflow, workflow.RegisterOptions{Name: workflows.WorkflowSignalCeiling})
	r.RegisterWorkflowWithOptions(workflows.StartCeilingWorkflow, workflow.RegisterOptions{Name: workflows.WorkflowStartCeiling})
}

// workflowTaskPollers is how many workflow task polls the worker keeps waiting. A task
// that finds no waiting poll is written to the server's database and read back: with the
// server on SQLite, one connection, those writes cost every workflow. Measured with the
// bench's ceiling probe (2,000 workflows started, signalled and completed, three runs
// each): 8 pollers, 104 to 126 workflows/s; 16, 103 to 125; 32, 143 to 163; 64, 132 to 152.
const workflowTaskPollers = 32

// NewWorker builds the Temporal worker of the task queue.
func (d *Deps) NewWorker() worker.Worker {
	w := worker.New(d.Temporal, workflows.TaskQueue, worker.Options{
		MaxConcurrentWorkflowTaskExecutionSize:  64,
		MaxConcurrentActivityExecutionSize:      64,
		MaxConcurrentLocalActivityExecutionSize: 64,
		MaxConcurrentWorkflowTaskPollers:        workflowTaskPollers,
		DeadlockDetectionTimeout:                workflows.TaskDeadlockTimeout,
	})
	RegisterWorkflows(w)
	w.RegisterActivity(d.Activities())
	return w
}

// bridgeOptions are the settings every bridge of this process shares.
func (d *Deps) bridgeOptions(ready chan struct{}) bridge.Options {
	o := d.Config.Bridge
	o.Bootstrap, o.Log, o.Ready, o.DB, o.Metrics = d.Config.KafkaBootstrap, d.Log, ready, d.DB, d.Metrics
	return o
}

// windowRouter builds the router of a window pipeline's records to its workflows.
func (d *Deps) windowRouter(spec pipelines.Spec) (*bridge.Window, error) {
	return bridge.NewWindow(spec, d.Temporal, d.DB, d.Config.Windows)
}

// NewSensorsBridge builds the sensors pipeline's bridge.
func (d *Deps) NewSensorsBridge(ready chan struct{}) (*bridge.Bridge, error) {
	p, err := bridge.NewSensors(d.Temporal, d.DB, d.Config.Sensors)
	if err != nil {
		return nil, err
	}
	return bridge.New(p, d.bridgeOptions(ready))
}

// NewAPI builds the HTTP API server.
func (d *Deps) NewAPI() *api.Server {
	return &api.Server{DB: d.DB, Temporal: d.Temporal, Producer: d.Producer, TravelerShards: d.Config.Sensors.Shards, WindowShards: d.Config.Windows.Shards, JoinShards: d.Config.Join.Shards, Bootstrap: d.Config.KafkaBootstrap,
		Namespace: d.Config.Namespace, TemporalUI: d.Config.TemporalUIURL, Log: d.Log.With("component", "api"), Metrics: d.Metrics.Handler()}
}

// NewWindowBridge builds a window pipeline's bridge.
func (d *Deps) NewWindowBridge(spec pipelines.Spec, ready chan struct{}) (*bridge.Bridge, error) {
	p, err := d.windowRouter(spec)
	if err != nil {
		return nil, err
	}
	return bridge.New(p, d.bridgeOptions(ready))
}

// NewJoinBridge builds the join pipeline's bridge; ready, if set, closes once it owns partitions.
func (d *Deps) NewJoinBridge(ready chan struct{}) (*bridge.Bridge, error) {
	p, err := bridge.NewJoin(d.Temporal, d.DB, d.Config.Join)
	if err != nil {
		return nil, err
	}
	return bridge.New(p, d.bridgeOptions(ready))
}
