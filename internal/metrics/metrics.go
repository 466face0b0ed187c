// Package metrics is one process's Prometheus metrics: Tributary's own (the bridges'
// records, deliveries, lag and dead letters; the activities' ack and window-close delays;
// late records as the database holds them), the Temporal SDK's through its metrics
// handler, and, under `starter dev`, the embedded Temporal server's. Every name is here.
package metrics

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"
	"unicode"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	dto "github.com/prometheus/client_model/go"

	"github.com/tributary-dev/tributary/internal/serve"
	"github.com/uber-go/tally/v4"
	tallyprom "github.com/uber-go/tally/v4/prometheus"
	"go.temporal.io/sdk/client"
	"gorm.io/gorm"
)

// Set holds a process's metrics. A nil *Set records nothing, so parts built without one
// (unit tests, tools) need no checks.
type Set struct {
	reg       *prometheus.Registry
	gatherers prometheus.Gatherers

	records      *prometheus.CounterVec
	deliveries   *prometheus.CounterVec
	deadLettered *prometheus.CounterVec
	lag          *prometheus.GaugeVec
	fatal        *fatalCollector
	ackDelay     prometheus.Histogram
	closeDelay   *prometheus.HistogramVec

	sdkScope  tally.Scope
	sdkCloser interface{ Close() error }
}

// fatalCollector counts fatal Kafka client errors: those reported to it, and those a
// self-healing producer counts itself.
type fatalCollector struct {
	mu     sync.Mutex
	counts map[string]int64
	funcs  map[string]func() int64
}

var fatalDesc = prometheus.NewDesc("tributary_kafka_fatal_errors_total",
	"Fatal errors of a Kafka client: a bridge's consumer stops with one; a producer's client is replaced.", []string{"client"}, nil)

func (*fatalCollector) Describe(ch chan<- *prometheus.Desc) { ch <- fatalDesc }

func (c *fatalCollector) Collect(ch chan<- prometheus.Metric) {
	c.mu.Lock()
	defer c.mu.Unlock()
	values := map[string]int64{}
	for client, n := range c.counts {
		values[client] += n
	}
	for client, f := range c.funcs {
		values[client] += f()
	}
	for client, n := range values {
		ch <- prometheus.MustNewConstMetric(fatalDesc, prometheus.CounterValue, float64(n), client)
	}
}

// delayBuckets span a few milliseconds to several minutes: ack delays on a quiet stack
// and window closes behind a backlog.
var delayBuckets = []float64{.002, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30, 60, 120, 300}

// New registers Tributary's metrics, the Go runtime's and the process's.
func New() *Set {
	s := &Set{reg: prometheus.NewRegistry()}
	s.gatherers = prometheus.Gatherers{s.reg}
	f := func(c prometheus.Collector) { s.reg.MustRegister(c) }
	f(collectors.NewGoCollector())
	f(collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	s.records = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "tributary_bridge_records_total", Help: "Input records a bridge handled for good: delivered, skipped or dead-lettered.",
	}, []string{"pipeline"})
	s.deliveries = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "tributary_bridge_deliveries_total", Help: "Signals and updates a bridge sent to workflows, one per workflow per batch.",
	}, []string{"pipeline"})
	s.deadLettered = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "tributary_dead_lettered_total", Help: "Input records sent to a dead-letter topic, by the leading words of their reason.",
	}, []string{"pipeline", "reason"})
	s.lag = prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "tributary_bridge_lag_records", Help: "Records of an owned partition not yet handled: the log end (read committed) minus the next offset to handle.",
	}, []string{"pipeline", "topic", "partition"})
	s.fatal = &fatalCollector{counts: map[string]int64{}, funcs: map[string]func() int64{}}
	s.ackDelay = prometheus.NewHistogram(prometheus.HistogramOpts{
		Name: "tributary_join_ack_delay_seconds", Help: "An ack's creation time minus its event's latest row's creation time, as the original system measured it.",
		Buckets: delayBuckets,
	})
	s.closeDelay = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name: "tributary_window_close_delay_seconds", Help: "When a window's row was written minus the window's end.",
		Buckets: delayBuckets,
	}, []string{"pipeline"})
	for _, c := range []prometheus.Collector{s.records, s.deliveries, s.deadLettered, s.lag, s.fatal, s.ackDelay, s.closeDelay} {
		f(c)
	}
	return s
}

// Names are the families Tributary defines, for dashboards and their checks.
func Names() []string {
	return []string{
		"tributary_bridge_records_total", "tributary_bridge_deliveries_total", "tributary_bridge_lag_records",
		"tributary_dead_lettered_total", "tributary_late_records_total", "tributary_join_ack_delay_seconds",
		"tributary_window_close_delay_seconds", "tributary_kafka_fatal_errors_total",
	}
}

// Handler serves every gathered metric in Prometheus' text format, including registries
// added later with Include.
func (s *Set) Handler() http.Handler {
	return promhttp.HandlerFor(prometheus.GathererFunc(s.Gather), promhttp.HandlerOpts{ErrorHandling: promhttp.ContinueOnError})
}

// Serve serves Handler on addr's /metrics until ctx ends; ready gets the address it
// listens on.
func (s *Set) Serve(ctx context.Context, addr string, ready func(addr string)) error {
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", s.Handler())
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("metrics on %s: %w", addr, err)
	}
	if ready != nil {
		ready(ln.Addr().String())
	}
	if err := serve.Until(ctx, ln, mux); err != nil {
		return fmt.Errorf("metrics on %s: %w", addr, err)
	}
	return nil
}

// Gather collects every metric, as a scrape would.
func (s *Set) Gather() ([]*dto.MetricFamily, error) { return s.gatherers.Gather() }

// Include adds another registry's metrics (the embedded server's) to what Handler serves.
func (s *Set) Include(g prometheus.Gatherer) {
	if s != nil && g != nil {
		s.gatherers = append(s.gatherers, g)
	}
}

// WatchLateRecords exposes the late records the database holds, by pipeline and reason,
// read at each scrape: every role then shows the same durable count, whoever wrote them.
func (s *Set) WatchLateRecords(db *gorm.DB) {
	if s != nil && db != nil {
		s.reg.MustRegister(lateCollector{db: db})
	}
}

// Batch counts a bridge batch: its records and the deliveries it took.
func (s *Set) Batch(pipeline string, records, deliveries int) {
	if s == nil {
		return
	}
	s.records.WithLabelValues(pipeline).Add(float64(records))
	s.deliveries.WithLabelValues(pipeline).Add(float64(deliveries))
}

// DeadLettered counts one dead-lettered record.
func (s *Set) DeadLettered(pipeline, reason string) {
	if s != nil {
		s.deadLettered.WithLabelValues(pipeline, ReasonClass(reason)).Inc()
	}
}

// Lag sets an owned partition's lag.
func (s *Set) Lag(pipeline, topic string, partition int32, records int64) {
	if s != nil {
		s.lag.WithLabelValues(pipeline, topic, strconv.Itoa(int(partition))).Set(float64(records))
	}
}

// LagGone drops a partition the bridge no longer owns.
func (s *Set) LagGone(pipeline, topic string, partition int32) {
	if s != nil {
		s.lag.DeleteLabelValues(pipeline, topic, strconv.Itoa(int(partition)))
	}
}

// FatalError counts a Kafka client's fatal error.
func (s *Set) FatalError(client string) {
	if s != nil {
		s.fatal.mu.Lock()
		s.fatal.counts[client]++
		s.fatal.mu.Unlock()
	}
}

// WatchRecreated counts, as the client's fatal errors, the clients a self-healing
// producer replaced after one turned fatal (kafkaio.Producer.Recreated).
func (s *Set) WatchRecreated(client string, recreated func() int64) {
	if s != nil {
		s.fatal.mu.Lock()
		s.fatal.funcs[client] = recreated
		s.fatal.mu.Unlock()
	}
}

// AckDelay observes one ack's delay.
func (s *Set) AckDelay(d time.Duration) {
	if s != nil {
		s.ackDelay.Observe(d.Seconds())
	}
}

// WindowClosed observes how long after its end a window's row was written.
func (s *Set) WindowClosed(pipeline string, d time.Duration) {
	if s != nil {
		s.closeDelay.WithLabelValues(pipeline).Observe(d.Seconds())
	}
}

// ReasonClass is a dead-letter reason's leading words, up to the first character that is
// not a letter, a space or an underscore: the fixed text of the error that made it
// ("not a join row", "event time"), without the record's own values, which would make a
// label per record.
func ReasonClass(reason string) string {
	end := strings.IndexFunc(reason, func(r rune) bool { return !unicode.IsLetter(r) && r != ' ' && r != '_' })
	if end >= 0 {
		reason = reason[:end]
	}
	reason = strings.TrimSpace(reason)
	if len(reason) > 40 {
		reason = strings.TrimSpace(reason[:40])
	}
	if reason == "" {
		return "other"
	}
	return reason
}

// SDKHandler is the Temporal SDK's metrics handler, reporting into this set: workflow
// task, activity and request latencies, poller and cache gauges, under their SDK names.
func (s *Set) SDKHandler() client.MetricsHandler {
	if s == nil {
		return client.MetricsNopHandler
	}
	if s.sdkScope == nil {
		s.sdkScope, s.sdkCloser = tallyScope(s.reg)
	}
	return sdkHandler{s.sdkScope}
}

// Close stops the SDK scope's reporting loop.
func (s *Set) Close() {
	if s != nil && s.sdkCloser != nil {
		_ = s.sdkCloser.Close()
	}
}

// TallyScope reports a tally scope into reg, timers as histograms in seconds; the
// embedded Temporal server reports through one too. Close stops its reporting loop.
func TallyScope(reg prometheus.Registerer) (tally.Scope, interface{ Close() error }) {
	return tallyScope(reg)
}

func tallyScope(reg prometheus.Registerer) (tally.Scope, interface{ Close() error }) {
	reporter := tallyprom.NewReporter(tallyprom.Options{
		Registerer:              reg,
		DefaultTimerType:        tallyprom.HistogramTimerType,
		DefaultHistogramBuckets: delayBuckets,
		// A tag set differing from the first one of a name is dropped, not fatal.
		OnRegisterError: func(error) {},
	})
	return tally.NewRootScope(tally.ScopeOptions{
		CachedReporter:  reporter,
		Separator:       tallyprom.DefaultSeparator,
		SanitizeOptions: &tallyprom.DefaultSanitizerOpts,
	}, ReportInterval)
}

// ReportInterval is how often a tally scope's values reach its registry: a reading of the
// registry lags what was counted by up to this long.
const ReportInterval = time.Second

// sdkHandler is the SDK's metrics interface over a tally scope.
type sdkHandler struct{ scope tally.Scope }

func (h sdkHandler) WithTags(tags map[string]string) client.MetricsHandler {
	return sdkHandler{h.scope.Tagged(tags)}
}
func (h sdkHandler) Counter(name string) client.MetricsCounter { return h.scope.Counter(name) }
func (h sdkHandler) Gauge(name string) client.MetricsGauge     { return h.scope.Gauge(name) }
func (h sdkHandler) Timer(name string) client.MetricsTimer     { return h.scope.Timer(name) }

// lateCollector reads the late records table at each scrape.
type lateCollector struct{ db *gorm.DB }

var lateDesc = prometheus.NewDesc("tributary_late_records_total",
	"Input records that came after their result was final, as the database holds them (every process shows the same count).",
	[]string{"pipeline", "reason"}, nil)

func (lateCollector) Describe(ch chan<- *prometheus.Desc) { ch <- lateDesc }

func (c lateCollector) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	var rows []struct {
		Pipeline, Reason string
		N                int64
	}
	if err := c.db.WithContext(ctx).Table("late_records").Select("pipeline, reason, COUNT(*) AS n").Group("pipeline, reason").Scan(&rows).Error; err != nil {
		ch <- prometheus.NewInvalidMetric(lateDesc, err)
		return
	}
	for _, r := range rows {
		ch <- prometheus.MustNewConstMetric(lateDesc, prometheus.CounterValue, float64(r.N), r.Pipeline, r.Reason)
	}
}
