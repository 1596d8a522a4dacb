package graph_test

import (
	"slices"
	"strings"
	"testing"

	"admit/internal/testutil"
)

// createRole runs createRole as token with input in.
func createRole(t *testing.T, e *testutil.Env, token string, in map[string]any) rolePayload {
	t.Helper()
	var out struct{ CreateRole rolePayload }
	wantData(t, e.Do(token, createRoleMutation, map[string]any{"in": in}), &out)
	return out.CreateRole
}

// updateRole runs updateRole as token with input in.
func updateRole(t *testing.T, e *testutil.Env, token string, in map[string]any) rolePayload {
	t.Helper()
	var out struct{ UpdateRole rolePayload }
	wantData(t, e.Do(token, updateRoleMutation, map[string]any{"in": in}), &out)
	return out.UpdateRole
}

type deleteRolePayload struct {
	DeletedID *string
	Errors    []payloadError
}

// deleteRole runs deleteRole as token.
func deleteRole(t *testing.T, e *testutil.Env, token string, id int) deleteRolePayload {
	t.Helper()
	var out struct{ DeleteRole deleteRolePayload }
	wantData(t, e.Do(token, deleteRoleMutation, map[string]any{"id": testutil.ID(id)}), &out)
	return out.DeleteRole
}

// updateUser runs updateUser as token with input in.
func updateUser(t *testing.T, e *testutil.Env, token string, in map[string]any) userPayload {
	t.Helper()
	var out struct{ UpdateUser userPayload }
	wantData(t, e.Do(token, updateUserMutation, map[string]any{"in": in}), &out)
	return out.UpdateUser
}

// roleNames lists the names of the roles token sees, sorted.
func roleNamesOf(t *testing.T, e *testutil.Env, token string) []string {
	t.Helper()
	_, rows := listRoles(t, e, token, nil)
	names := make([]string, 0, len(rows))
	for _, r := range rows {
		names = append(names, r.Name)
	}
	return names
}

// auditCountOf returns how many audit events the admin token sees.
func auditCountOf(t *testing.T, e *testutil.Env, token string) int {
	t.Helper()
	n, _ := auditLog(t, e, token, nil)
	return n
}

func TestCreateRole(t *testing.T) {
	t.Parallel()
	e := testutil.New(t)
	org := e.NewOrg("Acme")

	p := createRole(t, e, org.AdminToken, map[string]any{"name": "  Support  "})
	wantNoPayloadErrors(t, p.Errors)
	if p.Role == nil || p.Role.Name != "Support" || p.Role.Rank != 10 || p.Role.Admin || p.Role.Builtin {
		t.Fatalf("createRole: want Support, rank 10, not admin, not built-in, got %+v", p.Role)
	}
	if got := roleNamed(t, e, org.AdminToken, "Support"); got == nil || *got != *p.Role {
		t.Fatalf("roles: want %+v, got %+v", *p.Role, got)
	}
	_, events := auditLog(t, e, org.AdminToken, nil)
	if !hasAudit(events, "role.created", "Support", org.AdminEmail) {
		t.Fatalf("want a role.created audit event by the admin, got %+v", events)
	}

	p = createRole(t, e, org.AdminToken, map[string]any{"name": "Leads", "description": "Team leads", "admin": true, "rank": 70})
	wantNoPayloadErrors(t, p.Errors)
	if p.Role == nil || p.Role.Name != "Leads" || p.Role.Rank != 70 || !p.Role.Admin {
		t.Fatalf("createRole with rank and admin: want Leads, rank 70, admin, got %+v", p.Role)
	}
}

func TestCreateRoleRefusesBadInput(t *testing.T) {
	t.Parallel()
	e := testutil.New(t)
	org := e.NewOrg("Acme")
	p := createRole(t, e, org.AdminToken, map[string]any{"name": "Support"})
	wantNoPayloadErrors(t, p.Errors)
	rolesBefore := roleNamesOf(t, e, org.AdminToken)
	auditBefore := auditCountOf(t, e, org.AdminToken)

	tests := []struct {
		name      string
		in        map[string]any
		code, fld string
	}{
		{"same name", map[string]any{"name": "Support"}, "NAME_TAKEN", "input.name"},
		{"lower case", map[string]any{"name": "support"}, "NAME_TAKEN", "input.name"},
		{"upper case with spaces", map[string]any{"name": "  SUPPORT "}, "NAME_TAKEN", "input.name"},
		{"a built-in name", map[string]any{"name": "member"}, "NAME_TAKEN", "input.name"},
		{"empty name", map[string]any{"name": ""}, "INVALID_INPUT", "input.name"},
		{"whitespace name", map[string]any{"name": " \t "}, "INVALID_INPUT", "input.name"},
		{"name of 101 characters", map[string]any{"name": strings.Repeat("n", 101)}, "INVALID_INPUT", "input.name"},
		{"rank 0", map[string]any{"name": "Zero", "rank": 0}, "INVALID_INPUT", "input.rank"},
		{"rank 101", map[string]any{"name": "Too High", "rank": 101}, "INVALID_INPUT", "input.rank"},
		{"negative rank", map[string]any{"name": "Negative", "rank": -5}, "INVALID_INPUT", "input.rank"},
		{"description of 501 characters", map[string]any{"name": "Wordy", "description": strings.Repeat("d", 501)}, "INVALID_INPUT", "input.description"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := createRole(t, e, org.AdminToken, tt.in)
			wantPayloadError(t, p.Errors, tt.code, tt.fld)
			if p.Role != nil {
				t.Fatalf("want no role, got %+v", p.Role)
			}
		})
	}
	if got := roleNamesOf(t, e, org.AdminToken); !slices.Equal(got, rolesBefore) {
		t.Fatalf("refused createRole calls changed the roles: want %v, got %v", rolesBefore, got)
	}
	if got := auditCountOf(t, e, org.AdminToken); got != auditBefore {
		t.Fatalf("refused createRole calls wrote audit events: want %d, got %d", auditBefore, got)
	}
}

func TestUpdateRole(t *testing.T) {
	t.Parallel()
	e := testutil.New(t)
	org := e.NewOrg("Acme")
	support := e.NewRole(org, "Support", false, 10)
	e.NewRole(org, "Sales", false, 10)

	p := updateRole(t, e, org.AdminToken, map[string]any{"id": testutil.ID(support.ID), "name": " Helpdesk ", "rank": 20})
	wantNoPayloadErrors(t, p.Errors)
	if p.Role == nil || p.Role.Name != "Helpdesk" || p.Role.Rank != 20 || p.Role.ID != testutil.ID(support.ID) {
		t.Fatalf("updateRole: want Helpdesk rank 20, got %+v", p.Role)
	}
	if names := roleNamesOf(t, e, org.AdminToken); slices.Contains(names, "Support") || !slices.Contains(names, "Helpdesk") {
		t.Fatalf("roles after the rename: want Helpdesk and no Support, got %v", names)
	}
	// A change of case of its own name is not a clash with itself.
	p = updateRole(t, e, org.AdminToken, map[string]any{"id": testutil.ID(support.ID), "name": "HelpDesk"})
	wantNoPayloadErrors(t, p.Errors)
	_, events := auditLog(t, e, org.AdminToken, nil)
	if !hasAudit(events, "role.updated", "Helpdesk", org.AdminEmail) || !hasAudit(events, "role.updated", "HelpDesk", org.AdminEmail) {
		t.Fatalf("want role.updated audit events by the admin, got %+v", events)
	}

	auditBefore := len(events)
	tests := []struct {
		name      string
		in        map[string]any
		code, fld string
	}{
		{"another role's name", map[string]any{"id": testutil.ID(support.ID), "name": "SALES"}, "NAME_TAKEN", "input.name"},
		{"a built-in role's name", map[string]any{"id": testutil.ID(support.ID), "name": "Admin"}, "NAME_TAKEN", "input.name"},
		{"empty name", map[string]any{"id": testutil.ID(support.ID), "name": "  "}, "INVALID_INPUT", "input.name"},
		{"rank 0", map[string]any{"id": testutil.ID(support.ID), "rank": 0}, "INVALID_INPUT", "input.rank"},
		{"rank 101", map[string]any{"id": testutil.ID(support.ID), "rank": 101}, "INVALID_INPUT", "input.rank"},
		{"built-in Admin", map[string]any{"id": testutil.ID(org.AdminRoleID), "name": "Boss"}, "BUILTIN_ROLE", "input.id"},
		{"built-in Member", map[string]any{"id": testutil.ID(org.MemberRoleID), "rank": 20}, "BUILTIN_ROLE", "input.id"},
		{"built-in Member made admin", map[string]any{"id": testutil.ID(org.MemberRoleID), "admin": true}, "BUILTIN_ROLE", "input.id"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			wantPayloadError(t, updateRole(t, e, org.AdminToken, tt.in).Errors, tt.code, tt.fld)
		})
	}
	_, rows := listRoles(t, e, org.AdminToken, nil)
	want := []roleRow{
		{ID: testutil.ID(org.AdminRoleID), Name: "Admin", Rank: 100, Admin: true, Builtin: true},
		{ID: testutil.ID(support.ID), Name: "HelpDesk", Rank: 20},
		{ID: testutil.ID(org.MemberRoleID), Name: "Member", Rank: 10, Builtin: true},
	}
	for _, w := range want {
		if !slices.Contains(rows, w) {
			t.Fatalf("roles after refused updates: want %+v among %+v", w, rows)
		}
	}
	if got := auditCountOf(t, e, org.AdminToken); got != auditBefore {
		t.Fatalf("refused updateRole calls wrote audit events: want %d, got %d", auditBefore, got)
	}
}

func TestDeleteRole(t *testing.T) {
	t.Parallel()
	e := testutil.New(t)
	org := e.NewOrg("Acme")
	held := e.NewRole(org, "Support", false, 10)
	unused := e.NewRole(org, "Interns", false, 5)
	e.NewUser(org, "pat@acme.test", held.ID)
	auditBefore := auditCountOf(t, e, org.AdminToken)

	tests := []struct {
		name string
		id   int
		code string
	}{
		{"built-in Admin", org.AdminRoleID, "BUILTIN_ROLE"},
		{"built-in Member", org.MemberRoleID, "BUILTIN_ROLE"},
		{"held by a user", held.ID, "ROLE_IN_USE"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := deleteRole(t, e, org.AdminToken, tt.id)
			wantPayloadError(t, p.Errors, tt.code, "input.id")
			if p.DeletedID != nil {
				t.Fatalf("want no deletedID, got %s", *p.DeletedID)
			}
		})
	}
	if names := roleNamesOf(t, e, org.AdminToken); !slices.Equal(names, []string{"Admin", "Interns", "Member", "Support"}) {
		t.Fatalf("roles after refused deletes: want Admin, Interns, Member, Support, got %v", names)
	}
	if got := auditCountOf(t, e, org.AdminToken); got != auditBefore {
		t.Fatalf("refused deleteRole calls wrote audit events: want %d, got %d", auditBefore, got)
	}

	p := deleteRole(t, e, org.AdminToken, unused.ID)
	wantNoPayloadErrors(t, p.Errors)
	if p.DeletedID == nil || *p.DeletedID != testutil.ID(unused.ID) {
		t.Fatalf("deleteRole: want deletedID %d, got %v", unused.ID, p.DeletedID)
	}
	if names := roleNamesOf(t, e, org.AdminToken); slices.Contains(names, "Interns") {
		t.Fatalf("roles after delete: want no Interns, got %v", names)
	}
	_, events := auditLog(t, e, org.AdminToken, nil)
	if !hasAudit(events, "role.deleted", "Interns", org.AdminEmail) {
		t.Fatalf("want a role.deleted audit event by the admin, got %+v", events)
	}
	if len(events) != auditBefore+1 {
		t.Fatalf("want exactly one new audit event, got %d then %d: %+v", auditBefore, len(events), events)
	}
	// Deleting it again: it is gone.
	wantError(t, e.Do(org.AdminToken, deleteRoleMutation, map[string]any{"id": testutil.ID(unused.ID)}), "NOT_FOUND")
}

// adminState is what the admin sees of roles, users, domains and the audit
// log; refused calls must leave it as it was.
type adminState struct {
	roles   []roleRow
	users   []userRow
	domains []string
	audit   int
}

func snapshot(t *testing.T, e *testutil.Env, org *testutil.Org) adminState {
	t.Helper()
	var s adminState
	_, s.roles = listRoles(t, e, org.AdminToken, nil)
	_, s.users = listUsers(t, e, org.AdminToken, nil)
	var out struct{ Organization struct{ Domains []string } }
	wantData(t, e.Do(org.AdminToken, `{ organization { domains } }`, nil), &out)
	s.domains = out.Organization.Domains
	s.audit = auditCountOf(t, e, org.AdminToken)
	return s
}

func (s adminState) equal(o adminState) bool {
	usersEqual := slices.EqualFunc(s.users, o.users, func(a, b userRow) bool {
		return a.ID == b.ID && *a.Email == *b.Email && a.Name == b.Name && a.Status == b.Status && a.Role == b.Role
	})
	return usersEqual && slices.Equal(s.roles, o.roles) && slices.Equal(s.domains, o.domains) && s.audit == o.audit
}

func TestMembersCannotManage(t *testing.T) {
	t.Parallel()
	e := testutil.New(t)
	org := e.NewOrg("Acme")
	member := e.NewUser(org, "mia@acme.test", org.MemberRoleID)
	other := e.NewUser(org, "max@acme.test", org.MemberRoleID)
	custom := e.NewRole(org, "Interns", false, 5)
	var add struct {
		AddOrganizationDomain struct {
			Organization *struct{ Domains []string }
			Errors       []payloadError
		}
	}
	wantData(t, e.Do(org.AdminToken, `mutation { addOrganizationDomain(input: {domain: "acme.test"}) { organization { domains } errors { code field message } } }`, nil), &add)
	wantNoPayloadErrors(t, add.AddOrganizationDomain.Errors)
	token := e.SignIn("mia@acme.test", testutil.DefaultPassword)
	before := snapshot(t, e, org)

	tests := []struct {
		name, query string
		vars        map[string]any
	}{
		{"createRole", createRoleMutation, map[string]any{"in": map[string]any{"name": "Mine"}}},
		{"createRole low rank", createRoleMutation, map[string]any{"in": map[string]any{"name": "Mine", "rank": 1}}},
		{"updateRole", updateRoleMutation, map[string]any{"in": map[string]any{"id": testutil.ID(custom.ID), "name": "Renamed"}}},
		{"deleteRole", deleteRoleMutation, map[string]any{"id": testutil.ID(custom.ID)}},
		{"updateUser another", updateUserMutation, map[string]any{"in": map[string]any{"id": testutil.ID(other.ID), "name": "Renamed"}}},
		{"updateUser another's role", updateUserMutation, map[string]any{"in": map[string]any{"id": testutil.ID(other.ID), "roleID": testutil.ID(custom.ID)}}},
		{"updateUser own role", updateUserMutation, map[string]any{"in": map[string]any{"id": testutil.ID(member.ID), "roleID": testutil.ID(org.AdminRoleID)}}},
		{"updateUser the admin's name", updateUserMutation, map[string]any{"in": map[string]any{"id": testutil.ID(org.AdminID), "name": "Renamed"}}},
		{"addOrganizationDomain", `mutation { addOrganizationDomain(input: {domain: "example.com"}) { organization { domains } errors { code } } }`, nil},
		{"removeOrganizationDomain", `mutation { removeOrganizationDomain(input: {domain: "acme.test"}) { organization { domains } errors { code } } }`, nil},
		{"auditEvents", `{ auditEvents { totalCount edges { node { action } } } }`, nil},
		{"invitations", `{ invitations { totalCount edges { node { id } } } }`, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := e.Do(token, tt.query, tt.vars)
			wantError(t, r, "FORBIDDEN")
			if string(r.Data) != "null" && strings.Contains(string(r.Data), "edges") {
				t.Fatalf("a refused list still answers rows: %s", r.Data)
			}
		})
	}
	if after := snapshot(t, e, org); !after.equal(before) {
		t.Fatalf("refused calls by a member changed something:\nbefore %+v\nafter  %+v", before, after)
	}

	// A member still reads the organization's users and roles.
	n, users := listUsers(t, e, token, nil)
	if n != 3 || len(users) != 3 {
		t.Fatalf("users as a member: want 3, got %d %+v", n, users)
	}
	n, roles := listRoles(t, e, token, nil)
	if n != 3 || len(roles) != 3 {
		t.Fatalf("roles as a member: want 3, got %d %+v", n, roles)
	}
}

// A caller who may not manage at all is refused as such, whatever the
// input: payload errors (input mistakes) are only for those allowed to act,
// or they tell a member about state such as who the last admin is.
func TestMembersAreRefusedBeforeTheirInputIsChecked(t *testing.T) {
	t.Parallel()
	e := testutil.New(t)
	org := e.NewOrg("Acme")
	mia := e.NewUser(org, "mia@acme.test", org.MemberRoleID)
	held := e.NewRole(org, "Support", false, 10)
	e.NewUser(org, "pat@acme.test", held.ID)
	var add struct {
		AddOrganizationDomain struct{ Errors []payloadError }
	}
	wantData(t, e.Do(org.AdminToken, `mutation { addOrganizationDomain(input: {domain: "acme.test"}) { errors { code field message } } }`, nil), &add)
	wantNoPayloadErrors(t, add.AddOrganizationDomain.Errors)
	token := e.SignIn("mia@acme.test", testutil.DefaultPassword)
	before := snapshot(t, e, org)

	const addDomain = `mutation($d: String!) { addOrganizationDomain(input: {domain: $d}) { errors { code field message } } }`
	const removeDomain = `mutation($d: String!) { removeOrganizationDomain(input: {domain: $d}) { errors { code field message } } }`
	tests := []struct {
		name, query string
		vars        map[string]any
	}{
		{"deactivate the only admin", updateUserMutation, map[string]any{"in": map[string]any{"id": testutil.ID(org.AdminID), "status": "DEACTIVATED"}}},
		{"demote the only admin", updateUserMutation, map[string]any{"in": map[string]any{"id": testutil.ID(org.AdminID), "roleID": testutil.ID(org.MemberRoleID)}}},
		{"updateUser with a bad status", updateUserMutation, map[string]any{"in": map[string]any{"id": testutil.ID(mia.ID), "status": "INVITED"}}},
		{"createRole with a taken name", createRoleMutation, map[string]any{"in": map[string]any{"name": "support"}}},
		{"createRole with an empty name", createRoleMutation, map[string]any{"in": map[string]any{"name": ""}}},
		{"updateRole of a built-in role", updateRoleMutation, map[string]any{"in": map[string]any{"id": testutil.ID(org.MemberRoleID), "name": "Renamed"}}},
		{"deleteRole of a built-in role", deleteRoleMutation, map[string]any{"id": testutil.ID(org.AdminRoleID)}},
		{"deleteRole of a role in use", deleteRoleMutation, map[string]any{"id": testutil.ID(held.ID)}},
		{"add an invalid domain", addDomain, map[string]any{"d": "localhost"}},
		{"add an existing domain", addDomain, map[string]any{"d": "ACME.test"}},
		{"remove an absent domain", removeDomain, map[string]any{"d": "absent.example"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			wantError(t, e.Do(token, tt.query, tt.vars), "FORBIDDEN")
		})
	}
	if after := snapshot(t, e, org); !after.equal(before) {
		t.Fatalf("refused calls by a member changed something:\nbefore %+v\nafter  %+v", before, after)
	}
}

// escalation is an organization with a custom admin role "Manager" (rank 50)
// held by max, a plain member mia, and an unused custom role "Director"
// ranked 80.
type escalation struct {
	e                  *testutil.Env
	org                *testutil.Org
	manager, director  int // role IDs
	helper             int // a custom role ranked 20
	maxID, miaID       int
	maxToken, maxEmail string
}

func newEscalation(t *testing.T) *escalation {
	t.Helper()
	e := testutil.New(t)
	org := e.NewOrg("Acme")
	manager := e.NewRole(org, "Manager", true, 50)
	director := e.NewRole(org, "Director", false, 80)
	helper := e.NewRole(org, "Helper", false, 20)
	maxU := e.NewUser(org, "max@acme.test", manager.ID)
	mia := e.NewUser(org, "mia@acme.test", org.MemberRoleID)
	return &escalation{
		e: e, org: org,
		manager: manager.ID, director: director.ID, helper: helper.ID,
		maxID: maxU.ID, miaID: mia.ID,
		maxToken: e.SignIn("max@acme.test", testutil.DefaultPassword), maxEmail: "max@acme.test",
	}
}

func TestRoleCeilingForACustomAdminRole(t *testing.T) {
	t.Parallel()
	s := newEscalation(t)
	e, org := s.e, s.org
	before := snapshot(t, e, org)

	tests := []struct {
		name, query string
		vars        map[string]any
	}{
		{"createRole above own rank", createRoleMutation, map[string]any{"in": map[string]any{"name": "VP", "rank": 60}}},
		{"createRole at rank 100", createRoleMutation, map[string]any{"in": map[string]any{"name": "Owner", "rank": 100, "admin": true}}},
		{"member to built-in Admin", updateUserMutation, map[string]any{"in": map[string]any{"id": testutil.ID(s.miaID), "roleID": testutil.ID(org.AdminRoleID)}}},
		{"member to a rank-80 role", updateUserMutation, map[string]any{"in": map[string]any{"id": testutil.ID(s.miaID), "roleID": testutil.ID(s.director)}}},
		{"self to built-in Admin", updateUserMutation, map[string]any{"in": map[string]any{"id": testutil.ID(s.maxID), "roleID": testutil.ID(org.AdminRoleID)}}},
		{"demote the real Admin", updateUserMutation, map[string]any{"in": map[string]any{"id": testutil.ID(org.AdminID), "roleID": testutil.ID(org.MemberRoleID)}}},
		{"deactivate the real Admin", updateUserMutation, map[string]any{"in": map[string]any{"id": testutil.ID(org.AdminID), "status": "DEACTIVATED"}}},
		{"rename the real Admin", updateUserMutation, map[string]any{"in": map[string]any{"id": testutil.ID(org.AdminID), "name": "Demoted"}}},
		{"raise own role to 100", updateRoleMutation, map[string]any{"in": map[string]any{"id": testutil.ID(s.manager), "rank": 100}}},
		{"raise own role to 51", updateRoleMutation, map[string]any{"in": map[string]any{"id": testutil.ID(s.manager), "rank": 51}}},
		{"raise a lower role above own", updateRoleMutation, map[string]any{"in": map[string]any{"id": testutil.ID(s.helper), "rank": 60}}},
		{"rename a rank-80 role", updateRoleMutation, map[string]any{"in": map[string]any{"id": testutil.ID(s.director), "name": "Renamed"}}},
		{"lower a rank-80 role", updateRoleMutation, map[string]any{"in": map[string]any{"id": testutil.ID(s.director), "rank": 10}}},
		{"delete a rank-80 role", deleteRoleMutation, map[string]any{"id": testutil.ID(s.director)}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			wantError(t, e.Do(s.maxToken, tt.query, tt.vars), "FORBIDDEN")
		})
	}
	if after := snapshot(t, e, org); !after.equal(before) {
		t.Fatalf("refused calls by the Manager changed something:\nbefore %+v\nafter  %+v", before, after)
	}
	if mia := userByEmail(t, e, org.AdminToken, "mia@acme.test"); mia.Role.Name != "Member" {
		t.Fatalf("mia: want Member, got %+v", mia.Role)
	}
	if admin := userByEmail(t, e, org.AdminToken, org.AdminEmail); admin.Role.Name != "Admin" || admin.Status != "ACTIVE" {
		t.Fatalf("the admin: want an active Admin, got %+v", admin)
	}

	// Up to their own rank, the Manager may act.
	p := createRole(t, e, s.maxToken, map[string]any{"name": "Team Lead", "rank": 50})
	wantNoPayloadErrors(t, p.Errors)
	if p.Role == nil || p.Role.Rank != 50 {
		t.Fatalf("createRole rank 50 as the Manager: want it, got %+v", p.Role)
	}
	u := updateUser(t, e, s.maxToken, map[string]any{"id": testutil.ID(s.miaID), "roleID": testutil.ID(s.manager)})
	wantNoPayloadErrors(t, u.Errors)
	if u.User == nil || u.User.Role.Name != "Manager" {
		t.Fatalf("updateUser mia to Manager as the Manager: want it, got %+v", u.User)
	}
	if mia := userByEmail(t, e, org.AdminToken, "mia@acme.test"); mia.Role.Name != "Manager" {
		t.Fatalf("mia after the change: want Manager, got %+v", mia.Role)
	}
	_, events := auditLog(t, e, org.AdminToken, nil)
	if !hasAudit(events, "role.created", "Team Lead", s.maxEmail) {
		t.Fatalf("want role.created by the Manager, got %+v", events)
	}
}

func TestNonAdminRoleOfHighRankGrantsNothing(t *testing.T) {
	t.Parallel()
	e := testutil.New(t)
	org := e.NewOrg("Acme")
	senior := e.NewRole(org, "Senior", false, 90)
	low := e.NewRole(org, "Interns", false, 5)
	e.NewUser(org, "sam@acme.test", senior.ID)
	mia := e.NewUser(org, "mia@acme.test", org.MemberRoleID)
	token := e.SignIn("sam@acme.test", testutil.DefaultPassword)
	before := snapshot(t, e, org)

	tests := []struct {
		name, query string
		vars        map[string]any
	}{
		{"createRole rank 10", createRoleMutation, map[string]any{"in": map[string]any{"name": "Mine", "rank": 10}}},
		{"createRole default rank", createRoleMutation, map[string]any{"in": map[string]any{"name": "Mine"}}},
		{"updateRole of a lower role", updateRoleMutation, map[string]any{"in": map[string]any{"id": testutil.ID(low.ID), "name": "Renamed"}}},
		{"deleteRole of a lower role", deleteRoleMutation, map[string]any{"id": testutil.ID(low.ID)}},
		{"updateUser of a member to a lower role", updateUserMutation, map[string]any{"in": map[string]any{"id": testutil.ID(mia.ID), "roleID": testutil.ID(low.ID)}}},
		{"addOrganizationDomain", `mutation { addOrganizationDomain(input: {domain: "example.com"}) { errors { code } } }`, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			wantError(t, e.Do(token, tt.query, tt.vars), "FORBIDDEN")
		})
	}
	if after := snapshot(t, e, org); !after.equal(before) {
		t.Fatalf("refused calls by a rank-90 non-admin changed something:\nbefore %+v\nafter  %+v", before, after)
	}
}

// meRole returns the name and admin flag of token's role.
func meRole(t *testing.T, e *testutil.Env, token string) (string, bool) {
	t.Helper()
	var out struct {
		Me struct {
			Status string
			Role   struct {
				Name  string
				Admin bool
			}
		}
	}
	wantData(t, e.Do(token, `{ me { status role { name admin } } }`, nil), &out)
	if out.Me.Status != "ACTIVE" {
		t.Fatalf("me: want ACTIVE, got %s", out.Me.Status)
	}
	return out.Me.Role.Name, out.Me.Role.Admin
}

func TestTheLastAdminStays(t *testing.T) {
	t.Parallel()
	e := testutil.New(t)
	org := e.NewOrg("Acme")
	auditBefore := auditCountOf(t, e, org.AdminToken)

	tests := []struct {
		name string
		in   map[string]any
	}{
		{"demote to Member", map[string]any{"id": testutil.ID(org.AdminID), "roleID": testutil.ID(org.MemberRoleID)}},
		{"deactivate", map[string]any{"id": testutil.ID(org.AdminID), "status": "DEACTIVATED"}},
		{"demote and deactivate", map[string]any{"id": testutil.ID(org.AdminID), "roleID": testutil.ID(org.MemberRoleID), "status": "DEACTIVATED"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			wantPayloadError(t, updateUser(t, e, org.AdminToken, tt.in).Errors, "LAST_ADMIN", "input.id")
			if name, admin := meRole(t, e, org.AdminToken); name != "Admin" || !admin {
				t.Fatalf("after LAST_ADMIN: want still Admin, got %s (admin %v)", name, admin)
			}
		})
	}
	if got := auditCountOf(t, e, org.AdminToken); got != auditBefore {
		t.Fatalf("refused updates wrote audit events: want %d, got %d", auditBefore, got)
	}
}

func TestADeactivatedAdminDoesNotCountAsAnotherAdmin(t *testing.T) {
	t.Parallel()
	e := testutil.New(t)
	org := e.NewOrg("Acme")
	second := e.NewUser(org, "ada@acme.test", org.AdminRoleID)
	u := updateUser(t, e, org.AdminToken, map[string]any{"id": testutil.ID(second.ID), "status": "DEACTIVATED"})
	wantNoPayloadErrors(t, u.Errors)
	u = updateUser(t, e, org.AdminToken, map[string]any{"id": testutil.ID(org.AdminID), "roleID": testutil.ID(org.MemberRoleID)})
	wantPayloadError(t, u.Errors, "LAST_ADMIN", "input.id")
	if name, _ := meRole(t, e, org.AdminToken); name != "Admin" {
		t.Fatalf("want still Admin, got %s", name)
	}
}

func TestAnAdminMayStepDownWhenAnotherRemains(t *testing.T) {
	t.Parallel()
	e := testutil.New(t)
	org := e.NewOrg("Acme")
	e.NewUser(org, "ada@acme.test", org.AdminRoleID)
	ada := e.SignIn("ada@acme.test", testutil.DefaultPassword)

	u := updateUser(t, e, org.AdminToken, map[string]any{"id": testutil.ID(org.AdminID), "roleID": testutil.ID(org.MemberRoleID)})
	wantNoPayloadErrors(t, u.Errors)
	if u.User == nil || u.User.Role.Name != "Member" {
		t.Fatalf("updateUser: want the first admin now a Member, got %+v", u.User)
	}
	if name, admin := meRole(t, e, org.AdminToken); name != "Member" || admin {
		t.Fatalf("me after stepping down: want Member, got %s (admin %v)", name, admin)
	}
	// The demotion takes effect at once: the former admin's session can no
	// longer manage roles.
	wantError(t, e.Do(org.AdminToken, createRoleMutation, map[string]any{"in": map[string]any{"name": "Late"}}), "FORBIDDEN")
	// And the remaining admin is now the last one.
	adaID := userByEmail(t, e, ada, "ada@acme.test").ID
	wantPayloadError(t, updateUser(t, e, ada, map[string]any{"id": adaID, "status": "DEACTIVATED"}).Errors, "LAST_ADMIN", "input.id")
	_, events := auditLog(t, e, ada, nil)
	if !hasAudit(events, "user.updated", "", org.AdminEmail) {
		t.Fatalf("want a user.updated audit event by the first admin, got %+v", events)
	}
}
