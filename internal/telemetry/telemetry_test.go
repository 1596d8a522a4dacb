package telemetry_test

import (
	"bytes"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"

	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace/noop"

	"admit/internal/server"
	"admit/internal/telemetry"
	"admit/internal/testutil"
)

// One test (not parallel): the tracer provider is global.
func TestOperationsDatabaseCallsAndSendsAreTraced(t *testing.T) {
	exp := tracetest.NewInMemoryExporter()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSyncer(exp))
	telemetry.Install(tp)
	t.Cleanup(func() { telemetry.Install(noop.NewTracerProvider()) })

	e := testutil.New(t, func(o *server.Options) {
		o.Tracing = true
		o.DB.Wrap(telemetry.Driver)
	})
	org := e.NewOrg("Acme")
	exp.Reset()

	const traceID = "4bf92f3577b34da6a3ce929d0e0e4736"
	body, _ := json.Marshal(map[string]any{"query": `mutation Invite { inviteUsers(input: {emails: ["ann@example.com"]}) { errors { code } } }`})
	req := httptest.NewRequest(http.MethodPost, "/query", bytes.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+org.AdminToken)
	req.Header.Set("traceparent", "00-"+traceID+"-00f067aa0ba902b7-01")
	if r := e.Serve(req); len(r.Errors) > 0 {
		t.Fatal(string(r.Body))
	}
	e.Do("", `query Me { me { email } }`, nil)
	e.Deliver()

	spans := exp.GetSpans()
	var op, me *tracetest.SpanStub
	db, sends := 0, 0
	for i := range spans {
		s := &spans[i]
		switch {
		case s.Name == "mutation Invite":
			op = s
		case s.Name == "query Me":
			me = s
		case strings.HasPrefix(s.Name, "db "):
			if s.Parent.TraceID().String() == traceID {
				db++
			}
		case s.Name == "outbox.send":
			sends++
		}
	}
	if op == nil || me == nil {
		t.Fatalf("want operation spans, got %v", names(spans))
	}
	if op.SpanContext.TraceID().String() != traceID {
		t.Fatalf("the caller's traceparent was not continued: trace %s", op.SpanContext.TraceID())
	}
	if db == 0 {
		t.Fatalf("want database spans under the operation, got %v", names(spans))
	}
	if sends != 1 {
		t.Fatalf("want one outbox.send span, got %d", sends)
	}
	var typ string
	var codes []string
	for _, a := range me.Attributes {
		switch a.Key {
		case "graphql.operation.type":
			typ = a.Value.AsString()
		case "graphql.error.codes":
			codes = a.Value.AsStringSlice()
		}
	}
	if typ != "query" || !slices.Contains(codes, "UNAUTHENTICATED") {
		t.Fatalf("query Me span: type %q, codes %v", typ, codes)
	}
	for _, s := range spans {
		for _, a := range s.Attributes {
			if strings.Contains(a.Value.Emit(), org.AdminToken) || strings.Contains(a.Value.Emit(), "ann@example.com") {
				t.Fatalf("span %s carries data: %s=%s", s.Name, a.Key, a.Value.Emit())
			}
		}
	}
}

func names(spans tracetest.SpanStubs) []string {
	var out []string
	for _, s := range spans {
		out = append(out, s.Name)
	}
	return out
}

// Without an endpoint nothing is installed.
func TestOffWithoutEndpoint(t *testing.T) {
	on, stop, err := telemetry.Setup(t.Context(), func(string) string { return "" })
	if err != nil || on || stop(t.Context()) != nil {
		t.Fatalf("want tracing off: on=%v err=%v", on, err)
	}
}
