package invite_test

import (
	"context"
	"testing"

	"admit/ent/invitation"
	"admit/internal/auth"
	"admit/internal/invite"
	"admit/internal/testutil"
)

// The bulk writer skips ent's builders, so it must still run their privacy
// policies: these calls try to write into another organization, with a
// foreign role, as a member, or with no viewer, straight at the writer.
func TestBulkWriteObeysThePrivacyPolicies(t *testing.T) {
	t.Parallel()
	e := testutil.New(t)
	acme, globex := e.NewOrg("Acme"), e.NewOrg("Globex")
	member := e.NewUser(acme, "member@acme.test", acme.MemberRoleID)
	adminOf := func(o *testutil.Org) context.Context {
		return auth.NewContext(context.Background(), &auth.Viewer{UserID: o.AdminID, OrgID: o.ID, RoleID: o.AdminRoleID, Admin: true, Rank: 100})
	}
	asMember := auth.NewContext(context.Background(), &auth.Viewer{UserID: member.ID, OrgID: acme.ID, RoleID: acme.MemberRoleID, Rank: 10})

	for name, try := range map[string]func() (map[string]int, error){
		"into another organization": func() (map[string]int, error) {
			return invite.BulkInvite(adminOf(acme), e.Invites, e.DB.Client, globex.ID, globex.MemberRoleID, acme.AdminID, "x1@example.com")
		},
		"with another organization's role": func() (map[string]int, error) {
			return invite.BulkInvite(adminOf(acme), e.Invites, e.DB.Client, acme.ID, globex.MemberRoleID, acme.AdminID, "x2@example.com")
		},
		"as a member": func() (map[string]int, error) {
			return invite.BulkInvite(asMember, e.Invites, e.DB.Client, acme.ID, acme.MemberRoleID, member.ID, "x3@example.com")
		},
		"with no viewer": func() (map[string]int, error) {
			return invite.BulkInvite(context.Background(), e.Invites, e.DB.Client, acme.ID, acme.MemberRoleID, acme.AdminID, "x4@example.com")
		},
	} {
		if got, err := try(); err == nil {
			t.Errorf("%s: want a privacy error, got %v written", name, got)
		}
	}
	if n := countInvitations(t, e); n != 0 {
		t.Fatalf("refused writes left %d invitations behind", n)
	}

	// The same call as the organization's own admin goes through and writes
	// all three rows, which read back through ent like any other.
	got, err := invite.BulkInvite(adminOf(acme), e.Invites, e.DB.Client, acme.ID, acme.MemberRoleID, acme.AdminID, "a@example.com", "b@example.com")
	if err != nil || len(got) != 2 || got["e:a@example.com"] == 0 || got["e:b@example.com"] == 0 {
		t.Fatalf("own organization: want 2 ids, got %v, %v", got, err)
	}
	inv, err := e.DB.Client.Invitation.Get(testutil.System(), got["e:a@example.com"])
	if err != nil {
		t.Fatal(err)
	}
	if inv.OrganizationID != acme.ID || inv.RoleID != acme.MemberRoleID || inv.Status != invitation.StatusPENDING ||
		inv.Kind != invitation.KindINTERNAL || inv.SendCount != 1 || inv.TokenGeneration != 1 ||
		len(inv.TokenNonces) != 1 || string(inv.TokenNonces[0]) != "0123456789abcdef" ||
		inv.InviterID == nil || *inv.InviterID != acme.AdminID || inv.LastSentAt == nil {
		t.Fatalf("bulk-written invitation reads back wrong: %+v", inv)
	}
	ds, err := inv.QueryDeliveries().All(testutil.System())
	if err != nil || len(ds) != 1 || ds[0].Recipient != "a@example.com" || ds[0].TokenGeneration != 1 {
		t.Fatalf("want one queued delivery to a@example.com, got %+v, %v", ds, err)
	}

	// Writing the same address again is skipped by the unique index, not
	// an error, and writes no second message.
	again, err := invite.BulkInvite(adminOf(acme), e.Invites, e.DB.Client, acme.ID, acme.MemberRoleID, acme.AdminID, "a@example.com", "c@example.com")
	if err != nil || len(again) != 1 || again["e:c@example.com"] == 0 {
		t.Fatalf("want only c@example.com written, got %v, %v", again, err)
	}
	if n := countInvitations(t, e); n != 3 {
		t.Fatalf("want 3 invitations, got %d", n)
	}
}

func countInvitations(t *testing.T, e *testutil.Env) int {
	t.Helper()
	n, err := e.DB.Client.Invitation.Query().Count(testutil.System())
	if err != nil {
		t.Fatal(err)
	}
	return n
}
