package workflows

// Temporal names: the task queue, workflow types, signals, queries and id prefixes.
// Mains, the bridge and tests take them from here.
const (
	// TaskQueue is where every Tributary workflow and activity runs.
	TaskQueue = "tributary"

	// WorkflowJoin is JoinWorkflow's type name.
	WorkflowJoin = "JoinWorkflow"
	// WorkflowSimulateJoin is SimulateJoinWorkflow's type name.
	WorkflowSimulateJoin = "SimulateJoinWorkflow"

	// WorkflowWindow is WindowWorkflow's type name.
	WorkflowWindow = "WindowWorkflow"
	// WindowIDPrefix + pipeline + "/" + key (or "shard-" + n) is a window workflow's id.
	WindowIDPrefix = "window/"

	// WorkflowTraveler is TravelerWorkflow's type name.
	WorkflowTraveler = "TravelerWorkflow"
	// TravelerIDPrefix + traveler id is the workflow id of a per-traveler workflow.
	TravelerIDPrefix = "traveler/"
	// TravelerShardIDPrefix + shard number is the workflow id of a traveler shard.
	TravelerShardIDPrefix = "traveler-shard/"
	// SignalTravelerReadings carries a batch of sensor readings to a TravelerWorkflow.
	SignalTravelerReadings = "traveler-readings"
	// QueryCurrent answers a traveler's live visits (TravelerCurrent).
	QueryCurrent = "current"

	// WorkflowSignalCeiling is SignalCeilingWorkflow's type name.
	WorkflowSignalCeiling = "SignalCeilingWorkflow"
	// CeilingIDPrefix + n is the workflow id of the bench's ceiling probes.
	CeilingIDPrefix = "ceiling/"

	// SignalJoinArrivals carries a batch of join rows to a JoinWorkflow.
	SignalJoinArrivals = "join-arrivals"
	// QueryStatus answers a JoinWorkflow's JoinStatus.
	QueryStatus = "status"
	// QueryProgress answers a simulation's progress.
	QueryProgress = "progress"

	// JoinEventIDPrefix + event id is the workflow id of a per-event join.
	JoinEventIDPrefix = "join/"
	// JoinShardIDPrefix + shard number is the workflow id of a join shard.
	JoinShardIDPrefix = "join-shard/"
	// SimulationIDPrefix + pipeline + "/" + run id is the workflow id of a simulation.
	SimulationIDPrefix = "simulate/"
)
