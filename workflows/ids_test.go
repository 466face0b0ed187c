package workflows

import (
	"fmt"
	"testing"

	"github.com/tributary-dev/tributary/pipelines"
)

func TestWorkflowIDs(t *testing.T) {
	for _, c := range []struct{ got, want string }{
		{JoinWorkflowID("e1", 0), "join/e1"},
		{JoinShardID(3), "join-shard/3"},
		{TravelerWorkflowID("t1", 0), "traveler/t1"},
		{TravelerShardID(0), "traveler-shard/0"},
		{WindowWorkflowID("likes", "video-1", 0), "window/likes/video-1"},
		{WindowWorkflowID("transactions", pipelines.GlobalKey, 8), "window/transactions/all"},
		{WindowShardID("likes", 2), "window/likes/shard-2"},
		{SimulationWorkflowID("join", "r1"), "simulate/join/r1"},
		{CeilingWorkflowID(7), "ceiling/7"},
	} {
		if c.got != c.want {
			t.Errorf("id %q, want %q", c.got, c.want)
		}
	}
}

// A shard is chosen by the key alone, and keys spread over every shard.
func TestShardedIDsAreStableAndSpread(t *testing.T) {
	ids := map[string]func(key string) string{
		"join":     func(k string) string { return JoinWorkflowID(k, 8) },
		"traveler": func(k string) string { return TravelerWorkflowID(k, 8) },
		"window":   func(k string) string { return WindowWorkflowID("likes", k, 8) },
	}
	for name, id := range ids {
		seen := map[string]bool{}
		for i := range 1000 {
			key := fmt.Sprintf("key-%d", i)
			first, again := id(key), id(key)
			if first != again {
				t.Fatalf("%s: shard choice is not stable", name)
			}
			seen[first] = true
		}
		if len(seen) != 8 {
			t.Errorf("%s: 1000 keys spread over %d shards, want all 8", name, len(seen))
		}
	}
	// The hash is part of the contract with running shards: it must not change (FNV-1a of
	// "event-1" is 5 modulo 8, as the bridge has always computed it).
	if got := JoinWorkflowID("event-1", 8); got != JoinShardID(shardOf("event-1", 8)) || shardOf("event-1", 8) != 5 {
		t.Errorf("event-1 hashes to %s", got)
	}
}
