package api

import (
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"time"

	"github.com/tributary-dev/tributary/schemas"
	"github.com/tributary-dev/tributary/workflows"
)

// delayBucketsMs are the ack delay histogram's upper bounds, in milliseconds.
var delayBucketsMs = []float64{5, 10, 20, 50, 100, 200, 500, 1000, 2000, 5000, 10000, 30000, 60000}

// joinSummary is GET /api/join/summary?minutes=: what the join did over a recent interval.
type joinSummary struct {
	Since        time.Time `json:"since"`
	Complete     int64     `json:"complete"`
	Incomplete   int64     `json:"incomplete"`
	Duplicates   int64     `json:"duplicates"`
	Late         int64     `json:"late"`
	DeadLettered int64     `json:"dead_lettered"`
	Delay        delays    `json:"delay"`
}

type delays struct {
	Count   int       `json:"count"`
	P50Ms   float64   `json:"p50_ms"`
	P90Ms   float64   `json:"p90_ms"`
	P99Ms   float64   `json:"p99_ms"`
	Buckets []bucket  `json:"buckets"`
	values  []float64 // sorted
}

type bucket struct {
	// LeMs is the bucket's upper bound; the last bucket has none (0) and holds the rest.
	LeMs  float64 `json:"le_ms"`
	Count int     `json:"count"`
}

// summarize sorts ms and fills the quantiles and the histogram.
func summarize(ms []float64) delays {
	slices.Sort(ms)
	d := delays{Count: len(ms), values: ms}
	q := func(p float64) float64 {
		if len(ms) == 0 {
			return 0
		}
		return ms[min(len(ms)-1, int(p*float64(len(ms))))]
	}
	d.P50Ms, d.P90Ms, d.P99Ms = q(0.5), q(0.9), q(0.99)
	i := 0
	for _, le := range delayBucketsMs {
		n := 0
		for i < len(ms) && ms[i] <= le {
			i++
			n++
		}
		d.Buckets = append(d.Buckets, bucket{LeMs: le, Count: n})
	}
	d.Buckets = append(d.Buckets, bucket{Count: len(ms) - i})
	return d
}

// minutesParam reads ?minutes= (1 to 1440, def when absent).
func minutesParam(r *http.Request, def int) (int, error) {
	v := r.URL.Query().Get("minutes")
	if v == "" {
		return def, nil
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 1 || n > 1440 {
		return 0, fmt.Errorf("minutes %q: want 1 to 1440", v)
	}
	return n, nil
}

func (s *Server) joinSummary(w http.ResponseWriter, r *http.Request) {
	minutes, err := minutesParam(r, 15)
	if err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	since := s.now().UTC().Add(-time.Duration(minutes) * time.Minute)
	out := joinSummary{Since: since}
	db := s.DB.WithContext(r.Context())
	var events []schemas.JoinedEvent
	if err := db.Select("status, duplicates, last_at, stored_at").Where("stored_at > ?", since).Limit(500000).Find(&events).Error; err != nil {
		s.fail(w, fmt.Errorf("read joined events: %w", err))
		return
	}
	ms := make([]float64, 0, len(events))
	for _, e := range events {
		switch e.Status {
		case schemas.JoinComplete:
			out.Complete++
		default:
			out.Incomplete++
		}
		out.Duplicates += int64(e.Duplicates)
		ms = append(ms, float64(e.StoredAt.Sub(e.LastAt).Microseconds())/1000)
	}
	out.Delay = summarize(ms)
	err = errors.Join(
		db.Model(&schemas.LateRecord{}).Where("pipeline = ? AND at > ?", schemas.PipelineJoin, since).Count(&out.Late).Error,
		db.Model(&schemas.DeadLetter{}).Where("pipeline = ? AND at > ?", schemas.PipelineJoin, since).Count(&out.DeadLettered).Error)
	if err != nil {
		s.fail(w, fmt.Errorf("count late and dead-lettered join rows: %w", err))
		return
	}
	writeJSON(w, http.StatusOK, out)
}

// joinAcks is GET /api/join/acks?limit=: the newest acks.
func (s *Server) joinAcks(w http.ResponseWriter, r *http.Request) {
	limit, err := limitParam(r, 20)
	if err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	var rows []schemas.JoinedEvent
	if err := s.DB.WithContext(r.Context()).Order("stored_at DESC, event_id").Limit(limit).Find(&rows).Error; err != nil {
		s.fail(w, fmt.Errorf("read acks: %w", err))
		return
	}
	out := make([]ackView, len(rows))
	for i, row := range rows {
		out[i] = viewOfAck(row)
	}
	writeJSON(w, http.StatusOK, map[string]any{"acks": out})
}

// arrival is one row of an event as it was stored.
type arrival struct {
	Topic     string    `json:"topic"`
	CreatedAt time.Time `json:"created_at"`
	Partition int32     `json:"partition"`
	Offset    int64     `json:"offset"`
	Fields    string    `json:"fields"`
}

// joinEvent is GET /api/join/events/{id}: an event's rows, status and ack, with a link to
// its workflow in the Temporal UI.
func (s *Server) joinEvent(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	if err := checkID(id); err != nil {
		writeError(w, http.StatusBadRequest, "event "+err.Error())
		return
	}
	db := s.DB.WithContext(r.Context())
	out := struct {
		EventID    string    `json:"event_id"`
		Status     string    `json:"status"`
		Arrivals   []arrival `json:"arrivals"`
		Ack        *ackView  `json:"ack,omitempty"`
		Late       int64     `json:"late"`
		WorkflowID string    `json:"workflow_id"`
		TemporalUI string    `json:"temporal_ui,omitempty"`
	}{EventID: id, Status: "pending", Arrivals: []arrival{}, WorkflowID: workflows.JoinWorkflowID(id, s.JoinShards)}
	for _, topic := range schemas.JoinTopics {
		var row schemas.DataRow
		q := db.Table(schemas.JoinTables[topic]).Where("event_id = ?", id).Limit(1).Find(&row)
		if q.Error != nil {
			s.fail(w, fmt.Errorf("read %s rows: %w", topic, q.Error))
			return
		}
		if q.RowsAffected > 0 {
			out.Arrivals = append(out.Arrivals, arrival{Topic: topic, CreatedAt: row.CreatedAt.UTC(), Partition: row.Partition, Offset: row.Offset, Fields: row.Fields})
		}
	}
	var ev schemas.JoinedEvent
	q := db.Where("event_id = ?", id).Limit(1).Find(&ev)
	if q.Error != nil {
		s.fail(w, fmt.Errorf("read event %s: %w", id, q.Error))
		return
	}
	if q.RowsAffected > 0 {
		a := viewOfAck(ev)
		out.Ack, out.Status = &a, ev.Status
	}
	if err := db.Model(&schemas.LateRecord{}).Where("pipeline = ? AND key = ?", schemas.PipelineJoin, id).Count(&out.Late).Error; err != nil {
		s.fail(w, fmt.Errorf("count late rows of %s: %w", id, err))
		return
	}
	if q.RowsAffected == 0 && len(out.Arrivals) == 0 && out.Late == 0 {
		writeError(w, http.StatusNotFound, fmt.Sprintf("event %q: nothing stored yet (an event is stored when it is acked)", id))
		return
	}
	if s.TemporalUI != "" {
		out.TemporalUI = s.TemporalUI + "/namespaces/" + url.PathEscape(s.Namespace) + "/workflows/" + url.PathEscape(out.WorkflowID)
	}
	writeJSON(w, http.StatusOK, out)
}

// joinRoutes adds the join's endpoints.
func (s *Server) joinRoutes(mux *http.ServeMux) {
	mux.HandleFunc("GET /api/join/summary", s.joinSummary)
	mux.HandleFunc("GET /api/join/acks", s.joinAcks)
	mux.HandleFunc("GET /api/join/events/{id}", s.joinEvent)
}
