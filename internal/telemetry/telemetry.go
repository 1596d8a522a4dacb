// Package telemetry traces Admit with OpenTelemetry when
// OTEL_EXPORTER_OTLP_ENDPOINT is set: a span per GraphQL operation (named
// by the operation, with its type and error codes), spans for database
// calls and outbox sends, and the caller's traceparent continued. Without
// the variable nothing is installed and the global tracer is OpenTelemetry's
// no-op, so tracing that is off costs nothing.
package telemetry

import (
	"context"
	"database/sql"
	"fmt"
	"net/http"
	"slices"
	"strings"

	"entgo.io/ent/dialect"
	"github.com/99designs/gqlgen/graphql"
	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp"
	"go.opentelemetry.io/otel/propagation"
	sdkresource "go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	semconv "go.opentelemetry.io/otel/semconv/v1.26.0"
	"go.opentelemetry.io/otel/trace"
)

const scope = "admit"

// Setup installs an OTLP/HTTP exporter when OTEL_EXPORTER_OTLP_ENDPOINT
// (or OTEL_EXPORTER_OTLP_TRACES_ENDPOINT) is set; the exporter reads the
// other standard OTEL_EXPORTER_OTLP_* variables itself. It returns whether
// tracing is on and a function that flushes and stops it.
func Setup(ctx context.Context, getenv func(string) string) (bool, func(context.Context) error, error) {
	if getenv("OTEL_EXPORTER_OTLP_ENDPOINT") == "" && getenv("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT") == "" {
		return false, func(context.Context) error { return nil }, nil
	}
	exp, err := otlptracehttp.New(ctx)
	if err != nil {
		return false, nil, fmt.Errorf("OTEL_EXPORTER_OTLP_ENDPOINT: %w", err)
	}
	Install(sdktrace.NewTracerProvider(
		sdktrace.WithBatcher(exp),
		sdktrace.WithResource(sdkresource.NewSchemaless(semconv.ServiceName("admit"))),
	))
	return true, otel.GetTracerProvider().(*sdktrace.TracerProvider).Shutdown, nil
}

// Install makes tp the tracer provider and W3C trace context the
// propagator (tests install one with an in-memory exporter).
func Install(tp trace.TracerProvider) {
	otel.SetTracerProvider(tp)
	otel.SetTextMapPropagator(propagation.NewCompositeTextMapPropagator(propagation.TraceContext{}, propagation.Baggage{}))
}

func tracer() trace.Tracer { return otel.Tracer(scope) }

// HTTP continues the caller's trace (traceparent) in the request context.
func HTTP(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ctx := otel.GetTextMapPropagator().Extract(r.Context(), propagation.HeaderCarrier(r.Header))
		next.ServeHTTP(w, r.WithContext(ctx))
	})
}

// Extension is the gqlgen extension that gives every operation a span.
type Extension struct{}

var _ interface {
	graphql.HandlerExtension
	graphql.OperationInterceptor
} = Extension{}

// ExtensionName implements graphql.HandlerExtension.
func (Extension) ExtensionName() string { return "AdmitTracing" }

// Validate implements graphql.HandlerExtension.
func (Extension) Validate(graphql.ExecutableSchema) error { return nil }

// InterceptOperation starts the operation's span before everything else
// (its transaction and database calls nest under it) and ends it with the
// first response.
func (Extension) InterceptOperation(ctx context.Context, next graphql.OperationHandler) graphql.ResponseHandler {
	oc := graphql.GetOperationContext(ctx)
	typ, name := "unknown", oc.OperationName
	if oc.Operation != nil {
		typ = string(oc.Operation.Operation)
		if name == "" {
			name = oc.Operation.Name
		}
	}
	spanName := typ
	if name != "" {
		spanName = typ + " " + name
	}
	ctx, span := tracer().Start(ctx, spanName, trace.WithSpanKind(trace.SpanKindServer), trace.WithAttributes(
		attribute.String("graphql.operation.type", typ),
		attribute.String("graphql.operation.name", name),
	))
	handler := next(ctx)
	done := false
	return func(ctx context.Context) *graphql.Response {
		rsp := handler(ctx)
		if !done {
			done = true
			var errCodes []string
			if rsp != nil {
				for _, e := range rsp.Errors {
					if c, ok := e.Extensions["code"].(string); ok && !slices.Contains(errCodes, c) {
						errCodes = append(errCodes, c)
					}
				}
			}
			if len(errCodes) > 0 {
				span.SetAttributes(attribute.StringSlice("graphql.error.codes", errCodes))
				span.SetStatus(codes.Error, strings.Join(errCodes, ","))
			}
			span.End()
		}
		return rsp
	}
}

// Send traces one outbox send.
func Send(ctx context.Context, channel, template string) (context.Context, func(error)) {
	ctx, span := tracer().Start(ctx, "outbox.send", trace.WithSpanKind(trace.SpanKindProducer), trace.WithAttributes(
		attribute.String("messaging.channel", channel),
		attribute.String("admit.template", template),
	))
	return ctx, func(err error) {
		if err != nil {
			span.RecordError(err)
			span.SetStatus(codes.Error, "send failed")
		}
		span.End()
	}
}

// Driver wraps an ent driver so that every statement is a span. The SQL
// text is recorded (it holds placeholders, never values).
func Driver(d dialect.Driver) dialect.Driver { return &driver{Driver: d} }

type execQuerier interface {
	ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error)
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
}

type driver struct{ dialect.Driver }

func start(ctx context.Context, query string) (context.Context, trace.Span) {
	op := query
	if i := strings.IndexAny(strings.TrimSpace(op), " \n\t"); i > 0 {
		op = strings.TrimSpace(op)[:i]
	}
	return tracer().Start(ctx, "db "+strings.ToUpper(op), trace.WithSpanKind(trace.SpanKindClient),
		trace.WithAttributes(attribute.String("db.statement", query)))
}

func finish(span trace.Span, err error) {
	if err != nil {
		span.RecordError(err)
		span.SetStatus(codes.Error, "statement failed")
	}
	span.End()
}

func (d *driver) Exec(ctx context.Context, query string, args, v any) error {
	ctx, span := start(ctx, query)
	err := d.Driver.Exec(ctx, query, args, v)
	finish(span, err)
	return err
}

func (d *driver) Query(ctx context.Context, query string, args, v any) error {
	ctx, span := start(ctx, query)
	err := d.Driver.Query(ctx, query, args, v)
	finish(span, err)
	return err
}

func (d *driver) ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error) {
	ctx, span := start(ctx, query)
	res, err := d.Driver.(execQuerier).ExecContext(ctx, query, args...)
	finish(span, err)
	return res, err
}

func (d *driver) QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error) {
	ctx, span := start(ctx, query)
	rows, err := d.Driver.(execQuerier).QueryContext(ctx, query, args...)
	finish(span, err)
	return rows, err
}

func (d *driver) Tx(ctx context.Context) (dialect.Tx, error) {
	tx, err := d.Driver.Tx(ctx)
	if err != nil {
		return nil, err
	}
	return &txDriver{Tx: tx}, nil
}

// BeginTx keeps ent's transaction options (isolation levels) working.
func (d *driver) BeginTx(ctx context.Context, opts *sql.TxOptions) (dialect.Tx, error) {
	b, ok := d.Driver.(interface {
		BeginTx(context.Context, *sql.TxOptions) (dialect.Tx, error)
	})
	if !ok {
		return d.Tx(ctx)
	}
	tx, err := b.BeginTx(ctx, opts)
	if err != nil {
		return nil, err
	}
	return &txDriver{Tx: tx}, nil
}

type txDriver struct{ dialect.Tx }

func (t *txDriver) Exec(ctx context.Context, query string, args, v any) error {
	ctx, span := start(ctx, query)
	err := t.Tx.Exec(ctx, query, args, v)
	finish(span, err)
	return err
}

func (t *txDriver) Query(ctx context.Context, query string, args, v any) error {
	ctx, span := start(ctx, query)
	err := t.Tx.Query(ctx, query, args, v)
	finish(span, err)
	return err
}

func (t *txDriver) ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error) {
	ctx, span := start(ctx, query)
	res, err := t.Tx.(execQuerier).ExecContext(ctx, query, args...)
	finish(span, err)
	return res, err
}

func (t *txDriver) QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error) {
	ctx, span := start(ctx, query)
	rows, err := t.Tx.(execQuerier).QueryContext(ctx, query, args...)
	finish(span, err)
	return rows, err
}
