package graph_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"mime/multipart"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"

	"admit/internal/sms"
	"admit/internal/testutil"
)

// Invitations by name with an email or a phone (issue #10), through the
// GraphQL API on SQLite and PostgreSQL.

const (
	phInvite = `mutation($in: InviteUsersInput!) { inviteUsers(input: $in) {
  results { input field email phone outcome code message invitation { id kind admin deliveryMode externalID status sendCount } membership { status } }
  counts { total invited invalid duplicate alreadyMember alreadyInvited domainNotAllowed externalIDTaken }
  errors { code field message } } }`
	phResend  = `mutation($id: ID!) { resendInvitation(input: {id: $id}) { invitation { id sendCount } errors { code message } } }`
	phAccept  = `mutation($in: AcceptInvitationInput!) { acceptInvitation(input: $in) { token user { id email phone name admin kind status externalID } errors { code field message } } }`
	phSignIn  = `mutation($in: SignInInput!) { signIn(input: $in) { token user { phone } errors { code field message retryAfter } } }`
	phMe      = `query { me { email phone admin kind memberships(first: 10) { edges { node { status workspace { name } } } } contacts(first: 10) { edges { node { contact { name phone email status } } } } } }`
	phOrg     = `mutation($in: UpdateOrganizationInput!) { updateOrganization(input: $in) { organization { name defaultRegion invitationExpiryDays } errors { code field message } } }`
	phUsers   = `query($where: UserWhereInput) { users(first: 50, where: $where) { edges { node { name email phone externalID kind admin status } } } }`
	phContact = `query { contacts(first: 50) { totalCount edges { node { owner { email } contact { name phone email status } } } } }`
)

// phInviteData runs inviteUsers and returns its payload.
func phInviteData(t *testing.T, e *testutil.Env, token string, in map[string]any) map[string]any {
	t.Helper()
	return wsData(t, e, token, phInvite, map[string]any{"in": in})["inviteUsers"].(map[string]any)
}

// phResult returns result i's outcome and code ("" when none).
func phResult(t *testing.T, p map[string]any, i int) (outcome, code string) {
	t.Helper()
	r := wsGet(t, p, fmt.Sprintf("results.%d", i))
	return wsStr(t, r, "outcome"), wsStr(t, r, "code")
}

func phCreateWorkspace(t *testing.T, e *testutil.Env, token, name, typ string) string {
	t.Helper()
	d := wsData(t, e, token, wsCreate, map[string]any{"in": map[string]any{"name": name, "type": typ}})
	return wsStr(t, wsNoErrors(t, d, "createWorkspace"), "workspace.id")
}

// The "done means": Ada quietly as a contact by phone, Grace by
// email to a workspace as an administrator.
func TestInviteAdaQuietlyAndGraceAsAdmin(t *testing.T) {
	e := testutil.New(t)
	org := e.NewOrg("Analytical")
	wsID := phCreateWorkspace(t, e, org.AdminToken, "Engines", "GROUP")

	p := phInviteData(t, e, org.AdminToken, map[string]any{
		"invitees":     []map[string]any{{"name": "Ada Lovelace", "phone": "+44 20 7946 0958", "externalID": "E-1815"}},
		"deliveryMode": "ADD_TO_CONTACTS_QUIETLY",
	})
	if out, code := phResult(t, p, 0); out != "INVITED" || code != "" || wsStr(t, p, "results.0.phone") != "+442079460958" ||
		wsStr(t, p, "results.0.field") != "input.invitees[0]" || wsStr(t, p, "results.0.invitation.deliveryMode") != "ADD_TO_CONTACTS_QUIETLY" ||
		wsGet(t, p, "results.0.invitation.sendCount") != float64(0) || wsStr(t, p, "results.0.invitation.externalID") != "E-1815" {
		t.Fatalf("Ada: %v", p)
	}
	adaInvitation := wsStr(t, p, "results.0.invitation.id")

	p = phInviteData(t, e, org.AdminToken, map[string]any{
		"invitees":     []map[string]any{{"name": "Grace Hopper", "email": "grace@navy.test"}},
		"admin":        true,
		"workspaceID":  wsID,
		"deliveryMode": "ADD_TO_WORKSPACE",
	})
	if out, _ := phResult(t, p, 0); out != "INVITED" || wsGet(t, p, "results.0.invitation.admin") != true || wsStr(t, p, "results.0.membership.status") != "NOT_JOINED" {
		t.Fatalf("Grace: %v", p)
	}

	// Ada gets nothing yet; Grace gets her email.
	e.Deliver()
	if n := e.Texts.Count(); n != 0 {
		t.Fatalf("want no SMS before the resend, got %d", n)
	}
	if n := len(e.Mail.To("grace@navy.test")); n != 1 {
		t.Fatalf("want one email to Grace, got %d", n)
	}
	// Ada is the admin's contact already, as an invited user; the members
	// panel lists Grace as not joined.
	d := wsData(t, e, org.AdminToken, phMe, nil)
	if wsStr(t, d, "me.contacts.edges.0.node.contact.phone") != "+442079460958" || wsStr(t, d, "me.contacts.edges.0.node.contact.status") != "INVITED" {
		t.Fatalf("contacts: %v", d)
	}
	d = wsData(t, e, org.AdminToken, wsMembers, map[string]any{"id": wsID, "where": map[string]any{"status": "NOT_JOINED"}})
	if wsGet(t, d, "workspace.members.totalCount") != float64(1) || wsStr(t, d, "workspace.members.edges.0.node.user.email") != "grace@navy.test" {
		t.Fatalf("not joined: %v", d)
	}

	// The resend sends Ada's first message: an SMS, one segment, with the link.
	r := wsData(t, e, org.AdminToken, phResend, map[string]any{"id": adaInvitation})
	wsNoErrors(t, r, "resendInvitation")
	e.Deliver()
	texts := e.Texts.To("+442079460958")
	if len(texts) != 1 || !strings.Contains(texts[0].Body, "Analytical") || sms.Segments(texts[0].Body) != 1 {
		t.Fatalf("want one one-segment SMS to Ada naming the organization, got %+v", texts)
	}
	adaToken := smsToken(t, texts[0].Body)

	// Ada accepts by phone with an address of her own, and signs in by phone.
	d = wsData(t, e, "", phAccept, map[string]any{"in": map[string]any{"token": adaToken, "name": "Ada Lovelace", "password": testutil.DefaultPassword, "email": "ada@engines.test"}})
	acc := wsNoErrors(t, d, "acceptInvitation")
	if wsStr(t, acc, "user.phone") != "+442079460958" || wsStr(t, acc, "user.email") != "ada@engines.test" || wsStr(t, acc, "user.status") != "ACTIVE" ||
		wsGet(t, acc, "user.admin") != false || wsStr(t, acc, "user.externalID") != "E-1815" {
		t.Fatalf("Ada accepted: %v", acc)
	}
	d = wsData(t, e, "", phSignIn, map[string]any{"in": map[string]any{"phone": "+44 (0)20 7946 0958", "password": testutil.DefaultPassword}})
	if wsStr(t, wsNoErrors(t, d, "signIn"), "user.phone") != "+442079460958" {
		t.Fatalf("sign in by phone: %v", d)
	}

	// Grace accepts: an administrator and a joined member.
	graceToken := testutil.TokenIn(t, e.Mail.To("grace@navy.test")[0])
	d = wsData(t, e, "", phAccept, map[string]any{"in": map[string]any{"token": graceToken, "name": "Grace Hopper", "password": testutil.DefaultPassword}})
	acc = wsNoErrors(t, d, "acceptInvitation")
	if wsGet(t, acc, "user.admin") != true {
		t.Fatalf("Grace: want an administrator, got %v", acc)
	}
	me := wsData(t, e, wsStr(t, acc, "token"), phMe, nil)
	if wsGet(t, me, "me.admin") != true || wsStr(t, me, "me.memberships.edges.0.node.status") != "JOINED" || wsStr(t, me, "me.memberships.edges.0.node.workspace.name") != "Engines" {
		t.Fatalf("Grace's account: %v", me)
	}
	// Her admin rights are real: she can invite.
	p = phInviteData(t, e, wsStr(t, acc, "token"), map[string]any{"emails": []string{"next@navy.test"}})
	if out, _ := phResult(t, p, 0); out != "INVITED" {
		t.Fatalf("Grace inviting: %v", p)
	}
}

// smsToken reads the token of the accept link in an SMS.
func smsToken(t *testing.T, body string) string {
	t.Helper()
	i := strings.Index(body, "https://")
	if i < 0 {
		t.Fatalf("no link in %q", body)
	}
	u, err := url.Parse(strings.Fields(body[i:])[0])
	if err != nil {
		t.Fatal(err)
	}
	return u.Query().Get("token")
}

func TestPhoneNumbersAreNormalized(t *testing.T) {
	e := testutil.New(t)
	org := e.NewOrg("Phones")
	invitees := []map[string]any{
		{"name": "Local", "phone": "020 7946 0958"},           // 0: local form, needs the region
		{"name": "International", "phone": "+1 650-253-0000"}, // 1
		{"name": "Double zero", "phone": "0044 161 496 0000"}, // 2
		{"name": "Too short", "phone": "+44 12"},              // 3
		{"name": "Letters", "phone": "call me"},               // 4
	}
	// Without a default region, only the local form is refused.
	p := phInviteData(t, e, org.AdminToken, map[string]any{"invitees": invitees})
	want := []struct{ outcome, code, phone string }{
		{"SKIPPED", "INVALID_PHONE", ""}, {"INVITED", "", "+16502530000"}, {"INVITED", "", "+441614960000"},
		{"SKIPPED", "INVALID_PHONE", ""}, {"SKIPPED", "INVALID_PHONE", ""},
	}
	for i, w := range want {
		if out, code := phResult(t, p, i); out != w.outcome || code != w.code || wsStr(t, p, fmt.Sprintf("results.%d.phone", i)) != w.phone {
			t.Fatalf("result %d: want %v, got %v", i, w, wsGet(t, p, fmt.Sprintf("results.%d", i)))
		}
	}
	if wsGet(t, p, "counts.invalid") != float64(3) || wsGet(t, p, "counts.invited") != float64(2) {
		t.Fatalf("counts: %v", p["counts"])
	}
	if msg := wsStr(t, p, "results.0.message"); !strings.Contains(msg, "country code") {
		t.Fatalf("want the local form's message to say what to do, got %q", msg)
	}

	// With GB as the default region the local form reads as London; the
	// same number in another spelling is a duplicate, and a number already
	// invited is reported like an address.
	d := wsData(t, e, org.AdminToken, phOrg, map[string]any{"in": map[string]any{"defaultRegion": "gb"}})
	if wsStr(t, wsNoErrors(t, d, "updateOrganization"), "organization.defaultRegion") != "GB" {
		t.Fatalf("region: %v", d)
	}
	p = phInviteData(t, e, org.AdminToken, map[string]any{"invitees": []map[string]any{
		{"name": "Local", "phone": "020 7946 0958"},
		{"name": "Again", "phone": "+44 20 7946 0958"},
		{"name": "Invited", "phone": "0161 496 0000"},
	}})
	if out, _ := phResult(t, p, 0); out != "INVITED" || wsStr(t, p, "results.0.phone") != "+442079460958" {
		t.Fatalf("local form with GB: %v", p)
	}
	if _, code := phResult(t, p, 1); code != "DUPLICATE_IN_REQUEST" {
		t.Fatalf("same number twice: %v", p)
	}
	if _, code := phResult(t, p, 2); code != "ALREADY_INVITED" {
		t.Fatalf("number already invited: %v", p)
	}

	// A number that belongs to a member is ALREADY_MEMBER.
	if err := e.DB.Client.User.UpdateOneID(org.AdminID).SetPhone("+442079460999").Exec(testutil.System()); err != nil {
		t.Fatal(err)
	}
	p = phInviteData(t, e, org.AdminToken, map[string]any{"invitees": []map[string]any{{"name": "Me", "phone": "020 7946 0999"}}})
	if _, code := phResult(t, p, 0); code != "ALREADY_MEMBER" {
		t.Fatalf("member's number: %v", p)
	}

	// Bad settings are refused with the field named.
	for field, in := range map[string]map[string]any{
		"input.defaultRegion":        {"defaultRegion": "XX"},
		"input.invitationExpiryDays": {"invitationExpiryDays": 0},
		"input.name":                 {"name": "  "},
	} {
		d := wsData(t, e, org.AdminToken, phOrg, map[string]any{"in": in})
		if wsStr(t, d, "updateOrganization.errors.0.code") != "INVALID_INPUT" || wsStr(t, d, "updateOrganization.errors.0.field") != field {
			t.Fatalf("%v: want INVALID_INPUT on %s, got %v", in, field, d)
		}
	}
	member := e.NewUser(org, "member@phones.test", org.MemberRoleID)
	e.Do(e.SignIn(*member.Email, testutil.DefaultPassword), phOrg, map[string]any{"in": map[string]any{"defaultRegion": "US"}}).MustFail("FORBIDDEN")
}

func TestInviteeRulesAndExternalIDs(t *testing.T) {
	e := testutil.New(t)
	org := e.NewOrg("Rules")
	taken := e.NewUser(org, "held@rules.test", org.MemberRoleID)
	if err := e.DB.Client.User.UpdateOneID(taken.ID).SetExternalID("E-1").Exec(testutil.System()); err != nil {
		t.Fatal(err)
	}
	p := phInviteData(t, e, org.AdminToken, map[string]any{
		"emails": []string{"typed@rules.test"},
		"invitees": []map[string]any{
			{"email": "noname@rules.test"}, // 1: needs a name
			{"name": "Nobody"},             // 2: needs a way to reach them
			{"name": "Clash", "email": "clash@rules.test", "externalID": "E-1"},      // 3: User ID of another user
			{"name": "First", "email": "first@rules.test", "externalID": "E-2"},      // 4
			{"name": "Second", "email": "second@rules.test", "externalID": "E-2"},    // 5: repeated User ID
			{"name": "Both", "email": "both@rules.test", "phone": "+1 650 253 0001"}, // 6
		},
	})
	want := []struct{ outcome, code, field string }{
		{"INVITED", "", ""}, {"SKIPPED", "INVALID_INPUT", "input.invitees[0]"}, {"SKIPPED", "INVALID_INPUT", "input.invitees[1]"},
		{"SKIPPED", "EXTERNAL_ID_TAKEN", "input.invitees[2]"}, {"INVITED", "", "input.invitees[3]"},
		{"SKIPPED", "EXTERNAL_ID_TAKEN", "input.invitees[4]"}, {"INVITED", "", "input.invitees[5]"},
	}
	for i, w := range want {
		out, code := phResult(t, p, i)
		if out != w.outcome || code != w.code || wsStr(t, p, fmt.Sprintf("results.%d.field", i)) != w.field {
			t.Fatalf("result %d: want %v, got %v", i, w, wsGet(t, p, fmt.Sprintf("results.%d", i)))
		}
	}
	if wsGet(t, p, "counts.externalIDTaken") != float64(2) || wsGet(t, p, "counts.invalid") != float64(2) {
		t.Fatalf("counts: %v", p["counts"])
	}
	// Someone with both gets the email, not a text.
	e.Deliver()
	if len(e.Mail.To("both@rules.test")) != 1 || e.Texts.Count() != 0 {
		t.Fatalf("want an email and no SMS for an invitee with both, got %d texts", e.Texts.Count())
	}
	// A User ID held by a pending invitation is taken too.
	p = phInviteData(t, e, org.AdminToken, map[string]any{"invitees": []map[string]any{{"name": "Third", "email": "third@rules.test", "externalID": "E-2"}}})
	if _, code := phResult(t, p, 0); code != "EXTERNAL_ID_TAKEN" {
		t.Fatalf("User ID of a pending invitation: %v", p)
	}

	// Whole-request refusals.
	for name, c := range map[string]struct {
		in   map[string]any
		code string
	}{
		"workspace mode without a workspace": {map[string]any{"emails": []string{"x@rules.test"}, "deliveryMode": "ADD_TO_WORKSPACE"}, "BAD_USER_INPUT"},
		"an administrator client":            {map[string]any{"emails": []string{"x@rules.test"}, "kind": "CLIENT", "admin": true}, "BAD_USER_INPUT"},
		"admin with a member role":           {map[string]any{"emails": []string{"x@rules.test"}, "admin": true, "roleID": testutil.ID(org.MemberRoleID)}, "BAD_USER_INPUT"},
	} {
		r := e.Do(org.AdminToken, phInvite, map[string]any{"in": c.in})
		if len(r.Errors) != 1 || r.Errors[0].Code() != c.code {
			t.Fatalf("%s: want %s, got %s", name, c.code, r.Body)
		}
	}
	if n := countRows(t, e, "invitations", "email = 'x@rules.test'"); n != 0 {
		t.Fatalf("refused requests wrote %d invitations", n)
	}

	// Users expose and filter on kind, admin, phone and externalID.
	d := wsData(t, e, org.AdminToken, phUsers, map[string]any{"where": map[string]any{"externalID": "E-1"}})
	if wsStr(t, d, "users.edges.0.node.email") != "held@rules.test" || wsGet(t, d, "users.edges.0.node.admin") != false {
		t.Fatalf("by externalID: %v", d)
	}
	d = wsData(t, e, org.AdminToken, phUsers, map[string]any{"where": map[string]any{"admin": true}})
	if edges := wsGet(t, d, "users.edges").([]any); len(edges) != 1 || wsStr(t, edges[0], "node.email") != org.AdminEmail {
		t.Fatalf("admins: %v", d)
	}
}

// countRows counts rows of table matching where, in every organization.
func countRows(t *testing.T, e *testutil.Env, table, where string) int {
	t.Helper()
	var n int
	if err := e.DB.SQL.QueryRow("SELECT count(*) FROM " + table + " WHERE " + where).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

func TestAdministratorToggleNeedsAdminRights(t *testing.T) {
	e := testutil.New(t)
	org := e.NewOrg("Toggle")
	// A member is refused, toggle or not.
	member := e.NewUser(org, "member@toggle.test", org.MemberRoleID)
	memberToken := e.SignIn(*member.Email, testutil.DefaultPassword)
	e.Do(memberToken, phInvite, map[string]any{"in": map[string]any{"invitees": []map[string]any{{"name": "X", "email": "x@toggle.test"}}, "admin": true}}).MustFail("FORBIDDEN")
	// An admin holding a lower-ranked administrator role cannot hand out
	// the built-in Admin role above it: the role ceiling holds.
	junior := e.NewRole(org, "Junior admin", true, 10)
	ju := e.NewUser(org, "junior@toggle.test", junior.ID)
	juToken := e.SignIn(*ju.Email, testutil.DefaultPassword)
	e.Do(juToken, phInvite, map[string]any{"in": map[string]any{"invitees": []map[string]any{{"name": "X", "email": "x@toggle.test"}}, "admin": true}}).MustFail("FORBIDDEN")
	// ...but may grant their own administrator role.
	p := phInviteData(t, e, juToken, map[string]any{"invitees": []map[string]any{{"name": "X", "email": "x@toggle.test"}}, "admin": true, "roleID": testutil.ID(junior.ID)})
	if out, _ := phResult(t, p, 0); out != "INVITED" || wsGet(t, p, "results.0.invitation.admin") != true {
		t.Fatalf("own admin role: %v", p)
	}
}

func TestContactsAreTheirOwnersAlone(t *testing.T) {
	e := testutil.New(t)
	org := e.NewOrg("Contacts")
	p := phInviteData(t, e, org.AdminToken, map[string]any{
		"invitees":     []map[string]any{{"name": "Client One", "email": "one@client.test"}},
		"kind":         "CLIENT",
		"deliveryMode": "ADD_TO_CONTACTS",
	})
	if out, _ := phResult(t, p, 0); out != "INVITED" || wsStr(t, p, "results.0.invitation.kind") != "CLIENT" {
		t.Fatalf("invite: %v", p)
	}
	e.Deliver()
	if len(e.Mail.To("one@client.test")) != 1 {
		t.Fatalf("ADD_TO_CONTACTS sends the invitation")
	}
	d := wsData(t, e, org.AdminToken, phContact, nil)
	if wsGet(t, d, "contacts.totalCount") != float64(1) || wsStr(t, d, "contacts.edges.0.node.contact.email") != "one@client.test" ||
		wsStr(t, d, "contacts.edges.0.node.owner.email") != org.AdminEmail {
		t.Fatalf("contacts: %v", d)
	}
	// Another admin of the same organization, and an admin of another, see none of them.
	other := e.NewUser(org, "second@contacts.test", org.AdminRoleID)
	for name, token := range map[string]string{"another admin": e.SignIn(*other.Email, testutil.DefaultPassword), "another tenant": e.NewOrg("Else").AdminToken} {
		d := wsData(t, e, token, phContact, nil)
		if wsGet(t, d, "contacts.totalCount") != float64(0) {
			t.Fatalf("%s sees contacts: %v", name, d)
		}
	}
	// Inviting the same person again after a revoke keeps one contact row.
	inv := wsStr(t, p, "results.0.invitation.id")
	wsNoErrors(t, wsData(t, e, org.AdminToken, `mutation($id: ID!) { revokeInvitation(input: {id: $id}) { errors { code message } } }`, map[string]any{"id": inv}), "revokeInvitation")
	p = phInviteData(t, e, org.AdminToken, map[string]any{"invitees": []map[string]any{{"name": "Client One", "email": "one@client.test"}}, "kind": "CLIENT", "deliveryMode": "ADD_TO_CONTACTS"})
	if out, _ := phResult(t, p, 0); out != "INVITED" {
		t.Fatalf("again: %v", p)
	}
	if d := wsData(t, e, org.AdminToken, phContact, nil); wsGet(t, d, "contacts.totalCount") != float64(1) {
		t.Fatalf("want one contact after inviting again, got %v", d)
	}
}

func TestSignInByPhoneSharesTheLimits(t *testing.T) {
	e := testutil.New(t)
	org := e.NewOrg("Signin")
	wsData(t, e, org.AdminToken, phOrg, map[string]any{"in": map[string]any{"defaultRegion": "GB"}})
	if err := e.DB.Client.User.UpdateOneID(org.AdminID).SetPhone("+442079460958").Exec(testutil.System()); err != nil {
		t.Fatal(err)
	}
	orgID := testutil.ID(org.ID)
	// The local form needs the organization to read it in.
	d := wsData(t, e, "", phSignIn, map[string]any{"in": map[string]any{"phone": "020 7946 0958", "password": testutil.DefaultPassword}})
	if wsStr(t, d, "signIn.errors.0.code") != "INVALID_PHONE" || wsStr(t, d, "signIn.errors.0.field") != "input.phone" {
		t.Fatalf("local form without organizationID: %v", d)
	}
	d = wsData(t, e, "", phSignIn, map[string]any{"in": map[string]any{"phone": "020 7946 0958", "organizationID": orgID, "password": testutil.DefaultPassword}})
	if wsStr(t, wsNoErrors(t, d, "signIn"), "user.phone") != "+442079460958" {
		t.Fatalf("local form with organizationID: %v", d)
	}
	d = wsData(t, e, "", phSignIn, map[string]any{"in": map[string]any{"password": testutil.DefaultPassword}})
	if wsStr(t, d, "signIn.errors.0.code") != "INVALID_INPUT" {
		t.Fatalf("neither email nor phone: %v", d)
	}
	// Spelling the number differently does not escape the per-account
	// limit: every spelling counts against the one account.
	spellings := []string{"+44 20 7946 0958", "+442079460958", "0044 20 7946 0958", "+44 (0)20 7946-0958"}
	for i := range 10 {
		d := wsData(t, e, "", phSignIn, map[string]any{"in": map[string]any{"phone": spellings[i%len(spellings)], "password": "wrong password here"}})
		if code := wsStr(t, d, "signIn.errors.0.code"); code != "INVALID_CREDENTIALS" {
			t.Fatalf("attempt %d: want INVALID_CREDENTIALS, got %v", i, d)
		}
	}
	d = wsData(t, e, "", phSignIn, map[string]any{"in": map[string]any{"phone": "+44 20 79 46 09 58", "password": testutil.DefaultPassword}})
	if wsStr(t, d, "signIn.errors.0.code") != "RATE_LIMITED" || wsStr(t, d, "signIn.token") != "" {
		t.Fatalf("want the right password refused after 10 failures in other spellings, got %v", d)
	}
}

// twilioServer follows Twilio's documented Messages API: Basic auth with
// the account SID and auth token, a form-encoded POST to
// /2010-04-01/Accounts/{sid}/Messages.json, 201 with the message resource,
// and error bodies {"code", "message", "more_info", "status"}. answer
// decides, per request number (from 1), what to send back.
func twilioServer(t *testing.T, answer func(n int, to string) (int, string)) (*httptest.Server, func() []url.Values) {
	t.Helper()
	var mu sync.Mutex
	var forms []url.Values
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		user, pass, ok := r.BasicAuth()
		if !ok || user != "AC0123" || pass != "auth-token" {
			w.WriteHeader(http.StatusUnauthorized)
			_, _ = w.Write([]byte(`{"code": 20003, "message": "Authenticate", "more_info": "https://www.twilio.com/docs/errors/20003", "status": 401}`))
			return
		}
		if r.Method != http.MethodPost || r.URL.Path != "/2010-04-01/Accounts/AC0123/Messages.json" || r.Header.Get("Content-Type") != "application/x-www-form-urlencoded" {
			w.WriteHeader(http.StatusNotFound)
			_, _ = w.Write([]byte(`{"code": 20404, "message": "The requested resource was not found", "status": 404}`))
			return
		}
		_ = r.ParseForm()
		mu.Lock()
		defer mu.Unlock()
		forms = append(forms, r.PostForm)
		status, body := answer(len(forms), r.PostForm.Get("To"))
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(status)
		_, _ = w.Write([]byte(body))
	}))
	t.Cleanup(srv.Close)
	return srv, func() []url.Values { mu.Lock(); defer mu.Unlock(); return append([]url.Values(nil), forms...) }
}

func TestSMSThroughTwilio(t *testing.T) {
	e := testutil.New(t)
	org := e.NewOrg("Texting")
	tries := map[string]int{} // the server calls answer one request at a time
	srv, forms := twilioServer(t, func(_ int, to string) (int, string) {
		tries[to]++
		n := tries[to]
		switch {
		case to == "+16502530002": // Twilio's documented invalid-number error
			return 400, `{"code": 21211, "message": "Invalid 'To' Phone Number", "more_info": "https://www.twilio.com/docs/errors/21211", "status": 400}`
		case to == "+16502530003" && n <= 2: // busy at first
			return 429, `{"code": 20429, "message": "Too Many Requests", "status": 429}`
		case to == "+16502530004": // always down
			return 503, `{"code": 20503, "message": "Service Unavailable", "status": 503}`
		}
		return 201, `{"sid": "SM0123", "status": "queued", "to": "` + to + `", "error_code": null}`
	})
	e.Worker.SMS = &sms.Twilio{AccountSID: "AC0123", AuthToken: "auth-token", From: "+15005550006", APIBase: srv.URL}
	e.Worker.MaxAttempts = 4

	p := phInviteData(t, e, org.AdminToken, map[string]any{"invitees": []map[string]any{
		{"name": "Fine", "phone": "+1 650 253 0001"},
		{"name": "Invalid", "phone": "+1 650 253 0002"},
		{"name": "Busy", "phone": "+1 650 253 0003"},
		{"name": "Down", "phone": "+1 650 253 0004"},
	}})
	if wsGet(t, p, "counts.invited") != float64(4) {
		t.Fatalf("invite: %v", p)
	}
	for range 6 { // through the retries' backoff
		e.Deliver()
		e.Clock.Advance(20 * 1e9)
	}
	got := forms()
	for _, f := range got {
		if f.Get("From") != "+15005550006" || !strings.Contains(f.Get("Body"), "https://admit.test/invitations/accept?token=") || sms.Segments(f.Get("Body")) != 1 {
			t.Fatalf("want From and a one-segment Body with the accept link, got %v", f)
		}
	}
	if len(got) != 1+1+3+4 { // fine once, invalid once, busy thrice, down four times
		t.Fatalf("want 9 requests to the provider, got %d", len(got))
	}
	d := wsData(t, e, org.AdminToken, `query { deliveries(first: 20) { edges { node { channel recipient status attempts lastError } } } }`, nil)
	byTo := map[string]map[string]any{}
	for _, edge := range wsGet(t, d, "deliveries.edges").([]any) {
		n := wsGet(t, edge, "node").(map[string]any)
		byTo[n["recipient"].(string)] = n
	}
	check := func(to, status string, attempts float64, errPart string) {
		t.Helper()
		n := byTo[to]
		if n == nil || n["channel"] != "SMS" || n["status"] != status || n["attempts"] != attempts || !strings.Contains(fmt.Sprint(n["lastError"]), errPart) {
			t.Fatalf("%s: want %s after %v attempts with %q, got %v", to, status, attempts, errPart, n)
		}
	}
	// The outbox keeps the text it sent with the link masked: no usable
	// token rests in the database.
	for _, f := range got {
		if tok := smsToken(t, f.Get("Body")); countRows(t, e, "deliveries", "body_text LIKE '%"+tok+"%'") != 0 {
			t.Fatalf("a stored text holds the token sent to %s", f.Get("To"))
		}
	}
	check("+16502530001", "SENT", 1, "")
	check("+16502530002", "FAILED", 1, "21211 Invalid 'To' Phone Number") // at once, with the provider's message
	check("+16502530003", "SENT", 3, "")                                  // after two 429s
	check("+16502530004", "FAILED", 4, "20503")                           // temporary, until the attempts ran out
	// The invitation shows why its message failed.
	d = wsData(t, e, org.AdminToken, `query { invitations(first: 10, where: {phone: "+16502530002"}) { edges { node { lastDeliveryError } } } }`, nil)
	if !strings.Contains(wsStr(t, d, "invitations.edges.0.node.lastDeliveryError"), "Invalid 'To' Phone Number") {
		t.Fatalf("invitation's last error: %v", d)
	}
	// The auth token never shows in the log.
	if strings.Contains(e.LogText(), "auth-token") {
		t.Fatalf("the Twilio auth token is in the log")
	}
}

func TestImportWithPhoneAndUserIDColumns(t *testing.T) {
	e := testutil.New(t)
	org := e.NewOrg("Import")
	wsData(t, e, org.AdminToken, phOrg, map[string]any{"in": map[string]any{"defaultRegion": "GB"}})
	csv := "Name,Email,Phone,User ID\nAda,,020 7946 0958,E-1\nGrace,grace@import.test,,E-2\nNobody,,not a number,\n"
	var body bytes.Buffer
	mw := multipart.NewWriter(&body)
	ops, _ := json.Marshal(map[string]any{
		"query":     `mutation($f: Upload!) { importInvitations(input: {file: $f}) { counts { total invited invalid } results { row email phone outcome code invitation { externalID } } errors { code message } } }`,
		"variables": map[string]any{"f": nil},
	})
	_ = mw.WriteField("operations", string(ops))
	_ = mw.WriteField("map", `{"0":["variables.f"]}`)
	fw, _ := mw.CreateFormFile("0", "people.csv")
	_, _ = fw.Write([]byte(csv))
	_ = mw.Close()
	req := httptest.NewRequest(http.MethodPost, "/query", &body)
	req.Header.Set("Content-Type", mw.FormDataContentType())
	req.Header.Set("Authorization", "Bearer "+org.AdminToken)
	req.Header.Set("GraphQL-Require-Preflight", "1")
	r := e.Serve(req)
	var d map[string]any
	r.MustData(&d)
	p := wsNoErrors(t, d, "importInvitations")
	if wsGet(t, p, "counts.invited") != float64(2) || wsGet(t, p, "counts.invalid") != float64(1) ||
		wsStr(t, p, "results.0.phone") != "+442079460958" || wsStr(t, p, "results.0.invitation.externalID") != "E-1" ||
		wsStr(t, p, "results.1.email") != "grace@import.test" || wsStr(t, p, "results.2.code") != "INVALID_PHONE" || wsGet(t, p, "results.2.row") != float64(4) {
		t.Fatalf("import: %v", p)
	}
	e.Deliver()
	if len(e.Texts.To("+442079460958")) != 1 || len(e.Mail.To("grace@import.test")) != 1 {
		t.Fatalf("want one SMS and one email")
	}
}

// SMS pumping: numbers that bill the sender are never texted, regions can
// be limited, and texts over the caps wait in the outbox.
func TestSMSGuards(t *testing.T) {
	e := testutil.New(t)
	org := e.NewOrg("Guards")
	e.Invites.SMSRegions = []string{"GB", "US"}
	e.Worker.SMSLimits.Regions = e.Invites.SMSRegions
	p := phInviteData(t, e, org.AdminToken, map[string]any{"invitees": []map[string]any{
		{"name": "Premium", "phone": "+44 909 876 5432"},                                   // 0: premium rate, text only
		{"name": "Premium by mail", "phone": "+44 909 876 5432", "email": "p@guards.test"}, // 1: reached by email instead
		{"name": "Elsewhere", "phone": "+33 6 12 34 56 78"},                                // 2: outside the regions
		{"name": "Fine", "phone": "+44 20 7946 0958"},                                      // 3
	}})
	for i, want := range []string{"PHONE_NOT_ALLOWED", "", "PHONE_NOT_ALLOWED", ""} {
		if _, code := phResult(t, p, i); code != want {
			t.Fatalf("result %d: want %q, got %v", i, want, wsGet(t, p, fmt.Sprintf("results.%d", i)))
		}
	}
	// At most 3 texts to one number in 10 minutes: the fourth waits.
	inv := wsStr(t, p, "results.3.invitation.id")
	e.Deliver()
	for range 3 {
		e.Clock.Advance(61 * 1e9)
		wsNoErrors(t, wsData(t, e, org.AdminToken, phResend, map[string]any{"id": inv}), "resendInvitation")
		e.Deliver()
	}
	if n := len(e.Texts.To("+442079460958")); n != 3 {
		t.Fatalf("want 3 texts in the window, got %d", n)
	}
	d := wsData(t, e, org.AdminToken, `query { deliveries(first: 1, where: {status: QUEUED}) { edges { node { recipient lastError } } } }`, nil)
	if !strings.Contains(wsStr(t, d, "deliveries.edges.0.node.lastError"), "held") {
		t.Fatalf("want the fourth text held, got %v", d)
	}
	e.Clock.Advance(10 * 60 * 1e9)
	e.Deliver()
	if n := len(e.Texts.To("+442079460958")); n != 4 {
		t.Fatalf("want the held text sent once the window passed, got %d", n)
	}

	// A daily cap per calling code.
	e.Worker.SMSLimits.PerCountryDay = 2
	p = phInviteData(t, e, org.AdminToken, map[string]any{"invitees": []map[string]any{
		{"name": "A", "phone": "+1 650 253 0001"}, {"name": "B", "phone": "+1 650 253 0002"}, {"name": "C", "phone": "+1 650 253 0003"},
	}})
	e.Deliver()
	sent := len(e.Texts.To("+16502530001")) + len(e.Texts.To("+16502530002")) + len(e.Texts.To("+16502530003"))
	if wsGet(t, p, "counts.invited") != float64(3) || sent != 2 {
		t.Fatalf("want 2 of 3 texts to +1 sent today, got %d", sent)
	}

	// The domain rule holds for people reached only by phone.
	if err := e.DB.Client.Organization.UpdateOneID(org.ID).SetRestrictInvitationsToDomains(true).SetDomains([]string{"guards.test"}).Exec(testutil.System()); err != nil {
		t.Fatal(err)
	}
	p = phInviteData(t, e, org.AdminToken, map[string]any{"invitees": []map[string]any{{"name": "Phone only", "phone": "+44 161 496 0000"}}})
	if _, code := phResult(t, p, 0); code != "DOMAIN_NOT_ALLOWED" {
		t.Fatalf("phone-only invitee in a restricted organization: %v", p)
	}
}
