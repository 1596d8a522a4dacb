package graph_test

import (
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
