// Package workflows holds Tributary's Temporal workflows. Every function here is replayed,
// so it uses only the workflow package's clock, timers, channels and selectors, iterates
// maps in sorted key order, and reaches the world only through activities.
package workflows
