package graph_test

import (
	"bytes"
	"encoding/json"
	"slices"
	"strconv"
	"strings"
	"testing"

	"admit/internal/testutil"
)

// Helpers shared by the tenancy, roles and organization tests. They report to
// the *testing.T they are given, so they work inside t.Run subtests, where
// Response.MustData and MustFail would report to the Env's test instead.

// payloadError is one entry of a mutation payload's `errors { code field message }`.
type payloadError struct {
	Code    string
	Field   *string
	Message string
}

// wantData fails t on GraphQL errors and decodes data into v strictly: v must
// declare every selected field.
func wantData(t *testing.T, r *testutil.Response, v any) {
	t.Helper()
	if len(r.Errors) > 0 {
		t.Fatalf("want no GraphQL errors, got HTTP %d: %s", r.Status, r.Body)
	}
	dec := json.NewDecoder(bytes.NewReader(r.Data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		t.Fatalf("decode data %s: %v", r.Data, err)
	}
}

// wantError fails t unless r carries exactly one GraphQL error, with
// extensions.code code, and returns it.
func wantError(t *testing.T, r *testutil.Response, code string) testutil.GQLError {
	t.Helper()
	if len(r.Errors) != 1 || r.Errors[0].Code() != code {
		t.Fatalf("want one error with code %s, got HTTP %d: %s", code, r.Status, r.Body)
	}
	return r.Errors[0]
}

// wantNoPayloadErrors fails t unless a payload's errors list is empty.
func wantNoPayloadErrors(t *testing.T, errs []payloadError) {
	t.Helper()
	if len(errs) != 0 {
		t.Fatalf("want no payload errors, got %+v", errs)
	}
}

// wantPayloadError fails t unless errs is exactly one error with code and
// field ("" for a null field).
func wantPayloadError(t *testing.T, errs []payloadError, code, field string) {
	t.Helper()
	if len(errs) != 1 {
		t.Fatalf("want one payload error %s on %q, got %+v", code, field, errs)
	}
	got := ""
	if errs[0].Field != nil {
		got = *errs[0].Field
	}
	if errs[0].Code != code || got != field || errs[0].Message == "" {
		t.Fatalf("want payload error %s on %q with a message, got %s on %q (%q)", code, field, errs[0].Code, got, errs[0].Message)
	}
}

// idOf parses a GraphQL ID.
func idOf(t *testing.T, id string) int {
	t.Helper()
	n, err := strconv.Atoi(id)
	if err != nil {
		t.Fatalf("ID %q is not an integer: %v", id, err)
	}
	return n
}

type userRow struct {
	ID     string
	Email  *string
	Name   string
	Status string
	Role   struct {
		ID   string
		Name string
	}
}

const usersQuery = `query($where: UserWhereInput) {
  users(first: 100, where: $where, orderBy: {field: EMAIL}) {
    totalCount
    edges { node { id email name status role { id name } } }
  }
}`

// listUsers returns the users token sees (ordered by email) and totalCount.
func listUsers(t *testing.T, e *testutil.Env, token string, where map[string]any) (int, []userRow) {
	t.Helper()
	var out struct {
		Users struct {
			TotalCount int
			Edges      []struct{ Node userRow }
		}
	}
	var vars map[string]any
	if where != nil {
		vars = map[string]any{"where": where}
	}
	wantData(t, e.Do(token, usersQuery, vars), &out)
	rows := make([]userRow, 0, len(out.Users.Edges))
	for _, edge := range out.Users.Edges {
		rows = append(rows, edge.Node)
	}
	return out.Users.TotalCount, rows
}

// userByEmail returns the user token sees with that email, failing t when
// there is none.
func userByEmail(t *testing.T, e *testutil.Env, token, email string) userRow {
	t.Helper()
	_, rows := listUsers(t, e, token, nil)
	for _, u := range rows {
		if u.Email != nil && *u.Email == email {
			return u
		}
	}
	t.Fatalf("want a user %s, got %+v", email, rows)
	return userRow{}
}

type roleRow struct {
	ID      string
	Name    string
	Rank    int
	Admin   bool
	Builtin bool
}

const rolesQuery = `query($where: RoleWhereInput) {
  roles(first: 100, where: $where, orderBy: {field: NAME}) {
    totalCount
    edges { node { id name rank admin builtin } }
  }
}`

// listRoles returns the roles token sees (ordered by name) and totalCount.
func listRoles(t *testing.T, e *testutil.Env, token string, where map[string]any) (int, []roleRow) {
	t.Helper()
	var out struct {
		Roles struct {
			TotalCount int
			Edges      []struct{ Node roleRow }
		}
	}
	var vars map[string]any
	if where != nil {
		vars = map[string]any{"where": where}
	}
	wantData(t, e.Do(token, rolesQuery, vars), &out)
	rows := make([]roleRow, 0, len(out.Roles.Edges))
	for _, edge := range out.Roles.Edges {
		rows = append(rows, edge.Node)
	}
	return out.Roles.TotalCount, rows
}

// roleNamed returns the role token sees with that name, or nil.
func roleNamed(t *testing.T, e *testutil.Env, token, name string) *roleRow {
	t.Helper()
	_, rows := listRoles(t, e, token, nil)
	for _, r := range rows {
		if r.Name == name {
			return &r
		}
	}
	return nil
}

type auditRow struct {
	Action     string
	TargetType string
	Summary    string
	Actor      *struct{ Email *string }
}

// actorEmail is the email of the event's actor, or "".
func (a auditRow) actorEmail() string {
	if a.Actor == nil || a.Actor.Email == nil {
		return ""
	}
	return *a.Actor.Email
}

const auditQuery = `query($where: AuditEventWhereInput) {
  auditEvents(first: 100, where: $where) {
    totalCount
    edges { node { action targetType summary actor { email } } }
  }
}`

// auditLog returns the audit events token sees and totalCount.
func auditLog(t *testing.T, e *testutil.Env, token string, where map[string]any) (int, []auditRow) {
	t.Helper()
	var out struct {
		AuditEvents struct {
			TotalCount int
			Edges      []struct{ Node auditRow }
		}
	}
	var vars map[string]any
	if where != nil {
		vars = map[string]any{"where": where}
	}
	wantData(t, e.Do(token, auditQuery, vars), &out)
	rows := make([]auditRow, 0, len(out.AuditEvents.Edges))
	for _, edge := range out.AuditEvents.Edges {
		rows = append(rows, edge.Node)
	}
	if len(rows) != out.AuditEvents.TotalCount {
		t.Fatalf("auditEvents: totalCount %d but %d edges", out.AuditEvents.TotalCount, len(rows))
	}
	return out.AuditEvents.TotalCount, rows
}

// hasAudit reports whether events hold action with summary by actor.
func hasAudit(events []auditRow, action, summary, actor string) bool {
	return slices.ContainsFunc(events, func(a auditRow) bool {
		return a.Action == action && a.Summary == summary && a.actorEmail() == actor
	})
}

const (
	updateRoleMutation = `mutation($in: UpdateRoleInput!) { updateRole(input: $in) { role { id name rank admin builtin } errors { code field message } } }`
	deleteRoleMutation = `mutation($id: ID!) { deleteRole(input: {id: $id}) { deletedID errors { code field message } } }`
	updateUserMutation = `mutation($in: UpdateUserInput!) { updateUser(input: $in) { user { id name status role { id name } } errors { code field message } } }`
	createRoleMutation = `mutation($in: CreateRoleInput!) { createRole(input: $in) { role { id name rank admin builtin } errors { code field message } } }`
)

type rolePayload struct {
	Role   *roleRow
	Errors []payloadError
}

type userPayload struct {
	User *struct {
		ID     string
		Name   string
		Status string
		Role   struct {
			ID   string
			Name string
		}
	}
	Errors []payloadError
}

// tenants is two organizations, each with extra users and a custom role.
type tenants struct {
	e                     *testutil.Env
	a, b                  *testutil.Org
	aUserID, bUserID      int
	aRoleID, bRoleID      int
	bUserEmail, bRoleName string
}

func newTenants(t *testing.T) *tenants {
	t.Helper()
	e := testutil.New(t)
	a := e.NewOrg("Acme")
	b := e.NewOrg("Globex")
	ann := e.NewUser(a, "ann@acme.test", a.MemberRoleID)
	e.NewUser(a, "bob@acme.test", a.MemberRoleID)
	carol := e.NewUser(b, "carol@globex.test", b.MemberRoleID)
	e.NewUser(b, "dave@globex.test", b.MemberRoleID)
	aRole := e.NewRole(a, "Auditors", false, 20)
	bRole := e.NewRole(b, "Contractors", false, 5)
	return &tenants{
		e: e, a: a, b: b,
		aUserID: ann.ID, bUserID: carol.ID,
		aRoleID: aRole.ID, bRoleID: bRole.ID,
		bUserEmail: "carol@globex.test", bRoleName: "Contractors",
	}
}

func TestListsShowOnlyTheViewersOrganization(t *testing.T) {
	t.Parallel()
	ts := newTenants(t)
	e, a, b := ts.e, ts.a, ts.b
	// Each admin writes audit events of their own.
	for _, c := range []struct {
		org  *testutil.Org
		name string
	}{{a, "Acme Only"}, {b, "Globex Only"}} {
		var out struct{ CreateRole rolePayload }
		wantData(t, e.Do(c.org.AdminToken, createRoleMutation, map[string]any{"in": map[string]any{"name": c.name}}), &out)
		wantNoPayloadErrors(t, out.CreateRole.Errors)
	}

	n, users := listUsers(t, e, a.AdminToken, nil)
	var emails []string
	for _, u := range users {
		emails = append(emails, *u.Email)
	}
	if want := []string{"admin@acme.test", "ann@acme.test", "bob@acme.test"}; n != 3 || !slices.Equal(emails, want) {
		t.Fatalf("users: want totalCount 3 and %v, got %d and %v", want, n, emails)
	}

	n, roles := listRoles(t, e, a.AdminToken, nil)
	var names []string
	for _, r := range roles {
		names = append(names, r.Name)
	}
	if want := []string{"Acme Only", "Admin", "Auditors", "Member"}; n != 4 || !slices.Equal(names, want) {
		t.Fatalf("roles: want totalCount 4 and %v, got %d and %v", want, n, names)
	}

	_, events := auditLog(t, e, a.AdminToken, nil)
	if !hasAudit(events, "role.created", "Acme Only", a.AdminEmail) {
		t.Fatalf("auditEvents: want Acme's role.created, got %+v", events)
	}
	for _, ev := range events {
		if ev.actorEmail() != a.AdminEmail || strings.Contains(ev.Summary, "Globex") {
			t.Fatalf("auditEvents: want only Acme's events, got %+v", ev)
		}
	}
	_, bEvents := auditLog(t, e, b.AdminToken, nil)
	if !hasAudit(bEvents, "role.created", "Globex Only", b.AdminEmail) {
		t.Fatalf("auditEvents of Globex: want its role.created, got %+v", bEvents)
	}
}

// nodeQuery selects a node of any type this test touches.
const nodeQuery = `query($id: ID!) { node(id: $id) { id ... on User { email } ... on Role { name } ... on Organization { name } } }`

// nodeAnswer is node's data and its single error, decoded loosely because
// the selection depends on the node's type.
func nodeAnswer(t *testing.T, e *testutil.Env, token string, id int) (json.RawMessage, testutil.GQLError) {
	t.Helper()
	r := e.Do(token, nodeQuery, map[string]any{"id": testutil.ID(id)})
	var out struct{ Node json.RawMessage }
	if err := json.Unmarshal(r.Data, &out); err != nil {
		t.Fatalf("decode node data %s: %v", r.Data, err)
	}
	if len(r.Errors) == 0 {
		return out.Node, testutil.GQLError{}
	}
	if len(r.Errors) != 1 {
		t.Fatalf("node(%d): want at most one error, got %s", id, r.Body)
	}
	return out.Node, r.Errors[0]
}

func TestNodeOfAnotherOrganizationReadsAsMissing(t *testing.T) {
	t.Parallel()
	ts := newTenants(t)
	e, a, b := ts.e, ts.a, ts.b

	// The same query finds A's own objects, so a null below is the tenant
	// rule at work and not a broken query.
	for _, own := range []struct {
		name string
		id   int
		want string
	}{
		{"user", ts.aUserID, `"email":"ann@acme.test"`},
		{"role", ts.aRoleID, `"name":"Auditors"`},
		{"organization", a.ID, `"name":"Acme"`},
	} {
		node, err := nodeAnswer(t, e, a.AdminToken, own.id)
		if err.Message != "" || !strings.Contains(string(node), own.want) {
			t.Fatalf("node(own %s): want %s, got %s (error %+v)", own.name, own.want, node, err)
		}
	}

	tests := []struct {
		name             string
		foreign, missing int
	}{
		{"user", ts.bUserID, ts.bUserID + 100000},
		{"role", ts.bRoleID, ts.bRoleID + 100000},
		{"organization", b.ID, b.ID + 100000},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			foreignNode, foreignErr := nodeAnswer(t, e, a.AdminToken, tt.foreign)
			missingNode, missingErr := nodeAnswer(t, e, a.AdminToken, tt.missing)
			if string(foreignNode) != "null" || foreignErr.Code() != "NOT_FOUND" {
				t.Fatalf("node(B's %s): want null and NOT_FOUND, got %s and %+v", tt.name, foreignNode, foreignErr)
			}
			if string(missingNode) != "null" || missingErr.Code() != "NOT_FOUND" {
				t.Fatalf("node(missing %s): want null and NOT_FOUND, got %s and %+v", tt.name, missingNode, missingErr)
			}
			// Only the ID in the message may differ.
			fm := strings.ReplaceAll(foreignErr.Message, testutil.ID(tt.foreign), "<id>")
			mm := strings.ReplaceAll(missingErr.Message, testutil.ID(tt.missing), "<id>")
			if fm != mm || len(foreignErr.Extensions) != len(missingErr.Extensions) {
				t.Fatalf("want the foreign and the missing %s to answer alike, got %+v and %+v", tt.name, foreignErr, missingErr)
			}
			// B's admin does see it: the ID is real.
			node, err := nodeAnswer(t, e, b.AdminToken, tt.foreign)
			if err.Message != "" || string(node) == "null" {
				t.Fatalf("node(%d) as B's admin: want the %s, got %s (error %+v)", tt.foreign, tt.name, node, err)
			}
		})
	}
}

func TestNodesOmitsAnotherOrganizationsObjects(t *testing.T) {
	t.Parallel()
	ts := newTenants(t)
	e, a := ts.e, ts.a
	r := e.Do(a.AdminToken, `query($ids: [ID!]!) { nodes(ids: $ids) { id ... on User { email } } }`,
		map[string]any{"ids": []string{testutil.ID(ts.aUserID), testutil.ID(ts.bUserID)}})
	var out struct {
		Nodes []*struct {
			ID    string
			Email *string
		}
	}
	if err := json.Unmarshal(r.Data, &out); err != nil {
		t.Fatalf("decode nodes %s: %v", r.Data, err)
	}
	if len(out.Nodes) != 2 || out.Nodes[0] == nil || out.Nodes[0].Email == nil || *out.Nodes[0].Email != "ann@acme.test" || out.Nodes[1] != nil {
		t.Fatalf("nodes: want [ann@acme.test, null], got %s", r.Data)
	}
	if len(r.Errors) != 1 || r.Errors[0].Code() != "NOT_FOUND" {
		t.Fatalf("nodes: want one NOT_FOUND error for B's user, got %s", r.Body)
	}
	if p := r.Errors[0].Path; len(p) != 2 || p[0] != "nodes" || p[1] != float64(1) {
		t.Fatalf("nodes: want the error at [nodes 1], got %v", p)
	}
	if strings.Contains(string(r.Body), ts.bUserEmail) {
		t.Fatalf("nodes leaks B's user: %s", r.Body)
	}
}

func TestMutationsOnAnotherOrganizationReadAsMissing(t *testing.T) {
	t.Parallel()
	ts := newTenants(t)
	e, a, b := ts.e, ts.a, ts.b
	_, auditBefore := auditLog(t, e, b.AdminToken, nil)

	tests := []struct {
		name  string
		query string
		vars  map[string]any
	}{
		{"updateRole", updateRoleMutation, map[string]any{"in": map[string]any{"id": testutil.ID(ts.bRoleID), "name": "Hijacked", "rank": 1}}},
		{"deleteRole", deleteRoleMutation, map[string]any{"id": testutil.ID(ts.bRoleID)}},
		{"updateUser name", updateUserMutation, map[string]any{"in": map[string]any{"id": testutil.ID(ts.bUserID), "name": "Hijacked"}}},
		{"updateUser status", updateUserMutation, map[string]any{"in": map[string]any{"id": testutil.ID(ts.bUserID), "status": "DEACTIVATED"}}},
		{"updateUser role", updateUserMutation, map[string]any{"in": map[string]any{"id": testutil.ID(ts.bUserID), "roleID": testutil.ID(ts.bRoleID)}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := e.Do(a.AdminToken, tt.query, tt.vars)
			wantError(t, r, "NOT_FOUND")
			if strings.Contains(string(r.Body), ts.bUserEmail) || strings.Contains(string(r.Body), ts.bRoleName) {
				t.Fatalf("the error leaks B's data: %s", r.Body)
			}
		})
	}

	// B's admin sees B's data as it was.
	role := roleNamed(t, e, b.AdminToken, ts.bRoleName)
	if role == nil || role.ID != testutil.ID(ts.bRoleID) || role.Rank != 5 || role.Admin {
		t.Fatalf("B's role: want Contractors rank 5 unchanged, got %+v", role)
	}
	if roleNamed(t, e, b.AdminToken, "Hijacked") != nil {
		t.Fatal("B's role was renamed")
	}
	carol := userByEmail(t, e, b.AdminToken, ts.bUserEmail)
	if carol.Name != "carol" || carol.Status != "ACTIVE" || carol.Role.Name != "Member" {
		t.Fatalf("B's user: want carol, ACTIVE, Member, got %+v", carol)
	}
	if _, after := auditLog(t, e, b.AdminToken, nil); len(after) != len(auditBefore) {
		t.Fatalf("B's audit log: want %d events, got %+v", len(auditBefore), after)
	}
	// A's own audit log has no trace of the refused attempts either.
	if _, aEvents := auditLog(t, e, a.AdminToken, nil); slices.ContainsFunc(aEvents, func(ev auditRow) bool {
		return ev.Action == "role.updated" || ev.Action == "role.deleted" || ev.Action == "user.updated"
	}) {
		t.Fatalf("A's audit log records a refused mutation: %+v", aEvents)
	}
}

func TestUpdateUserToAnotherOrganizationsRoleReadsAsMissing(t *testing.T) {
	t.Parallel()
	ts := newTenants(t)
	e, a := ts.e, ts.a
	r := e.Do(a.AdminToken, updateUserMutation, map[string]any{"in": map[string]any{"id": testutil.ID(ts.aUserID), "roleID": testutil.ID(ts.bRoleID)}})
	wantError(t, r, "NOT_FOUND")
	ann := userByEmail(t, e, a.AdminToken, "ann@acme.test")
	if ann.Role.ID != testutil.ID(a.MemberRoleID) || ann.Role.Name != "Member" {
		t.Fatalf("ann's role: want Member unchanged, got %+v", ann.Role)
	}
	// The same call with A's own role works, so the refusal was the tenant.
	var out struct{ UpdateUser userPayload }
	wantData(t, e.Do(a.AdminToken, updateUserMutation, map[string]any{"in": map[string]any{"id": testutil.ID(ts.aUserID), "roleID": testutil.ID(ts.aRoleID)}}), &out)
	wantNoPayloadErrors(t, out.UpdateUser.Errors)
	if out.UpdateUser.User.Role.Name != "Auditors" {
		t.Fatalf("updateUser with A's role: want Auditors, got %+v", out.UpdateUser.User)
	}
}

func TestAnonymousCallersAreUnauthenticated(t *testing.T) {
	t.Parallel()
	ts := newTenants(t)
	tests := []struct {
		name, query string
		vars        map[string]any
	}{
		{"users", `{ users { totalCount edges { node { email } } } }`, nil},
		{"roles", `{ roles { totalCount edges { node { name } } } }`, nil},
		{"organization", `{ organization { id name domains } }`, nil},
		{"node user", nodeQuery, map[string]any{"id": testutil.ID(ts.aUserID)}},
		{"node organization", nodeQuery, map[string]any{"id": testutil.ID(ts.a.ID)}},
		{"auditEvents", `{ auditEvents { totalCount } }`, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := ts.e.Do("", tt.query, tt.vars)
			wantError(t, r, "UNAUTHENTICATED")
			if strings.Contains(string(r.Body), "acme") || strings.Contains(string(r.Body), "Acme") {
				t.Fatalf("anonymous answer leaks data: %s", r.Body)
			}
		})
	}
}

func TestOrganizationIsTheViewersOwn(t *testing.T) {
	t.Parallel()
	ts := newTenants(t)
	for _, org := range []*testutil.Org{ts.a, ts.b} {
		var out struct{ Organization struct{ ID, Name string } }
		wantData(t, ts.e.Do(org.AdminToken, `{ organization { id name } }`, nil), &out)
		if out.Organization.ID != testutil.ID(org.ID) || out.Organization.Name != org.Name {
			t.Fatalf("organization as %s: want %d %s, got %+v", org.AdminEmail, org.ID, org.Name, out.Organization)
		}
	}
}

func TestWhereFiltersCannotReachAnotherOrganization(t *testing.T) {
	t.Parallel()
	ts := newTenants(t)
	e, a, b := ts.e, ts.a, ts.b
	tests := []struct {
		name  string
		list  func(t *testing.T, where map[string]any) int
		where map[string]any
		want  int
	}{
		{"users by own email", usersCount(e, a), map[string]any{"email": "ann@acme.test"}, 1},
		{"users by B's email", usersCount(e, a), map[string]any{"email": ts.bUserEmail}, 0},
		{"users by B's domain", usersCount(e, a), map[string]any{"emailContains": "globex"}, 0},
		{"users by B's user ID", usersCount(e, a), map[string]any{"id": testutil.ID(ts.bUserID)}, 0},
		{"users by B's organization", usersCount(e, a), map[string]any{"hasOrganizationWith": []any{map[string]any{"id": testutil.ID(b.ID)}}}, 0},
		{"users by B's role", usersCount(e, a), map[string]any{"hasRoleWith": []any{map[string]any{"id": testutil.ID(ts.bRoleID)}}}, 0},
		{"users by B's role name", usersCount(e, a), map[string]any{"hasRoleWith": []any{map[string]any{"name": ts.bRoleName}}}, 0},
		{"users or-ing own and B's", usersCount(e, a), map[string]any{"or": []any{map[string]any{"email": ts.bUserEmail}, map[string]any{"email": "ann@acme.test"}}}, 1},
		{"roles by B's name", rolesCount(e, a), map[string]any{"name": ts.bRoleName}, 0},
		{"roles by B's ID", rolesCount(e, a), map[string]any{"idIn": []string{testutil.ID(ts.bRoleID)}}, 0},
		{"roles by own name", rolesCount(e, a), map[string]any{"name": "Auditors"}, 1},
		{"audit by B's actor", auditCount(e, a), map[string]any{"hasActorWith": []any{map[string]any{"email": b.AdminEmail}}}, 0},
	}
	// Give B an audit event to look for.
	var out struct{ CreateRole rolePayload }
	wantData(t, e.Do(b.AdminToken, createRoleMutation, map[string]any{"in": map[string]any{"name": "Globex Only"}}), &out)
	wantNoPayloadErrors(t, out.CreateRole.Errors)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := tt.list(t, tt.where); got != tt.want {
				t.Fatalf("want totalCount %d, got %d", tt.want, got)
			}
		})
	}
}

func usersCount(e *testutil.Env, org *testutil.Org) func(*testing.T, map[string]any) int {
	return func(t *testing.T, where map[string]any) int {
		n, rows := listUsers(t, e, org.AdminToken, where)
		for _, u := range rows {
			if u.Email == nil || !strings.HasSuffix(*u.Email, "@acme.test") {
				t.Fatalf("users: want only Acme's, got %+v", u)
			}
		}
		return n
	}
}

func rolesCount(e *testutil.Env, org *testutil.Org) func(*testing.T, map[string]any) int {
	return func(t *testing.T, where map[string]any) int {
		n, _ := listRoles(t, e, org.AdminToken, where)
		return n
	}
}

func auditCount(e *testutil.Env, org *testutil.Org) func(*testing.T, map[string]any) int {
	return func(t *testing.T, where map[string]any) int {
		n, _ := auditLog(t, e, org.AdminToken, where)
		return n
	}
}
