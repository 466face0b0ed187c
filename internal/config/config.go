// Package config holds the settings every Tributary program shares, read from
// flags first and the environment second, with defaults that run the embedded stack.
package config

import (
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/tributary-dev/tributary/bridge"
	"github.com/tributary-dev/tributary/pipelines"
)

// Environment variable names. Flags of the same meaning win over them.
const (
	EnvStateDir  = "TRIBUTARY_STATE_DIR"
	EnvKafka     = "KAFKA_BOOTSTRAP_SERVERS"
	EnvTemporal  = "TEMPORAL_ADDRESS"
	EnvNamespace = "TEMPORAL_NAMESPACE"
	EnvDatabase  = "DATABASE_URL"
	// EnvTemporalDatabase moves the embedded Temporal server from SQLite to PostgreSQL.
	EnvTemporalDatabase = "TRIBUTARY_TEMPORAL_DATABASE"
	EnvPartitions       = "TRIBUTARY_PARTITIONS"
	EnvJoinShards       = "TRIBUTARY_JOIN_SHARDS"
	EnvAPI              = "TRIBUTARY_API_ADDRESS"
	EnvMetrics          = "TRIBUTARY_METRICS_ADDRESS"
	EnvTemporalUI       = "TRIBUTARY_TEMPORAL_UI_URL"
	EnvLogLevel         = "TRIBUTARY_LOG_LEVEL"
)

// Config is the shared configuration of the starter, the worker and the bridge. The parts
// that configure a component are that component's own options, so their defaults and
// checks live in one place, beside the component.
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
	// TemporalDatabase is where the embedded Temporal server keeps its data: empty is
	// temporal.db in StateDir (SQLite); a postgres:// URL names the main store's database,
	// with visibility in NAME_visibility beside it.
	TemporalDatabase string
	// HistoryShards is the embedded Temporal server's shard count, fixed when its database
	// file is created.
	HistoryShards int
	// TemporalUIPort is where the embedded server serves the Temporal web UI.
	TemporalUIPort int
	// Partitions is the partition count of topics Tributary creates.
	Partitions int
	// Bridge configures every bridge of a process (Bootstrap, Group, Log and Ready are set
	// by the wiring).
	Bridge bridge.Options
	// Join configures the join pipeline.
	Join bridge.JoinOptions
	// Windows configures the likes, transactions and sensors window workflows.
	Windows bridge.WindowOptions
	// Sensors configures the sensors pipeline (Now is the wall clock).
	Sensors bridge.SensorsOptions
	// SensorGrace keeps a sensor minute open this long after its end, for visits still going on.
	SensorGrace time.Duration
	// APIAddress is where the HTTP API and dashboard listen; empty runs none. The API
	// serves the process's metrics on /metrics too.
	APIAddress string
	// TemporalUIURL is the Temporal web UI's base URL, for the dashboard's links to
	// workflows; empty shows none.
	TemporalUIURL string
	// MetricsAddress is where a process serves /metrics on a listener of its own, for
	// roles without the API; empty runs none.
	MetricsAddress string
}

// Default returns the configuration of the embedded stack on loopback.
func Default() Config {
	return Config{
		StateDir:        ".tributary",
		KafkaBootstrap:  "127.0.0.1:9092",
		TemporalAddress: "127.0.0.1:7233",
		Namespace:       "default",
		TemporalUIPort:  8233,
		HistoryShards:   4,
		Partitions:      4,
		Bridge:          bridge.DefaultOptions(),
		Join:            bridge.DefaultJoinOptions(),
		Windows:         bridge.DefaultWindowOptions(),
		Sensors:         bridge.DefaultSensorsOptions(),
		SensorGrace:     pipelines.SensorsGrace,
		APIAddress:      "127.0.0.1:8080",
		TemporalUIURL:   "http://127.0.0.1:8233",
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
	str(EnvTemporalDatabase, &c.TemporalDatabase)
	str(EnvAPI, &c.APIAddress)
	str(EnvMetrics, &c.MetricsAddress)
	str(EnvTemporalUI, &c.TemporalUIURL)
	for name, dst := range map[string]*int{EnvPartitions: &c.Partitions, EnvJoinShards: &c.Join.Shards} {
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

// LogLevel is the level TRIBUTARY_LOG_LEVEL sets (debug, info, warn or error), or def when
// it is not set.
func LogLevel(def slog.Level) (slog.Level, error) {
	v := os.Getenv(EnvLogLevel)
	if v == "" {
		return def, nil
	}
	var l slog.Level
	if err := l.UnmarshalText([]byte(v)); err != nil {
		return def, fmt.Errorf("%s=%q: want debug, info, warn or error", EnvLogLevel, v)
	}
	return l, nil
}

// FlagGroup is a set of settings a command may take as flags: each command shows and
// takes only the groups it uses, so its -h lists what it reads.
type FlagGroup int

// The flag groups.
const (
	// ClientFlags reach a running stack: Kafka and Temporal.
	ClientFlags FlagGroup = iota
	// ResultsFlags find the results database: the state directory or its URL.
	ResultsFlags
	// StackFlags configure the embedded broker and Temporal server.
	StackFlags
	// PipelineFlags configure the worker, the bridges and the pipelines.
	PipelineFlags
	// SensorTimingFlags are the sensors pipeline's timing, which its simulation paces by.
	SensorTimingFlags
	// ServeFlags say where the HTTP API and the metrics listen.
	ServeFlags
)

// AllFlags are every group: the commands that run the stack and its roles.
var AllFlags = []FlagGroup{ClientFlags, ResultsFlags, StackFlags, PipelineFlags, SensorTimingFlags, ServeFlags}

// RegisterFlags binds the groups' settings to a flag set; the current values are the
// defaults shown.
func (c *Config) RegisterFlags(fs *flag.FlagSet, groups ...FlagGroup) {
	for _, g := range groups {
		switch g {
		case ClientFlags:
			fs.StringVar(&c.KafkaBootstrap, "kafka", c.KafkaBootstrap, "Kafka bootstrap servers (env "+EnvKafka+")")
			fs.StringVar(&c.TemporalAddress, "temporal", c.TemporalAddress, "Temporal frontend host:port (env "+EnvTemporal+")")
			fs.StringVar(&c.Namespace, "namespace", c.Namespace, "Temporal namespace (env "+EnvNamespace+")")
		case ResultsFlags:
			fs.StringVar(&c.StateDir, "state-dir", c.StateDir, "directory for broker data, Temporal and results databases (env "+EnvStateDir+")")
			fs.StringVar(&c.DatabaseURL, "database", c.DatabaseURL, "results database: SQLite path or postgres:// URL; empty is tributary.db in the state dir (env "+EnvDatabase+")")
		case StackFlags:
			fs.StringVar(&c.TemporalDatabase, "temporal-database", c.TemporalDatabase, "the embedded Temporal server's database: empty is temporal.db (SQLite) in the state dir; a postgres:// URL runs it on PostgreSQL (env "+EnvTemporalDatabase+")")
			fs.IntVar(&c.HistoryShards, "history-shards", c.HistoryShards, "history shards of the embedded Temporal server (fixed when its database is created)")
			fs.IntVar(&c.TemporalUIPort, "ui-port", c.TemporalUIPort, "port of the embedded Temporal web UI")
		case PipelineFlags:
			fs.IntVar(&c.Partitions, "partitions", c.Partitions, "partitions of each topic Tributary creates (env "+EnvPartitions+")")
			fs.IntVar(&c.Join.Shards, "join-shards", c.Join.Shards, "0: one join workflow per event id; N: event ids hashed over N shard workflows (env "+EnvJoinShards+")")
			fs.DurationVar(&c.Join.Deadline, "join-deadline", c.Join.Deadline, "how long an event id waits for its missing topics")
			fs.IntVar(&c.Join.ShardHistory, "join-shard-history", c.Join.ShardHistory, "history events after which a join shard continues as new; 0 waits for the server's suggestion")
			fs.IntVar(&c.Windows.Shards, "window-shards", c.Windows.Shards, "0: one window workflow per key; N: keys hashed over N workflows per pipeline")
			fs.IntVar(&c.Windows.MaxUpdates, "window-max-updates", c.Windows.MaxUpdates, "batches after which a window workflow continues as new (at most 2000)")
			fs.DurationVar(&c.Windows.Idle, "window-idle", c.Windows.Idle, "how long a per-key window workflow waits, with nothing open, before it ends")
			fs.IntVar(&c.Bridge.Concurrency, "signal-concurrency", c.Bridge.Concurrency, "signals one bridge keeps in flight")
			fs.DurationVar(&c.Bridge.BatchWindow, "batch-window", c.Bridge.BatchWindow, "how long a bridge batch gathers after its first record (the window pipelines)")
			fs.DurationVar(&c.Bridge.GatherWindow, "gather-window", c.Bridge.GatherWindow, "how long a join batch waits at most for the missing topics of its event ids; one that has them all goes at once")
			fs.IntVar(&c.Bridge.MaxBatch, "max-batch", c.Bridge.MaxBatch, "records one bridge poll batch holds")
			fs.IntVar(&c.Sensors.Shards, "traveler-shards", c.Sensors.Shards, "0: one sensors workflow per traveler id; N: traveler ids hashed over N shard workflows")
			fs.IntVar(&c.Sensors.ShardHistory, "traveler-shard-history", c.Sensors.ShardHistory, "history events after which a traveler shard continues as new; 0 waits for the server's suggestion")
			fs.DurationVar(&c.SensorGrace, "sensor-grace", c.SensorGrace, "how long a sensor minute stays open after its end for visits still going on")
			fs.DurationVar(&c.Sensors.FlushDelay, "sensor-flush-delay", c.Sensors.FlushDelay, "how long a traveler shard holds ended visits to flush them together")
			fs.DurationVar(&c.Bridge.FutureTolerance, "future-tolerance", c.Bridge.FutureTolerance, "how far ahead of the clock a record's event time may be before it is dead-lettered (every pipeline)")
		case SensorTimingFlags:
			fs.DurationVar(&c.Sensors.Disorder, "sensor-disorder", c.Sensors.Disorder, "how far out of time order a traveler's readings may arrive")
			fs.DurationVar(&c.Sensors.IdleGap, "sensor-idle-gap", c.Sensors.IdleGap, "a visit ends when its traveler sent no reading of it for this long")
		case ServeFlags:
			fs.StringVar(&c.APIAddress, "api", c.APIAddress, "host:port of the HTTP API and dashboard, with /metrics; empty runs none (env "+EnvAPI+")")
			fs.StringVar(&c.TemporalUIURL, "temporal-ui-url", c.TemporalUIURL, "the Temporal web UI's base URL, for the dashboard's links to workflows; empty shows none (env "+EnvTemporalUI+")")
			fs.StringVar(&c.MetricsAddress, "metrics", c.MetricsAddress, "host:port serving Prometheus /metrics on a listener of its own; empty runs none (env "+EnvMetrics+")")
		}
	}
}

// Database returns the results database URL, defaulting to a file in the state directory.
func (c Config) Database() string {
	if c.DatabaseURL != "" {
		return c.DatabaseURL
	}
	return filepath.Join(c.StateDir, "tributary.db")
}

// Validate reports settings that cannot work, saying which flag to change; each
// component's options check themselves.
func (c Config) Validate() error {
	var errs []error
	if c.Partitions < 1 {
		errs = append(errs, fmt.Errorf("-partitions must be at least 1, got %d", c.Partitions))
	}
	if c.Namespace == "" {
		errs = append(errs, errors.New("-namespace must not be empty"))
	}
	if d := c.TemporalDatabase; d != "" && !strings.HasPrefix(d, "postgres://") && !strings.HasPrefix(d, "postgresql://") {
		errs = append(errs, fmt.Errorf("-temporal-database %q: want empty (SQLite in the state dir) or a postgres:// URL", d))
	}
	if c.SensorGrace < 0 {
		errs = append(errs, fmt.Errorf("-sensor-grace must not be negative, got %s", c.SensorGrace))
	}
	errs = append(errs, c.Bridge.Validate(), c.Join.Validate(), c.Windows.Validate(), c.Sensors.Validate())
	return errors.Join(errs...)
}

// TemporalStore says where the embedded Temporal server keeps its data, for people: the
// SQLite file, or the PostgreSQL URL without its password.
func (c Config) TemporalStore() string {
	if c.TemporalDatabase == "" {
		return filepath.Join(c.StateDir, "temporal.db")
	}
	if u, err := url.Parse(c.TemporalDatabase); err == nil {
		return u.Redacted()
	}
	return "PostgreSQL"
}
