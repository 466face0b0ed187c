package workflows

import (
	"hash/fnv"
	"strconv"

	"github.com/tributary-dev/tributary/pipelines"
)

// Workflow ids follow from the entity a workflow serves, so the bridge, the API and the
// tests find a workflow without asking anyone. The functions below are the only place an id
// is spelled.
const (
	joinEventIDPrefix     = "join/"
	joinShardIDPrefix     = "join-shard/"
	travelerIDPrefix      = "traveler/"
	travelerShardIDPrefix = "traveler-shard/"
	windowIDPrefix        = "window/"
	simulationIDPrefix    = "simulate/"
	ceilingIDPrefix       = "ceiling/"
	startCeilingIDPrefix  = "ceiling-start/"
)

// JoinWorkflowID names the workflow that joins an event id: join/<id>, or the join shard
// the id hashes to when there are shards (shards > 0).
func JoinWorkflowID(eventID string, shards int) string {
	if shards <= 0 {
		return joinEventIDPrefix + eventID
	}
	return JoinShardID(shardOf(eventID, shards))
}

// JoinShardID names join shard n: join-shard/<n>.
func JoinShardID(n int) string { return joinShardIDPrefix + strconv.Itoa(n) }

// TravelerWorkflowID names the workflow that follows a traveler: traveler/<id>, or the
// traveler shard the id hashes to when there are shards (shards > 0).
func TravelerWorkflowID(travelerID string, shards int) string {
	if shards <= 0 {
		return travelerIDPrefix + travelerID
	}
	return TravelerShardID(shardOf(travelerID, shards))
}

// TravelerShardID names traveler shard n: traveler-shard/<n>.
func TravelerShardID(n int) string { return travelerShardIDPrefix + strconv.Itoa(n) }

// WindowWorkflowID names the workflow that aggregates a key of a window pipeline:
// window/<pipeline>/<key>, or the pipeline's shard the key hashes to when there are shards
// (shards > 0). A pipeline's global key keeps a workflow of its own.
func WindowWorkflowID(pipeline, key string, shards int) string {
	if shards <= 0 || key == pipelines.GlobalKey {
		return windowIDPrefix + pipeline + "/" + key
	}
	return WindowShardID(pipeline, shardOf(key, shards))
}

// WindowShardID names a window pipeline's shard n: window/<pipeline>/shard-<n>.
func WindowShardID(pipeline string, n int) string {
	return windowIDPrefix + pipeline + "/shard-" + strconv.Itoa(n)
}

// SimulationWorkflowID names a simulation run of a pipeline: simulate/<pipeline>/<run>.
func SimulationWorkflowID(pipeline, run string) string {
	return simulationIDPrefix + pipeline + "/" + run
}

// CeilingWorkflowID names the bench's n-th ceiling probe: ceiling/<n>.
func CeilingWorkflowID(n int) string { return ceilingIDPrefix + strconv.Itoa(n) }

// StartCeilingWorkflowID names the bench's n-th probe of eager starts: ceiling-start/<n>.
func StartCeilingWorkflowID(n int) string { return startCeilingIDPrefix + strconv.Itoa(n) }

// shardOf hashes a key to one of n shards (FNV-1a). Changing it would move keys between
// running shards.
func shardOf(key string, n int) int {
	h := fnv.New32a()
	_, _ = h.Write([]byte(key))
	return int(h.Sum32() % uint32(n))
}
