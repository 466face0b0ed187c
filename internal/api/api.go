// Package api is Tributary's HTTP API and dashboard: sensor metrics, visits and live
// traveler visits, window rows, the likes ingest endpoint, and a server-sent event feed of
// windows as they close. Errors are JSON with a 4xx or 5xx status.
package api

import (
	"context"
	"embed"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/confluentinc/confluent-kafka-go/v2/kafka"
	"go.temporal.io/api/serviceerror"
	"go.temporal.io/sdk/client"
	"gorm.io/gorm"

	"github.com/tributary-dev/tributary/internal/kafkaio"
	"github.com/tributary-dev/tributary/internal/query"
	"github.com/tributary-dev/tributary/internal/serve"
	"github.com/tributary-dev/tributary/pipelines"
	"github.com/tributary-dev/tributary/schemas"
	"github.com/tributary-dev/tributary/travel"
	"github.com/tributary-dev/tributary/workflows"
)

//go:embed static
var static embed.FS

// MaxLikesPerRequest bounds the likes one ingest request may carry.
const MaxLikesPerRequest = 1000

// Producer sends ingested records and returns once the broker has every one of them.
type Producer interface {
	Send(ctx context.Context, msgs ...*kafka.Message) error
}

// Server serves the API. Every field but Temporal and Producer is required; without
// Temporal, live traveler visits answer 503, and without Producer, ingest does.
type Server struct {
	DB       *gorm.DB
	Temporal client.Client
	Producer Producer
	// TravelerShards is how the sensors pipeline keys its workflows (see
	// workflows.TravelerWorkflowID).
	TravelerShards int
	// WindowShards is how the window pipelines key their workflows (see
	// workflows.WindowWorkflowID).
	WindowShards int
	// JoinShards is how the join keys its workflows (see workflows.JoinWorkflowID).
	JoinShards int
	// Namespace and TemporalUI (the web UI's base URL; empty for none) make links to a
	// workflow in the Temporal UI.
	Namespace, TemporalUI string
	Log                   *slog.Logger
	// Poll is how often the live feed looks for newly closed windows (1 s when zero).
	Poll time.Duration
	// Now is the clock of ingested likes (time.Now when nil).
	Now func() time.Time
	// Metrics, if set, serves the process's Prometheus metrics on /metrics.
	Metrics http.Handler
	// Bootstrap is the Kafka cluster, for reading a topic back (verify).
	Bootstrap string

	// base bounds what the server runs beyond a request (the likes simulation).
	base  context.Context
	likes likesSim
}

// Handler routes the API and the dashboard.
func (s *Server) Handler() http.Handler {
	if s.Log == nil {
		s.Log = slog.Default()
	}
	if s.base == nil {
		s.base = context.Background()
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /api/health", func(w http.ResponseWriter, _ *http.Request) { writeJSON(w, http.StatusOK, map[string]bool{"ok": true}) })
	mux.HandleFunc("GET /api/sensors", s.sensors)
	mux.HandleFunc("GET /api/sensors/metrics", s.metrics)
	mux.HandleFunc("GET /api/visits", s.visits)
	mux.HandleFunc("GET /api/travelers/{id}/current", s.current)
	mux.HandleFunc("GET /api/windows", s.windows)
	mux.HandleFunc("GET /api/windows/open", s.openWindows)
	s.joinRoutes(mux)
	s.controlRoutes(mux)
	mux.HandleFunc("GET /api/events", s.events)
	mux.HandleFunc("POST /videos/{id}/likes", s.like)
	if s.Metrics != nil {
		mux.Handle("GET /metrics", s.Metrics)
	}
	mux.HandleFunc("/api/", func(w http.ResponseWriter, r *http.Request) {
		writeError(w, http.StatusNotFound, fmt.Sprintf("no API endpoint %s %s", r.Method, r.URL.Path))
	})
	sub, _ := fs.Sub(static, "static")
	mux.Handle("/", http.FileServerFS(sub))
	return mux
}

// Serve listens on addr until ctx ends; ready, if set, is called once it listens.
func (s *Server) Serve(ctx context.Context, addr string, ready func(addr string)) error {
	s.base = ctx
	defer s.likes.stop()
	ln, err := listen(addr)
	if err != nil {
		return err
	}
	if ready != nil {
		ready(ln.Addr().String())
	}
	if err := serve.Until(ctx, ln, s.Handler()); err != nil {
		return fmt.Errorf("api on %s: %w", addr, err)
	}
	return nil
}

type apiError struct {
	Error string `json:"error"`
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

func writeError(w http.ResponseWriter, status int, msg string) {
	writeJSON(w, status, apiError{Error: msg})
}

// parseTime reads an RFC 3339 time, or a duration before now ("-15m").
func parseTime(v string, now time.Time) (time.Time, error) {
	if d, err := time.ParseDuration(v); err == nil {
		return now.Add(d), nil
	}
	t, err := time.Parse(time.RFC3339, v)
	if err != nil {
		return time.Time{}, fmt.Errorf("%q: want an RFC 3339 time or a duration relative to now such as -15m", v)
	}
	return t, nil
}

func (s *Server) now() time.Time {
	if s.Now != nil {
		return s.Now()
	}
	return time.Now()
}

func (s *Server) sensors(w http.ResponseWriter, r *http.Request) {
	ids, err := query.Sensors(r.Context(), s.DB)
	if err != nil {
		s.fail(w, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string][]string{"sensors": ids, "types": travel.Types})
}

// maxLiveSensorKeys bounds the workflows one live metrics answer asks.
const maxLiveSensorKeys = 200

// openSensorMinutes asks the sensors pipeline's workflows for their open minutes, for every
// sensor the visits name and every traveler type (or those asked for). Without Temporal,
// or when a workflow does not answer, the answer holds what it got.
func (s *Server) openSensorMinutes(ctx context.Context, sensor, typ string) []schemas.WindowResult {
	if s.Temporal == nil {
		return nil
	}
	sensors := []string{sensor}
	if sensor == "" {
		var err error
		if sensors, err = query.Sensors(ctx, s.DB); err != nil {
			s.Log.Warn("live sensor minutes", "err", err)
			return nil
		}
	}
	types := travel.Types
	if typ != "" {
		types = []string{typ}
	}
	var out []schemas.WindowResult
	asked := 0
	for _, sid := range sensors {
		for _, t := range types {
			if asked++; asked > maxLiveSensorKeys {
				return out
			}
			open, err := s.queryOpen(ctx, schemas.PipelineSensors, schemas.SensorKey(sid, t))
			if err != nil {
				s.Log.Warn("live sensor minutes", "sensor", sid, "type", t, "err", err)
				return out
			}
			for _, o := range open {
				p := o.Partial
				out = append(out, schemas.WindowResult{Pipeline: schemas.PipelineSensors, Key: o.Key, SizeSeconds: o.SizeSeconds,
					WindowStart: o.Start, Count: p.Count, Sum: p.Sum, Min: p.Min, Max: p.Max, Avg: p.Avg()})
			}
		}
	}
	return out
}

// metrics is GET /api/sensors/metrics?sensor=&type=&from=&to=&step=&window=; from and to
// default to the last hour, step to a minute, window to the step.
func (s *Server) metrics(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	now := s.now()
	req := query.MetricsRequest{Sensor: q.Get("sensor"), Type: q.Get("type"), From: now.Add(-time.Hour), To: now}
	var errs []error
	for name, dst := range map[string]*time.Time{"from": &req.From, "to": &req.To} {
		if v := q.Get(name); v != "" {
			t, err := parseTime(v, now)
			if err != nil {
				errs = append(errs, fmt.Errorf("%s %w", name, err))
			}
			*dst = t
		}
	}
	for name, dst := range map[string]*time.Duration{"step": &req.Step, "window": &req.Window} {
		if v := q.Get(name); v != "" {
			d, err := time.ParseDuration(v)
			if err != nil {
				errs = append(errs, fmt.Errorf("%s %q: want a duration such as 5m", name, v))
			}
			*dst = d
		}
	}
	if err := errors.Join(errs...); err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	if live := q.Get("live"); live == "1" || live == "true" {
		req.Open = s.openSensorMinutes(r.Context(), req.Sensor, req.Type)
	}
	m, err := query.SensorMetrics(r.Context(), s.DB, req)
	if errors.Is(err, query.ErrInvalid) {
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	if err != nil {
		s.fail(w, err)
		return
	}
	writeJSON(w, http.StatusOK, m)
}

// visitView is a visit as the API shows it.
type visitView struct {
	TravelerID string    `json:"traveler_id"`
	SensorID   string    `json:"sensor_id"`
	Type       string    `json:"type"`
	Entered    time.Time `json:"entered"`
	Left       time.Time `json:"left"`
	Readings   int       `json:"readings"`
	MinSpeed   float64   `json:"min_speed"`
	MaxSpeed   float64   `json:"max_speed"`
	AvgSpeed   float64   `json:"avg_speed"`
}

// viewOfVisit shows a live visit as a stored one would be.
func viewOfVisit(v travel.Visit) visitView {
	return viewOfStored(schemas.Visit{TravelerID: v.TravelerID, SensorID: v.SensorID, Type: v.Type, Entered: v.Entered, Left: v.Left,
		Readings: v.Readings, MinSpeed: v.MinSpeed, MaxSpeed: v.MaxSpeed, AvgSpeed: v.AvgSpeed})
}

func viewOfStored(v schemas.Visit) visitView {
	return visitView{TravelerID: v.TravelerID, SensorID: v.SensorID, Type: v.Type, Entered: v.Entered.UTC(), Left: v.Left.UTC(),
		Readings: v.Readings, MinSpeed: v.MinSpeed, MaxSpeed: v.MaxSpeed, AvgSpeed: v.AvgSpeed}
}

func limitParam(r *http.Request, def int) (int, error) {
	v := r.URL.Query().Get("limit")
	if v == "" {
		return def, nil
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 1 {
		return 0, fmt.Errorf("limit %q: want a positive whole number", v)
	}
	return n, nil
}

func (s *Server) visits(w http.ResponseWriter, r *http.Request) {
	limit, err := limitParam(r, 100)
	if err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	vs, err := query.Visits(r.Context(), s.DB, query.VisitFilter{Traveler: r.URL.Query().Get("traveler"), Sensor: r.URL.Query().Get("sensor"), Limit: limit})
	if err != nil {
		s.fail(w, err)
		return
	}
	out := make([]visitView, len(vs))
	for i, v := range vs {
		out[i] = viewOfStored(v)
	}
	writeJSON(w, http.StatusOK, map[string]any{"visits": out})
}

// current is GET /api/travelers/{id}/current: the traveler's live visits, from its workflow.
func (s *Server) current(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	if err := checkID(id); err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	if s.Temporal == nil {
		writeError(w, http.StatusServiceUnavailable, "no Temporal connection")
		return
	}
	out := struct {
		TravelerID string      `json:"traveler_id"`
		Live       bool        `json:"live"`
		Open       []visitView `json:"open"`
		Pending    int         `json:"pending"`
	}{TravelerID: id, Open: []visitView{}}
	v, err := s.Temporal.QueryWorkflow(r.Context(), workflows.TravelerWorkflowID(id, s.TravelerShards), "", workflows.QueryCurrent, id)
	var notFound *serviceerror.NotFound
	switch {
	case errors.As(err, &notFound):
	case err != nil:
		s.fail(w, fmt.Errorf("query traveler %s: %w", id, err))
		return
	default:
		var cur workflows.TravelerCurrent
		if err := v.Get(&cur); err != nil {
			s.fail(w, err)
			return
		}
		out.Live, out.Pending = cur.Known, cur.Pending
		for _, o := range cur.Open {
			out.Open = append(out.Open, viewOfVisit(o))
		}
	}
	writeJSON(w, http.StatusOK, out)
}

// windowView is a window row as the API shows it.
type windowView struct {
	Pipeline    string    `json:"pipeline"`
	Key         string    `json:"key"`
	SizeSeconds int64     `json:"size_seconds"`
	Start       time.Time `json:"start"`
	Count       int64     `json:"count"`
	Sum         float64   `json:"sum"`
	Min         float64   `json:"min"`
	Max         float64   `json:"max"`
	Avg         float64   `json:"avg"`
	ClosedAt    time.Time `json:"closed_at,omitzero"`
}

func viewOfWindow(r schemas.WindowResult) windowView {
	return windowView{Pipeline: r.Pipeline, Key: r.Key, SizeSeconds: r.SizeSeconds, Start: r.WindowStart.UTC(), Count: r.Count,
		Sum: r.Sum, Min: r.Min, Max: r.Max, Avg: r.Avg, ClosedAt: r.ClosedAt.UTC()}
}

func (s *Server) windows(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	f := query.WindowFilter{Pipeline: q.Get("pipeline"), Key: q.Get("key")}
	var err error
	if f.Limit, err = limitParam(r, 100); err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	if v := q.Get("size"); v != "" {
		if f.SizeSeconds, err = strconv.ParseInt(v, 10, 64); err != nil || f.SizeSeconds < 1 {
			writeError(w, http.StatusBadRequest, fmt.Sprintf("size %q: want a window size in seconds", v))
			return
		}
	}
	rows, err := query.Windows(r.Context(), s.DB, f)
	if err != nil {
		s.fail(w, err)
		return
	}
	out := make([]windowView, len(rows))
	for i, row := range rows {
		out[i] = viewOfWindow(row)
	}
	writeJSON(w, http.StatusOK, map[string]any{"windows": out})
}

// openWindow is a window still taking records, as GET /api/windows/open shows it.
type openWindow struct {
	windowView
	End     time.Time `json:"end"`
	CloseAt time.Time `json:"close_at"`
	Open    bool      `json:"open"`
}

// openWindows is GET /api/windows/open?pipeline=&key=: the current value of a key's open
// windows, asked of its workflow (a query), as Kafka Streams' interactive queries and
// ksqlDB's pull queries answer live state. The key defaults to the global key of a
// pipeline that aggregates its whole stream (transactions).
func (s *Server) openWindows(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	name := q.Get("pipeline")
	spec, ok := pipelines.ByName(name)
	if !ok {
		writeError(w, http.StatusBadRequest, fmt.Sprintf("pipeline %q: want %s, %s or %s", name, schemas.PipelineLikes, schemas.PipelineTransactions, schemas.PipelineSensors))
		return
	}
	key := q.Get("key")
	if key == "" {
		key = pipelines.GlobalKey
	}
	if err := checkID(key); err != nil {
		writeError(w, http.StatusBadRequest, "key "+err.Error())
		return
	}
	if s.Temporal == nil {
		writeError(w, http.StatusServiceUnavailable, "no Temporal connection")
		return
	}
	open, err := s.queryOpen(r.Context(), spec.Name, key)
	if err != nil {
		s.fail(w, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"pipeline": spec.Name, "key": key, "windows": viewsOfOpen(spec.Name, open)})
}

func checkID(id string) error {
	if id == "" || len(id) > schemas.MaxEventIDLen || strings.ContainsAny(id, "/|\x00") || !utf8.ValidString(id) {
		return fmt.Errorf("id %q: want 1 to %d characters of UTF-8, no '/', '|' or NUL", id, schemas.MaxEventIDLen)
	}
	return nil
}

// like is POST /videos/{id}/likes, with an optional body {"count": n}: it sends n likes of
// the video to the likes topic and answers 202 once the broker has them.
func (s *Server) like(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	if err := checkID(id); err != nil {
		writeError(w, http.StatusBadRequest, "video "+err.Error())
		return
	}
	body := struct {
		Count int `json:"count"`
	}{Count: 1}
	dec := json.NewDecoder(io.LimitReader(r.Body, 4096))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&body); err != nil && !errors.Is(err, io.EOF) {
		writeError(w, http.StatusBadRequest, fmt.Sprintf("body: want {\"count\": n} or nothing: %v", err))
		return
	}
	if body.Count < 1 || body.Count > MaxLikesPerRequest {
		writeError(w, http.StatusBadRequest, fmt.Sprintf("count %d: want 1 to %d", body.Count, MaxLikesPerRequest))
		return
	}
	if s.Producer == nil {
		writeError(w, http.StatusServiceUnavailable, "no Kafka producer")
		return
	}
	at := s.now().UTC()
	key, value, err := schemas.LikeRecord(id, at)
	if err != nil {
		s.fail(w, err)
		return
	}
	msgs := make([]*kafka.Message, body.Count)
	for i := range msgs {
		msgs[i] = kafkaio.Message(schemas.TopicLikes, key, value)
	}
	if err := s.Producer.Send(r.Context(), msgs...); err != nil {
		s.Log.Error("ingest likes", "video", id, "err", err)
		writeError(w, http.StatusServiceUnavailable, "the likes could not be stored: "+err.Error())
		return
	}
	writeJSON(w, http.StatusAccepted, map[string]any{"video_id": id, "accepted": body.Count, "at": at})
}

func (s *Server) fail(w http.ResponseWriter, err error) {
	s.Log.Error("api", "err", err)
	writeError(w, http.StatusInternalServerError, err.Error())
}
