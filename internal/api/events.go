package api

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"strconv"
	"strings"
	"time"

	"go.temporal.io/api/serviceerror"

	"github.com/tributary-dev/tributary/internal/query"
	"github.com/tributary-dev/tributary/pipelines"
	"github.com/tributary-dev/tributary/schemas"
	"github.com/tributary-dev/tributary/workflows"
)

const (
	// overlap is how far back each poll of the live feed looks past its cursor: a row's
	// time is set before it commits, so it may appear with a slightly older time.
	overlap = 10 * time.Second
	// Resume is how far back a reconnecting client's Last-Event-ID is honoured.
	Resume = 10 * time.Minute
	// MaxWatch bounds the keys one stream follows the open windows of.
	MaxWatch = 20
)

// ackView is a join event as the live feed shows its ack.
type ackView struct {
	EventID    string    `json:"event_id"`
	Status     string    `json:"status"`
	Topics     []string  `json:"topics"`
	Duplicates int       `json:"duplicates"`
	AckedAt    time.Time `json:"acked_at"`
	// DelayMs is the ack's creation time minus its latest row's, the original's measure.
	DelayMs float64 `json:"delay_ms"`
}

func viewOfAck(j schemas.JoinedEvent) ackView {
	return ackView{EventID: j.EventID, Status: j.Status, Topics: strings.Split(j.Topics, ","), Duplicates: j.Duplicates,
		AckedAt: j.StoredAt.UTC(), DelayMs: float64(j.StoredAt.Sub(j.LastAt).Microseconds()) / 1000}
}

// events is GET /api/events?pipeline=&watch=: server-sent events.
//
//   - "window": a window row as it closes (likes, transactions, sensors);
//   - "ack": a join event as it is acked;
//   - "open": the open windows of a watched key (watch=k1,k2, at most MaxWatch, with a
//     window pipeline), sent when they change, each key asked at most once per poll.
//
// Window and ack events carry ids (their times in Unix ms): a client that reconnects with
// Last-Event-ID gets everything closed or acked since, if that is within Resume; events
// near the id may come again, and carry keys to recognise them by. pipeline=join sends
// acks only; another pipeline its windows only; none, both.
func (s *Server) events(w http.ResponseWriter, r *http.Request) {
	flusher, ok := w.(http.Flusher)
	if !ok {
		writeError(w, http.StatusInternalServerError, "streaming unsupported")
		return
	}
	q := r.URL.Query()
	pipeline := q.Get("pipeline")
	var spec pipelines.Spec
	if pipeline != "" && pipeline != schemas.PipelineJoin {
		if spec, ok = pipelines.ByName(pipeline); !ok {
			writeError(w, http.StatusBadRequest, fmt.Sprintf("pipeline %q: want join, %s, %s or %s", pipeline, schemas.PipelineLikes, schemas.PipelineTransactions, schemas.PipelineSensors))
			return
		}
	}
	var watch []string
	if v := q.Get("watch"); v != "" {
		if spec.Name == "" {
			writeError(w, http.StatusBadRequest, "watch needs a window pipeline (pipeline=likes, transactions or sensors)")
			return
		}
		watch = strings.Split(v, ",")
		if len(watch) > MaxWatch {
			writeError(w, http.StatusBadRequest, fmt.Sprintf("watch: %d keys, at most %d", len(watch), MaxWatch))
			return
		}
		for _, k := range watch {
			if err := checkID(k); err != nil {
				writeError(w, http.StatusBadRequest, "watch key "+err.Error())
				return
			}
		}
	}
	cursor := s.now().UTC()
	// A new client gets what happens from now on; one resuming gets what it may have
	// missed, the overlap before its last id included (so some may come again).
	floor := cursor
	if id := r.Header.Get("Last-Event-ID"); id != "" {
		ms, err := strconv.ParseInt(id, 10, 64)
		if err != nil {
			writeError(w, http.StatusBadRequest, fmt.Sprintf("Last-Event-ID %q: want an id this feed sent", id))
			return
		}
		if at := time.UnixMilli(ms).UTC(); cursor.Sub(at) <= Resume {
			cursor, floor = at, at.Add(-overlap)
		}
	}
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
	feed := &feed{s: s, w: w, floor: floor, windows: cursor, acks: cursor, sent: map[string]time.Time{}, lastOpen: map[string]string{}}
	tick := time.NewTicker(poll)
	defer tick.Stop()
	for {
		if pipeline != schemas.PipelineJoin {
			feed.closedWindows(r.Context(), spec.Name)
		}
		if pipeline == "" || pipeline == schemas.PipelineJoin {
			feed.newAcks(r.Context())
		}
		for _, k := range watch {
			feed.openWindows(r.Context(), spec.Name, k)
		}
		fmt.Fprint(w, ": ping\n\n")
		flusher.Flush()
		select {
		case <-r.Context().Done():
			return
		case <-tick.C:
		}
	}
}

// feed is one stream's place in what it sends.
type feed struct {
	s *Server
	w http.ResponseWriter
	// floor: rows of this time or older are not sent.
	floor time.Time
	// windows and acks are the newest times sent of each.
	windows, acks time.Time
	// sent are the ids sent within the overlap, by their time, so a row seen twice is sent once.
	sent     map[string]time.Time
	lastOpen map[string]string
}

// send writes one event; an id makes it resumable.
func (f *feed) send(event, id string, v any) {
	b, _ := json.Marshal(v)
	if id != "" {
		fmt.Fprintf(f.w, "id: %s\n", id)
	}
	fmt.Fprintf(f.w, "event: %s\ndata: %s\n\n", event, b)
}

// fresh says whether a row with this identity and time is new to the stream, and moves
// the cursor to it (never past polled: a clock ahead must not hide later rows).
func (f *feed) fresh(id string, at time.Time, cursor *time.Time, polled time.Time) bool {
	if _, done := f.sent[id]; done || !at.After(f.floor) {
		return false
	}
	f.sent[id] = at
	if at.After(*cursor) && !at.After(polled) {
		*cursor = at
	}
	return true
}

// forget drops the ids of a kind (their prefix) sent well before that kind's cursor: a
// row that old is not read again. Each kind by its own cursor, or a stream of acks only
// would keep every ack it sent.
func (f *feed) forget(prefix string, cursor time.Time) {
	for id, at := range f.sent {
		if strings.HasPrefix(id, prefix) && at.Before(cursor.Add(-2*overlap)) {
			delete(f.sent, id)
		}
	}
}

func (f *feed) closedWindows(ctx context.Context, pipeline string) {
	polled := f.s.now().UTC()
	rows, err := query.Windows(ctx, f.s.DB, query.WindowFilter{Pipeline: pipeline, ClosedAfter: f.windows.Add(-overlap), Limit: 5000})
	if err != nil {
		f.s.Log.Warn("live feed: windows", "err", err)
		return
	}
	for i := len(rows) - 1; i >= 0; i-- {
		row := rows[i]
		if f.fresh("w/"+schemas.WindowKey(row.Pipeline+"/"+row.Key, row.SizeSeconds, row.WindowStart), row.ClosedAt, &f.windows, polled) {
			f.send("window", strconv.FormatInt(row.ClosedAt.UnixMilli(), 10), viewOfWindow(row))
		}
	}
	f.forget("w/", f.windows)
}

func (f *feed) newAcks(ctx context.Context) {
	polled := f.s.now().UTC()
	rows, err := query.Acks(ctx, f.s.DB, f.acks.Add(-overlap), 5000)
	if err != nil {
		f.s.Log.Warn("live feed: acks", "err", err)
		return
	}
	for _, row := range rows {
		if f.fresh("a/"+row.EventID, row.StoredAt, &f.acks, polled) {
			f.send("ack", strconv.FormatInt(row.StoredAt.UnixMilli(), 10), viewOfAck(row))
		}
	}
	f.forget("a/", f.acks)
}

// openWindows sends a watched key's open windows when they differ from what was sent.
func (f *feed) openWindows(ctx context.Context, pipeline, key string) {
	if f.s.Temporal == nil {
		return
	}
	open, err := f.s.queryOpen(ctx, pipeline, key)
	if err != nil {
		f.s.Log.Warn("live feed: open windows", "pipeline", pipeline, "key", key, "err", err)
		return
	}
	views := viewsOfOpen(pipeline, open)
	b, _ := json.Marshal(views)
	if f.lastOpen[key] == string(b) {
		return
	}
	f.lastOpen[key] = string(b)
	f.send("open", "", map[string]any{"pipeline": pipeline, "key": key, "windows": views})
}

// queryOpen asks the workflow of a pipeline's key for its open windows; a key with no
// workflow has none.
func (s *Server) queryOpen(ctx context.Context, pipeline, key string) ([]workflows.OpenWindow, error) {
	v, err := s.Temporal.QueryWorkflow(ctx, workflows.WindowWorkflowID(pipeline, key, s.WindowShards), "", workflows.QueryOpen, key)
	var notFound *serviceerror.NotFound
	switch {
	case errors.As(err, &notFound):
		return nil, nil
	case err != nil:
		return nil, fmt.Errorf("query %s windows of %s: %w", pipeline, key, err)
	}
	var open []workflows.OpenWindow
	if err := v.Get(&open); err != nil {
		return nil, err
	}
	return open, nil
}

// viewsOfOpen shows a pipeline's open windows as the API does.
func viewsOfOpen(pipeline string, open []workflows.OpenWindow) []openWindow {
	out := make([]openWindow, 0, len(open))
	for _, o := range open {
		p := o.Partial
		size := time.Duration(o.SizeSeconds) * time.Second
		out = append(out, openWindow{
			windowView: windowView{Pipeline: pipeline, Key: o.Key, SizeSeconds: o.SizeSeconds, Start: o.Start.UTC(),
				Count: p.Count, Sum: p.Sum, Min: p.Min, Max: p.Max, Avg: p.Avg()},
			End: o.Start.Add(size).UTC(), CloseAt: o.CloseAt.UTC(), Open: true,
		})
	}
	return out
}

func listen(addr string) (net.Listener, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("api: listen on %s (choose another with -api): %w", addr, err)
	}
	return ln, nil
}
