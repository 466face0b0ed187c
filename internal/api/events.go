package api

import (
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"time"

	"github.com/tributary-dev/tributary/internal/query"
	"github.com/tributary-dev/tributary/schemas"
)

// overlap is how far back each poll of the live feed looks past its cursor: a window's
// closed_at is set before its row commits, so a row may appear with a slightly older time.
const overlap = 10 * time.Second

// events is GET /api/events: server-sent events, one "window" event per window row as it
// closes (pipeline, key, size, start, aggregates), and a "ping" comment every poll.
func (s *Server) events(w http.ResponseWriter, r *http.Request) {
	flusher, ok := w.(http.Flusher)
	if !ok {
		writeError(w, http.StatusInternalServerError, "streaming unsupported")
		return
	}
	pipeline := r.URL.Query().Get("pipeline")
	w.Header().Set("Content-Type", "text/event-stream")
	w.Header().Set("Cache-Control", "no-cache")
	w.Header().Set("Connection", "keep-alive")
	w.WriteHeader(http.StatusOK)
	fmt.Fprint(w, "retry: 2000\n\n")
	flusher.Flush()
	poll := s.Poll
	if poll <= 0 {
		poll = time.Second
	}
	cursor := s.now().UTC()
	sent := map[string]time.Time{}
	tick := time.NewTicker(poll)
	defer tick.Stop()
	for {
		select {
		case <-r.Context().Done():
			return
		case <-tick.C:
		}
		polled := s.now().UTC()
		rows, err := query.Windows(r.Context(), s.DB, query.WindowFilter{Pipeline: pipeline, ClosedAfter: cursor.Add(-overlap), Limit: 5000})
		if err != nil {
			s.Log.Warn("live feed", "err", err)
			continue
		}
		for i := len(rows) - 1; i >= 0; i-- {
			row := rows[i]
			id := schemas.WindowKey(row.Pipeline+"/"+row.Key, row.SizeSeconds, row.WindowStart)
			if _, done := sent[id]; done {
				continue
			}
			sent[id] = row.ClosedAt
			if row.ClosedAt.After(cursor) && !row.ClosedAt.After(polled) {
				cursor = row.ClosedAt // never past this poll: a clock ahead must not hide later rows
			}
			b, _ := json.Marshal(viewOfWindow(row))
			fmt.Fprintf(w, "event: window\ndata: %s\n\n", b)
		}
		for id, at := range sent {
			if at.Before(cursor.Add(-2 * overlap)) {
				delete(sent, id)
			}
		}
		fmt.Fprint(w, ": ping\n\n")
		flusher.Flush()
	}
}

func listen(addr string) (net.Listener, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("api: listen on %s (choose another with -api): %w", addr, err)
	}
	return ln, nil
}
