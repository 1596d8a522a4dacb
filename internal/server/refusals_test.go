package server_test

import (
	"context"
	"net/http"
	"net/url"
	"os"
	"regexp"
	"strings"
	"testing"
	"time"

	"admit/internal/server"
	"admit/internal/testutil"
)

// Every refusal the README lists comes with its extensions.code, and none
// is logged as an internal error.
func TestEveryRefusalTheREADMEListsHasItsCode(t *testing.T) {
	t.Parallel()
	e := testutil.New(t, func(o *server.Options) {
		o.Limits.ComplexityLimit = 200
		o.Limits.MaxBodyBytes = 4096
		o.Limits.MaxResponseBytes = 4000
	})
	org := e.NewOrg("Acme")
	e.NewUser(org, "member@acme.test", org.MemberRoleID)
	memberToken := e.SignIn("member@acme.test", testutil.DefaultPassword)

	post := func(token, query string) func() *testutil.Response {
		return func() *testutil.Response { return e.Do(token, query, nil) }
	}
	raw := func(method, target, contentType, body string, header map[string]string) func() *testutil.Response {
		return func() *testutil.Response {
			req := newRequest(method, target, contentType, "", strings.NewReader(body))
			for k, v := range header {
				req.Header.Set(k, v)
			}
			return e.Serve(req)
		}
	}
	multipart := "multipart/form-data; boundary=x"
	preflight := map[string]string{"GraphQL-Require-Preflight": "1"}
	deep := `{ users(first: 1) { edges { node { role { users(first: 1) { edges { node { role { users(first: 1) { edges { node { role { name } } } } } } } } } } } } }`
	cases := map[string][]func() *testutil.Response{
		"UNAUTHENTICATED": {post("", `{ me { id } }`)},
		"FORBIDDEN":       {post(memberToken, `mutation { createRole(input: {name: "X", rank: 5}) { errors { code } } }`)},
		"NOT_FOUND":       {post(org.AdminToken, `{ node(id: "42") { id } }`)},
		"BAD_USER_INPUT": {
			post(org.AdminToken, `{ node(id: "abc") { id } }`),
			post(org.AdminToken, `mutation { inviteUsers(input: {emails: ["a@b.test"], roleID: "<a role ID from roles>"}) { errors { code } } }`),
			post(org.AdminToken, `{ users(first: 1000) { totalCount } }`),
		},
		"DATABASE_BUSY": {func() *testutil.Response {
			if e.DB.SQLitePath == "" {
				return nil // SQLite only; graph/busy_test.go has the details
			}
			e.DB.SetSQLiteWriteWait(50 * time.Millisecond)
			defer e.DB.SetSQLiteWriteWait(10 * time.Second)
			tx, err := e.DB.Client.Tx(context.Background())
			if err != nil {
				t.Fatal(err)
			}
			defer tx.Rollback()
			return e.Do(org.AdminToken, `mutation { createRole(input: {name: "Busy", rank: 5}) { errors { code } } }`, nil)
		}},
		"COMPLEXITY_LIMIT_EXCEEDED":    {post(org.AdminToken, `{ users(first: 100) { edges { node { id name email } } } }`)},
		"DEPTH_LIMIT_EXCEEDED":         {post(org.AdminToken, deep)},
		"OPERATION_LIMIT_EXCEEDED":     {post("", `mutation { a: signIn(input: {email: "a@b.c", password: "x"}) { token } b: signIn(input: {email: "a@b.c", password: "y"}) { token } }`)},
		"INTROSPECTION_LIMIT_EXCEEDED": {post("", `{ a: __schema { queryType { name } } b: __schema { queryType { name } } }`)},
		"RESPONSE_TOO_LARGE":           {post("", `{ __schema { types { name description } } }`)},
		"GRAPHQL_PARSE_FAILED":         {post("", `{ me { `)},
		"GRAPHQL_VALIDATION_FAILED":    {post("", `{ nosuchfield }`)},
		"REQUEST_TOO_LARGE":            {raw(http.MethodPost, "/query", "application/json", `{"query": "`+strings.Repeat(" ", 5000)+`{ me { id } }"}`, nil)},
		"UNSUPPORTED_MEDIA_TYPE":       {raw(http.MethodPost, "/query", "text/plain", `{"query": "{ me { id } }"}`, nil)},
		"CSRF_PREVENTED":               {raw(http.MethodPost, "/query", multipart, "--x--\r\n", nil)},
		"METHOD_NOT_ALLOWED":           {raw(http.MethodGet, "/query?"+url.Values{"query": {`mutation { signOut { signedOut } }`}}.Encode(), "", "", nil)},
		"BAD_REQUEST": {
			raw(http.MethodPost, "/query", "application/json", `{"query": 1}`, nil),
			raw(http.MethodPost, "/query", multipart, "--x\r\nbroken", preflight),
			raw(http.MethodPost, "/query", multipart, "--x\r\nContent-Disposition: form-data; name=\"operations\"\r\n\r\n{bad\r\n--x--\r\n", preflight),
		},
	}
	// Codes the README lists that no request of a client can provoke here.
	notProvoked := map[string]string{
		"INTERNAL": "a server fault, not a refusal",
		"CONFLICT": "a unique constraint lost to a concurrent write; graph tests race for it",
	}

	b, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	bullet := regexp.MustCompile(`(?s)- \*\*Errors\.\*\*(.*?)\n- `).FindSubmatch(b)
	if bullet == nil {
		t.Fatal("README.md has no **Errors.** bullet")
	}
	listed := regexp.MustCompile("`([A-Z][A-Z_]+)`").FindAllSubmatch(bullet[1], -1)
	if len(listed) < 10 {
		t.Fatalf("found only %d codes in the README's Errors bullet", len(listed))
	}
	for _, m := range listed {
		code := string(m[1])
		if _, ok := notProvoked[code]; ok {
			continue
		}
		reqs, ok := cases[code]
		if !ok {
			t.Errorf("the README lists %s, and this test has no request that provokes it", code)
			continue
		}
		for i, do := range reqs {
			r := do()
			if r == nil {
				continue
			}
			if len(r.Errors) == 0 {
				t.Errorf("%s #%d: want an error, got HTTP %d: %.300s", code, i, r.Status, r.Body)
				continue
			}
			for _, ge := range r.Errors {
				if ge.Code() != code {
					t.Errorf("%s #%d: got an error with code %q: %.300s", code, i, ge.Code(), r.Body)
				}
			}
		}
	}
	if logs := e.LogText(); strings.Contains(logs, "level=ERROR") {
		t.Errorf("refusals were logged as errors:\n%s", logs)
	}
}
