package workflows

import (
	"fmt"

	"go.temporal.io/sdk/workflow"
)

// Pins names the versions of the workflow code's changes a run takes without asking
// workflow.GetVersion.
//
// GetVersion, asked for the first time in a run, records a marker and upserts the
// TemporalChangeVersion search attribute: two history events and a visibility write per
// change id, in every run, long after every run of the older code has ended. A per-event
// join asks for two, so four of its eleven history events and two of its four visibility
// writes were that. A run started with Pins set takes the versions of that set instead: its
// input, which its history keeps in WorkflowExecutionStarted, decides the branch, so a
// replay takes the same one. Runs started without (every run recorded before, and a run of
// a bridge older than its worker) ask GetVersion as before.
//
// A set is frozen once released. A change made after it (unpinned) is asked with GetVersion
// by every run, pinned or not, until a new set includes it; a new version of a change in a
// released set needs a new set as well, or pinned runs would replay into the new branch.
type Pins int

// CurrentPins is the set the bridges start runs with, and runs continue as new with. Set 2
// also marks the per-event join runs a bridge may start with their first rows in their
// input (JoinParams.First), which a worker of set 1 would not read: it refuses the set
// instead, and leaves the run to a worker that knows it.
const CurrentPins Pins = 2

// pinSets are the released sets; the one of CurrentPins holds the newest version of every
// change it names.
var pinSets = map[Pins]map[string]workflow.Version{
	1: {
		versionInputWatermark:    1,
		versionWatermarkNextTask: 2,
		versionStageWatermark:    1,
		versionRecordedWrites:    1,
		versionFlushActivity:     1,
		versionPruneSources:      1,
	},
	2: {
		versionInputWatermark:    1,
		versionWatermarkNextTask: 2,
		versionStageWatermark:    1,
		versionRecordedWrites:    1,
		versionFlushActivity:     1,
		versionPruneSources:      1,
		versionBinaryState:       1,
	},
}

// unpinned are the changes made since CurrentPins was released, each with its newest
// version (none yet).
var unpinned = map[string]workflow.Version{}

// newest is the newest version of a change, which GetVersion gives a new run.
func newest(changeID string) (workflow.Version, bool) {
	if v, ok := unpinned[changeID]; ok {
		return v, true
	}
	v, ok := pinSets[CurrentPins][changeID]
	return v, ok
}

type pinsKey struct{}

// withPins makes a run's pins known to version, for the rest of the run.
func withPins(ctx workflow.Context, p Pins) workflow.Context {
	return workflow.WithValue(ctx, pinsKey{}, p)
}

// version is the version of a change this run takes: the pinned one in a run started with
// pins that include it, GetVersion's otherwise. A set this code does not know (a bridge
// newer than its worker) fails the workflow task, as GetVersion does for a version it
// does not support, so that a worker that knows it can run it.
func version(ctx workflow.Context, changeID string) workflow.Version {
	top, ok := newest(changeID)
	if !ok {
		panic(fmt.Sprintf("workflow change %q is in no pinned set and not unpinned", changeID))
	}
	p, _ := ctx.Value(pinsKey{}).(Pins)
	if p == 0 {
		return workflow.GetVersion(ctx, changeID, workflow.DefaultVersion, top)
	}
	set, ok := pinSets[p]
	if !ok {
		panic(fmt.Sprintf("run started with pinned versions %d; this worker knows sets up to %d", p, CurrentPins))
	}
	if v, ok := set[changeID]; ok {
		return v
	}
	return workflow.GetVersion(ctx, changeID, workflow.DefaultVersion, top)
}
