package workflows

// Temporal names: the task queue, workflow types, signals, updates and queries. Mains, the
// bridge and tests take them from here; workflow ids are spelled in ids.go.
const (
	// TaskQueue is where every Tributary workflow and activity runs.
	TaskQueue = "tributary"

	// WorkflowJoin is JoinWorkflow's type name.
	WorkflowJoin = "JoinWorkflow"
	// WorkflowSimulateJoin is SimulateJoinWorkflow's type name.
	WorkflowSimulateJoin = "SimulateJoinWorkflow"
	// WorkflowWindow is WindowWorkflow's type name.
	WorkflowWindow = "WindowWorkflow"
	// WorkflowTraveler is TravelerWorkflow's type name.
	WorkflowTraveler = "TravelerWorkflow"
	// WorkflowSignalCeiling is SignalCeilingWorkflow's type name.
	WorkflowSignalCeiling = "SignalCeilingWorkflow"
	// WorkflowStartCeiling is StartCeilingWorkflow's type name.
	WorkflowStartCeiling = "StartCeilingWorkflow"

	// SignalJoinArrivals carries a batch of join rows to a JoinWorkflow.
	SignalJoinArrivals = "join-arrivals"
	// SignalTravelerReadings carries a batch of sensor readings to a TravelerWorkflow.
	SignalTravelerReadings = "traveler-readings"
	// UpdateJoinArrivals carries a batch of join rows to a sharded JoinWorkflow, in JSON;
	// bridges before UpdateJoinRows sent it.
	UpdateJoinArrivals = "join-arrivals"
	// UpdateJoinRows carries a batch of join rows to a sharded JoinWorkflow, packed
	// (schemas.PackJoinSignal).
	UpdateJoinRows = "join-rows"
	// UpdateWindowBatch carries a batch of window partials to a WindowWorkflow.
	UpdateWindowBatch = "window-batch"

	// QueryStatus answers a workflow's status (JoinStatus, WindowStatus, TravelerStatus).
	QueryStatus = "status"
	// QueryCurrent answers a traveler's live visits (TravelerCurrent).
	QueryCurrent = "current"
	// QueryProgress answers a simulation's progress.
	QueryProgress = "progress"
	// QueryOpen answers a window workflow's open windows of a key (all keys when empty).
	QueryOpen = "open"
)
