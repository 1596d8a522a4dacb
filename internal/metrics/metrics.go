// Package metrics exposes Admit's Prometheus metrics: HTTP requests,
// GraphQL operations, the outbox, websockets, the database pool and
// rate-limit refusals, plus Go's runtime and process collectors. They are
// served on their own address (METRICS_ADDR), never on the public one. A
// nil *Metrics records nothing, so metrics that are off cost nothing.
package metrics

import (
	"bytes"
	"context"
	"database/sql"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/99designs/gqlgen/graphql"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/vektah/gqlparser/v2/gqlerror"
)

// Outbox reports the queue: messages waiting or being sent, and the age of
// the oldest waiting one.
type Outbox func(ctx context.Context) (depth int, oldest time.Duration, err error)

// Metrics holds the collectors.
type Metrics struct {
	reg         *prometheus.Registry
	requests    *prometheus.CounterVec
	operations  *prometheus.CounterVec
	durations   *prometheus.HistogramVec
	sends       *prometheus.CounterVec
	rateLimited prometheus.Counter
	sockets     prometheus.Gauge
	invitations *prometheus.CounterVec

	mu    sync.Mutex
	names map[string]bool // operation names seen, bounded
	seen  sync.Map        // the same names, for lock-free reads
}

// maxOperationNames bounds the operation label: names are chosen by
// clients, and each new one would be a new time series.
const maxOperationNames = 500

// New registers every collector. db is the database pool; outbox and
// subscriptions are read at scrape time.
func New(db *sql.DB, outbox Outbox, subscriptions func() int) *Metrics {
	m := &Metrics{
		reg: prometheus.NewRegistry(),
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "admit_http_requests_total", Help: "HTTP requests by route and status code.",
		}, []string{"route", "code"}),
		operations: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "admit_graphql_operations_total", Help: "GraphQL responses by operation name, type and outcome (ok, refused: the payload carries errors, error: GraphQL errors). A subscription counts each event.",
		}, []string{"operation", "type", "outcome"}),
		durations: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "admit_graphql_operation_duration_seconds", Help: "Time from the start of a GraphQL operation to its response, by type and outcome.",
			Buckets: []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10},
		}, []string{"type", "outcome"}),
		sends: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "admit_outbox_sends_total", Help: "Outbox send attempts by channel (EMAIL, SMS) and result (sent, retry, failed).",
		}, []string{"channel", "result"}),
		rateLimited: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "admit_rate_limit_refusals_total", Help: "Requests refused with RATE_LIMITED.",
		}),
		sockets: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "admit_websockets_open", Help: "Open websocket connections.",
		}),
		invitations: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "admit_invitations_created_total", Help: "Invitations created (committed), by source: MANUAL, FILE, LINK, HR, WORKSPACE.",
		}, []string{"source"}),
		names: map[string]bool{},
	}
	m.reg.MustRegister(m.requests, m.operations, m.durations, m.sends, m.rateLimited, m.sockets, m.invitations,
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		collectors.NewDBStatsCollector(db, "admit"),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "admit_subscriptions_active", Help: "Live GraphQL subscriptions on this replica.",
		}, func() float64 { return float64(subscriptions()) }),
		&outboxCollector{read: outbox},
	)
	return m
}

// Handler serves the metrics in Prometheus' text format.
func (m *Metrics) Handler() http.Handler {
	return promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{})
}

// HTTP counts requests by the route pattern that served them (never the
// raw path, which clients choose).
func (m *Metrics) HTTP(next http.Handler) http.Handler {
	if m == nil {
		return next
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rec := &statusRecorder{ResponseWriter: w, status: http.StatusOK}
		next.ServeHTTP(rec, r)
		route := r.Pattern
		if route == "" {
			route = "unmatched"
		}
		m.requests.WithLabelValues(route, strconvStatus(rec.status)).Inc()
	})
}

// SocketOpened and SocketClosed track open websockets, which outlive the
// HTTP request that upgraded them.
func (m *Metrics) SocketOpened() {
	if m != nil {
		m.sockets.Inc()
	}
}

func (m *Metrics) SocketClosed() {
	if m != nil {
		m.sockets.Dec()
	}
}

// Sent records the result of one outbox send.
func (m *Metrics) Sent(channel, result string) {
	if m == nil {
		return
	}
	m.sends.WithLabelValues(channel, result).Inc()
}

// Invited counts n invitations created from source.
func (m *Metrics) Invited(source string, n int) {
	if m == nil {
		return
	}
	m.invitations.WithLabelValues(source).Add(float64(n))
}

// Extension is the gqlgen extension that counts and times operations.
func (m *Metrics) Extension() graphql.HandlerExtension { return operationMetrics{m} }

type operationMetrics struct{ m *Metrics }

var _ interface {
	graphql.HandlerExtension
	graphql.ResponseInterceptor
} = operationMetrics{}

func (operationMetrics) ExtensionName() string                   { return "AdmitMetrics" }
func (operationMetrics) Validate(graphql.ExecutableSchema) error { return nil }
func (o operationMetrics) InterceptResponse(ctx context.Context, next graphql.ResponseHandler) *graphql.Response {
	rsp := next(ctx)
	if !graphql.HasOperationContext(ctx) || rsp == nil {
		return rsp
	}
	oc := graphql.GetOperationContext(ctx)
	typ, name := "unknown", o.m.operationName(oc.OperationName)
	if oc.Operation != nil {
		typ = string(oc.Operation.Operation)
		if name == "" && oc.Operation.Name != "" {
			name = o.m.operationName(oc.Operation.Name)
		}
	}
	if name == "" {
		name = "anonymous"
	}
	outcome := "ok"
	switch {
	case len(rsp.Errors) > 0:
		outcome = "error"
	case bytes.Contains(rsp.Data, []byte(`"errors":[{`)):
		outcome = "refused"
	}
	if limited(rsp.Errors) || bytes.Contains(rsp.Data, []byte(`"code":"RATE_LIMITED"`)) {
		o.m.rateLimited.Inc()
	}
	o.m.operations.WithLabelValues(name, typ, outcome).Inc()
	if !oc.Stats.OperationStart.IsZero() {
		o.m.durations.WithLabelValues(typ, outcome).Observe(time.Since(oc.Stats.OperationStart).Seconds())
	}
	return rsp
}

func limited(errs gqlerror.List) bool {
	for _, e := range errs {
		if e.Extensions["code"] == "RATE_LIMITED" {
			return true
		}
	}
	return false
}

// operationName keeps names that look like GraphQL names, and at most
// maxOperationNames of them; the rest count as "other".
func (m *Metrics) operationName(name string) string {
	if name == "" {
		return ""
	}
	if len(name) > 64 || strings.IndexFunc(name, func(r rune) bool {
		return !(r == '_' || r >= '0' && r <= '9' || r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z')
	}) >= 0 {
		return "other"
	}
	if _, ok := m.seen.Load(name); ok {
		return name // the common case, without the lock every response would take
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.names[name] {
		return name
	}
	if len(m.names) >= maxOperationNames {
		return "other"
	}
	m.names[name] = true
	m.seen.Store(name, struct{}{})
	return name
}

// outboxCollector reads the outbox at scrape time.
type outboxCollector struct{ read Outbox }

var (
	depthDesc  = prometheus.NewDesc("admit_outbox_depth", "Messages queued or being sent.", nil, nil)
	oldestDesc = prometheus.NewDesc("admit_outbox_oldest_queued_seconds", "Age of the oldest queued message (0 when none).", nil, nil)
)

func (c *outboxCollector) Describe(ch chan<- *prometheus.Desc) { ch <- depthDesc; ch <- oldestDesc }

func (c *outboxCollector) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	depth, oldest, err := c.read(ctx)
	if err != nil {
		ch <- prometheus.NewInvalidMetric(depthDesc, err)
		return
	}
	ch <- prometheus.MustNewConstMetric(depthDesc, prometheus.GaugeValue, float64(depth))
	ch <- prometheus.MustNewConstMetric(oldestDesc, prometheus.GaugeValue, oldest.Seconds())
}

type statusRecorder struct {
	http.ResponseWriter
	status int
}

func (r *statusRecorder) WriteHeader(code int) {
	r.status = code
	r.ResponseWriter.WriteHeader(code)
}

// Unwrap lets http.ResponseController (and the websocket upgrade) reach
// the connection.
func (r *statusRecorder) Unwrap() http.ResponseWriter { return r.ResponseWriter }

func strconvStatus(code int) string {
	if code < 100 || code > 999 {
		return "unknown"
	}
	return string([]byte{byte('0' + code/100), byte('0' + code/10%10), byte('0' + code%10)})
}
