package graph_test

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"admit/internal/testutil"
)

func TestInviteDeliverAccept(t *testing.T) {
	t.Parallel()
	e := testutil.New(t)
	org := e.NewOrg("Acme")
	var out struct {
		InviteUsers struct {
			Results []struct {
				Email   *string
				Outcome string
				Code    *string
			}
			Counts struct{ Invited, Invalid, Duplicate int }
			Errors []struct{ Code string }
		}
	}
	e.Do(org.AdminToken, `mutation { inviteUsers(input: {emails: ["Jane <jane@example.com>, bob@example.com; not-an-address", "JANE@example.com"]}) { results { email outcome code } counts { invited invalid duplicate } errors { code } } }`, nil).MustData(&out)
	c := out.InviteUsers.Counts
	if c.Invited != 2 || c.Invalid != 1 || c.Duplicate != 1 {
		t.Fatalf("counts %+v results %+v", c, out.InviteUsers.Results)
	}
	e.Deliver()
	msgs := e.Mail.To("jane@example.com")
	if len(msgs) != 1 {
		t.Fatalf("%d messages to jane", len(msgs))
	}
	token := testutil.TokenIn(t, msgs[0])
	var acc struct {
		AcceptInvitation struct {
			Token *string
			User  *struct {
				Email string
				Role  struct{ Name string }
			}
			Errors []struct{ Code string }
		}
	}
	e.Do("", `mutation($t: String!) { acceptInvitation(input: {token: $t, name: "Jane", password: "long enough password"}) { token user { email role { name } } errors { code } } }`, map[string]any{"t": token}).MustData(&acc)
	if acc.AcceptInvitation.Token == nil || acc.AcceptInvitation.User.Role.Name != "Member" {
		t.Fatalf("accept: %+v", acc.AcceptInvitation)
	}
	e.Do("", `mutation($t: String!) { acceptInvitation(input: {token: $t, name: "Jane", password: "long enough password"}) { token user { email role { name } } errors { code } } }`, map[string]any{"t": token}).MustData(&acc)
	if len(acc.AcceptInvitation.Errors) != 1 || acc.AcceptInvitation.Errors[0].Code != "INVITATION_ALREADY_ACCEPTED" {
		t.Fatalf("second accept: %+v", acc.AcceptInvitation)
	}
}

// The link in a message comes from configuration only: a request's Host,
// X-Forwarded-Host or Origin cannot point invitees at another site.
func TestInvitationLinkIgnoresRequestHeaders(t *testing.T) {
	t.Parallel()
	e := testutil.New(t)
	org := e.NewOrg("Acme")
	body := `{"query":"mutation { inviteUsers(input: {emails: [\"jane@example.com\"]}) { counts { invited } } }"}`
	req := httptest.NewRequest(http.MethodPost, "http://evil.example/query", strings.NewReader(body))
	req.Host = "evil.example"
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+org.AdminToken)
	req.Header.Set("X-Forwarded-Host", "evil.example")
	req.Header.Set("Origin", "https://evil.example")
	if r := e.Serve(req); len(r.Errors) > 0 || !strings.Contains(string(r.Data), `"invited":1`) {
		t.Fatalf("invite: %s", r.Body)
	}
	e.Deliver()
	msgs := e.Mail.To("jane@example.com")
	if len(msgs) != 1 {
		t.Fatalf("%d messages, want 1", len(msgs))
	}
	for _, part := range []string{msgs[0].Text, msgs[0].HTML} {
		if strings.Contains(part, "evil.example") || !strings.Contains(part, "https://admit.test/invitations/accept?token=adi_") {
			t.Fatalf("message links elsewhere than the configured URL:\n%s", part)
		}
	}
}

// A token works only for its purpose: an invitation token is no session.
func TestInvitationTokenIsNotASessionToken(t *testing.T) {
	t.Parallel()
	e := testutil.New(t)
	org := e.NewOrg("Acme")
	e.Do(org.AdminToken, `mutation { inviteUsers(input: {emails: ["jane@example.com"]}) { counts { invited } } }`, nil).MustData(&struct {
		InviteUsers struct{ Counts struct{ Invited int } }
	}{})
	e.Deliver()
	token := testutil.TokenIn(t, e.Mail.To("jane@example.com")[0])
	e.Do(token, `{ me { email } }`, nil).MustFail("UNAUTHENTICATED")
	e.Do("", `query($t: String!) { invitationPreview(token: $t) { email } }`, map[string]any{"t": org.AdminToken}).MustFail("INVITATION_NOT_FOUND")
}
