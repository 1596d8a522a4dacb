package graph_test

import (
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"admit/internal/testutil"
)

// Helpers for the inviteUsers and importInvitations tests. Like the shared
// helpers in tenancy_test.go they report to the *testing.T they are given.

const bulkInviteMutation = `mutation($in: InviteUsersInput!) {
  inviteUsers(input: $in) {
    results { input row email outcome code message invitation { id email name status source } }
    counts { total invited invalid duplicate alreadyMember alreadyInvited domainNotAllowed }
    errors { code field message }
  }
}`

// bulkInvitation is the invitation of one result.
type bulkInvitation struct {
	ID     string
	Email  *string
	Name   string
	Status string
	Source string
}

// bulkResult is one InviteResult.
type bulkResult struct {
	Input      string
	Row        *int
	Email      *string
	Outcome    string
	Code       *string
	Message    *string
	Invitation *bulkInvitation
}

func (r bulkResult) email() string {
	if r.Email == nil {
		return ""
	}
	return *r.Email
}

func (r bulkResult) code() string {
	if r.Code == nil {
		return ""
	}
	return *r.Code
}

func (r bulkResult) row() int {
	if r.Row == nil {
		return 0
	}
	return *r.Row
}

func (r bulkResult) String() string {
	inv := "<nil>"
	if r.Invitation != nil {
		inv = r.Invitation.ID
	}
	msg := ""
	if r.Message != nil {
		msg = *r.Message
	}
	return fmt.Sprintf("{input %q row %d email %q outcome %s code %q invitation %s message %q}",
		r.Input, r.row(), r.email(), r.Outcome, r.code(), inv, msg)
}

type bulkCounts struct {
	Total, Invited, Invalid, Duplicate, AlreadyMember, AlreadyInvited, DomainNotAllowed int
}

type bulkPayload struct {
	Results []bulkResult
	Counts  bulkCounts
	Errors  []payloadError
}

// bulkInviteRaw sends inviteUsers as token with input in.
func bulkInviteRaw(e *testutil.Env, token string, in map[string]any) *testutil.Response {
	return e.Do(token, bulkInviteMutation, map[string]any{"in": in})
}

// bulkInvite runs inviteUsers and returns its payload, failing t on GraphQL errors.
func bulkInvite(t *testing.T, e *testutil.Env, token string, in map[string]any) bulkPayload {
	t.Helper()
	var out struct{ InviteUsers bulkPayload }
	wantData(t, bulkInviteRaw(e, token, in), &out)
	return out.InviteUsers
}

// bulkEmails is an inviteUsers input with only emails.
func bulkEmails(emails ...string) map[string]any {
	return map[string]any{"emails": emails}
}

// wantResult checks one result: its email ("" for null) and code ("" for
// invited, with an invitation for that address).
func wantResult(t *testing.T, r bulkResult, email, code string) {
	t.Helper()
	if r.email() != email || r.code() != code {
		t.Fatalf("want email %q code %q, got %s", email, code, r)
	}
	if r.Message == nil || *r.Message == "" {
		t.Fatalf("want a message, got %s", r)
	}
	switch code {
	case "":
		if r.Outcome != "INVITED" || r.Invitation == nil || r.Invitation.Email == nil || *r.Invitation.Email != email || r.Invitation.Status != "PENDING" {
			t.Fatalf("want INVITED with a pending invitation for %s, got %s", email, r)
		}
	default:
		if r.Outcome != "SKIPPED" || r.Invitation != nil {
			t.Fatalf("want SKIPPED without an invitation, got %s", r)
		}
	}
}

// bulkTables counts the rows an invite writes.
type bulkTables struct {
	Invitations, Deliveries, Audit, Keys int
}

func bulkCount(t *testing.T, e *testutil.Env) bulkTables {
	t.Helper()
	return bulkTables{
		Invitations: sqlCount(t, e, "SELECT COUNT(*) FROM invitations"),
		Deliveries:  sqlCount(t, e, "SELECT COUNT(*) FROM deliveries"),
		Audit:       sqlCount(t, e, "SELECT COUNT(*) FROM audit_events"),
		Keys:        sqlCount(t, e, "SELECT COUNT(*) FROM idempotency_keys"),
	}
}

// sqlCount runs a COUNT query on the raw database (no privacy).
func sqlCount(t *testing.T, e *testutil.Env, query string, args ...any) int {
	t.Helper()
	var n int
	if err := e.DB.SQL.QueryRow(query, args...).Scan(&n); err != nil {
		t.Fatalf("%s: %v", query, err)
	}
	return n
}

// sqlQuote quotes a string literal for the fixed test queries below (the two
// dialects disagree on placeholders).
func sqlQuote(s string) string { return "'" + strings.ReplaceAll(s, "'", "''") + "'" }

func pendingFor(t *testing.T, e *testutil.Env, email string) int {
	t.Helper()
	return sqlCount(t, e, "SELECT COUNT(*) FROM invitations WHERE status = 'PENDING' AND email = "+sqlQuote(email))
}

func deliveriesFor(t *testing.T, e *testutil.Env, email string) int {
	t.Helper()
	return sqlCount(t, e, "SELECT COUNT(*) FROM deliveries WHERE recipient = "+sqlQuote(email))
}

// wantNothingWritten fails t unless the invite tables are as in before and
// the outbox has nothing to send.
func wantNothingWritten(t *testing.T, e *testutil.Env, before bulkTables) {
	t.Helper()
	if after := bulkCount(t, e); after != before {
		t.Fatalf("want nothing written, rows before %+v after %+v", before, after)
	}
	sent := len(e.Mail.Messages())
	e.Deliver()
	if n := len(e.Mail.Messages()); n != sent {
		t.Fatalf("want no new messages, got %d", n-sent)
	}
}

// logErrors returns the first few ERROR lines the server logged.
func logErrors(e *testutil.Env) string {
	var lines []string
	for _, l := range strings.Split(e.LogText(), "\n") {
		if strings.Contains(l, "level=ERROR") && len(lines) < 5 {
			lines = append(lines, l)
		}
	}
	return strings.Join(lines, "\n")
}

type invitationRow struct {
	ID        string
	Email     *string
	Status    string
	ExpiresAt time.Time
	Source    string
	Role      struct{ Name string }
	Inviter   *struct{ Email *string }
}

const invitationsQuery = `query($where: InvitationWhereInput) {
  invitations(first: 100, where: $where, orderBy: {field: CREATED_AT}) {
    totalCount
    edges { node { id email status expiresAt source role { name } inviter { email } } }
  }
}`

// listInvitations returns the invitations token sees.
func listInvitations(t *testing.T, e *testutil.Env, token string, where map[string]any) []invitationRow {
	t.Helper()
	var out struct {
		Invitations struct {
			TotalCount int
			Edges      []struct{ Node invitationRow }
		}
	}
	var vars map[string]any
	if where != nil {
		vars = map[string]any{"where": where}
	}
	wantData(t, e.Do(token, invitationsQuery, vars), &out)
	rows := make([]invitationRow, 0, len(out.Invitations.Edges))
	for _, edge := range out.Invitations.Edges {
		rows = append(rows, edge.Node)
	}
	if len(rows) != out.Invitations.TotalCount {
		t.Fatalf("invitations: totalCount %d but %d edges", out.Invitations.TotalCount, len(rows))
	}
	return rows
}

func TestInviteUsersSplitsEntriesInOrder(t *testing.T) {
	t.Parallel()
	e := testutil.New(t)
	org := e.NewOrg("Acme")
	p := bulkInvite(t, e, org.AdminToken, bulkEmails(
		"Jane Doe <jane@acme.test>, bob@acme.test; carol@acme.test  dave@acme.test\neve@acme.test\r\nfay@acme.test\tgus@acme.test",
		`"Doe, John" <john@acme.test>; "Roe; Rita" <rita@acme.test>`,
		"  ,;  ",
		"hal@acme.test",
	))
	wantNoPayloadErrors(t, p.Errors)
	want := []struct{ input, email, name string }{
		{"Jane Doe <jane@acme.test>", "jane@acme.test", "Jane Doe"},
		{"bob@acme.test", "bob@acme.test", ""},
		{"carol@acme.test", "carol@acme.test", ""},
		{"dave@acme.test", "dave@acme.test", ""},
		{"eve@acme.test", "eve@acme.test", ""},
		{"fay@acme.test", "fay@acme.test", ""},
		{"gus@acme.test", "gus@acme.test", ""},
		{`"Doe, John" <john@acme.test>`, "john@acme.test", "Doe, John"},
		{`"Roe; Rita" <rita@acme.test>`, "rita@acme.test", "Roe; Rita"},
		{"hal@acme.test", "hal@acme.test", ""},
	}
	if len(p.Results) != len(want) {
		t.Fatalf("want %d results, got %d: %v", len(want), len(p.Results), p.Results)
	}
	for i, w := range want {
		r := p.Results[i]
		if r.Input != w.input {
			t.Fatalf("result %d: want input %q, got %s", i, w.input, r)
		}
		wantResult(t, r, w.email, "")
		if r.Row != nil {
			t.Fatalf("result %d: typed entries have no row, got %s", i, r)
		}
		if r.Invitation.Name != w.name || r.Invitation.Source != "MANUAL" {
			t.Fatalf("result %d: want name %q and source MANUAL, got %+v", i, w.name, *r.Invitation)
		}
	}
	if c := p.Counts; c != (bulkCounts{Total: len(want), Invited: len(want)}) {
		t.Fatalf("counts: want %d invited of %d, got %+v", len(want), len(want), c)
	}
	if n := sqlCount(t, e, "SELECT COUNT(*) FROM invitations"); n != len(want) {
		t.Fatalf("want %d invitation rows, got %d", len(want), n)
	}
}

func TestInviteUsersNormalizesAddresses(t *testing.T) {
	t.Parallel()
	e := testutil.New(t)
	org := e.NewOrg("Acme")
	tests := []struct{ name, in, want string }{
		{"domain and local part lower-cased", "Mixed.Case@Example.COM", "mixed.case@example.com"},
		{"IDN to punycode", "user@Bücher.Example", "user@xn--bcher-kva.example"},
		{"trailing dot removed", "dot@example.com.", "dot@example.com"},
		{"punycode stays as is", "puny@xn--mnchen-3ya.example", "puny@xn--mnchen-3ya.example"},
		{"surrounding space", "  spaced@Example.org  ", "spaced@example.org"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := bulkInvite(t, e, org.AdminToken, bulkEmails(tt.in))
			if len(p.Results) != 1 {
				t.Fatalf("want one result, got %v", p.Results)
			}
			wantResult(t, p.Results[0], tt.want, "")
			if n := pendingFor(t, e, tt.want); n != 1 {
				t.Fatalf("want one pending invitation row for %s, got %d", tt.want, n)
			}
			if n := deliveriesFor(t, e, tt.want); n != 1 {
				t.Fatalf("want one delivery to %s, got %d", tt.want, n)
			}
		})
	}
	e.Deliver()
	for _, tt := range tests {
		if n := len(e.Mail.To(tt.want)); n != 1 {
			t.Fatalf("want one message to %s, got %d", tt.want, n)
		}
	}
}

func TestInviteUsersRefusesInvalidAddresses(t *testing.T) {
	t.Parallel()
	e := testutil.New(t)
	org := e.NewOrg("Acme")
	tests := []struct{ name, in string }{
		{"quoted local part", `"ab"@acme.test`},
		{"quoted local part with @", `"a@b"@acme.test`},
		{"@ in local part", "a@b@acme.test"},
		{`" in local part`, `a"b@acme.test`},
		{"RFC 2047 encoded word as address", "=?utf-8?q?a?=@acme.test"},
		{"RFC 2047 encoded word as name", "=?utf-8?B?QWRtaW4=?= <enc@acme.test>"},
		{"IPv4 literal domain", "a@[127.0.0.1]"},
		{"IPv6 literal domain", "a@[IPv6:::1]"},
		{"dotted-number domain", "a@127.0.0.1"},
		{"NUL", "a\x00b@acme.test"},
		{"BEL", "bell\x07@acme.test"},
		{"ESC in domain", "esc@acme\x1b.test"},
		{"DEL", "del\x7f@acme.test"},
		{"bidi override", "\u202Eadmin@acme.test"},
		{"control character in a name", "Eve\x07 <eve@acme.test>"},
		{"no @", "not-an-address"},
		{"no domain dot", "a@localhost"},
		{"empty local part", "@acme.test"},
		{"non-ASCII local part", "jürgen@acme.test"},
		{"two <> parts", "<a@acme.test><b@acme.test>"},
		{"text after >", "Ann <ann@acme.test>x"},
		{"unquoted name with colon", "Group: <grp@acme.test>"},
	}
	before := bulkCount(t, e)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := bulkInvite(t, e, org.AdminToken, bulkEmails(tt.in))
			wantNoPayloadErrors(t, p.Errors)
			if len(p.Results) != 1 {
				t.Fatalf("%q: want one result, got %v", tt.in, p.Results)
			}
			r := p.Results[0]
			wantResult(t, r, "", "INVALID_ADDRESS")
			if strings.ContainsAny(*r.Message, "\x00\x07\x1b\x7f\r\n\u202E") {
				t.Fatalf("the message repeats a control character raw: %q", *r.Message)
			}
			if p.Counts != (bulkCounts{Total: 1, Invalid: 1}) {
				t.Fatalf("counts: want 1 invalid, got %+v", p.Counts)
			}
		})
	}
	wantNothingWritten(t, e, before)
}

// A line break ends an entry (the API splits on newlines), so a header
// injection attempt in the invite box becomes separate entries; what is
// left of the "header" is refused and no message carries more than its one
// recipient.
func TestInviteUsersHeaderInjectionReachesNoHeader(t *testing.T) {
	t.Parallel()
	e := testutil.New(t)
	org := e.NewOrg("Acme")
	p := bulkInvite(t, e, org.AdminToken, bulkEmails("a@x.com\r\nBcc: b@y.com", "c@x.com\rBcc:d@y.com"))
	wantNoPayloadErrors(t, p.Errors)
	want := []struct{ input, email, code string }{
		{"a@x.com", "a@x.com", ""},
		{"Bcc:", "", "INVALID_ADDRESS"},
		{"b@y.com", "b@y.com", ""},
		{"c@x.com", "c@x.com", ""},
		{"Bcc:d@y.com", "", "INVALID_ADDRESS"},
	}
	if len(p.Results) != len(want) {
		t.Fatalf("want %d results, got %v", len(want), p.Results)
	}
	for i, w := range want {
		if p.Results[i].Input != w.input {
			t.Fatalf("result %d: want input %q, got %s", i, w.input, p.Results[i])
		}
		wantResult(t, p.Results[i], w.email, w.code)
	}
	e.Deliver()
	for _, m := range e.Mail.Messages() {
		if strings.ContainsAny(m.To, "\r\n,; :") || strings.ContainsAny(m.Subject, "\r\n") {
			t.Fatalf("message with an injected header: To %q Subject %q", m.To, m.Subject)
		}
	}
	if n := len(e.Mail.Messages()); n != 3 {
		t.Fatalf("want 3 messages (a@x.com, b@y.com, c@x.com), got %d", n)
	}
}

func TestInviteUsersDuplicateInRequest(t *testing.T) {
	t.Parallel()
	e := testutil.New(t)
	org := e.NewOrg("Acme")
	p := bulkInvite(t, e, org.AdminToken, bulkEmails("dup@acme.test, DUP@Acme.Test", "Dup <dup@ACME.TEST.>", "other@acme.test"))
	if len(p.Results) != 4 {
		t.Fatalf("want 4 results, got %v", p.Results)
	}
	wantResult(t, p.Results[0], "dup@acme.test", "")
	wantResult(t, p.Results[1], "dup@acme.test", "DUPLICATE_IN_REQUEST")
	wantResult(t, p.Results[2], "dup@acme.test", "DUPLICATE_IN_REQUEST")
	wantResult(t, p.Results[3], "other@acme.test", "")
	if p.Counts != (bulkCounts{Total: 4, Invited: 2, Duplicate: 2}) {
		t.Fatalf("counts: %+v", p.Counts)
	}
	if n := pendingFor(t, e, "dup@acme.test"); n != 1 {
		t.Fatalf("want one invitation for dup@acme.test, got %d", n)
	}
	if n := deliveriesFor(t, e, "dup@acme.test"); n != 1 {
		t.Fatalf("want one delivery to dup@acme.test, got %d", n)
	}
}

func TestInviteUsersAlreadyMember(t *testing.T) {
	t.Parallel()
	e := testutil.New(t)
	org := e.NewOrg("Acme")
	other := e.NewOrg("Globex")
	e.NewUser(org, "mia@acme.test", org.MemberRoleID)
	gone := e.NewUser(org, "gone@acme.test", org.MemberRoleID)
	if err := e.DB.Client.User.UpdateOne(gone).SetStatus("DEACTIVATED").Exec(testutil.System()); err != nil {
		t.Fatal(err)
	}
	e.NewUser(other, "carl@globex.test", other.MemberRoleID)
	before := bulkCount(t, e)
	p := bulkInvite(t, e, org.AdminToken, bulkEmails("Mia@ACME.test", org.AdminEmail, "gone@acme.test", "carl@globex.test"))
	if len(p.Results) != 4 {
		t.Fatalf("want 4 results, got %v", p.Results)
	}
	wantResult(t, p.Results[0], "mia@acme.test", "ALREADY_MEMBER")
	wantResult(t, p.Results[1], org.AdminEmail, "ALREADY_MEMBER")
	wantResult(t, p.Results[2], "gone@acme.test", "ALREADY_MEMBER")
	// A member of another organization is no member of this one.
	wantResult(t, p.Results[3], "carl@globex.test", "")
	if p.Counts != (bulkCounts{Total: 4, Invited: 1, AlreadyMember: 3}) {
		t.Fatalf("counts: %+v", p.Counts)
	}
	after := bulkCount(t, e)
	if after.Invitations != before.Invitations+1 || after.Deliveries != before.Deliveries+1 {
		t.Fatalf("want exactly one new invitation and delivery, before %+v after %+v", before, after)
	}
}

func TestInviteUsersAlreadyInvited(t *testing.T) {
	t.Parallel()
	e := testutil.New(t)
	org := e.NewOrg("Acme")
	other := e.NewOrg("Globex")
	first := bulkInvite(t, e, org.AdminToken, bulkEmails("pat@x.test"))
	wantResult(t, first.Results[0], "pat@x.test", "")

	second := bulkInvite(t, e, org.AdminToken, bulkEmails("PAT@x.test", "new@x.test"))
	if len(second.Results) != 2 {
		t.Fatalf("want 2 results, got %v", second.Results)
	}
	wantResult(t, second.Results[0], "pat@x.test", "ALREADY_INVITED")
	wantResult(t, second.Results[1], "new@x.test", "")
	if second.Counts != (bulkCounts{Total: 2, Invited: 1, AlreadyInvited: 1}) {
		t.Fatalf("counts: %+v", second.Counts)
	}
	if n := sqlCount(t, e, "SELECT COUNT(*) FROM invitations WHERE email = 'pat@x.test'"); n != 1 {
		t.Fatalf("want exactly one invitation row for pat@x.test, got %d", n)
	}
	if n := deliveriesFor(t, e, "pat@x.test"); n != 1 {
		t.Fatalf("want exactly one delivery row for pat@x.test, got %d", n)
	}
	e.Deliver()
	if n := len(e.Mail.To("pat@x.test")); n != 1 {
		t.Fatalf("want one message to pat@x.test, got %d", n)
	}

	// A pending invitation elsewhere does not block another organization.
	elsewhere := bulkInvite(t, e, other.AdminToken, bulkEmails("pat@x.test"))
	wantResult(t, elsewhere.Results[0], "pat@x.test", "")
	if elsewhere.Results[0].Invitation.ID == first.Results[0].Invitation.ID {
		t.Fatalf("Globex got Acme's invitation %s", elsewhere.Results[0].Invitation.ID)
	}
}

func TestInviteUsersRestrictedToDomains(t *testing.T) {
	t.Parallel()
	e := testutil.New(t)
	org := e.NewOrg("Acme")
	if err := e.DB.Client.Organization.UpdateOneID(org.ID).
		SetRestrictInvitationsToDomains(true).
		SetDomains([]string{"acme.test"}).
		Exec(testutil.System()); err != nil {
		t.Fatal(err)
	}
	tests := []struct{ in, email, code string }{
		{"ok@acme.test", "ok@acme.test", ""},
		{"x@sub.acme.test", "x@sub.acme.test", "DOMAIN_NOT_ALLOWED"},
		{"x@acme.test.evil.com", "x@acme.test.evil.com", "DOMAIN_NOT_ALLOWED"},
		{"x@evilacme.test", "x@evilacme.test", "DOMAIN_NOT_ALLOWED"},
		{"Upper@ACME.TEST", "upper@acme.test", ""},
		{"dot@acme.test.", "dot@acme.test", ""},
		{"x@\u0430cme.test", "x@xn--cme-5cd.test", "DOMAIN_NOT_ALLOWED"}, // Cyrillic а
		{"x@gmail.com", "x@gmail.com", "DOMAIN_NOT_ALLOWED"},
	}
	var emails []string
	for _, tt := range tests {
		emails = append(emails, tt.in)
	}
	p := bulkInvite(t, e, org.AdminToken, bulkEmails(emails...))
	wantNoPayloadErrors(t, p.Errors)
	if len(p.Results) != len(tests) {
		t.Fatalf("want %d results, got %v", len(tests), p.Results)
	}
	for i, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			wantResult(t, p.Results[i], tt.email, tt.code)
		})
	}
	if p.Counts != (bulkCounts{Total: 8, Invited: 3, DomainNotAllowed: 5}) {
		t.Fatalf("counts: %+v", p.Counts)
	}
	if n := sqlCount(t, e, "SELECT COUNT(*) FROM invitations"); n != 3 {
		t.Fatalf("want 3 invitation rows, got %d", n)
	}
	if n := sqlCount(t, e, "SELECT COUNT(*) FROM deliveries"); n != 3 {
		t.Fatalf("want 3 delivery rows, got %d", n)
	}
}

func TestInviteUsersSendsOneMessageEach(t *testing.T) {
	t.Parallel()
	e := testutil.New(t)
	org := e.NewOrg("Acme Rockets")
	e.NewUser(org, "mia@acme.test", org.MemberRoleID)
	p := bulkInvite(t, e, org.AdminToken, bulkEmails(
		"ann@acme.test, Ben <ben@acme.test>", "broken@", "mia@acme.test", "ann@ACME.test", "cy@partner.test"))
	good := []string{"ann@acme.test", "ben@acme.test", "cy@partner.test"}
	if p.Counts != (bulkCounts{Total: 6, Invited: 3, Invalid: 1, AlreadyMember: 1, Duplicate: 1}) {
		t.Fatalf("counts: %+v results %v", p.Counts, p.Results)
	}
	if n := len(e.Mail.Messages()); n != 0 {
		t.Fatalf("want nothing sent before the outbox runs, got %d", n)
	}
	e.Deliver()
	e.Deliver()
	if n := len(e.Mail.Messages()); n != len(good) {
		t.Fatalf("want %d messages, got %d", len(good), n)
	}
	for _, addr := range good {
		msgs := e.Mail.To(addr)
		if len(msgs) != 1 {
			t.Fatalf("want one message to %s, got %d", addr, len(msgs))
		}
		m := msgs[0]
		if !strings.Contains(m.Text, "Acme Rockets") || !strings.Contains(m.Subject, "Acme Rockets") {
			t.Fatalf("message to %s does not name the organization:\n%s\n%s", addr, m.Subject, m.Text)
		}
		token := testutil.TokenIn(t, m)
		var pre struct {
			InvitationPreview struct {
				OrganizationName string
				Email            *string
				Status           string
			}
		}
		wantData(t, e.Do("", `query($t: String!) { invitationPreview(token: $t) { organizationName email status } }`, map[string]any{"t": token}), &pre)
		if pre.InvitationPreview.Email == nil || *pre.InvitationPreview.Email != addr || pre.InvitationPreview.Status != "PENDING" {
			t.Fatalf("the link in the message to %s previews %+v", addr, pre.InvitationPreview)
		}
	}
	for _, addr := range []string{"mia@acme.test", "broken@"} {
		if n := len(e.Mail.To(addr)); n != 0 {
			t.Fatalf("want no message to %s, got %d", addr, n)
		}
	}
}

func TestInviteUsersUnknownRoleOrWorkspaceWritesNothing(t *testing.T) {
	t.Parallel()
	e := testutil.New(t)
	org := e.NewOrg("Acme")
	other := e.NewOrg("Globex")
	ws, err := e.DB.Client.Workspace.Create().SetOrganizationID(org.ID).SetName("Sales").Save(testutil.System())
	if err != nil {
		t.Fatal(err)
	}
	otherWS, err := e.DB.Client.Workspace.Create().SetOrganizationID(other.ID).SetName("Theirs").Save(testutil.System())
	if err != nil {
		t.Fatal(err)
	}
	otherRole := e.NewRole(other, "Contractors", false, 5)
	tests := []struct {
		name string
		in   map[string]any
	}{
		{"unknown role", map[string]any{"roleID": testutil.ID(org.MemberRoleID + 100000)}},
		{"another organization's role", map[string]any{"roleID": testutil.ID(otherRole.ID)}},
		{"another organization's built-in Member role", map[string]any{"roleID": testutil.ID(other.MemberRoleID)}},
		{"a user's ID as role", map[string]any{"roleID": testutil.ID(org.AdminID)}},
		{"unknown workspace", map[string]any{"workspaceID": testutil.ID(ws.ID + 100000)}},
		{"another organization's workspace", map[string]any{"workspaceID": testutil.ID(otherWS.ID)}},
	}
	before := bulkCount(t, e)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.in["emails"] = []string{"ok@acme.test", "also@acme.test"}
			wantError(t, bulkInviteRaw(e, org.AdminToken, tt.in), "NOT_FOUND")
			wantNothingWritten(t, e, before)
		})
	}
	// The same request with a real workspace goes through.
	p := bulkInvite(t, e, org.AdminToken, map[string]any{"emails": []string{"ok@acme.test"}, "workspaceID": testutil.ID(ws.ID)})
	wantResult(t, p.Results[0], "ok@acme.test", "")
}

func TestInviteUsersRoleCeiling(t *testing.T) {
	t.Parallel()
	e := testutil.New(t)
	org := e.NewOrg("Acme")
	manager := e.NewRole(org, "Manager", true, 50)
	director := e.NewRole(org, "Director", false, 80)
	e.NewUser(org, "max@acme.test", manager.ID)
	maxToken := e.SignIn("max@acme.test", testutil.DefaultPassword)
	e.NewUser(org, "mia@acme.test", org.MemberRoleID)
	miaToken := e.SignIn("mia@acme.test", testutil.DefaultPassword)

	before := bulkCount(t, e)
	tests := []struct {
		name, token string
		in          map[string]any
	}{
		{"Manager grants built-in Admin", maxToken, map[string]any{"roleID": testutil.ID(org.AdminRoleID)}},
		{"Manager grants a rank-80 role", maxToken, map[string]any{"roleID": testutil.ID(director.ID)}},
		{"Member invites", miaToken, map[string]any{}},
		{"Member invites as Member", miaToken, map[string]any{"roleID": testutil.ID(org.MemberRoleID)}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.in["emails"] = []string{"new@acme.test"}
			wantError(t, bulkInviteRaw(e, tt.token, tt.in), "FORBIDDEN")
			wantNothingWritten(t, e, before)
		})
	}
	// Up to their own rank the Manager may invite.
	p := bulkInvite(t, e, maxToken, map[string]any{"emails": []string{"new@acme.test"}, "roleID": testutil.ID(manager.ID)})
	wantResult(t, p.Results[0], "new@acme.test", "")
}

func TestInvitationsListAndAudit(t *testing.T) {
	t.Parallel()
	e := testutil.New(t)
	org := e.NewOrg("Acme")
	other := e.NewOrg("Globex")
	helper := e.NewRole(org, "Helper", false, 20)
	p := bulkInvite(t, e, org.AdminToken, map[string]any{"emails": []string{"ann@acme.test", "ben@acme.test"}, "roleID": testutil.ID(helper.ID)})
	bulkInvite(t, e, other.AdminToken, bulkEmails("zed@globex.test"))
	ids := map[string]string{}
	for _, r := range p.Results {
		wantResult(t, r, r.email(), "")
		ids[r.email()] = r.Invitation.ID
	}

	rows := listInvitations(t, e, org.AdminToken, nil)
	if len(rows) != 2 {
		t.Fatalf("want Acme's 2 invitations, got %+v", rows)
	}
	for _, row := range rows {
		if row.Email == nil || ids[*row.Email] != row.ID {
			t.Fatalf("unexpected invitation %+v (want IDs %v)", row, ids)
		}
		if row.Status != "PENDING" || row.Source != "MANUAL" || row.Role.Name != "Helper" ||
			row.Inviter == nil || row.Inviter.Email == nil || *row.Inviter.Email != org.AdminEmail {
			t.Fatalf("invitation %+v: want PENDING, MANUAL, role Helper, inviter %s", row, org.AdminEmail)
		}
	}

	var out struct {
		AuditEvents struct {
			TotalCount int
			Edges      []struct {
				Node struct {
					Action     string
					TargetType string
					TargetID   *int
					Summary    string
					Actor      *struct{ Email *string }
				}
			}
		}
	}
	wantData(t, e.Do(org.AdminToken, `{ auditEvents(first: 100, where: {action: "invitation.created"}) { totalCount edges { node { action targetType targetID summary actor { email } } } } }`, nil), &out)
	if out.AuditEvents.TotalCount != 2 {
		t.Fatalf("want 2 invitation.created events, got %+v", out.AuditEvents)
	}
	seen := map[string]bool{}
	for _, edge := range out.AuditEvents.Edges {
		n := edge.Node
		if n.TargetType != "Invitation" || n.TargetID == nil || ids[n.Summary] != testutil.ID(*n.TargetID) ||
			n.Actor == nil || n.Actor.Email == nil || *n.Actor.Email != org.AdminEmail {
			t.Fatalf("audit event %+v: want target Invitation %v by %s", n, ids, org.AdminEmail)
		}
		seen[n.Summary] = true
	}
	if len(seen) != 2 {
		t.Fatalf("want one event per invitation, got %+v", out.AuditEvents.Edges)
	}
}

func TestInvitationExpiry(t *testing.T) {
	t.Parallel()
	e := testutil.New(t)
	org := e.NewOrg("Acme")
	p := bulkInvite(t, e, org.AdminToken, bulkEmails("late@acme.test"))
	wantResult(t, p.Results[0], "late@acme.test", "")
	oldID := p.Results[0].Invitation.ID
	e.Deliver()
	if n := len(e.Mail.To("late@acme.test")); n != 1 {
		t.Fatalf("want one message to late@acme.test, got %d", n)
	}

	e.Clock.Advance(15 * 24 * time.Hour)
	token := e.SignIn(org.AdminEmail, org.AdminPassword) // the first session expired too

	rows := listInvitations(t, e, token, nil)
	if len(rows) != 1 || rows[0].ID != oldID || rows[0].Status != "EXPIRED" {
		t.Fatalf("after 15 days: want the invitation EXPIRED, got %+v", rows)
	}
	var node struct {
		Node *struct {
			ID        string
			Status    string
			ExpiresAt time.Time
		}
	}
	wantData(t, e.Do(token, `query($id: ID!) { node(id: $id) { id ... on Invitation { status expiresAt } } }`, map[string]any{"id": oldID}), &node)
	if node.Node == nil || node.Node.Status != "EXPIRED" {
		t.Fatalf("node(%s): want EXPIRED, got %+v", oldID, node.Node)
	}
	if rows := listInvitations(t, e, token, map[string]any{"status": "EXPIRED"}); len(rows) != 1 || rows[0].ID != oldID {
		t.Fatalf("where status EXPIRED: want %s, got %+v", oldID, rows)
	}
	if rows := listInvitations(t, e, token, map[string]any{"status": "PENDING"}); len(rows) != 0 {
		t.Fatalf("where status PENDING: want none, got %+v", rows)
	}

	again := bulkInvite(t, e, token, bulkEmails("late@acme.test"))
	wantResult(t, again.Results[0], "late@acme.test", "")
	newID := again.Results[0].Invitation.ID
	if newID == oldID {
		t.Fatalf("want a new invitation, got the old one %s", oldID)
	}
	rows = listInvitations(t, e, token, nil)
	status := map[string]string{}
	for _, r := range rows {
		status[r.ID] = r.Status
	}
	if len(rows) != 2 || status[oldID] != "EXPIRED" || status[newID] != "PENDING" {
		t.Fatalf("want the old invitation EXPIRED and the new one PENDING, got %+v", rows)
	}
	if rows := listInvitations(t, e, token, map[string]any{"status": "PENDING"}); len(rows) != 1 || rows[0].ID != newID {
		t.Fatalf("where status PENDING: want only %s, got %+v", newID, rows)
	}
	if rows := listInvitations(t, e, token, map[string]any{"status": "EXPIRED"}); len(rows) != 1 || rows[0].ID != oldID {
		t.Fatalf("where status EXPIRED: want only %s, got %+v", oldID, rows)
	}
	e.Deliver()
	if n := len(e.Mail.To("late@acme.test")); n != 2 {
		t.Fatalf("want 2 messages to late@acme.test (one per invitation), got %d", n)
	}
}

// Every way of filtering by status agrees with the status the invitation
// reads as: past its expiry a pending invitation is EXPIRED.
func TestInvitationStatusFiltersAgreeWithStatus(t *testing.T) {
	t.Parallel()
	e := testutil.New(t)
	org := e.NewOrg("Acme")
	p := bulkInvite(t, e, org.AdminToken, bulkEmails("old@acme.test"))
	wantResult(t, p.Results[0], "old@acme.test", "")
	oldID := p.Results[0].Invitation.ID
	e.Clock.Advance(15 * 24 * time.Hour)
	token := e.SignIn(org.AdminEmail, org.AdminPassword)
	p = bulkInvite(t, e, token, bulkEmails("new@acme.test"))
	wantResult(t, p.Results[0], "new@acme.test", "")
	newID := p.Results[0].Invitation.ID

	expired, pending := []string{oldID}, []string{newID}
	tests := []struct {
		where map[string]any
		want  []string
	}{
		{map[string]any{"status": "EXPIRED"}, expired},
		{map[string]any{"status": "PENDING"}, pending},
		{map[string]any{"statusIn": []string{"EXPIRED"}}, expired},
		{map[string]any{"statusIn": []string{"PENDING"}}, pending},
		{map[string]any{"statusNEQ": "PENDING"}, expired},
		{map[string]any{"statusNEQ": "EXPIRED"}, pending},
		{map[string]any{"statusNotIn": []string{"PENDING"}}, expired},
		{map[string]any{"not": map[string]any{"status": "PENDING"}}, expired},
		{map[string]any{"and": []any{map[string]any{"status": "EXPIRED"}}}, expired},
		{map[string]any{"or": []any{map[string]any{"status": "PENDING"}}}, pending},
	}
	for _, tt := range tests {
		name, _ := json.Marshal(tt.where)
		t.Run(string(name), func(t *testing.T) {
			rows := listInvitations(t, e, token, tt.where)
			var got []string
			for _, r := range rows {
				got = append(got, r.ID)
			}
			if !slices.Equal(got, tt.want) {
				t.Fatalf("where %s: want %v, got %+v", name, tt.want, rows)
			}
		})
	}
}

// A client that asks for an invitation's status without its expiresAt must
// still see PENDING for a fresh invitation, in lists and through node.
func TestInvitationStatusWithoutExpiresAt(t *testing.T) {
	t.Parallel()
	e := testutil.New(t)
	org := e.NewOrg("Acme")
	p := bulkInvite(t, e, org.AdminToken, bulkEmails("fresh@acme.test"))
	wantResult(t, p.Results[0], "fresh@acme.test", "")
	id := p.Results[0].Invitation.ID
	tests := []struct{ name, query string }{
		{"invitations", `{ invitations(first: 10) { edges { node { id status } } } }`},
		{"invitations where PENDING", `{ invitations(first: 10, where: {status: PENDING}) { edges { node { id status } } } }`},
		{"node", `query($id: ID!) { node(id: $id) { ... on Invitation { id status } } }`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := e.Do(org.AdminToken, tt.query, map[string]any{"id": id})
			if len(r.Errors) > 0 {
				t.Fatalf("want no errors, got %s", r.Body)
			}
			body := string(r.Data)
			if !strings.Contains(body, `"id":"`+id+`","status":"PENDING"`) {
				t.Fatalf("want invitation %s PENDING (it expires in 14 days), got %s", id, body)
			}
		})
	}
}

func TestInviteUsersIdempotencyKey(t *testing.T) {
	t.Parallel()
	e := testutil.New(t)
	org := e.NewOrg("Acme")
	other := e.NewOrg("Globex")
	in := func(emails ...string) map[string]any {
		return map[string]any{"emails": emails, "idempotencyKey": "req-1", "message": "Welcome"}
	}
	first := bulkInvite(t, e, org.AdminToken, in("ann@acme.test, bad@", "ben@acme.test"))
	wantNoPayloadErrors(t, first.Errors)
	if first.Counts != (bulkCounts{Total: 3, Invited: 2, Invalid: 1}) {
		t.Fatalf("first: counts %+v", first.Counts)
	}
	e.Deliver()
	before := bulkCount(t, e)
	sent := len(e.Mail.Messages())

	second := bulkInvite(t, e, org.AdminToken, in("ann@acme.test, bad@", "ben@acme.test"))
	wantNoPayloadErrors(t, second.Errors)
	if !slices.EqualFunc(first.Results, second.Results, func(a, b bulkResult) bool { return a.String() == b.String() }) {
		t.Fatalf("retry: want the first results\n%v\ngot\n%v", first.Results, second.Results)
	}
	if second.Counts != first.Counts {
		t.Fatalf("retry: want counts %+v, got %+v", first.Counts, second.Counts)
	}
	if after := bulkCount(t, e); after != before {
		t.Fatalf("retry wrote rows: before %+v after %+v", before, after)
	}
	e.Deliver()
	if n := len(e.Mail.Messages()); n != sent {
		t.Fatalf("retry sent %d more messages", n-sent)
	}

	for _, tt := range []struct {
		name string
		in   map[string]any
	}{
		{"other emails", in("cy@acme.test")},
		{"same emails in another order", in("ben@acme.test", "ann@acme.test, bad@")},
		{"same emails, another message", map[string]any{"emails": []string{"ann@acme.test, bad@", "ben@acme.test"}, "idempotencyKey": "req-1", "message": "Hi"}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			p := bulkInvite(t, e, org.AdminToken, tt.in)
			wantPayloadError(t, p.Errors, "IDEMPOTENCY_KEY_REUSED", "input.idempotencyKey")
			if len(p.Results) != 0 {
				t.Fatalf("want no results, got %v", p.Results)
			}
			wantNothingWritten(t, e, before)
		})
	}
	if n := pendingFor(t, e, "cy@acme.test"); n != 0 {
		t.Fatalf("cy@acme.test was invited by a reused key")
	}

	// Keys belong to one organization.
	p := bulkInvite(t, e, other.AdminToken, in("cy@globex.test"))
	wantNoPayloadErrors(t, p.Errors)
	wantResult(t, p.Results[0], "cy@globex.test", "")
}

func TestInviteUsersConcurrentSameAddress(t *testing.T) {
	t.Parallel()
	e := testutil.New(t)
	org := e.NewOrg("Acme")
	const n = 16
	responses := make([]*testutil.Response, n)
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			responses[i] = bulkInviteRaw(e, org.AdminToken, bulkEmails("race@acme.test"))
		}()
	}
	close(start)
	wg.Wait()

	invited, already, conflicts := 0, 0, 0
	var ids []string
	for i, r := range responses {
		if len(r.Errors) > 0 {
			if len(r.Errors) != 1 || r.Errors[0].Code() != "CONFLICT" {
				t.Fatalf("call %d: want only CONFLICT as an error, got HTTP %d: %s\nserver log:\n%s", i, r.Status, r.Body, logErrors(e))
			}
			conflicts++
			continue
		}
		var out struct{ InviteUsers bulkPayload }
		wantData(t, r, &out)
		if len(out.InviteUsers.Results) != 1 {
			t.Fatalf("call %d: want one result, got %v", i, out.InviteUsers.Results)
		}
		res := out.InviteUsers.Results[0]
		switch res.code() {
		case "":
			wantResult(t, res, "race@acme.test", "")
			invited++
			ids = append(ids, res.Invitation.ID)
		case "ALREADY_INVITED":
			wantResult(t, res, "race@acme.test", "ALREADY_INVITED")
			already++
		default:
			t.Fatalf("call %d: unexpected result %s", i, res)
		}
	}
	t.Logf("%d invited, %d already invited, %d conflicts", invited, already, conflicts)
	if invited != 1 {
		t.Fatalf("want exactly one INVITED, got %d (%v); %d already invited, %d conflicts", invited, ids, already, conflicts)
	}
	if got := pendingFor(t, e, "race@acme.test"); got != 1 {
		t.Fatalf("want one pending invitation row, got %d", got)
	}
	if got := sqlCount(t, e, "SELECT COUNT(*) FROM invitations"); got != 1 {
		t.Fatalf("want one invitation row, got %d", got)
	}
	if got := deliveriesFor(t, e, "race@acme.test"); got != 1 {
		t.Fatalf("want one delivery row, got %d", got)
	}
	if got := sqlCount(t, e, "SELECT COUNT(*) FROM audit_events WHERE action = 'invitation.created'"); got != 1 {
		t.Fatalf("want one invitation.created event, got %d", got)
	}
	e.Deliver()
	if got := len(e.Mail.To("race@acme.test")); got != 1 {
		t.Fatalf("want one message, got %d", got)
	}
}

// Concurrent requests for overlapping lists in opposite orders (two admins
// pasting the same list, one sorted the other way) each get every address
// once: invited by one request, reported as already invited by the others,
// or refused whole with CONFLICT, never INTERNAL. A lock-order deadlock
// needs two inserts to meet, so the race runs for several rounds.
func TestInviteUsersConcurrentOverlappingLists(t *testing.T) {
	t.Parallel()
	e := testutil.New(t)
	org := e.NewOrg("Acme")
	const rounds, n, size = 12, 8, 200
	for round := range rounds {
		var forward []string
		for i := range size {
			forward = append(forward, fmt.Sprintf("r%02d.p%04d@acme.test", round, i))
		}
		backward := slices.Clone(forward)
		slices.Reverse(backward)
		responses := make([]*testutil.Response, n)
		var wg sync.WaitGroup
		start := make(chan struct{})
		for i := range n {
			wg.Add(1)
			go func() {
				defer wg.Done()
				list := forward
				if i%2 == 1 {
					list = backward
				}
				<-start
				responses[i] = bulkInviteRaw(e, org.AdminToken, bulkEmails(strings.Join(list, ", ")))
			}()
		}
		close(start)
		wg.Wait()

		invited := map[string]int{}
		succeeded := 0
		for i, r := range responses {
			if len(r.Errors) > 0 {
				if len(r.Errors) != 1 || r.Errors[0].Code() != "CONFLICT" {
					t.Fatalf("round %d, call %d: want only CONFLICT as an error, got HTTP %d: %s\nserver log:\n%s", round, i, r.Status, r.Body, logErrors(e))
				}
				continue
			}
			succeeded++
			var out struct{ InviteUsers bulkPayload }
			wantData(t, r, &out)
			for _, res := range out.InviteUsers.Results {
				switch res.code() {
				case "":
					invited[res.email()]++
				case "ALREADY_INVITED":
				default:
					t.Fatalf("round %d, call %d: unexpected result %s", round, i, res)
				}
			}
		}
		for addr, k := range invited {
			if k != 1 {
				t.Fatalf("round %d: %s invited %d times", round, addr, k)
			}
		}
		if succeeded == 0 || len(invited) != size {
			t.Fatalf("round %d: want every address invited once by the %d requests that went through, got %d of %d", round, succeeded, len(invited), size)
		}
		like := sqlQuote(fmt.Sprintf("r%02d.%%", round))
		if got := sqlCount(t, e, "SELECT COUNT(*) FROM invitations WHERE status = 'PENDING' AND email LIKE "+like); got != size {
			t.Fatalf("round %d: want %d pending invitations, got %d", round, size, got)
		}
		if got := sqlCount(t, e, "SELECT COUNT(*) FROM deliveries WHERE recipient LIKE "+like); got != size {
			t.Fatalf("round %d: want %d deliveries, got %d", round, size, got)
		}
	}
}
