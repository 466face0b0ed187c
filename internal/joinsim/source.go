package joinsim

import (
	"encoding/json"

	"github.com/tributary-dev/tributary/schemas"
)

// Source is a run's input: a fixed number of events, each computed on demand so that any
// chunk of a run can be produced (or produced again) alone.
type Source interface {
	Len() int
	Event(n int) Event
}

// Len implements Source.
func (p Plan) Len() int { return p.Events }

// Event implements Source.
func (p Plan) Event(n int) Event { return p.Generate(n) }

// FileSource sends the rows of three files: each distinct id is an event, and a topic whose
// file lacks the id is missing for it.
type FileSource struct {
	runID string
	ids   []string
	rows  []map[string]json.RawMessage
}

// NewFileSource indexes a file set by id, in order of first appearance.
func NewFileSource(runID string, fs FileSet) *FileSource {
	s := &FileSource{runID: runID}
	index := map[string]int{}
	for i, topic := range schemas.JoinTopics {
		for _, r := range fs.Rows[i] {
			n, ok := index[r.ID]
			if !ok {
				n = len(s.ids)
				index[r.ID] = n
				s.ids = append(s.ids, r.ID)
				s.rows = append(s.rows, map[string]json.RawMessage{})
			}
			s.rows[n][topic] = r.Fields
		}
	}
	return s
}

// Len implements Source.
func (s *FileSource) Len() int { return len(s.ids) }

// Event implements Source.
func (s *FileSource) Event(n int) Event {
	return Event{ID: s.runID + "-" + s.ids[n], Rows: s.rows[n]}
}
