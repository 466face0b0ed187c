package workflows

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/mock"
	"github.com/stretchr/testify/require"
	"go.temporal.io/sdk/testsuite"

	"github.com/tributary-dev/tributary/activities"
)

// testInput is the input watermark a test environment's InputWatermark answers: the
// environment's clock (an input read to its end) unless the test holds it back.
type testInput struct {
	env   *testsuite.TestWorkflowEnvironment
	mu    sync.Mutex
	held  bool
	at    time.Time
	reads int
	// stage, if not zero, holds the stage watermark there: a traveler workflow holds
	// readings from then on unflushed.
	stage      time.Time
	stageReads int
	// onRead, if set, runs once at the next read, before it answers: what a bridge
	// delivered just before the watermark it then recorded.
	onRead func()
}

// inputs holds each test environment's input, so a test reaches the one its environment's
// constructor made.
var inputs sync.Map

// followInput makes env's InputWatermark (and StageWatermark) answer from its testInput, made on the first call;
// the input follows the clock.
func followInput(env *testsuite.TestWorkflowEnvironment) *testInput {
	if in, ok := inputs.Load(env); ok {
		return in.(*testInput)
	}
	in := &testInput{env: env}
	inputs.Store(env, in)
	var a *activities.Activities
	env.OnActivity(a.InputWatermark, mock.Anything, mock.Anything).Return(in.read)
	// The stage watermark is the input's unless a test holds the stage back.
	env.OnActivity(a.StageWatermark, mock.Anything, mock.Anything).Return(in.readStage)
	return in
}

// queryAt asks the workflow query after d of test time and returns where its answer lands,
// for the test to check once the run is over.
func queryAt[T any](t *testing.T, env *testsuite.TestWorkflowEnvironment, d time.Duration, query string, args ...any) *T {
	t.Helper()
	into := new(T)
	env.RegisterDelayedCallback(func() {
		v, err := env.QueryWorkflow(query, args...)
		require.NoError(t, err)
		require.NoError(t, v.Get(into))
	}, d)
	return into
}

// hold stops the input at t, as a bridge that is down would.
func (in *testInput) hold(t time.Time) {
	in.mu.Lock()
	defer in.mu.Unlock()
	in.held, in.at = true, t
}

// release lets the input follow the clock again, as a bridge that caught up would.
func (in *testInput) release() {
	in.mu.Lock()
	defer in.mu.Unlock()
	in.held = false
}

// deliverAtNextRead runs f at the next read, before it answers.
func (in *testInput) deliverAtNextRead(f func()) {
	in.mu.Lock()
	defer in.mu.Unlock()
	in.onRead = f
}

// holdStage holds the stage watermark at t (zero: it follows the input again).
func (in *testInput) holdStage(t time.Time) {
	in.mu.Lock()
	defer in.mu.Unlock()
	in.stage = t
}

// readStage answers StageWatermark: the input watermark, held back by holdStage.
func (in *testInput) readStage(ctx context.Context, pipeline string) (time.Time, error) {
	w, err := in.read(ctx, pipeline)
	in.mu.Lock()
	defer in.mu.Unlock()
	in.stageReads++
	if !in.stage.IsZero() && in.stage.Before(w) {
		w = in.stage
	}
	return w, err
}

func (in *testInput) read(context.Context, string) (time.Time, error) {
	in.mu.Lock()
	f := in.onRead
	in.onRead = nil
	in.mu.Unlock()
	if f != nil {
		f()
	}
	in.mu.Lock()
	defer in.mu.Unlock()
	in.reads++
	if in.held {
		return in.at, nil
	}
	return in.env.Now(), nil
}
