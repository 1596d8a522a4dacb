package graph_test

import (
	"net/url"
	"strings"
	"testing"

	"admit/internal/testutil"
)

func TestCompanyLinkJoinAcceptRefreshRevoke(t *testing.T) {
	t.Parallel()
	e := testutil.New(t)
	org := e.NewOrg("Acme")
	type linkPayload struct {
		Link *struct {
			ID, Kind, Status string
			URL              *string
			ExpiresAt        *string
		}
		Errors []struct{ Code string }
	}
	create := `mutation { createInviteLink(input: {kind: INTERNAL, restrictToDomains: true}) { link { id kind status url expiresAt } errors { code } } }`
	var out struct{ CreateInviteLink linkPayload }
	e.Do(org.AdminToken, create, nil).MustData(&out)
	if len(out.CreateInviteLink.Errors) != 1 || out.CreateInviteLink.Errors[0].Code != "NO_DOMAINS" {
		t.Fatalf("company link without domains: %+v", out.CreateInviteLink)
	}
	e.Do(org.AdminToken, `mutation { addOrganizationDomain(input: {domain: "acme.test"}) { errors { code } } }`, nil).MustData(&struct {
		AddOrganizationDomain struct{ Errors []struct{ Code string } }
	}{})
	e.Do(org.AdminToken, create, nil).MustData(&out)
	link := out.CreateInviteLink.Link
	if link == nil || link.URL == nil || link.ExpiresAt == nil || link.Status != "ACTIVE" {
		t.Fatalf("company link: %+v", out.CreateInviteLink)
	}
	u, err := url.Parse(*link.URL)
	if err != nil {
		t.Fatal(err)
	}
	token := u.Query().Get("token")
	if !strings.HasPrefix(token, "adl_") {
		t.Fatalf("link URL %q has no link token", *link.URL)
	}

	join := `mutation($t: String!, $e: String!) { joinWithInviteLink(input: {token: $t, email: $e, name: "Pat"}) { message errors { code } } }`
	type joinOut struct {
		JoinWithInviteLink struct {
			Message *string
			Errors  []struct{ Code string }
		}
	}
	var j joinOut
	e.Do("", join, map[string]any{"t": token, "e": "pat@evil.test"}).MustData(&j)
	if len(j.JoinWithInviteLink.Errors) != 1 || j.JoinWithInviteLink.Errors[0].Code != "DOMAIN_NOT_ALLOWED" {
		t.Fatalf("outside address: %+v", j)
	}
	e.Do("", join, map[string]any{"t": token, "e": "Pat@ACME.test"}).MustData(&j)
	if len(j.JoinWithInviteLink.Errors) != 0 {
		t.Fatalf("employee join: %+v", j)
	}
	e.Deliver()
	msgs := e.Mail.To("pat@acme.test")
	if len(msgs) != 1 {
		t.Fatalf("%d confirmation messages, want 1", len(msgs))
	}
	var acc struct {
		AcceptInvitation struct {
			Token *string
			User  *struct {
				Email string
				Kind  string
				Role  struct{ Name string }
			}
			Errors []struct{ Code string }
		}
	}
	e.Do("", `mutation($t: String!) { acceptInvitation(input: {token: $t, name: "Pat", password: "long enough password"}) { token user { email kind role { name } } errors { code } } }`,
		map[string]any{"t": testutil.TokenIn(t, msgs[0])}).MustData(&acc)
	if acc.AcceptInvitation.Token == nil || acc.AcceptInvitation.User.Role.Name != "Member" || acc.AcceptInvitation.User.Kind != "INTERNAL" {
		t.Fatalf("accept: %+v", acc.AcceptInvitation)
	}

	var ref struct{ RefreshInviteLink linkPayload }
	e.Do(org.AdminToken, `mutation($id: ID!) { refreshInviteLink(input: {id: $id}) { link { id kind status url expiresAt } errors { code } } }`, map[string]any{"id": link.ID}).MustData(&ref)
	if ref.RefreshInviteLink.Link == nil || *ref.RefreshInviteLink.Link.URL == *link.URL {
		t.Fatalf("refresh: %+v", ref.RefreshInviteLink)
	}
	e.Do("", join, map[string]any{"t": token, "e": "sam@acme.test"}).MustData(&j)
	if len(j.JoinWithInviteLink.Errors) != 1 || j.JoinWithInviteLink.Errors[0].Code != "LINK_REFRESHED" {
		t.Fatalf("old URL after refresh: %+v", j)
	}
	var rev struct{ RevokeInviteLink linkPayload }
	e.Do(org.AdminToken, `mutation($id: ID!) { revokeInviteLink(input: {id: $id}) { link { id kind status url expiresAt } errors { code } } }`, map[string]any{"id": link.ID}).MustData(&rev)
	if rev.RevokeInviteLink.Link.Status != "REVOKED" || rev.RevokeInviteLink.Link.URL != nil {
		t.Fatalf("revoke: %+v", rev.RevokeInviteLink)
	}
	newToken, _ := url.Parse(*ref.RefreshInviteLink.Link.URL)
	e.Do("", `query($t: String!) { inviteLinkPreview(token: $t) { organizationName } }`, map[string]any{"t": newToken.Query().Get("token")}).MustFail("LINK_REVOKED")
}
