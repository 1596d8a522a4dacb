package graph_test

import (
	"testing"

	"admit/internal/testutil"
)

// Attempts to cross tenants and climb roles through the workspace paths.
func TestWorkspaceCrossTenantAndEscalation(t *testing.T) {
	t.Parallel()
	e := testutil.New(t)
	s := wsNew(t, e, "Home", false)
	wsStrangerRequest(t, e, s, "sam@example.com", "Sam")
	id := wsPendingID(t, e, s.ownerToken, "sam@example.com")
	other := e.NewOrg("Away")
	e.NewUser(other, "owner@away.test", other.MemberRoleID)
	otherOwner := e.SignIn("owner@away.test", testutil.DefaultPassword)
	otherWS := wsStr(t, wsNoErrors(t, wsData(t, e, otherOwner, wsCreate, map[string]any{"in": map[string]any{"name": "Theirs", "type": "GROUP"}}), "createWorkspace"), "workspace.id")

	// Another organization's admin and owner: every ID reads as missing.
	for name, token := range map[string]string{"admin": other.AdminToken, "owner": otherOwner} {
		for op, q := range map[string]struct {
			query string
			vars  map[string]any
		}{
			"approve":      {wsApprove, map[string]any{"in": map[string]any{"id": id, "as": "CLIENT"}}},
			"deny":         {wsDeny, map[string]any{"id": id}},
			"members":      {wsInvite, map[string]any{"in": map[string]any{"workspaceID": s.wsID, "invitees": []map[string]any{{"email": "x@away.test"}}}}},
			"resend all":   {wsResendAll, map[string]any{"id": s.wsID}},
			"link":         {wsLinkUpdate, map[string]any{"in": map[string]any{"workspaceID": s.wsID, "enabled": false}}},
			"archive":      {`mutation($id: ID!) { archiveWorkspace(input: {id: $id}) { errors { code } } }`, map[string]any{"id": s.wsID}},
			"subscribe to": {`query($id: ID!) { node(id: $id) { id } }`, map[string]any{"id": id}},
		} {
			r := e.Do(token, q.query, q.vars)
			if op == "subscribe to" {
				if string(r.Data) != `{"node":null}` && len(r.Errors) == 0 {
					t.Fatalf("%s of another organization read a join request: %s", name, r.Body)
				}
				continue
			}
			if len(r.Errors) == 0 || r.Errors[0].Code() != "NOT_FOUND" {
				t.Fatalf("%s of another organization, %s: want NOT_FOUND, got %s", name, op, r.Body)
			}
		}
	}
	// An owner of this organization cannot reach into another's workspace
	// through their own request either.
	r := e.Do(s.ownerToken, wsInvite, map[string]any{"in": map[string]any{"workspaceID": otherWS, "invitees": []map[string]any{{"email": "x@home.test"}}}})
	if len(r.Errors) == 0 || r.Errors[0].Code() != "NOT_FOUND" {
		t.Fatalf("into another organization's workspace: want NOT_FOUND, got %s", r.Body)
	}

	// The role ceiling: an owner with the Member role cannot admit someone
	// with the Admin role, nor with a role ranked above their own.
	high := e.NewRole(s.org, "Senior", false, 50)
	for _, roleID := range []int{s.org.AdminRoleID, high.ID} {
		r := e.Do(s.ownerToken, wsApprove, map[string]any{"in": map[string]any{"id": id, "as": "CLIENT", "roleID": testutil.ID(roleID)}})
		if len(r.Errors) == 0 || r.Errors[0].Code() != "FORBIDDEN" {
			t.Fatalf("approving with role %d above the owner's: want FORBIDDEN, got %s", roleID, r.Body)
		}
	}
	// Refused approvals left nothing behind: the request is still pending.
	wsPendingID(t, e, s.ownerToken, "sam@example.com")
	n, err := e.DB.Client.Invitation.Query().Count(testutil.System())
	if err != nil || n != 0 {
		t.Fatalf("refused approvals wrote %d invitations (%v)", n, err)
	}
	// A client of the organization cannot create workspaces.
	c := e.NewUser(s.org, "client@home.test", s.org.MemberRoleID)
	if _, err := e.DB.Client.User.UpdateOne(c).SetKind("CLIENT").Save(testutil.System()); err != nil {
		t.Fatal(err)
	}
	clientToken := e.SignIn("client@home.test", testutil.DefaultPassword)
	e.Do(clientToken, wsCreate, map[string]any{"in": map[string]any{"name": "Mine", "type": "GROUP"}}).MustFail("FORBIDDEN")
}
