package kafkaio

import (
	"context"
	"os"
	"os/exec"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/confluentinc/confluent-kafka-go/v2/kafka"

	"github.com/tributary-dev/tributary/internal/embedded"
)

// TestMemberKilledMidRebalanceHoldsNothingLong: two more members join the group of a live
// one, in processes of their own, and are killed with SIGKILL while the group rebalances,
// as bridges killed mid-rebalance are. The live member must own every partition again
// within well under a minute: the broker gives up on the dead members after the rebalance
// timeout the members sent (ConsumerConfig). With librdkafka's default of five minutes a
// fault run saw a partition unread that long.
func TestMemberKilledMidRebalanceHoldsNothingLong(t *testing.T) {
	if testing.Short() {
		t.Skip("kills group members and waits for the group to recover")
	}
	b, err := embedded.StartLoopbackBroker(4)
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	const topic, group = "in", "killed-mid-rebalance"
	if err := EnsureTopics(ctx, b.Address, 4, topic); err != nil {
		t.Fatal(err)
	}
	owned, poll := member(t, b.Address, group, topic)
	waitFor(t, time.Minute, func() bool { poll(); return owned() == 4 }, "the live member to own every partition")

	var procs []*exec.Cmd
	for range 2 {
		cmd := exec.Command(os.Args[0], "-test.run", "^TestGroupMemberProcess$")
		cmd.Env = append(os.Environ(), "KAFKAIO_MEMBER="+b.Address)
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		procs = append(procs, cmd)
	}
	defer func() {
		for _, p := range procs {
			_ = p.Process.Kill()
			_ = p.Wait()
		}
	}()
	waitFor(t, time.Minute, func() bool { poll(); return owned() < 4 }, "the others to take a share")
	// Kill them as a rebalance goes on: one leaves cleanly first, so the group rebalances.
	_ = procs[0].Process.Signal(syscall.SIGTERM)
	_ = procs[1].Process.Kill()
	start := time.Now()
	waitFor(t, 2*time.Minute, func() bool { poll(); return owned() == 4 }, "the live member to own every partition again")
	took := time.Since(start)
	t.Logf("the live member owned everything again after %s", took.Round(time.Second))
	if took > 45*time.Second {
		t.Fatalf("dead members held partitions for %s", took.Round(time.Second))
	}
}

// TestGroupMemberProcess is a group member for TestMemberKilledMidRebalanceHoldsNothingLong,
// run in a process of its own; it does nothing in a normal test run.
func TestGroupMemberProcess(t *testing.T) {
	addr := os.Getenv("KAFKAIO_MEMBER")
	if addr == "" {
		t.Skip("a helper process")
	}
	_, poll := member(t, addr, "killed-mid-rebalance", "in")
	for parent := os.Getppid(); os.Getppid() == parent; { // ends with the test that started it
		poll()
	}
}

// member subscribes a consumer of the bridges' configuration to topic and returns how many
// partitions it owns and a poll to keep it in the group.
func member(t *testing.T, addr, group, topic string) (owned func() int, poll func()) {
	conf := ConsumerConfig(addr, group)
	c, err := kafka.NewConsumer(&conf)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	var mu sync.Mutex
	parts := map[int32]bool{}
	err = c.SubscribeTopics([]string{topic}, func(c *kafka.Consumer, ev kafka.Event) error {
		mu.Lock()
		defer mu.Unlock()
		switch e := ev.(type) {
		case kafka.AssignedPartitions:
			for _, p := range e.Partitions {
				parts[p.Partition] = true
			}
			return c.IncrementalAssign(e.Partitions)
		case kafka.RevokedPartitions:
			for _, p := range e.Partitions {
				delete(parts, p.Partition)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	owned = func() int {
		mu.Lock()
		defer mu.Unlock()
		return len(parts)
	}
	return owned, func() { c.Poll(100) }
}

// waitFor polls cond until it holds, failing the test after d.
func waitFor(t *testing.T, d time.Duration, cond func() bool, what string) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("waited %s for %s", d, what)
		}
	}
}
