package embedded

import (
	"fmt"
	"log/slog"
	"os"
	"path/filepath"

	"github.com/twmb/franz-go/pkg/kfake"
)

// clusterID is the embedded broker's cluster id.
const clusterID = "tributary"

// BrokerOptions say where the embedded Kafka-protocol broker listens and keeps its data.
type BrokerOptions struct {
	// Port is the loopback port clients bootstrap from.
	Port int
	// DataDir keeps topics, records and committed offsets across restarts; empty keeps them in memory.
	DataDir string
	// Partitions is the default partition count of auto-created topics.
	Partitions int
	// Log receives what recovery after a crash did; nil discards it.
	Log *slog.Logger
}

// Broker is a running in-process Kafka-protocol broker (kfake). It speaks the real wire
// protocol, so librdkafka's consumer groups, idempotent and transactional producers work as
// they do against a Kafka cluster.
type Broker struct {
	cluster *kfake.Cluster
	dataDir string
	// Address is the bootstrap host:port.
	Address string
}

// StartBroker starts a single-node broker.
func StartBroker(opts BrokerOptions) (*Broker, error) {
	if err := checkPortFree("127.0.0.1", opts.Port, "-kafka"); err != nil {
		return nil, err
	}
	log := opts.Log
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if err := recoverIfCrashed(opts, log); err != nil {
		return nil, err
	}
	kopts := []kfake.Opt{
		kfake.NumBrokers(1),
		kfake.Ports(opts.Port),
		kfake.ClusterID(clusterID),
	}
	if opts.Partitions > 0 {
		kopts = append(kopts, kfake.DefaultNumPartitions(opts.Partitions))
	}
	if opts.DataDir != "" {
		kopts = append(kopts, kfake.DataDir(opts.DataDir))
	}
	c, err := kfake.NewCluster(kopts...)
	if err != nil {
		return nil, fmt.Errorf("start embedded Kafka broker: %w", err)
	}
	addrs := c.ListenAddrs()
	if len(addrs) == 0 {
		c.Close()
		return nil, fmt.Errorf("embedded Kafka broker has no listen address")
	}
	return &Broker{cluster: c, dataDir: opts.DataDir, Address: addrs[0]}, nil
}

// Close flushes persisted state, stops the broker, and marks the stop clean, so that the
// next start skips the recovery a crash needs.
func (b *Broker) Close() {
	b.cluster.Close()
	if b.dataDir != "" {
		_ = os.WriteFile(filepath.Join(b.dataDir, cleanMark), nil, 0o644)
	}
}

// StartLoopbackBroker starts an in-memory broker on a free loopback port, for tests.
func StartLoopbackBroker(partitions int) (*Broker, error) {
	ports, err := FreePorts("127.0.0.1", 1)
	if err != nil {
		return nil, err
	}
	return StartBroker(BrokerOptions{Port: ports[0], Partitions: partitions})
}
