package workflows

import (
	"reflect"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/tributary-dev/tributary/schemas"
)

// TestPackStateKeepsEveryMember: both forms give back the state they were given, every
// member of it, and the binary one tells itself apart from the JSON one that earlier runs
// carry.
func TestPackStateKeepsEveryMember(t *testing.T) {
	// The binary form names each member (appendState, readState): a member added to one of
	// these types must be added there too, and counted here.
	for typ, members := range map[reflect.Type]int{
		reflect.TypeFor[JoinState](): 6, reflect.TypeFor[JoinStats](): 6,
		reflect.TypeFor[PendingJoin](): 3, reflect.TypeFor[schemas.JoinArrival](): 6,
	} {
		require.Equal(t, members, typ.NumField(), "%s has members appendState does not write", typ)
	}
	east := time.FixedZone("", 2*3600)
	at := time.Date(2026, 11, 25, 4, 0, 0, 123456789, time.UTC)
	s := &JoinState{
		Pending: map[string]*PendingJoin{
			"e2": {Rows: map[string]schemas.JoinArrival{
				schemas.TopicJoin1: {EventID: "e2", Topic: schemas.TopicJoin1, Partition: 3, Offset: 1 << 40, CreatedAt: at.In(east), Fields: []byte(`{"a":1}`)},
				schemas.TopicJoin3: {EventID: "e2", Topic: schemas.TopicJoin3, Partition: 0, Offset: 0, CreatedAt: at, Fields: []byte(`{}`)},
			}, Deadline: at.Add(time.Minute), Duplicates: 2},
			"e1": {Rows: map[string]schemas.JoinArrival{
				schemas.TopicJoin2: {EventID: "e1", Topic: schemas.TopicJoin2, Partition: 1, Offset: 7, CreatedAt: at.Add(-time.Hour), Fields: []byte(`{"b":null}`)},
			}, Deadline: at},
		},
		Queue:   []string{"gone", "e1", "e2"},
		Applied: map[string]int64{schemas.TopicPartition(schemas.TopicJoin1, 3): 1 << 40, schemas.TopicPartition(schemas.TopicJoin2, 1): 7},
		Done:    []string{"d1", "d2"},
		Input:   at.Add(-time.Second),
		Stats:   JoinStats{Arrivals: 1, Redelivered: 2, Duplicates: 3, Late: 4, Complete: 5, Incomplete: 6},
	}
	for _, asBinary := range []bool{false, true} {
		b, err := packState(s, asBinary)
		require.NoError(t, err)
		require.Equal(t, asBinary, b[0] == statePackVersion, "the first byte tells the forms apart")
		got, err := unpackState(b)
		require.NoError(t, err)
		require.Equal(t, s, got, "binary %v", asBinary)
		again, err := packState(got, asBinary)
		require.NoError(t, err)
		require.Equal(t, b, again, "one state, one encoding (binary %v)", asBinary)
	}
	b, err := packState(s, true)
	require.NoError(t, err)
	_, err = unpackState(b[:len(b)/2])
	require.Error(t, err, "a cut state is refused")
}
