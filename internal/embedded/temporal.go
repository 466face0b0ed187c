// Package embedded runs the parts of the stack that production gets from real clusters
// inside one process on loopback: a Kafka-protocol broker and a Temporal server with its web UI.
package embedded

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	uiserver "github.com/temporalio/ui-server/v2/server"
	uiconfig "github.com/temporalio/ui-server/v2/server/config"
	uioptions "github.com/temporalio/ui-server/v2/server/server_options"
	"github.com/uber-go/tally/v4"
	"go.temporal.io/server/common/cluster"
	"go.temporal.io/server/common/config"
	"go.temporal.io/server/common/dynamicconfig"
	"go.temporal.io/server/common/log"
	"go.temporal.io/server/common/membership/static"
	servermetrics "go.temporal.io/server/common/metrics"
	sqliteplugin "go.temporal.io/server/common/persistence/sql/sqlplugin/sqlite"
	"go.temporal.io/server/common/primitives"
	sqliteschema "go.temporal.io/server/schema/sqlite"
	"go.temporal.io/server/temporal"

	"github.com/tributary-dev/tributary/internal/metrics"
	"github.com/tributary-dev/tributary/internal/sqlitefile"
)

// TemporalOptions say where the embedded Temporal server keeps its data and listens.
type TemporalOptions struct {
	// DatabaseFile is the SQLite file; it gets its schema when it does not exist yet.
	DatabaseFile string
	// PostgresURL, when set, replaces the SQLite file: the server keeps its data in the
	// PostgreSQL database the URL names (created when missing) and visibility in a second
	// one beside it, NAME_visibility, as a production cluster does.
	PostgresURL string
	// IP is the loopback address every service binds to.
	IP string
	// Port is the frontend gRPC port clients dial.
	Port int
	// UIPort serves the Temporal web UI; 0 disables it.
	UIPort int
	// Namespaces are created when missing.
	Namespaces []string
	// HistoryShards is fixed when the database file is created.
	HistoryShards int32
	// Logger receives the server's warnings and errors.
	Logger *slog.Logger
	// Metrics, if set, receives the server's own metrics (persistence, history, matching
	// and frontend request counts and latencies), under the server's names.
	Metrics prometheus.Registerer

	// writePartitions, when set, replaces the partitions new tasks are written to: tests
	// make the backlog an earlier version left behind.
	writePartitions int
}

// Temporal is a running embedded Temporal server.
type Temporal struct {
	server  temporal.Server
	ui      *uiserver.Server
	metrics interface{ Close() error }
	// checkpointer copies the SQLite file's WAL into it, off the server's commits.
	checkpointer *sqlitefile.Checkpointer
	// Address is the frontend's host:port.
	Address string
	// UIAddress is the web UI's host:port, empty when disabled.
	UIAddress string
}

// StartTemporal starts all Temporal services in this process, the way the Temporal CLI's dev
// server does: on SQLite with write-ahead logging and a single connection, or on
// PostgreSQL with the plugin a production cluster uses.
func StartTemporal(opts TemporalOptions) (*Temporal, error) {
	if opts.IP == "" {
		opts.IP = "127.0.0.1"
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	if opts.HistoryShards == 0 {
		opts.HistoryShards = 1
	}
	if err := checkPortFree(opts.IP, opts.Port, "-temporal"); err != nil {
		return nil, err
	}
	if opts.UIPort != 0 {
		if err := checkPortFree(opts.IP, opts.UIPort, "-ui-port"); err != nil {
			return nil, err
		}
	}
	logger := newServerLogger(opts.Logger)
	stores, err := persistence(opts, logger)
	if err != nil {
		return nil, err
	}
	ports, err := FreePorts(opts.IP, 4)
	if err != nil {
		return nil, fmt.Errorf("pick ports for internal Temporal services: %w", err)
	}
	conf := serverConfig(opts, stores, ports)
	hostOf := func(svc primitives.ServiceName) static.Hosts {
		return static.SingleLocalHost(net.JoinHostPort(opts.IP, strconv.Itoa(conf.Services[string(svc)].RPC.GRPCPort)))
	}
	dyn := dynamicconfig.StaticClient{}
	for k, v := range DynamicConfig() {
		dyn[dynamicconfig.MakeKey(k)] = v
	}
	if opts.writePartitions > 0 {
		dyn[dynamicconfig.MatchingNumTaskqueueWritePartitions.Key()] = opts.writePartitions
	}
	serverOpts := []temporal.ServerOption{}
	var metricsScope interface{ Close() error }
	if opts.Metrics != nil {
		var scope tally.Scope
		scope, metricsScope = metrics.TallyScope(opts.Metrics)
		serverOpts = append(serverOpts, temporal.WithCustomMetricsHandler(servermetrics.NewTallyMetricsHandler(servermetrics.ClientConfig{}, scope)))
	}
	srv, err := temporal.NewServer(append(serverOpts,
		temporal.WithConfig(conf),
		temporal.ForServices(temporal.DefaultServices),
		temporal.WithStaticHosts(map[primitives.ServiceName]static.Hosts{
			primitives.FrontendService: hostOf(primitives.FrontendService),
			primitives.HistoryService:  hostOf(primitives.HistoryService),
			primitives.MatchingService: hostOf(primitives.MatchingService),
			primitives.WorkerService:   hostOf(primitives.WorkerService),
		}),
		temporal.WithLogger(logger),
		temporal.WithDynamicConfigClient(dyn),
	)...)
	closeMetrics := func() {
		if metricsScope != nil {
			_ = metricsScope.Close()
		}
	}
	if err != nil {
		closeMetrics()
		return nil, fmt.Errorf("build Temporal server: %w", err)
	}
	if err := srv.Start(); err != nil {
		closeMetrics()
		return nil, fmt.Errorf("start Temporal server: %w", err)
	}
	t := &Temporal{server: srv, metrics: metricsScope, Address: net.JoinHostPort(opts.IP, strconv.Itoa(opts.Port))}
	if opts.PostgresURL == "" {
		if t.checkpointer, err = sqlitefile.StartCheckpointer(SQLiteDriver, opts.DatabaseFile, sqlitefile.CheckpointEvery, opts.Logger); err != nil {
			_ = srv.Stop()
			closeMetrics()
			return nil, err
		}
	} else {
		// On SQLite the namespaces were written before the start; on PostgreSQL they are
		// registered through the frontend, as a cluster's set-up does.
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		err := registerNamespaces(ctx, t.Address, opts.Namespaces, opts.Logger)
		cancel()
		if err != nil {
			_ = srv.Stop()
			closeMetrics()
			return nil, err
		}
	}
	if opts.UIPort != 0 {
		t.UIAddress = net.JoinHostPort(opts.IP, strconv.Itoa(opts.UIPort))
		t.ui = uiserver.NewServer(uioptions.WithConfigProvider(&uiconfig.Config{
			Host:                opts.IP,
			Port:                opts.UIPort,
			TemporalGRPCAddress: t.Address,
			EnableUI:            true,
			CORS:                uiconfig.CORS{CookieInsecure: true},
			HideLogs:            true,
			DisableNewsFetch:    true,
		}))
		log := opts.Logger
		go func() {
			// Start blocks until Stop; an early return is a failure to serve.
			if err := t.ui.Start(); err != nil && !errors.Is(err, http.ErrServerClosed) {
				log.Error("Temporal UI stopped", "address", t.UIAddress, "err", err)
			}
		}()
	}
	return t, nil
}

// Stop shuts the UI and then the server down.
func (t *Temporal) Stop() error {
	if t.ui != nil {
		t.ui.Stop()
	}
	err := t.server.Stop()
	if t.checkpointer != nil {
		err = errors.Join(err, t.checkpointer.Stop())
	}
	if t.metrics != nil {
		_ = t.metrics.Close()
	}
	return err
}

// PayloadWarnBytes is the payload size above which Tributary's servers and clients log a
// warning, where Temporal's default is 512 KiB: the join's updates carry up to
// bridge.MaxUpdateBytes of rows by design. Temporal's limit, 2 MiB, stays.
const PayloadWarnBytes = 3 << 19

// DynamicConfig is the dynamic configuration Tributary runs its Temporal servers with, by
// key: the embedded one, and in the compose stack deploy/temporal/dynamicconfig.yaml.
func DynamicConfig() map[string]any {
	return map[string]any{
		dynamicconfig.HistoryCacheHostLevelMaxSize.Key().String():                 8192,
		dynamicconfig.FrontendMaxNamespaceVisibilityRPSPerInstance.Key().String(): 100,
		// The activities that write results start in the worker's answer to the workflow
		// task that scheduled them (workflows.runRecorded), not after a trip through matching.
		dynamicconfig.EnableActivityEagerExecution.Key().String(): true,
		dynamicconfig.BlobSizeLimitWarn.Key().String():            PayloadWarnBytes,
		// One partition per task queue, as one matching host needs. With Temporal's four,
		// a task given to a partition no poller waits on is written to the database and
		// read back, or waits for a poll forwarded from another partition. Measured with
		// the ceiling probe (2,000 workflows): four partitions, 45 to 48 workflows/s, and
		// three runs of eleven held their last tasks up to a minute; one, 78 to 84, and no
		// such wait in 47 runs. Tasks an earlier version left in the other three are still
		// run (TestTasksLeftInOtherPartitionsAreRun).
		dynamicconfig.MatchingNumTaskqueueReadPartitions.Key().String():  1,
		dynamicconfig.MatchingNumTaskqueueWritePartitions.Key().String(): 1,
	}
}

// stores is the server's persistence: its main store and its visibility store.
type stores struct {
	name             string
	main, visibility *config.SQL
}

// persistence prepares the database the options name and says how the server reaches it.
func persistence(opts TemporalOptions, logger log.Logger) (stores, error) {
	if opts.PostgresURL != "" {
		main, vis, err := postgresStores(opts.PostgresURL, logger)
		return stores{name: "postgres", main: main, visibility: vis}, err
	}
	conf, err := sqliteConfig(opts)
	// One file, one connection: visibility shares the main store's.
	return stores{name: "sqlite", main: conf, visibility: conf}, err
}

// SQLiteDriver is the database/sql name of the SQLite driver the server's plugin uses: the
// pure-Go one, which the plugin imports.
const SQLiteDriver = "sqlite"

// TemporalPragmas are the SQLite settings the server's file is opened with, by pragma name:
// measured here, WAL with synchronous=NORMAL is about 3.5 times faster than the default
// journal. The bench's reference commit (internal/bench) is made with the same.
func TemporalPragmas() map[string]string {
	return map[string]string{"journal_mode": "wal", "synchronous": "NORMAL"}
}

// TemporalPageSize is the page size of a new Temporal SQLite file, SQLite's smallest.
// Measured with the bench's ceiling probe (1,000 workflows started, signalled and
// completed, two runs each): 4,096-byte pages and SQLite's checkpoint every 1,000 pages
// wrote 2.0 MB per workflow; 512-byte pages with the WAL checkpointed at 16 MiB, 0.47 to
// 0.48 MB, at 56 to 73 workflows/s against 53 to 62.
const TemporalPageSize = 512

func sqliteConfig(opts TemporalOptions) (*config.SQL, error) {
	conf := &config.SQL{
		PluginName:   sqliteplugin.PluginName,
		DatabaseName: opts.DatabaseFile,
		// A second connection only adds SQLITE_BUSY retries (measured here).
		ConnectAttributes: TemporalPragmas(),
		MaxConns:          1,
		MaxIdleConns:      1,
	}
	conf.ConnectAttributes["mode"] = "rwc"
	if err := os.MkdirAll(filepath.Dir(opts.DatabaseFile), 0o755); err != nil {
		return nil, fmt.Errorf("create directory for %s: %w", opts.DatabaseFile, err)
	}
	empty, pageSize, err := sqlitefile.Prepare(SQLiteDriver, opts.DatabaseFile, TemporalPageSize)
	if err != nil {
		return nil, err
	}
	conf.ConnectAttributes["wal_autocheckpoint"] = strconv.Itoa(sqlitefile.CheckpointPages(pageSize))
	if empty {
		if err := sqliteschema.SetupSchema(conf); err != nil {
			return nil, fmt.Errorf("set up Temporal schema in %s: %w", opts.DatabaseFile, err)
		}
	}
	// Files made before the indexes were dropped lose them on their next start.
	if _, err := lightenVisibility(opts.DatabaseFile); err != nil {
		return nil, err
	}
	var nss []*sqliteschema.NamespaceConfig
	for _, name := range opts.Namespaces {
		ns, err := sqliteschema.NewNamespaceConfig(clusterName, name, false, nil)
		if err != nil {
			return nil, fmt.Errorf("namespace %s: %w", name, err)
		}
		nss = append(nss, ns)
	}
	if err := sqliteschema.CreateNamespaces(conf, nss...); err != nil {
		return nil, fmt.Errorf("create namespaces: %w", err)
	}
	return conf, nil
}

const clusterName = "active"

func serverConfig(opts TemporalOptions, st stores, ports []int) *config.Config {
	var conf config.Config
	conf.Global.Membership.MaxJoinDuration = 30e9
	conf.Global.Membership.BroadcastAddress = opts.IP
	conf.Persistence.NumHistoryShards = opts.HistoryShards
	conf.Persistence.DefaultStore = st.name
	conf.Persistence.DataStores = map[string]config.DataStore{st.name: {SQL: st.main}}
	conf.Persistence.VisibilityStore = st.name
	if st.visibility != st.main {
		conf.Persistence.VisibilityStore = st.name + "-visibility"
		conf.Persistence.DataStores[conf.Persistence.VisibilityStore] = config.DataStore{SQL: st.visibility}
	}
	frontend := net.JoinHostPort(opts.IP, strconv.Itoa(opts.Port))
	conf.ClusterMetadata = &cluster.Config{
		FailoverVersionIncrement: 10,
		MasterClusterName:        clusterName,
		CurrentClusterName:       clusterName,
		ClusterInformation: map[string]cluster.ClusterInformation{clusterName: {
			Enabled:                true,
			InitialFailoverVersion: 1,
			RPCAddress:             frontend,
			HTTPAddress:            net.JoinHostPort(opts.IP, strconv.Itoa(ports[3])),
			ClusterID:              "tributary-embedded",
		}},
	}
	conf.DCRedirectionPolicy.Policy = "noop"
	svc := func(port int) config.Service {
		var s config.Service
		s.RPC.GRPCPort = port
		s.RPC.BindOnIP = opts.IP
		return s
	}
	front := svc(opts.Port)
	front.RPC.HTTPPort = ports[3]
	conf.Services = map[string]config.Service{
		"frontend": front,
		"history":  svc(ports[0]),
		"matching": svc(ports[1]),
		"worker":   svc(ports[2]),
	}
	conf.Archival.History.State = "disabled"
	conf.Archival.Visibility.State = "disabled"
	conf.NamespaceDefaults.Archival.History.State = "disabled"
	conf.NamespaceDefaults.Archival.Visibility.State = "disabled"
	conf.PublicClient.HostPort = frontend
	return &conf
}

// checkPortFree fails with the flag to change when something already listens on the port.
func checkPortFree(ip string, port int, flagName string) error {
	l, err := net.Listen("tcp", net.JoinHostPort(ip, strconv.Itoa(port)))
	if err != nil {
		return fmt.Errorf("port %d on %s is busy (%v): stop what uses it or pick another with %s", port, ip, err, flagName)
	}
	return l.Close()
}
