package graph_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"mime/multipart"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"admit/internal/testutil"
)

const importMutation = `mutation($file: Upload!, $dryRun: Boolean, $key: String, $roleID: ID) {
  importInvitations(input: {file: $file, dryRun: $dryRun, idempotencyKey: $key, roleID: $roleID}) {
    dryRun
    results { input row email outcome code message invitation { id email name status source } }
    counts { total invited invalid duplicate alreadyMember alreadyInvited domainNotAllowed }
    errors { code field message }
  }
}`

type importPayload struct {
	DryRun  bool
	Results []bulkResult
	Counts  bulkCounts
	Errors  []payloadError
}

// importRequest builds a GraphQL multipart request for query with the file
// as variables.file and vars as the other variables. body, when not nil,
// is used instead of the built one (for size tests).
func importRequest(t *testing.T, token, query, filename string, content []byte, vars map[string]any, preflight bool) *http.Request {
	t.Helper()
	v := map[string]any{"file": nil}
	for k, x := range vars {
		v[k] = x
	}
	ops, err := json.Marshal(map[string]any{"query": query, "variables": v})
	if err != nil {
		t.Fatal(err)
	}
	body := &bytes.Buffer{}
	w := multipart.NewWriter(body)
	if err := w.WriteField("operations", string(ops)); err != nil {
		t.Fatal(err)
	}
	if err := w.WriteField("map", `{"0": ["variables.file"]}`); err != nil {
		t.Fatal(err)
	}
	part, err := w.CreateFormFile("0", filename)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := part.Write(content); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	req := httptest.NewRequest(http.MethodPost, "/query", body)
	req.Header.Set("Content-Type", w.FormDataContentType())
	if preflight {
		req.Header.Set("GraphQL-Require-Preflight", "1")
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	return req
}

// importFile runs importInvitations with the file and returns its payload,
// failing t on GraphQL errors.
func importFile(t *testing.T, e *testutil.Env, token, filename, content string, vars map[string]any) importPayload {
	t.Helper()
	r := e.Serve(importRequest(t, token, importMutation, filename, []byte(content), vars, true))
	if r.Status != http.StatusOK {
		t.Fatalf("import %s: want HTTP 200, got %d: %s", filename, r.Status, r.Body)
	}
	var out struct{ ImportInvitations importPayload }
	wantData(t, r, &out)
	return out.ImportInvitations
}

// wantRows checks results against rows of {row, input, email, code}.
func wantRows(t *testing.T, got []bulkResult, want []importRow) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("want %d results, got %d:\n%v", len(want), len(got), got)
	}
	for i, w := range want {
		r := got[i]
		if r.row() != w.row || r.Input != w.input {
			t.Fatalf("result %d: want row %d input %q, got %s", i, w.row, w.input, r)
		}
		wantResult(t, r, w.email, w.code)
	}
}

type importRow struct {
	row                int
	input, email, code string
}

func TestImportCSVWithHeaderBOMAndCRLF(t *testing.T) {
	t.Parallel()
	e := testutil.New(t)
	org := e.NewOrg("Acme")
	e.NewUser(org, "mia@acme.test", org.MemberRoleID)
	csv := "\ufeffName,E-Mail Address\r\n" +
		"\"Doe, Jane\",Jane@Acme.test\r\n" +
		"Bob,bob@acme.test\r\n" +
		"\"Nobody, Really\",not-an-address\r\n" +
		"Jane Again,JANE@acme.test\r\n" +
		"Mia,mia@acme.test\r\n" +
		"\"Smith, \"\"Al\"\"\", al@acme.test \r\n" +
		"Eve,\"a@x.com\r\nBcc: b@y.com\"\r\n"
	p := importFile(t, e, org.AdminToken, "Contacts.CSV", csv, nil)
	wantNoPayloadErrors(t, p.Errors)
	if p.DryRun {
		t.Fatal("want dryRun false")
	}
	wantRows(t, p.Results, []importRow{
		{2, "Jane@Acme.test", "jane@acme.test", ""},
		{3, "bob@acme.test", "bob@acme.test", ""},
		{4, "not-an-address", "", "INVALID_ADDRESS"},
		{5, "JANE@acme.test", "jane@acme.test", "DUPLICATE_IN_REQUEST"},
		{6, "mia@acme.test", "mia@acme.test", "ALREADY_MEMBER"},
		{7, "al@acme.test", "al@acme.test", ""},
		{8, "a@x.com\nBcc: b@y.com", "", "INVALID_ADDRESS"},
	})
	for i, name := range map[int]string{0: "Doe, Jane", 1: "Bob", 5: `Smith, "Al"`} {
		if inv := p.Results[i].Invitation; inv.Name != name || inv.Source != "FILE" {
			t.Fatalf("row %d: want name %q and source FILE, got %+v", p.Results[i].row(), name, *inv)
		}
	}
	if p.Counts != (bulkCounts{Total: 7, Invited: 3, Invalid: 2, Duplicate: 1, AlreadyMember: 1}) {
		t.Fatalf("counts: %+v", p.Counts)
	}
	if got := bulkCount(t, e); got.Invitations != 3 || got.Deliveries != 3 {
		t.Fatalf("want 3 invitations and 3 deliveries, got %+v", got)
	}
	e.Deliver()
	for _, m := range e.Mail.Messages() {
		if strings.ContainsAny(m.To, "\r\n ,") || strings.Contains(strings.ToLower(m.To), "bcc") {
			t.Fatalf("message with an injected recipient: To %q", m.To)
		}
	}
	if n := len(e.Mail.Messages()); n != 3 {
		t.Fatalf("want 3 messages, got %d", n)
	}
	if n := len(e.Mail.To("b@y.com")); n != 0 {
		t.Fatalf("the injected Bcc address got %d messages", n)
	}
}

func TestImportSemicolonCSVWithoutHeader(t *testing.T) {
	t.Parallel()
	e := testutil.New(t)
	org := e.NewOrg("Acme")
	csv := "\"Doe, Ann\";ann@acme.test\n" +
		"Ben;BEN@acme.test\n" +
		"\n" +
		"Cy;cy@acme\n" +
		"Ann again;ann@acme.test\n" +
		"Dee;dee@acme.test;extra;cells\n"
	p := importFile(t, e, org.AdminToken, "list.csv", csv, nil)
	wantNoPayloadErrors(t, p.Errors)
	wantRows(t, p.Results, []importRow{
		{1, "ann@acme.test", "ann@acme.test", ""},
		{2, "BEN@acme.test", "ben@acme.test", ""},
		{4, "cy@acme", "", "INVALID_ADDRESS"},
		{5, "ann@acme.test", "ann@acme.test", "DUPLICATE_IN_REQUEST"},
		{6, "dee@acme.test", "dee@acme.test", ""},
	})
	if p.Counts != (bulkCounts{Total: 5, Invited: 3, Invalid: 1, Duplicate: 1}) {
		t.Fatalf("counts: %+v", p.Counts)
	}
}

func TestImportTXTWithMixedSeparators(t *testing.T) {
	t.Parallel()
	e := testutil.New(t)
	org := e.NewOrg("Acme")
	e.NewUser(org, "mia@acme.test", org.MemberRoleID)
	txt := "a1@acme.test, a2@acme.test; a3@acme.test\n" +
		"Dee Dee <d@acme.test>\r\n" +
		"\te1@acme.test  e2@acme.test\n" +
		"\n" +
		"bad entry\n" +
		"\"Roe, Rita\" <rita@acme.test>;A1@ACME.TEST\n" +
		"mia@acme.test"
	p := importFile(t, e, org.AdminToken, "people.txt", txt, nil)
	wantNoPayloadErrors(t, p.Errors)
	wantRows(t, p.Results, []importRow{
		{1, "a1@acme.test", "a1@acme.test", ""},
		{1, "a2@acme.test", "a2@acme.test", ""},
		{1, "a3@acme.test", "a3@acme.test", ""},
		{2, "Dee Dee <d@acme.test>", "d@acme.test", ""},
		{3, "e1@acme.test", "e1@acme.test", ""},
		{3, "e2@acme.test", "e2@acme.test", ""},
		{5, "bad entry", "", "INVALID_ADDRESS"},
		{6, `"Roe, Rita" <rita@acme.test>`, "rita@acme.test", ""},
		{6, "A1@ACME.TEST", "a1@acme.test", "DUPLICATE_IN_REQUEST"},
		{7, "mia@acme.test", "mia@acme.test", "ALREADY_MEMBER"},
	})
	if n := p.Results[3].Invitation.Name; n != "Dee Dee" {
		t.Fatalf("want the name Dee Dee from the entry, got %q", n)
	}
	if n := p.Results[7].Invitation.Name; n != "Roe, Rita" {
		t.Fatalf("want the name Roe, Rita from the entry, got %q", n)
	}
	if p.Counts != (bulkCounts{Total: 10, Invited: 7, Invalid: 1, Duplicate: 1, AlreadyMember: 1}) {
		t.Fatalf("counts: %+v", p.Counts)
	}
}

func TestImportDryRunWritesNothing(t *testing.T) {
	t.Parallel()
	e := testutil.New(t)
	org := e.NewOrg("Acme")
	e.NewUser(org, "mia@acme.test", org.MemberRoleID)
	pending := bulkInvite(t, e, org.AdminToken, bulkEmails("pat@acme.test"))
	wantResult(t, pending.Results[0], "pat@acme.test", "")
	e.Deliver()
	csv := "email,name\nann@acme.test,Ann\nben@acme.test,Ben\nnope,No\nmia@acme.test,Mia\npat@acme.test,Pat\nANN@acme.test,Ann\ncy@acme.test,Cy\n"
	before := bulkCount(t, e)
	sent := len(e.Mail.Messages())

	dry := importFile(t, e, org.AdminToken, "list.csv", csv, map[string]any{"dryRun": true})
	wantNoPayloadErrors(t, dry.Errors)
	if !dry.DryRun {
		t.Fatal("want dryRun true in the payload")
	}
	want := []importRow{
		{2, "ann@acme.test", "ann@acme.test", ""},
		{3, "ben@acme.test", "ben@acme.test", ""},
		{4, "nope", "", "INVALID_ADDRESS"},
		{5, "mia@acme.test", "mia@acme.test", "ALREADY_MEMBER"},
		{6, "pat@acme.test", "pat@acme.test", "ALREADY_INVITED"},
		{7, "ANN@acme.test", "ann@acme.test", "DUPLICATE_IN_REQUEST"},
		{8, "cy@acme.test", "cy@acme.test", ""},
	}
	wantCounts := bulkCounts{Total: 7, Invited: 3, Invalid: 1, AlreadyMember: 1, AlreadyInvited: 1, Duplicate: 1}
	if len(dry.Results) != len(want) {
		t.Fatalf("dry run: want %d results, got %v", len(want), dry.Results)
	}
	for i, w := range want {
		r := dry.Results[i]
		if r.row() != w.row || r.Input != w.input || r.email() != w.email || r.code() != w.code {
			t.Fatalf("dry run result %d: want %+v, got %s", i, w, r)
		}
		wantOutcome := "SKIPPED"
		if w.code == "" {
			wantOutcome = "WOULD_INVITE"
		}
		if r.Outcome != wantOutcome || r.Invitation != nil || r.Message == nil || *r.Message == "" {
			t.Fatalf("dry run result %d: want %s with a message and no invitation, got %s", i, wantOutcome, r)
		}
	}
	if dry.Counts != wantCounts {
		t.Fatalf("dry run counts: want %+v, got %+v", wantCounts, dry.Counts)
	}
	if after := bulkCount(t, e); after != before {
		t.Fatalf("the dry run wrote rows: before %+v after %+v", before, after)
	}
	e.Deliver()
	if n := len(e.Mail.Messages()); n != sent {
		t.Fatalf("the dry run sent %d messages", n-sent)
	}

	real := importFile(t, e, org.AdminToken, "list.csv", csv, nil)
	wantNoPayloadErrors(t, real.Errors)
	if real.DryRun {
		t.Fatal("want dryRun false")
	}
	wantRows(t, real.Results, want)
	if real.Counts != wantCounts {
		t.Fatalf("real run counts: want %+v (as the dry run), got %+v", wantCounts, real.Counts)
	}
	after := bulkCount(t, e)
	if after.Invitations != before.Invitations+3 || after.Deliveries != before.Deliveries+3 || after.Audit != before.Audit+3 {
		t.Fatalf("real run: want 3 new invitations, deliveries and audit events, before %+v after %+v", before, after)
	}
	e.Deliver()
	for _, addr := range []string{"ann@acme.test", "ben@acme.test", "cy@acme.test"} {
		if n := len(e.Mail.To(addr)); n != 1 {
			t.Fatalf("want one message to %s, got %d", addr, n)
		}
	}
}

// bigCSV returns a CSV with a header and n address rows.
func bigCSV(n int) string {
	var b strings.Builder
	b.WriteString("email\n")
	for i := range n {
		fmt.Fprintf(&b, "user%d@acme.test\n", i)
	}
	return b.String()
}

// paddedCSV returns a CSV of about size bytes: a header and a few addresses
// followed by long comment-like cells.
func paddedCSV(size int) string {
	var b strings.Builder
	b.WriteString("email,note\n")
	line := "pad%d@acme.test," + strings.Repeat("x", 1000) + "\n"
	for i := 0; b.Len() < size; i++ {
		fmt.Fprintf(&b, line, i)
	}
	return b.String()
}

func TestImportRefusesBadFiles(t *testing.T) {
	t.Parallel()
	e := testutil.New(t)
	org := e.NewOrg("Acme")
	png := "\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00\x00\x01\x00\x00\x00\x01\x08\x02\x00\x00\x00\x90wS\xde"
	tests := []struct {
		name, filename, content, code string
		dryRun                        bool
	}{
		{"empty csv", "list.csv", "", "FILE_EMPTY", false},
		{"empty txt", "list.txt", "", "FILE_EMPTY", false},
		{"only white space and a BOM", "list.txt", "\ufeff \r\n\t\n", "FILE_EMPTY", false},
		{"header only", "list.csv", "Name,Email\r\n", "FILE_EMPTY", false},
		{"header and empty address cells", "list.csv", "Name,Email\nAnn,\nBen, \n", "FILE_EMPTY", false},
		{"empty file in a dry run", "list.csv", "", "FILE_EMPTY", true},
		{"PNG bytes", "list.csv", png, "FILE_NOT_TEXT", false},
		{"PNG bytes as txt", "list.txt", png, "FILE_NOT_TEXT", false},
		{"UTF-16 export", "list.csv", "\xff\xfee\x00m\x00a\x00i\x00l\x00\n\x00", "FILE_NOT_TEXT", false},
		{"NUL byte in text", "list.txt", "ann@acme.test\x00\n", "FILE_NOT_TEXT", false},
		{"xlsx name", "list.xlsx", "email\nann@acme.test\n", "FILE_UNSUPPORTED_TYPE", false},
		{"no extension", "list", "email\nann@acme.test\n", "FILE_UNSUPPORTED_TYPE", false},
		{"csv in the middle of the name", "list.csv.exe", "email\nann@acme.test\n", "FILE_UNSUPPORTED_TYPE", false},
		{"no address column", "list.csv", "Name,Company\nAnn,Acme\n", "FILE_NO_ADDRESS_COLUMN", false},
		{"headerless without an @", "list.csv", "Ann;Ben\nCy;Dee\n", "FILE_NO_ADDRESS_COLUMN", false},
		{"bare quote", "list.csv", "email\nann@acme.test\nb\"en@acme.test\n", "FILE_MALFORMED", false},
		{"unclosed quote", "list.csv", "email\n\"ann@acme.test\nben@acme.test\n", "FILE_MALFORMED", false},
		{"text after a closing quote", "list.csv", "email\n\"ann@acme.test\"x\n", "FILE_MALFORMED", false},
		{"50,001 rows", "list.csv", bigCSV(50001), "FILE_TOO_MANY_ROWS", false},
		{"50,001 lines of txt", "list.txt", strings.TrimPrefix(bigCSV(50001), "email\n"), "FILE_TOO_MANY_ROWS", false},
		{"5.5 MiB", "list.csv", paddedCSV(5<<20 + 512<<10), "FILE_TOO_LARGE", false},
		{"5 MiB and one byte", "list.csv", paddedCSV(5 << 20)[:5<<20] + "\n", "FILE_TOO_LARGE", false},
	}
	before := bulkCount(t, e)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var vars map[string]any
			if tt.dryRun {
				vars = map[string]any{"dryRun": true}
			}
			p := importFile(t, e, org.AdminToken, tt.filename, tt.content, vars)
			wantPayloadError(t, p.Errors, tt.code, "input.file")
			if len(p.Results) != 0 || p.Counts != (bulkCounts{}) {
				t.Fatalf("want no results and zero counts, got %+v %v", p.Counts, p.Results)
			}
			if p.DryRun != tt.dryRun {
				t.Fatalf("want dryRun %v, got %v", tt.dryRun, p.DryRun)
			}
			wantNothingWritten(t, e, before)
		})
	}
}

// noLength hides a body's length, so the request has no Content-Length
// (as with chunked transfer encoding).
type noLength struct{ io.Reader }

func TestImportBodyOverTheUploadLimitIsRefused(t *testing.T) {
	t.Parallel()
	e := testutil.New(t)
	org := e.NewOrg("Acme")
	content := []byte(paddedCSV(7 << 20))
	before := bulkCount(t, e)
	for _, chunked := range []bool{false, true} {
		t.Run(fmt.Sprintf("chunked=%v", chunked), func(t *testing.T) {
			req := importRequest(t, org.AdminToken, importMutation, "big.csv", content, nil, true)
			if chunked {
				req.Body = io.NopCloser(noLength{req.Body})
				req.ContentLength = -1
			}
			r := e.Serve(req)
			t.Logf("HTTP %d: %.200s", r.Status, r.Body)
			if r.Status != http.StatusRequestEntityTooLarge && len(r.Errors) == 0 {
				t.Fatalf("want HTTP 413 or a GraphQL error, got HTTP %d: %.300s", r.Status, r.Body)
			}
			if r.Status == http.StatusOK || r.Status >= 500 {
				t.Fatalf("want a client error status, got HTTP %d: %.300s", r.Status, r.Body)
			}
			if len(r.Data) > 0 && string(r.Data) != "null" {
				t.Fatalf("want no data, got %.300s", r.Data)
			}
			wantNothingWritten(t, e, before)
		})
	}
}

func TestImportNeedsThePreflightHeader(t *testing.T) {
	t.Parallel()
	e := testutil.New(t)
	org := e.NewOrg("Acme")
	before := bulkCount(t, e)
	r := e.Serve(importRequest(t, org.AdminToken, importMutation, "list.csv", []byte("email\nann@acme.test\n"), nil, false))
	if r.Status != http.StatusBadRequest {
		t.Fatalf("want HTTP 400, got %d: %s", r.Status, r.Body)
	}
	wantError(t, r, "CSRF_PREVENTED")
	wantNothingWritten(t, e, before)
	// The same request with the header goes through.
	p := importFile(t, e, org.AdminToken, "list.csv", "email\nann@acme.test\n", nil)
	wantRows(t, p.Results, []importRow{{2, "ann@acme.test", "ann@acme.test", ""}})
}

func TestImportIsForAdmins(t *testing.T) {
	t.Parallel()
	e := testutil.New(t)
	org := e.NewOrg("Acme")
	e.NewUser(org, "mia@acme.test", org.MemberRoleID)
	mia := e.SignIn("mia@acme.test", testutil.DefaultPassword)
	before := bulkCount(t, e)
	for _, dryRun := range []bool{false, true} {
		r := e.Serve(importRequest(t, mia, importMutation, "list.csv", []byte("email\nann@acme.test\n"), map[string]any{"dryRun": dryRun}, true))
		wantError(t, r, "FORBIDDEN")
	}
	r := e.Serve(importRequest(t, "", importMutation, "list.csv", []byte("email\nann@acme.test\n"), nil, true))
	wantError(t, r, "UNAUTHENTICATED")
	wantNothingWritten(t, e, before)
}

func TestImportIdempotencyKey(t *testing.T) {
	t.Parallel()
	e := testutil.New(t)
	org := e.NewOrg("Acme")
	csv := "email\nann@acme.test\nben@acme.test\n"
	key := map[string]any{"key": "file-1"}
	first := importFile(t, e, org.AdminToken, "list.csv", csv, key)
	wantNoPayloadErrors(t, first.Errors)
	e.Deliver()
	before := bulkCount(t, e)
	sent := len(e.Mail.Messages())

	second := importFile(t, e, org.AdminToken, "list.csv", csv, key)
	wantNoPayloadErrors(t, second.Errors)
	if len(second.Results) != 2 || second.Results[0].String() != first.Results[0].String() || second.Results[1].String() != first.Results[1].String() {
		t.Fatalf("retry: want the first results %v, got %v", first.Results, second.Results)
	}
	wantNothingWritten(t, e, before)
	if n := len(e.Mail.Messages()); n != sent {
		t.Fatalf("retry sent %d messages", n-sent)
	}

	other := importFile(t, e, org.AdminToken, "list.csv", "email\ncy@acme.test\n", key)
	wantPayloadError(t, other.Errors, "IDEMPOTENCY_KEY_REUSED", "input.idempotencyKey")
	wantNothingWritten(t, e, before)
}

func TestImportTenThousandRows(t *testing.T) {
	t.Parallel()
	e := testutil.New(t)
	org := e.NewOrg("Acme")
	const n = 10000
	const query = `mutation($file: Upload!) { importInvitations(input: {file: $file}) { results { row outcome } counts { total invited } errors { code } } }`
	var out struct {
		ImportInvitations struct {
			Results []struct {
				Row     int
				Outcome string
			}
			Counts struct{ Total, Invited int }
			Errors []struct{ Code string }
		}
	}
	start := time.Now()
	r := e.Serve(importRequest(t, org.AdminToken, query, "big.csv", []byte(bigCSV(n)), nil, true))
	elapsed := time.Since(start)
	wantData(t, r, &out)
	p := out.ImportInvitations
	t.Logf("imported %d rows in %v", n, elapsed)
	if len(p.Errors) != 0 || p.Counts.Total != n || p.Counts.Invited != n || len(p.Results) != n {
		t.Fatalf("want %d invited, got counts %+v, %d results, errors %+v", n, p.Counts, len(p.Results), p.Errors)
	}
	for i, res := range p.Results {
		if res.Row != i+2 || res.Outcome != "INVITED" {
			t.Fatalf("result %d: want row %d INVITED, got %+v", i, i+2, res)
		}
	}
	got := bulkCount(t, e)
	if got.Invitations != n || got.Deliveries != n {
		t.Fatalf("want %d invitations and %d deliveries, got %+v", n, n, got)
	}
	if c := sqlCount(t, e, "SELECT COUNT(DISTINCT invitation_id) FROM deliveries"); c != n {
		t.Fatalf("want one delivery per invitation, got %d distinct", c)
	}
	if c := sqlCount(t, e, "SELECT COUNT(*) FROM audit_events WHERE action = 'invitation.created'"); c != n {
		t.Fatalf("want %d invitation.created events, got %d", n, c)
	}
	if elapsed > 30*time.Second {
		t.Fatalf("importing %d rows took %v", n, elapsed)
	}
}
