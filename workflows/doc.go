// Package workflows holds Tributary's Temporal workflows. Every function here is replayed,
// so it uses only the workflow package's clock, timers, channels and selectors, iterates
// maps in sorted key order, and reaches the world only through activities.
//
// The workflows of the pipelines (JoinWorkflow, TravelerWorkflow, WindowWorkflow) take and
// answer only public types (schemas, window, travel). SimulateJoinWorkflow is different on
// purpose: it is the starter's tool for sending a simulation and collecting its report,
// not a contract, so its parameters and report are the internal joinsim types.
package workflows
