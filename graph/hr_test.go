package graph_test

import (
	"context"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"admit/internal/hr"
	"admit/internal/hr/hrtest"
	"admit/internal/testutil"
)

// Helpers for the HR import tests (TestHR*).

const hrConnectMutation = `mutation($in: ConnectHRSystemInput!) {
  connectHRSystem(input: $in) {
    connection { id provider providerLabel credentialsHint baseURL autoInvite deactivateLeavers syncInterval nextSyncAt lastSyncAt lastSyncStatus lastSyncEmployees role { name } }
    errors { code field message }
  }
}`

type hrConn struct {
	ID                string
	Provider          string
	ProviderLabel     string
	CredentialsHint   string
	BaseURL           string
	AutoInvite        bool
	DeactivateLeavers bool
	SyncInterval      *string
	NextSyncAt        *time.Time
	LastSyncAt        *time.Time
	LastSyncStatus    *string
	LastSyncEmployees int
	Role              *struct{ Name string }
}

type hrErr struct {
	Code    string
	Field   *string
	Message string
}

// hrConnect runs connectHRSystem and returns the connection and errors.
func hrConnect(t *testing.T, e *testutil.Env, token string, in map[string]any) (*hrConn, []hrErr) {
	t.Helper()
	var out struct {
		ConnectHRSystem struct {
			Connection *hrConn
			Errors     []hrErr
		}
	}
	wantData(t, e.Do(token, hrConnectMutation, map[string]any{"in": in}), &out)
	return out.ConnectHRSystem.Connection, out.ConnectHRSystem.Errors
}

func bambooInput(ts *hrtest.Server, key string) map[string]any {
	return map[string]any{
		"provider":    "bamboohr",
		"credentials": []map[string]string{{"name": "companyDomain", "value": "acme"}, {"name": "apiKey", "value": key}},
		"baseURL":     ts.URL,
	}
}

type hrEmployeeNode struct {
	EmployeeID       string
	Name             string
	Email            *string
	Department       *string
	EmploymentStatus string
	Status           string
	User             *struct{ Email *string }
	Invitation       *struct{ Status string }
}

const hrEmployeesQuery = `query($id: ID!, $first: Int, $after: Cursor, $where: HREmployeeWhereInput) {
  hrEmployees(connectionID: $id, first: $first, after: $after, where: $where) {
    totalCount
    pageInfo { hasNextPage endCursor }
    edges { cursor node { employeeID name email department employmentStatus status user { email } invitation { status } } }
  }
}`

type hrEmployeesPage struct {
	HrEmployees struct {
		TotalCount int
		PageInfo   struct {
			HasNextPage bool
			EndCursor   *string
		}
		Edges []struct {
			Cursor string
			Node   hrEmployeeNode
		}
	}
}

// hrStatuses lists every employee of a connection as name → status.
func hrStatuses(t *testing.T, e *testutil.Env, token, connID string) map[string]string {
	t.Helper()
	out := map[string]string{}
	var after any
	for {
		var p hrEmployeesPage
		wantData(t, e.Do(token, hrEmployeesQuery, map[string]any{"id": connID, "first": 2, "after": after}), &p)
		for _, edge := range p.HrEmployees.Edges {
			out[edge.Node.Name] = edge.Node.Status
		}
		if !p.HrEmployees.PageInfo.HasNextPage {
			return out
		}
		after = *p.HrEmployees.PageInfo.EndCursor
	}
}

const hrInviteMutation = `mutation($in: InviteFromHRSystemInput!) {
  inviteFromHRSystem(input: $in) {
    results { employeeID name input email outcome code message invitation { id email status source externalID } }
    counts { total invited alreadyMember alreadyInvited invalid domainNotAllowed }
    errors { code field message }
  }
}`

type hrInviteResult struct {
	EmployeeID string
	Name       string
	Input      string
	Email      *string
	Outcome    string
	Code       *string
	Message    *string
	Invitation *struct {
		ID         string
		Email      *string
		Status     string
		Source     string
		ExternalID *string
	}
}

type hrInvitePayload struct {
	Results []hrInviteResult
	Counts  struct{ Total, Invited, AlreadyMember, AlreadyInvited, Invalid, DomainNotAllowed int }
	Errors  []hrErr
}

func hrInvite(t *testing.T, e *testutil.Env, token string, in map[string]any) hrInvitePayload {
	t.Helper()
	var out struct{ InviteFromHRSystem hrInvitePayload }
	wantData(t, e.Do(token, hrInviteMutation, map[string]any{"in": in}), &out)
	return out.InviteFromHRSystem
}

func outcomes(p hrInvitePayload) map[string]string {
	m := map[string]string{}
	for _, r := range p.Results {
		s := r.Outcome
		if r.Code != nil {
			s += " " + *r.Code
		}
		m[r.Name] = s
	}
	return m
}

const hrConnectionsQuery = `{ hrConnections { totalCount edges { node {
  id provider credentialsHint lastSyncAt lastSyncStatus lastSyncError lastSyncEmployees lastSyncInvited lastSyncDeactivated nextSyncAt syncInterval autoInvite deactivateLeavers
} } } }`

type hrConnNode struct {
	ID                  string
	Provider            string
	CredentialsHint     string
	LastSyncAt          *time.Time
	LastSyncStatus      *string
	LastSyncError       string
	LastSyncEmployees   int
	LastSyncInvited     int
	LastSyncDeactivated int
	NextSyncAt          *time.Time
	SyncInterval        *string
	AutoInvite          bool
	DeactivateLeavers   bool
}

func hrConnections(t *testing.T, e *testutil.Env, token string) []hrConnNode {
	t.Helper()
	var out struct {
		HrConnections struct {
			TotalCount int
			Edges      []struct{ Node hrConnNode }
		}
	}
	wantData(t, e.Do(token, hrConnectionsQuery, nil), &out)
	var nodes []hrConnNode
	for _, edge := range out.HrConnections.Edges {
		nodes = append(nodes, edge.Node)
	}
	return nodes
}

func hrInvitationCount(t *testing.T, e *testutil.Env) int {
	t.Helper()
	var n int
	if err := e.DB.SQL.QueryRow(`SELECT count(*) FROM invitations WHERE source = 'HR'`).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

func date(t time.Time) string { return t.UTC().Format("2006-01-02") }

// TestHRDoneMeans is the scenario: an admin connects a provider,
// sees the employees with statuses, invites everyone, the messages go out;
// a week later two new hires and a leaver appear, and the next scheduled
// sync invites exactly those two and deactivates the leaver.
func TestHRDoneMeans(t *testing.T) {
	e := testutil.New(t)
	org := e.NewOrg("Acme")
	// Grace already has an account (MEMBER) and is signed in.
	e.NewUser(org, "grace@acme.test", org.MemberRoleID)

	ts := hrtest.BambooHR(t, "acme", "bamboo-live-key-7f3a9c", false)
	today := e.Clock.Now()
	ts.SetPeople(
		hrtest.Person{ID: "1", First: "Ada", Last: "Lovelace", Email: "Ada@Acme.test", Department: "Engineering", Start: "2021-03-01"},
		hrtest.Person{ID: "2", First: "Grace", Last: "Hopper", Email: "grace@acme.test"},
		hrtest.Person{ID: "3", First: "Linus", Last: "Pauling", Email: "linus@acme.test"},
		hrtest.Person{ID: "4", First: "Edsger", Last: "Dijkstra"}, // no email
		hrtest.Person{ID: "5", First: "Alan", Last: "Turing", Email: "alan@acme.test", Status: "inactive", End: "2024-06-07"},
		hrtest.Person{ID: "6", First: "Kat", Last: "Johnson", Email: "kat@acme.test", Start: date(today.AddDate(0, 1, 0))},
	)
	in := bambooInput(ts, "bamboo-live-key-7f3a9c")
	in["autoInvite"] = true
	in["syncInterval"] = "168h"
	in["deactivateLeavers"] = true
	conn, errs := hrConnect(t, e, org.AdminToken, in)
	if len(errs) > 0 || conn == nil {
		t.Fatalf("connect: %+v", errs)
	}
	if conn.Provider != "bamboohr" || conn.ProviderLabel != "BambooHR" || conn.CredentialsHint != "••••3a9c" {
		t.Errorf("connection = %+v, want the hint to show the key's last four characters", conn)
	}
	if conn.LastSyncEmployees != 6 || conn.SyncInterval == nil || *conn.SyncInterval != "168h" || conn.NextSyncAt == nil {
		t.Errorf("connection = %+v", conn)
	}

	// The list, with statuses.
	got := hrStatuses(t, e, org.AdminToken, conn.ID)
	want := map[string]string{
		"Ada Lovelace": "NEW", "Grace Hopper": "MEMBER", "Linus Pauling": "NEW",
		"Edsger Dijkstra": "NO_EMAIL", "Alan Turing": "INACTIVE", "Kat Johnson": "INACTIVE",
	}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("statuses = %v, want %v", got, want)
	}
	var newOnly hrEmployeesPage
	wantData(t, e.Do(org.AdminToken, hrEmployeesQuery, map[string]any{"id": conn.ID, "where": map[string]any{"status": "NEW"}}), &newOnly)
	if newOnly.HrEmployees.TotalCount != 2 {
		t.Errorf("NEW filter: %d employees, want 2", newOnly.HrEmployees.TotalCount)
	}

	// Invite everyone.
	p := hrInvite(t, e, org.AdminToken, map[string]any{"connectionID": conn.ID, "all": true})
	if len(p.Errors) > 0 || p.Counts.Invited != 2 || p.Counts.Total != 6 || p.Counts.AlreadyMember != 1 {
		t.Fatalf("invite all: %+v", p)
	}
	for _, r := range p.Results {
		if r.Outcome == "INVITED" && (r.Invitation == nil || r.Invitation.Source != "HR" || r.Invitation.ExternalID == nil || *r.Invitation.ExternalID != r.EmployeeID) {
			t.Errorf("invited %s without the employee ID on the invitation: %+v", r.Name, r.Invitation)
		}
	}
	oc := outcomes(p)
	if oc["Ada Lovelace"] != "INVITED" || oc["Edsger Dijkstra"] != "SKIPPED INVALID_ADDRESS" || oc["Alan Turing"] != "SKIPPED HR_EMPLOYEE_INACTIVE" || oc["Grace Hopper"] != "SKIPPED ALREADY_MEMBER" {
		t.Errorf("outcomes = %v", oc)
	}
	e.Deliver()
	for _, addr := range []string{"ada@acme.test", "linus@acme.test"} {
		if n := len(e.Mail.To(addr)); n != 1 {
			t.Errorf("%d messages to %s, want 1", n, addr)
		}
	}
	// Again: nobody new.
	if again := hrInvite(t, e, org.AdminToken, map[string]any{"connectionID": conn.ID, "all": true}); again.Counts.Invited != 0 || again.Counts.AlreadyInvited != 2 {
		t.Errorf("second invite all: %+v", again.Counts)
	}
	// Ada accepts: her account carries her employee ID.
	var acc struct {
		AcceptInvitation struct {
			Token *string
			User  *struct {
				Email      *string
				ExternalID *string
			}
			Errors []hrErr
		}
	}
	wantData(t, e.Do("", `mutation($in: AcceptInvitationInput!) { acceptInvitation(input: $in) { token user { email externalID } errors { code field message } } }`,
		map[string]any{"in": map[string]any{"token": testutil.TokenIn(t, e.Mail.To("ada@acme.test")[0]), "name": "Ada Lovelace", "password": "analytical engine"}}), &acc)
	if u := acc.AcceptInvitation.User; u == nil || u.ExternalID == nil || *u.ExternalID != "1" {
		t.Fatalf("accepted user = %+v, errors %+v", u, acc.AcceptInvitation.Errors)
	}
	if got := hrStatuses(t, e, org.AdminToken, conn.ID); got["Ada Lovelace"] != "MEMBER" || got["Linus Pauling"] != "INVITED" {
		t.Errorf("after accepting: %v", got)
	}

	// A week later: two new hires, and Grace left yesterday.
	e.Clock.Advance(7*24*time.Hour + time.Minute)
	people := ts.People()
	for i := range people {
		if people[i].ID == "2" {
			people[i].Status, people[i].End = "inactive", date(e.Clock.Now().AddDate(0, 0, -1))
		}
	}
	people = append(people,
		hrtest.Person{ID: "7", First: "Barbara", Last: "Liskov", Email: "barbara@acme.test"},
		hrtest.Person{ID: "8", First: "Donald", Last: "Knuth", Email: "don@acme.test"})
	ts.SetPeople(people...)
	// Sessions last a day here: sign in again, and Grace signs in too.
	org.AdminToken = e.SignIn(org.AdminEmail, org.AdminPassword)
	graceToken := e.SignIn("grace@acme.test", testutil.DefaultPassword)
	var me struct{ Me struct{ Email *string } }
	wantData(t, e.Do(graceToken, `{ me { email } }`, nil), &me)
	before := hrInvitationCount(t, e)
	sent := len(e.Mail.Messages())

	// The scheduled sync, as any replica's scheduler runs it.
	ran, err := e.HR.RunDue(context.Background())
	if err != nil || ran != 1 {
		t.Fatalf("RunDue = %d, %v; want 1 sync", ran, err)
	}
	if n := hrInvitationCount(t, e) - before; n != 2 {
		t.Errorf("the sync wrote %d invitations, want 2", n)
	}
	e.Deliver()
	var to []string
	for _, m := range e.Mail.Messages()[sent:] {
		to = append(to, m.To)
	}
	slices.Sort(to)
	if !slices.Equal(to, []string{"barbara@acme.test", "don@acme.test"}) {
		t.Errorf("messages after the sync went to %v, want the two new hires", to)
	}
	got = hrStatuses(t, e, org.AdminToken, conn.ID)
	if got["Barbara Liskov"] != "INVITED" || got["Donald Knuth"] != "INVITED" || got["Grace Hopper"] != "INACTIVE" || got["Linus Pauling"] != "INVITED" {
		t.Errorf("statuses after the sync: %v", got)
	}
	// Grace is deactivated and signed out.
	var users struct {
		Users struct {
			Edges []struct {
				Node struct {
					Email  *string
					Status string
				}
			}
		}
	}
	wantData(t, e.Do(org.AdminToken, `{ users(where: {email: "grace@acme.test"}) { edges { node { email status } } } }`, nil), &users)
	if len(users.Users.Edges) != 1 || users.Users.Edges[0].Node.Status != "DEACTIVATED" {
		t.Errorf("Grace = %+v, want DEACTIVATED", users.Users.Edges)
	}
	e.Do(graceToken, `{ me { email } }`, nil).MustFail("UNAUTHENTICATED")

	// The result is on the connection and in the audit log.
	c := hrConnections(t, e, org.AdminToken)[0]
	if c.LastSyncStatus == nil || *c.LastSyncStatus != "SUCCEEDED" || c.LastSyncInvited != 2 || c.LastSyncDeactivated != 1 || c.LastSyncEmployees != 8 {
		t.Errorf("connection after the sync: %+v", c)
	}
	if c.NextSyncAt == nil || (c.NextSyncAt.Sub(e.Clock.Now())-168*time.Hour).Abs() > time.Millisecond {
		t.Errorf("next sync at %v, want a week from now (%v)", c.NextSyncAt, e.Clock.Now())
	}
	var audit struct {
		AuditEvents struct {
			Edges []struct {
				Node struct{ Action, Summary string }
			}
		}
	}
	wantData(t, e.Do(org.AdminToken, `{ auditEvents(first: 100, where: {actionHasPrefix: "hr."}) { edges { node { action summary } } } }`, nil), &audit)
	var actions []string
	for _, edge := range audit.AuditEvents.Edges {
		actions = append(actions, edge.Node.Action+": "+edge.Node.Summary)
	}
	if !slices.ContainsFunc(actions, func(a string) bool {
		return strings.HasPrefix(a, "hr.synced: bamboohr: 8 employees, 2 invited, 1 deactivated")
	}) {
		t.Errorf("audit log: %v", actions)
	}
	// Nothing is due any more.
	if ran, err := e.HR.RunDue(context.Background()); err != nil || ran != 0 {
		t.Errorf("second RunDue = %d, %v; want 0", ran, err)
	}
}

// TestHRCredentialsNeverReadable: the stored credentials are neither in
// the database in plain text, nor in any answer, nor in the logs.
func TestHRCredentialsNeverReadable(t *testing.T) {
	e := testutil.New(t)
	org := e.NewOrg("Acme")
	const secretKey = "merge-prod-key-SECRET-9b7e41d2"
	const accountToken = "acct-token-SECRET-5c6d7e8f"
	ts := hrtest.Merge(t, secretKey, accountToken)
	ts.SetPeople(hrtest.Person{ID: "1", First: "Ada", Last: "Lovelace", Email: "ada@acme.test"})
	in := map[string]any{"provider": "merge", "baseURL": ts.URL, "credentials": []map[string]string{
		{"name": "apiKey", "value": secretKey}, {"name": "accountToken", "value": accountToken}}}
	// A refused attempt first: its error must not quote the secret either.
	bad := map[string]any{"provider": "merge", "baseURL": ts.URL, "credentials": []map[string]string{
		{"name": "apiKey", "value": secretKey + "-wrong"}, {"name": "accountToken", "value": accountToken}}}
	if _, errs := hrConnect(t, e, org.AdminToken, bad); len(errs) != 1 || errs[0].Code != "HR_CREDENTIALS_REJECTED" {
		t.Fatalf("wrong key: %+v", errs)
	}
	conn, errs := hrConnect(t, e, org.AdminToken, in)
	if len(errs) > 0 {
		t.Fatalf("connect: %+v", errs)
	}
	var bodies []string
	bodies = append(bodies, string(e.Do(org.AdminToken, hrConnectionsQuery, nil).Body))
	bodies = append(bodies, string(e.Do(org.AdminToken, `query($id: ID!) { node(id: $id) { ... on HRConnection { id provider credentialsHint baseURL } } }`, map[string]any{"id": conn.ID}).Body))
	bodies = append(bodies, string(e.Do(org.AdminToken, `{ auditEvents(first: 100) { edges { node { action summary } } } }`, nil).Body))
	bodies = append(bodies, string(e.Do(org.AdminToken, hrEmployeesQuery, map[string]any{"id": conn.ID}).Body))
	bodies = append(bodies, string(e.Do(org.AdminToken, `mutation($id: ID!) { syncHRSystem(id: $id) { connection { credentialsHint } result { status } errors { message } } }`, map[string]any{"id": conn.ID}).Body))
	// The introspected HRConnection type has no field that could hold them.
	intro := string(e.Do(org.AdminToken, `{ __type(name: "HRConnection") { fields { name } } }`, nil).Body)
	if strings.Contains(strings.ToLower(intro), "apikey") || strings.Contains(intro, "encrypted") {
		t.Errorf("HRConnection exposes a credentials field: %s", intro)
	}
	for _, s := range []string{secretKey, accountToken, "SECRET"} {
		for _, b := range bodies {
			if strings.Contains(b, s) {
				t.Errorf("an API answer holds %q: %s", s, b)
			}
		}
		if strings.Contains(e.LogText(), s) {
			t.Errorf("the log holds %q", s)
		}
	}
	// The column holds AES-GCM output only: no plain text, no base64 of it.
	rows, err := e.DB.SQL.Query(`SELECT api_key_encrypted, credentials_hint FROM hr_connections`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	n := 0
	for rows.Next() {
		var sealed []byte
		var hint string
		if err := rows.Scan(&sealed, &hint); err != nil {
			t.Fatal(err)
		}
		n++
		for _, s := range []string{secretKey, accountToken, "SECRET", "apiKey", "accountToken"} {
			if strings.Contains(string(sealed), s) {
				t.Errorf("the stored credentials hold %q in plain text", s)
			}
		}
		if len(sealed) < 1+12+16+len(secretKey) || sealed[0] != 1 {
			t.Errorf("stored value (%d bytes) is not a sealed value", len(sealed))
		}
		if hint != "••••e8f" && hint != "••••41d2" {
			t.Errorf("hint = %q", hint)
		}
	}
	if n != 1 {
		t.Fatalf("%d rows in hr_connections, want 1", n)
	}
	// Disconnecting deletes them.
	var disc struct {
		DisconnectHRSystem struct {
			DeletedID *string
			Errors    []hrErr
		}
	}
	wantData(t, e.Do(org.AdminToken, `mutation($id: ID!) { disconnectHRSystem(input: {id: $id}) { deletedID errors { code field message } } }`, map[string]any{"id": conn.ID}), &disc)
	if disc.DisconnectHRSystem.DeletedID == nil || *disc.DisconnectHRSystem.DeletedID != conn.ID {
		t.Fatalf("disconnect: %+v", disc)
	}
	var left, employees int
	if err := e.DB.SQL.QueryRow(`SELECT count(*) FROM hr_connections`).Scan(&left); err != nil {
		t.Fatal(err)
	}
	if err := e.DB.SQL.QueryRow(`SELECT count(*) FROM hr_employees`).Scan(&employees); err != nil {
		t.Fatal(err)
	}
	if left != 0 || employees != 0 {
		t.Errorf("after disconnect: %d connections, %d employees stored", left, employees)
	}
}

// TestHRConnectErrors: each way connecting fails has its own code, and a
// failed connect leaves nothing behind.
func TestHRConnectErrors(t *testing.T) {
	e := testutil.New(t)
	org := e.NewOrg("Acme")
	ts := hrtest.BambooHR(t, "acme", "bamboo-key-000001", false)
	ts.SetPeople(hrtest.Person{ID: "1", First: "Ada", Last: "Lovelace", Email: "ada@acme.test"})
	closed := hrtest.BambooHR(t, "acme", "bamboo-key-000001", false)
	closedURL := closed.URL
	closed.Close()

	with := func(mod func(map[string]any)) map[string]any {
		in := bambooInput(ts, "bamboo-key-000001")
		mod(in)
		return in
	}
	cases := []struct {
		name, code string
		in         map[string]any
	}{
		{"rejected credentials", "HR_CREDENTIALS_REJECTED", bambooInput(ts, "not-the-key-00001")},
		{"unreachable host", "HR_UNREACHABLE", with(func(in map[string]any) { in["baseURL"] = closedURL })},
		{"malformed URL", "HR_INVALID_URL", with(func(in map[string]any) { in["baseURL"] = "not a url" })},
		{"http URL", "HR_INVALID_URL", with(func(in map[string]any) { in["baseURL"] = strings.Replace(ts.URL, "https:", "http:", 1) })},
		{"unknown provider", "HR_UNKNOWN_PROVIDER", with(func(in map[string]any) { in["provider"] = "workday" })},
		{"missing credential", "INVALID_INPUT", with(func(in map[string]any) {
			in["credentials"] = []map[string]string{{"name": "companyDomain", "value": "acme"}}
		})},
		{"unknown credential", "INVALID_INPUT", with(func(in map[string]any) {
			in["credentials"] = append(in["credentials"].([]map[string]string), map[string]string{"name": "password", "value": "x"})
		})},
		{"interval under an hour", "INVALID_INPUT", with(func(in map[string]any) { in["syncInterval"] = "30m" })},
		{"interval not a duration", "INVALID_INPUT", with(func(in map[string]any) { in["syncInterval"] = "weekly" })},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			conn, errs := hrConnect(t, e, org.AdminToken, tc.in)
			if conn != nil || len(errs) != 1 || errs[0].Code != tc.code {
				t.Fatalf("got %+v %+v, want one %s error", conn, errs, tc.code)
			}
		})
	}
	t.Run("loopback refused without ADMIT_HR_ALLOW_PRIVATE_HOSTS", func(t *testing.T) {
		strict := testutil.HRTestHTTP()
		strict.AllowPrivate = false
		saved := e.HR.HTTP
		e.HR.HTTP = strict
		defer func() { e.HR.HTTP = saved }()
		hits := ts.Hits("/api/v1/employees")
		_, errs := hrConnect(t, e, org.AdminToken, bambooInput(ts, "bamboo-key-000001"))
		if len(errs) != 1 || errs[0].Code != "HR_HOST_NOT_ALLOWED" {
			t.Fatalf("errors = %+v, want HR_HOST_NOT_ALLOWED", errs)
		}
		if ts.Hits("/api/v1/employees") != hits {
			t.Error("the request reached the loopback server")
		}
	})
	if n := len(hrConnections(t, e, org.AdminToken)); n != 0 {
		t.Fatalf("%d connections after failed connects, want 0", n)
	}
	t.Run("members may not connect", func(t *testing.T) {
		e.NewUser(org, "member@acme.test", org.MemberRoleID)
		tok := e.SignIn("member@acme.test", testutil.DefaultPassword)
		e.Do(tok, hrConnectMutation, map[string]any{"in": bambooInput(ts, "bamboo-key-000001")}).MustFail("FORBIDDEN")
		e.Do(tok, hrConnectionsQuery, nil).MustFail("FORBIDDEN")
	})
	t.Run("a second connection to the same provider", func(t *testing.T) {
		if _, errs := hrConnect(t, e, org.AdminToken, bambooInput(ts, "bamboo-key-000001")); len(errs) > 0 {
			t.Fatal(errs)
		}
		if _, errs := hrConnect(t, e, org.AdminToken, bambooInput(ts, "bamboo-key-000001")); len(errs) != 1 || errs[0].Code != "HR_ALREADY_CONNECTED" {
			t.Fatalf("errors = %+v", errs)
		}
	})
}

// TestHRProvidersThroughTheAPI connects every provider and lists its
// employees.
func TestHRProvidersThroughTheAPI(t *testing.T) {
	e := testutil.New(t)
	org := e.NewOrg("Acme")
	people := []hrtest.Person{
		{ID: "1", First: "Ada", Last: "Lovelace", Email: "ada@acme.test"},
		{ID: "2", First: "Grace", Last: "Hopper", Email: "grace@acme.test"},
		{ID: "3", First: "Alan", Last: "Turing", Email: "alan@acme.test", Status: "inactive", End: "2024-01-01"},
	}
	servers := map[string]struct {
		ts    *hrtest.Server
		creds []map[string]string
	}{
		"bamboohr": {hrtest.BambooHR(t, "acme", "k-bamboo-00001", false), []map[string]string{{"name": "companyDomain", "value": "acme"}, {"name": "apiKey", "value": "k-bamboo-00001"}}},
		"personio": {hrtest.Personio(t, "pid", "k-personio-0001", 86400), []map[string]string{{"name": "clientID", "value": "pid"}, {"name": "clientSecret", "value": "k-personio-0001"}}},
		"hibob":    {hrtest.HiBob(t, "SVC", "k-hibob-000001"), []map[string]string{{"name": "serviceUserID", "value": "SVC"}, {"name": "token", "value": "k-hibob-000001"}}},
		"merge":    {hrtest.Merge(t, "k-merge-000001", "acct"), []map[string]string{{"name": "apiKey", "value": "k-merge-000001"}, {"name": "accountToken", "value": "acct"}}},
		"kombo":    {hrtest.Kombo(t, "k-kombo-000001", "int"), []map[string]string{{"name": "apiKey", "value": "k-kombo-000001"}, {"name": "integrationID", "value": "int"}}},
	}
	var providers struct {
		HrProviders []struct {
			Name   string
			Fields []struct {
				Name   string
				Secret bool
			}
		}
	}
	wantData(t, e.Do("", `{ hrProviders { name fields { name secret } } }`, nil), &providers)
	if len(providers.HrProviders) != len(servers) {
		t.Fatalf("hrProviders = %+v", providers)
	}
	for _, p := range providers.HrProviders {
		s, ok := servers[p.Name]
		if !ok {
			t.Fatalf("no test server for %s", p.Name)
		}
		s.ts.SetPeople(people...)
		conn, errs := hrConnect(t, e, org.AdminToken, map[string]any{"provider": p.Name, "credentials": s.creds, "baseURL": s.ts.URL})
		if len(errs) > 0 {
			t.Fatalf("%s: %+v", p.Name, errs)
		}
		got := hrStatuses(t, e, org.AdminToken, conn.ID)
		if got["Ada Lovelace"] != "NEW" || got["Grace Hopper"] != "NEW" || got["Alan Turing"] != "INACTIVE" || len(got) != 3 {
			t.Errorf("%s: statuses %v", p.Name, got)
		}
	}
}

// TestHRSyncFailingPartWayWritesNothing: a fetch that fails on a later
// page writes no invitations and keeps the employee list; the failure is
// recorded on the connection and in the audit log.
func TestHRSyncFailingPartWayWritesNothing(t *testing.T) {
	e := testutil.New(t)
	org := e.NewOrg("Acme")
	ts := hrtest.Merge(t, "merge-key-000001", "acct")
	ts.PageSize = 2
	ts.SetPeople(hrtest.Person{ID: "1", First: "Ada", Last: "Lovelace", Email: "ada@acme.test"})
	in := map[string]any{"provider": "merge", "baseURL": ts.URL, "autoInvite": true, "credentials": []map[string]string{
		{"name": "apiKey", "value": "merge-key-000001"}, {"name": "accountToken", "value": "acct"}}}
	conn, errs := hrConnect(t, e, org.AdminToken, in)
	if len(errs) > 0 {
		t.Fatal(errs)
	}
	var more []hrtest.Person
	for i := range 5 {
		more = append(more, hrtest.Person{ID: fmt.Sprint(10 + i), First: "New", Last: fmt.Sprint(i), Email: fmt.Sprintf("new%d@acme.test", i)})
	}
	ts.SetPeople(more...)
	ts.Fail("/api/hris", 1, -1, 502, "") // page 2 of 3 keeps failing
	var out struct {
		SyncHRSystem struct {
			Connection *struct {
				LastSyncStatus *string
				LastSyncError  string
			}
			Result *struct{ Status string }
			Errors []hrErr
		}
	}
	wantData(t, e.Do(org.AdminToken, `mutation($id: ID!) { syncHRSystem(id: $id) { connection { lastSyncStatus lastSyncError } result { status } errors { code field message } } }`,
		map[string]any{"id": conn.ID}), &out)
	p := out.SyncHRSystem
	if len(p.Errors) != 1 || p.Errors[0].Code != "HR_UNREACHABLE" {
		t.Fatalf("errors = %+v", p.Errors)
	}
	if p.Connection == nil || p.Connection.LastSyncStatus == nil || *p.Connection.LastSyncStatus != "FAILED" || !strings.Contains(p.Connection.LastSyncError, "502") {
		t.Errorf("connection = %+v", p.Connection)
	}
	if n := hrInvitationCount(t, e); n != 0 {
		t.Errorf("%d invitations written by a failed sync", n)
	}
	if got := hrStatuses(t, e, org.AdminToken, conn.ID); len(got) != 1 || got["Ada Lovelace"] != "NEW" {
		t.Errorf("employee list changed by a failed sync: %v", got)
	}
	var audit struct {
		AuditEvents struct{ TotalCount int }
	}
	wantData(t, e.Do(org.AdminToken, `{ auditEvents(where: {action: "hr.sync_failed"}) { totalCount } }`, nil), &audit)
	if audit.AuditEvents.TotalCount != 1 {
		t.Errorf("%d hr.sync_failed audit events, want 1", audit.AuditEvents.TotalCount)
	}
	// Once the provider recovers, the next sync reads and invites them all.
	ts.Heal()
	var ok struct {
		SyncHRSystem struct {
			Result *struct {
				Status   string
				Invited  int
				Problems []string
			}
			Errors []hrErr
		}
	}
	wantData(t, e.Do(org.AdminToken, `mutation($id: ID!) { syncHRSystem(id: $id) { result { status invited problems } errors { code field message } } }`,
		map[string]any{"id": conn.ID}), &ok)
	if r := ok.SyncHRSystem.Result; len(ok.SyncHRSystem.Errors) > 0 || r == nil || r.Status != "SUCCEEDED" || r.Invited != 5 {
		t.Fatalf("sync after recovery: %+v", ok.SyncHRSystem)
	}
	if n := hrInvitationCount(t, e); n != 5 {
		t.Errorf("%d invitations after recovery, want 5", n)
	}
}

// TestHROneReplicaRunsEachSync: several schedulers (replicas) on one
// database run a due sync exactly once; a held lease blocks a manual sync
// until it runs out.
func TestHROneReplicaRunsEachSync(t *testing.T) {
	e := testutil.New(t)
	org := e.NewOrg("Acme")
	ts := hrtest.Kombo(t, "kombo-key-000001", "int")
	ts.SetPeople(hrtest.Person{ID: "1", First: "Ada", Last: "Lovelace", Email: "ada@acme.test"})
	in := map[string]any{"provider": "kombo", "baseURL": ts.URL, "autoInvite": true, "syncInterval": "1h", "credentials": []map[string]string{
		{"name": "apiKey", "value": "kombo-key-000001"}, {"name": "integrationID", "value": "int"}}}
	conn, errs := hrConnect(t, e, org.AdminToken, in)
	if len(errs) > 0 {
		t.Fatal(errs)
	}
	ts.SetPeople(
		hrtest.Person{ID: "1", First: "Ada", Last: "Lovelace", Email: "ada@acme.test"},
		hrtest.Person{ID: "2", First: "Grace", Last: "Hopper", Email: "grace@acme.test"},
	)
	e.Clock.Advance(time.Hour + time.Second)
	replicas := make([]*hr.Service, 4)
	for i := range replicas {
		r := *e.HR
		r.HTTP = testutil.HRTestHTTP()
		replicas[i] = &r
	}
	hits := ts.Hits("/v1/hris/employees")
	var wg sync.WaitGroup
	ran := make([]int, len(replicas))
	start := make(chan struct{})
	for i, r := range replicas {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			n, err := r.RunDue(context.Background())
			if err != nil {
				t.Errorf("replica %d: %v", i, err)
			}
			ran[i] = n
		}()
	}
	close(start)
	wg.Wait()
	total := 0
	for _, n := range ran {
		total += n
	}
	if total != 1 {
		t.Fatalf("replicas ran %v syncs, want exactly 1 in all", ran)
	}
	if n := ts.Hits("/v1/hris/employees") - hits; n != 1 {
		t.Errorf("the HR system was read %d times, want 1", n)
	}
	if n := hrInvitationCount(t, e); n != 2 {
		t.Errorf("%d invitations, want 2", n)
	}

	// A lease held by a replica that is still running (or died a minute
	// ago) blocks a manual sync, until it runs out.
	if _, err := e.DB.SQL.Exec(`UPDATE hr_connections SET sync_lease_until = $1`, e.Clock.Now().Add(time.Minute)); err != nil {
		t.Fatal(err)
	}
	const syncMutation = `mutation($id: ID!) { syncHRSystem(id: $id) { result { status } errors { code field message } } }`
	var out struct {
		SyncHRSystem struct {
			Result *struct{ Status string }
			Errors []hrErr
		}
	}
	wantData(t, e.Do(org.AdminToken, syncMutation, map[string]any{"id": conn.ID}), &out)
	if len(out.SyncHRSystem.Errors) != 1 || out.SyncHRSystem.Errors[0].Code != "HR_SYNC_IN_PROGRESS" {
		t.Fatalf("sync while leased: %+v", out.SyncHRSystem)
	}
	e.Clock.Advance(2 * time.Minute)
	wantData(t, e.Do(org.AdminToken, syncMutation, map[string]any{"id": conn.ID}), &out)
	if len(out.SyncHRSystem.Errors) != 0 || out.SyncHRSystem.Result == nil || out.SyncHRSystem.Result.Status != "SUCCEEDED" {
		t.Fatalf("sync after the lease ran out: %+v", out.SyncHRSystem)
	}
}

// TestHRTenancy: another organization's connection reads as missing.
func TestHRTenancy(t *testing.T) {
	e := testutil.New(t)
	a, b := e.NewOrg("Acme"), e.NewOrg("Globex")
	ts := hrtest.HiBob(t, "SVC", "hibob-token-00001")
	ts.SetPeople(hrtest.Person{ID: "1", First: "Ada", Last: "Lovelace", Email: "ada@acme.test"})
	conn, errs := hrConnect(t, e, a.AdminToken, map[string]any{"provider": "hibob", "baseURL": ts.URL, "credentials": []map[string]string{
		{"name": "serviceUserID", "value": "SVC"}, {"name": "token", "value": "hibob-token-00001"}}})
	if len(errs) > 0 {
		t.Fatal(errs)
	}
	e.Do(b.AdminToken, hrEmployeesQuery, map[string]any{"id": conn.ID}).MustFail("NOT_FOUND")
	e.Do(b.AdminToken, hrInviteMutation, map[string]any{"in": map[string]any{"connectionID": conn.ID, "all": true}}).MustFail("NOT_FOUND")
	e.Do(b.AdminToken, `mutation($id: ID!) { syncHRSystem(id: $id) { errors { code } } }`, map[string]any{"id": conn.ID}).MustFail("NOT_FOUND")
	e.Do(b.AdminToken, `mutation($id: ID!) { disconnectHRSystem(input: {id: $id}) { errors { code } } }`, map[string]any{"id": conn.ID}).MustFail("NOT_FOUND")
	if n := len(hrConnections(t, e, b.AdminToken)); n != 0 {
		t.Errorf("Globex sees %d connections", n)
	}
	if hrInvitationCount(t, e) != 0 {
		t.Error("invitations written across tenants")
	}
}

// TestHRSettingsAndAutopilotActor: updateHRConnection changes the
// autopilot settings under the role ceiling; scheduled syncs act as the
// admin who set them, and stop (recording why) when that admin is no
// longer one; outside-domain addresses are never invited.
func TestHRSettingsAndAutopilotActor(t *testing.T) {
	e := testutil.New(t)
	org := e.NewOrg("Acme")
	e.Do(org.AdminToken, `mutation { addOrganizationDomain(input: {domain: "acme.test"}) { errors { code } } }`, nil).MustData(&struct {
		AddOrganizationDomain struct{ Errors []struct{ Code string } }
	}{})
	ts := hrtest.Merge(t, "merge-key-000001", "acct")
	ts.SetPeople(
		hrtest.Person{ID: "1", First: "Ada", Last: "Lovelace", Email: "ada@acme.test"},
		hrtest.Person{ID: "2", First: "Moonlighting", Last: "Contractor", Email: "mc@gmail.test"},
	)
	conn, errs := hrConnect(t, e, org.AdminToken, map[string]any{"provider": "merge", "baseURL": ts.URL, "credentials": []map[string]string{
		{"name": "apiKey", "value": "merge-key-000001"}, {"name": "accountToken", "value": "acct"}}})
	if len(errs) > 0 {
		t.Fatal(errs)
	}
	if got := hrStatuses(t, e, org.AdminToken, conn.ID); got["Moonlighting Contractor"] != "OUTSIDE_DOMAIN" || got["Ada Lovelace"] != "NEW" {
		t.Fatalf("statuses = %v", got)
	}
	p := hrInvite(t, e, org.AdminToken, map[string]any{"connectionID": conn.ID, "employeeIDs": []string{"emp-2", "emp-1", "emp-1", "nobody"}})
	if oc := outcomes(p); oc["Moonlighting Contractor"] != "SKIPPED DOMAIN_NOT_ALLOWED" || oc["Ada Lovelace"] != "INVITED" || len(p.Results) != 3 {
		t.Errorf("selected invite: %v (%d results)", oc, len(p.Results))
	}
	if last := p.Results[len(p.Results)-1]; last.EmployeeID != "nobody" || last.Code == nil || *last.Code != "HR_EMPLOYEE_NOT_FOUND" {
		t.Errorf("unknown employee: %+v", last)
	}

	const update = `mutation($in: UpdateHRConnectionInput!) { updateHRConnection(input: $in) {
  connection { autoInvite deactivateLeavers syncInterval nextSyncAt role { name } } errors { code field message } } }`
	type updated struct {
		UpdateHRConnection struct {
			Connection *struct {
				AutoInvite        bool
				DeactivateLeavers bool
				SyncInterval      *string
				NextSyncAt        *time.Time
				Role              *struct{ Name string }
			}
			Errors []hrErr
		}
	}
	// A second admin, ranked below a role they may not grant.
	deputyRole := e.NewRole(org, "Deputy", true, 50)
	senior := e.NewRole(org, "Senior", false, 80)
	e.NewUser(org, "deputy@acme.test", deputyRole.ID)
	deputy := e.SignIn("deputy@acme.test", testutil.DefaultPassword)
	e.Do(deputy, update, map[string]any{"in": map[string]any{"id": conn.ID, "roleID": testutil.ID(senior.ID)}}).MustFail("FORBIDDEN")
	var u updated
	wantData(t, e.Do(deputy, update, map[string]any{"in": map[string]any{"id": conn.ID, "syncInterval": "10m"}}), &u)
	if len(u.UpdateHRConnection.Errors) != 1 || u.UpdateHRConnection.Errors[0].Code != "INVALID_INPUT" {
		t.Errorf("10m interval: %+v", u.UpdateHRConnection)
	}
	wantData(t, e.Do(deputy, update, map[string]any{"in": map[string]any{"id": conn.ID, "syncInterval": "24h", "autoInvite": true}}), &u)
	c := u.UpdateHRConnection.Connection
	if c == nil || !c.AutoInvite || c.SyncInterval == nil || *c.SyncInterval != "24h" || c.NextSyncAt == nil || c.Role != nil {
		t.Fatalf("update: %+v", u.UpdateHRConnection)
	}

	// The deputy set autopilot up, so scheduled syncs act as the deputy;
	// once demoted, the sync refuses to run and says why.
	ts.SetPeople(append(ts.People(), hrtest.Person{ID: "3", First: "Grace", Last: "Hopper", Email: "grace@acme.test"})...)
	if _, err := e.DB.SQL.Exec(`UPDATE users SET role_id = $1 WHERE email = 'deputy@acme.test'`, org.MemberRoleID); err != nil {
		t.Fatal(err)
	}
	e.Clock.Advance(25 * time.Hour)
	if ran, err := e.HR.RunDue(context.Background()); err != nil || ran != 1 {
		t.Fatalf("RunDue = %d, %v", ran, err)
	}
	org.AdminToken = e.SignIn(org.AdminEmail, org.AdminPassword)
	got := hrConnections(t, e, org.AdminToken)[0]
	if got.LastSyncStatus == nil || *got.LastSyncStatus != "FAILED" || !strings.Contains(got.LastSyncError, "no longer an active administrator") {
		t.Errorf("after demoting the autopilot admin: %+v", got)
	}
	if n := hrInvitationCount(t, e); n != 1 {
		t.Errorf("%d HR invitations, want only Ada's", n)
	}
	// Another admin takes autopilot over by saving the settings.
	wantData(t, e.Do(org.AdminToken, update, map[string]any{"in": map[string]any{"id": conn.ID, "autoInvite": true}}), &u)
	e.Clock.Advance(25 * time.Hour)
	if ran, err := e.HR.RunDue(context.Background()); err != nil || ran != 1 {
		t.Fatalf("RunDue = %d, %v", ran, err)
	}
	org.AdminToken = e.SignIn(org.AdminEmail, org.AdminPassword)
	got = hrConnections(t, e, org.AdminToken)[0]
	if got.LastSyncStatus == nil || *got.LastSyncStatus != "SUCCEEDED" || got.LastSyncInvited != 1 {
		t.Errorf("after another admin took over: %+v", got)
	}
	if n := hrInvitationCount(t, e); n != 2 {
		t.Errorf("%d HR invitations, want Ada's and Grace's (never the outside-domain one)", n)
	}
}

// TestHRLeavers: with deactivateLeavers, a leaver's pending invitation is
// revoked, and the admin the sync runs as is reported, never deactivated.
// A mutation that mixes syncHRSystem with another field runs in the shared
// transaction and works too.
func TestHRLeavers(t *testing.T) {
	e := testutil.New(t)
	org := e.NewOrg("Acme")
	ts := hrtest.HiBob(t, "SVC", "hibob-token-00001")
	ts.SetPeople(
		hrtest.Person{ID: "1", First: "Ada", Last: "Lovelace", Email: "ada@acme.test"},
		hrtest.Person{ID: "2", First: "The", Last: "Admin", Email: org.AdminEmail},
	)
	conn, errs := hrConnect(t, e, org.AdminToken, map[string]any{"provider": "hibob", "baseURL": ts.URL, "deactivateLeavers": true,
		"credentials": []map[string]string{{"name": "serviceUserID", "value": "SVC"}, {"name": "token", "value": "hibob-token-00001"}}})
	if len(errs) > 0 {
		t.Fatal(errs)
	}
	if p := hrInvite(t, e, org.AdminToken, map[string]any{"connectionID": conn.ID, "employeeIDs": []string{"1"}}); p.Counts.Invited != 1 {
		t.Fatalf("invite: %+v", p)
	}
	ts.SetPeople(
		hrtest.Person{ID: "1", First: "Ada", Last: "Lovelace", Email: "ada@acme.test", Status: "inactive", End: "2024-01-31"},
		hrtest.Person{ID: "2", First: "The", Last: "Admin", Email: org.AdminEmail, Status: "inactive", End: "2024-01-31"},
	)
	var out struct {
		SyncHRSystem struct {
			Result *struct {
				Status      string
				Deactivated int
				Problems    []string
			}
			Errors []hrErr
		}
		Auditor struct{ Errors []struct{ Code string } }
	}
	wantData(t, e.Do(org.AdminToken, `mutation($id: ID!) {
  syncHRSystem(id: $id) { result { status deactivated problems } errors { code field message } }
  auditor: createRole(input: {name: "Auditor", rank: 5}) { errors { code } }
}`, map[string]any{"id": conn.ID}), &out)
	if len(out.Auditor.Errors) > 0 {
		t.Errorf("createRole beside syncHRSystem: %+v", out.Auditor.Errors)
	}
	r := out.SyncHRSystem.Result
	if r == nil || r.Status != "SUCCEEDED" || r.Deactivated != 0 || len(r.Problems) != 1 || !strings.Contains(r.Problems[0], "runs this connection's syncs") {
		t.Fatalf("sync: %+v", out.SyncHRSystem)
	}
	var invs struct {
		Invitations struct {
			Edges []struct {
				Node struct {
					Email  *string
					Status string
				}
			}
		}
	}
	wantData(t, e.Do(org.AdminToken, `{ invitations(where: {source: HR}) { edges { node { email status } } } }`, nil), &invs)
	if len(invs.Invitations.Edges) != 1 || invs.Invitations.Edges[0].Node.Status != "REVOKED" {
		t.Errorf("the leaver's invitation: %+v", invs.Invitations.Edges)
	}
	var me struct{ Me struct{ Email *string } }
	wantData(t, e.Do(org.AdminToken, `{ me { email } }`, nil), &me)
}

// TestHRSyncThatOutlivesItsLeaseWritesNothing: when another replica takes
// the lease over while a sync is still fetching, the first one's results
// are discarded.
func TestHRSyncThatOutlivesItsLeaseWritesNothing(t *testing.T) {
	e := testutil.New(t)
	org := e.NewOrg("Acme")
	ts := hrtest.Kombo(t, "kombo-key-000001", "int")
	ts.SetPeople(hrtest.Person{ID: "1", First: "Ada", Last: "Lovelace", Email: "ada@acme.test"})
	conn, errs := hrConnect(t, e, org.AdminToken, map[string]any{"provider": "kombo", "baseURL": ts.URL, "autoInvite": true,
		"credentials": []map[string]string{{"name": "apiKey", "value": "kombo-key-000001"}, {"name": "integrationID", "value": "int"}}})
	if len(errs) > 0 {
		t.Fatal(errs)
	}
	ts.Before = func(*http.Request) {
		// Another replica's lease, as if this one had stalled past its own.
		if _, err := e.DB.SQL.Exec(`UPDATE hr_connections SET sync_lease_until = $1`, e.Clock.Now().Add(time.Hour)); err != nil {
			t.Error(err)
		}
	}
	var out struct {
		SyncHRSystem struct {
			Result *struct{ Status string }
			Errors []hrErr
		}
	}
	wantData(t, e.Do(org.AdminToken, `mutation($id: ID!) { syncHRSystem(id: $id) { result { status } errors { code field message } } }`, map[string]any{"id": conn.ID}), &out)
	if len(out.SyncHRSystem.Errors) != 1 || out.SyncHRSystem.Errors[0].Code != "HR_SYNC_IN_PROGRESS" {
		t.Fatalf("sync = %+v", out.SyncHRSystem)
	}
	if n := hrInvitationCount(t, e); n != 0 {
		t.Errorf("%d invitations from a sync that lost its lease", n)
	}
	if c := hrConnections(t, e, org.AdminToken)[0]; c.LastSyncInvited != 0 || c.LastSyncStatus == nil || *c.LastSyncStatus != "SUCCEEDED" {
		t.Errorf("connection = %+v, want the connect-time result untouched", c)
	}
}
