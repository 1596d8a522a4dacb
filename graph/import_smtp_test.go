package graph_test

import (
	"fmt"
	"strings"
	"testing"

	"admit/internal/mail"
	"admit/internal/testutil"
)

// The "done" path for files: an admin uploads a CSV with a role, a
// real SMTP server receives one message per row, an invitee follows the
// link into an account with that role, and the link works once.
func TestImportedInvitationsReachARealSMTPServer(t *testing.T) {
	t.Parallel()
	e := testutil.New(t)
	org := e.NewOrg("Acme Corp")
	srv := accStartSMTP(t)
	sender, err := mail.NewSMTP("smtp://"+srv.addr, "Admit <no-reply@admit.test>")
	if err != nil {
		t.Fatal(err)
	}
	e.Worker.Sender = sender
	role := e.NewRole(org, "Reviewer", false, 5)

	const n = 500
	var csv strings.Builder
	csv.WriteString("Email Address;Full name\r\n")
	want := map[string]string{} // address → name
	for i := range n {
		addr, name := fmt.Sprintf("person%03d@example.com", i), fmt.Sprintf("Person %d", i)
		fmt.Fprintf(&csv, "%s;%s\r\n", addr, name)
		want[addr] = name
	}
	p := importFile(t, e, org.AdminToken, "people.csv", csv.String(), map[string]any{"roleID": testutil.ID(role.ID)})
	if len(p.Errors) != 0 || p.Counts.Invited != n {
		t.Fatalf("want %d invited, got counts %+v errors %+v", n, p.Counts, p.Errors)
	}
	ids := map[string]int{}
	for _, r := range p.Results {
		if r.Invitation == nil || r.Invitation.Name != want[*r.Email] || r.Invitation.Source != "FILE" {
			t.Fatalf("want a FILE invitation named as in the file, got %s", r)
		}
		ids[*r.Email] = idOf(t, r.Invitation.ID)
	}

	e.Deliver()
	mails := srv.received()
	if len(mails) != n {
		t.Fatalf("want %d messages on the SMTP server, got %d", n, len(mails))
	}
	tokens := map[string]string{}
	for _, m := range mails {
		if len(m.to) != 1 || want[m.to[0]] == "" || tokens[m.to[0]] != "" {
			t.Fatalf("want one message to each imported address, got one to %q", m.to)
		}
		parsed := accParseMail(t, m.data)
		text := parsed.parts["text/plain; charset=utf-8"]
		if !strings.Contains(text, "Reviewer") || !strings.Contains(text, "Acme Corp") {
			t.Fatalf("message to %s: want the role and organization named, got:\n%s", m.to[0], text)
		}
		tok := testutil.TokenIn(t, mail.Message{To: m.to[0], Text: text})
		if !strings.HasPrefix(tok, fmt.Sprintf("adi_%d_1_", ids[m.to[0]])) {
			t.Fatalf("message to %s carries another invitation's token %q", m.to[0], tok)
		}
		tokens[m.to[0]] = tok
	}

	const who = "person499@example.com"
	pv := accPreviewOf(t, e, tokens[who])
	if pv.Status != "PENDING" || pv.RoleName != "Reviewer" || pv.Email == nil || *pv.Email != who {
		t.Fatalf("preview: want a pending invitation of %s as Reviewer, got %+v", who, pv)
	}
	acc := accAccept(t, e, "", tokens[who], "Person 499", accPassword)
	accWantAccepted(t, acc, who)
	if acc.User.Role.Name != "Reviewer" || acc.User.Organization.Name != "Acme Corp" {
		t.Fatalf("want a Reviewer of Acme Corp, got %+v", *acc.User)
	}
	accWantRefused(t, accAccept(t, e, "", tokens[who], "Person 499", accPassword), "INVITATION_ALREADY_ACCEPTED", "token")
}
