package embedded

import (
	"fmt"

	"github.com/twmb/franz-go/pkg/kfake"
)

// BrokerOptions say where the embedded Kafka-protocol broker listens and keeps its data.
type BrokerOptions struct {
	// Port is the loopback port clients bootstrap from.
	Port int
	// DataDir keeps topics, records and committed offsets across restarts; empty keeps them in memory.
	DataDir string
	// Partitions is the default partition count of auto-created topics.
	Partitions int
}

// Broker is a running in-process Kafka-protocol broker (kfake). It speaks the real wire
// protocol, so librdkafka's consumer groups, idempotent and transactional producers work as
// they do against a Kafka cluster.
type Broker struct {
	cluster *kfake.Cluster
	// Address is the bootstrap host:port.
	Address string
}

// StartBroker starts a single-node broker.
func StartBroker(opts BrokerOptions) (*Broker, error) {
	if err := checkPortFree("127.0.0.1", opts.Port, "-kafka"); err != nil {
		return nil, err
	}
	kopts := []kfake.Opt{
		kfake.NumBrokers(1),
		kfake.Ports(opts.Port),
		kfake.ClusterID("tributary"),
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
	return &Broker{cluster: c, Address: addrs[0]}, nil
}

// Close flushes persisted state and stops the broker.
func (b *Broker) Close() { b.cluster.Close() }

// StartLoopbackBroker starts an in-memory broker on a free loopback port, for tests.
func StartLoopbackBroker(partitions int) (*Broker, error) {
	ports, err := FreePorts("127.0.0.1", 1)
	if err != nil {
		return nil, err
	}
	return StartBroker(BrokerOptions{Port: ports[0], Partitions: partitions})
}
