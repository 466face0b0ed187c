// Package config holds the settings every Tributary program shares, read from
// flags first and the environment second, with defaults that run the embedded stack.
package config

import (
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"time"
)

// Environment variable names. Flags of the same meaning win over them.
const (
	EnvStateDir   = "TRIBUTARY_STATE_DIR"
	EnvKafka      = "KAFKA_BOOTSTRAP_SERVERS"
	EnvTemporal   = "TEMPORAL_ADDRESS"
	EnvNamespace  = "TEMPORAL_NAMESPACE"
	EnvDatabase   = "DATABASE_URL"
	EnvPartitions = "TRIBUTARY_PARTITIONS"
	EnvJoinShards = "TRIBUTARY_JOIN_SHARDS"
	EnvAPI        = "TRIBUTARY_API_ADDRESS"
)

// Config is the shared configuration of the starter, the worker and the bridge.
type Config struct {
	// StateDir holds the embedded broker's data, the Temporal SQLite file and the results database.
	StateDir string
	// KafkaBootstrap is a comma-separated broker list.
	KafkaBootstrap string
	// TemporalAddress is the frontend's host:port.
	TemporalAddress string
	// Namespace is the Temporal namespace every workflow runs in.
	Namespace string
	// DatabaseURL is a SQLite file path (optionally prefixed sqlite://) or a postgres:// URL.
	// Empty means tributary.db in StateDir.
	DatabaseURL string
	// HistoryShards is the embedded Temporal server's shard count, fixed when its database
	// file is created.
	HistoryShards int
	// TemporalUIPort is where the embedded server serves the Temporal web UI.
	TemporalUIPort int
	// Partitions is the partition count of topics Tributary creates.
	Partitions int
	// JoinShards selects the join mode: 0 runs one workflow per event id,
	// N > 0 spreads event ids over N long-running shard workflows.
	JoinShards int
	// WindowShards selects how window pipelines key their workflows: 0 runs one per key,
	// N > 0 hashes keys over N workflows per pipeline.
	WindowShards int
	// WindowMaxUpdates makes a window workflow continue as new after this many batches
	// (the server allows 2,000 updates per run).
	WindowMaxUpdates int
	// WindowPerRecord sends every record of a window pipeline in an update of its own,
	// without pre-aggregation: only for measuring what pre-aggregation saves.
	WindowPerRecord bool
	// JoinShardHistory makes a join shard continue as new after this many history events;
	// 0 waits for the server's suggestion.
	JoinShardHistory int
	// JoinDeadline is how long an event id waits for its missing topics before it is stored incomplete.
	JoinDeadline time.Duration
	// SignalConcurrency bounds the signals one bridge has in flight.
	SignalConcurrency int
	// BatchWindow is how long a bridge batch gathers after its first record.
	BatchWindow time.Duration
	// MaxBatch bounds the records one bridge poll batch holds.
	MaxBatch int
	// TravelerShards selects the sensors mode: 0 runs one workflow per traveler id, N > 0
	// spreads traveler ids over N long-running shard workflows.
	TravelerShards int
	// SensorDisorder is how far out of event-time order a traveler's readings may arrive.
	SensorDisorder time.Duration
	// SensorIdleGap ends a visit when its traveler sent no reading of it for this long.
	SensorIdleGap time.Duration
	// SensorGrace keeps a sensor minute open this long after its end, for visits still going on.
	SensorGrace time.Duration
	// SensorFlushDelay lets a traveler shard hold ended visits this long to flush them together.
	SensorFlushDelay time.Duration
	// FutureTolerance is how far ahead of the bridge's clock a reading's time may be.
	FutureTolerance time.Duration
	// APIAddress is where the HTTP API and dashboard listen; empty runs none.
	APIAddress string
}

// Default returns the configuration of the embedded stack on loopback.
func Default() Config {
	return Config{
		StateDir:          ".tributary",
		KafkaBootstrap:    "127.0.0.1:9092",
		TemporalAddress:   "127.0.0.1:7233",
		Namespace:         "default",
		TemporalUIPort:    8233,
		HistoryShards:     4,
		WindowMaxUpdates:  1000,
		Partitions:        4,
		JoinDeadline:      30 * time.Second,
		SignalConcurrency: 32,
		MaxBatch:          20000,
		BatchWindow:       time.Millisecond,
		SensorDisorder:    2 * time.Second,
		SensorIdleGap:     10 * time.Second,
		SensorGrace:       2 * time.Minute,
		SensorFlushDelay:  time.Second,
		FutureTolerance:   time.Minute,
		APIAddress:        "127.0.0.1:8080",
	}
}

// FromEnv returns Default, adjusted by the given functions, overlaid with whatever the
// environment sets.
func FromEnv(adjust ...func(*Config)) (Config, error) {
	c := Default()
	for _, f := range adjust {
		f(&c)
	}
	str := func(name string, dst *string) {
		if v, ok := os.LookupEnv(name); ok && v != "" {
			*dst = v
		}
	}
	str(EnvStateDir, &c.StateDir)
	str(EnvKafka, &c.KafkaBootstrap)
	str(EnvTemporal, &c.TemporalAddress)
	str(EnvNamespace, &c.Namespace)
	str(EnvDatabase, &c.DatabaseURL)
	str(EnvAPI, &c.APIAddress)
	for name, dst := range map[string]*int{EnvPartitions: &c.Partitions, EnvJoinShards: &c.JoinShards} {
		if v, ok := os.LookupEnv(name); ok && v != "" {
			n, err := strconv.Atoi(v)
			if err != nil {
				return c, fmt.Errorf("%s=%q: want a whole number", name, v)
			}
			*dst = n
		}
	}
	return c, nil
}

// RegisterFlags binds the configuration to a flag set; the current values are the defaults shown.
func (c *Config) RegisterFlags(fs *flag.FlagSet) {
	fs.StringVar(&c.StateDir, "state-dir", c.StateDir, "directory for broker data, Temporal and results databases (env "+EnvStateDir+")")
	fs.StringVar(&c.KafkaBootstrap, "kafka", c.KafkaBootstrap, "Kafka bootstrap servers (env "+EnvKafka+")")
	fs.StringVar(&c.TemporalAddress, "temporal", c.TemporalAddress, "Temporal frontend host:port (env "+EnvTemporal+")")
	fs.StringVar(&c.Namespace, "namespace", c.Namespace, "Temporal namespace (env "+EnvNamespace+")")
	fs.StringVar(&c.DatabaseURL, "database", c.DatabaseURL, "results database: SQLite path or postgres:// URL; empty is tributary.db in the state dir (env "+EnvDatabase+")")
	fs.IntVar(&c.HistoryShards, "history-shards", c.HistoryShards, "history shards of the embedded Temporal server (fixed when its database is created)")
	fs.IntVar(&c.TemporalUIPort, "ui-port", c.TemporalUIPort, "port of the embedded Temporal web UI")
	fs.IntVar(&c.Partitions, "partitions", c.Partitions, "partitions of each topic Tributary creates (env "+EnvPartitions+")")
	fs.IntVar(&c.JoinShards, "join-shards", c.JoinShards, "0: one join workflow per event id; N: event ids hashed over N shard workflows (env "+EnvJoinShards+")")
	fs.IntVar(&c.WindowShards, "window-shards", c.WindowShards, "0: one window workflow per key; N: keys hashed over N workflows per pipeline")
	fs.IntVar(&c.WindowMaxUpdates, "window-max-updates", c.WindowMaxUpdates, "batches after which a window workflow continues as new (at most 2000)")
	fs.IntVar(&c.JoinShardHistory, "join-shard-history", c.JoinShardHistory, "history events after which a join shard continues as new; 0 waits for the server's suggestion")
	fs.DurationVar(&c.JoinDeadline, "join-deadline", c.JoinDeadline, "how long an event id waits for its missing topics")
	fs.IntVar(&c.SignalConcurrency, "signal-concurrency", c.SignalConcurrency, "signals one bridge keeps in flight")
	fs.DurationVar(&c.BatchWindow, "batch-window", c.BatchWindow, "how long a bridge batch gathers after its first record, so an event's rows travel in one signal")
	fs.IntVar(&c.MaxBatch, "max-batch", c.MaxBatch, "records one bridge poll batch holds")
	fs.IntVar(&c.TravelerShards, "traveler-shards", c.TravelerShards, "0: one sensors workflow per traveler id; N: traveler ids hashed over N shard workflows")
	fs.DurationVar(&c.SensorDisorder, "sensor-disorder", c.SensorDisorder, "how far out of time order a traveler's readings may arrive")
	fs.DurationVar(&c.SensorIdleGap, "sensor-idle-gap", c.SensorIdleGap, "a visit ends when its traveler sent no reading of it for this long")
	fs.DurationVar(&c.SensorGrace, "sensor-grace", c.SensorGrace, "how long a sensor minute stays open after its end for visits still going on")
	fs.DurationVar(&c.SensorFlushDelay, "sensor-flush-delay", c.SensorFlushDelay, "how long a traveler shard holds ended visits to flush them together")
	fs.DurationVar(&c.FutureTolerance, "future-tolerance", c.FutureTolerance, "how far ahead of the clock a reading's time may be before it is dead-lettered")
	fs.StringVar(&c.APIAddress, "api", c.APIAddress, "host:port of the HTTP API and dashboard; empty runs none (env "+EnvAPI+")")
}

// Database returns the results database URL, defaulting to a file in the state directory.
func (c Config) Database() string {
	if c.DatabaseURL != "" {
		return c.DatabaseURL
	}
	return filepath.Join(c.StateDir, "tributary.db")
}

// Validate reports settings that cannot work, saying which flag to change.
func (c Config) Validate() error {
	var errs []error
	if c.Partitions < 1 {
		errs = append(errs, fmt.Errorf("-partitions must be at least 1, got %d", c.Partitions))
	}
	if c.WindowMaxUpdates < 1 || c.WindowMaxUpdates > 2000 {
		errs = append(errs, fmt.Errorf("-window-max-updates must be between 1 and 2000, got %d", c.WindowMaxUpdates))
	}
	if c.WindowShards < 0 {
		errs = append(errs, fmt.Errorf("-window-shards must be 0 or more, got %d", c.WindowShards))
	}
	if c.JoinShards < 0 {
		errs = append(errs, fmt.Errorf("-join-shards must be 0 or more, got %d", c.JoinShards))
	}
	if c.JoinDeadline <= 0 {
		errs = append(errs, fmt.Errorf("-join-deadline must be positive, got %s", c.JoinDeadline))
	}
	if c.SignalConcurrency < 1 {
		errs = append(errs, fmt.Errorf("-signal-concurrency must be at least 1, got %d", c.SignalConcurrency))
	}
	if c.MaxBatch < 1 {
		errs = append(errs, fmt.Errorf("-max-batch must be at least 1, got %d", c.MaxBatch))
	}
	if c.TravelerShards < 0 {
		errs = append(errs, fmt.Errorf("-traveler-shards must be 0 or more, got %d", c.TravelerShards))
	}
	if c.SensorDisorder < 0 || c.SensorIdleGap <= 0 || c.SensorGrace < 0 || c.FutureTolerance < 0 || c.SensorFlushDelay < 0 {
		errs = append(errs, errors.New("-sensor-idle-gap must be positive; -sensor-disorder, -sensor-grace, -sensor-flush-delay and -future-tolerance must not be negative"))
	}
	if c.Namespace == "" {
		errs = append(errs, errors.New("-namespace must not be empty"))
	}
	return errors.Join(errs...)
}
