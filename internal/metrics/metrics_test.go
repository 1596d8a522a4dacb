package metrics_test

import (
	"context"
	"io"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"admit/internal/invite"
	"admit/internal/metrics"
	"admit/internal/outbox"
	"admit/internal/ratelimit"
	"admit/internal/server"
	"admit/internal/testutil"
)

func scrape(t *testing.T, m *metrics.Metrics) string {
	t.Helper()
	rec := httptest.NewRecorder()
	m.Handler().ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
	b, _ := io.ReadAll(rec.Result().Body)
	return string(b)
}

func want(t *testing.T, text string, lines ...string) {
	t.Helper()
	for _, l := range lines {
		if !strings.Contains(text, l) {
			t.Errorf("metrics lack %q", l)
		}
	}
}

func TestMetricsCountWhatHappened(t *testing.T) {
	t.Parallel()
	var m *metrics.Metrics
	var worker *outbox.Worker
	e := testutil.New(t, func(o *server.Options) {
		m = metrics.New(o.DB.SQL, func(ctx context.Context) (int, time.Duration, error) { return worker.Stats(ctx) }, o.Broker.Subscribers)
		o.Metrics = m
		o.LinkLimits = invite.LinkLimits{PerAddress: &ratelimit.Limiter{Limit: 1, Window: time.Hour}}
	})
	worker = e.Worker
	e.Worker.Metrics = m
	e.Invites.Invited = m.Invited
	org := e.NewOrg("Acme")

	e.Do(org.AdminToken, `mutation Invite { inviteUsers(input: {emails: ["ann@example.com"]}) { errors { code } } }`, nil)
	e.Do(org.AdminToken, `mutation Nobody { inviteUsers(input: {emails: []}) { errors { code } } }`, nil)
	e.Do("", `query Me { me { email } }`, nil)
	link := `mutation Join { joinWithInviteLink(input: {token: "adl_1_1_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA", email: "x@example.com"}) { errors { code } } }`
	e.Do("", link, nil)
	e.Do("", link, nil) // the second from this address is refused
	e.Do("", `query { __typename }`, nil)
	for i := range 600 { // client-chosen names are capped
		e.Do("", "query N"+strings.Repeat("x", i%3)+string(rune('a'+i%26))+string(rune('a'+i/26))+" { __typename }", nil)
	}

	before := scrape(t, m)
	want(t, before,
		`admit_graphql_operations_total{operation="Invite",outcome="ok",type="mutation"} 1`,
		`admit_graphql_operations_total{operation="Nobody",outcome="refused",type="mutation"} 1`,
		`admit_graphql_operations_total{operation="Me",outcome="error",type="query"} 1`,
		`admit_graphql_operations_total{operation="anonymous",outcome="ok",type="query"} 1`,
		`admit_graphql_operation_duration_seconds_bucket{outcome="ok",type="mutation",le="+Inf"}`,
		`admit_rate_limit_refusals_total 1`,
		`admit_invitations_created_total{source="MANUAL"} 1`,
		`admit_http_requests_total{code="200",route="/query"}`,
		`admit_outbox_depth 1`,
		`admit_outbox_oldest_queued_seconds`,
		`admit_subscriptions_active 0`,
		`admit_websockets_open 0`,
		`go_sql_max_open_connections{db_name="admit"}`,
		`go_goroutines`,
		`process_resident_memory_bytes`,
	)
	if n := strings.Count(before, "admit_graphql_operations_total{"); n > 510 {
		t.Errorf("operation names are not bounded: %d series", n)
	}
	if !strings.Contains(before, `operation="other"`) {
		t.Error("names past the cap should count as other")
	}
	e.Deliver()
	after := scrape(t, m)
	want(t, after, `admit_outbox_sends_total{channel="EMAIL",result="sent"} 1`, `admit_outbox_depth 0`)
}

// Off means nothing is recorded and nothing is in the way.
func TestNilMetricsAreOff(t *testing.T) {
	var m *metrics.Metrics
	m.Sent("EMAIL", "sent")
	e := testutil.New(t)
	org := e.NewOrg("Acme")
	r := e.Do(org.AdminToken, `{ me { email } }`, nil)
	if len(r.Errors) > 0 {
		t.Fatal(string(r.Body))
	}
}
