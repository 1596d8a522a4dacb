package graph_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"admit/internal/server"
	"admit/internal/testutil"
)

const signInQuery = `mutation($e: String!, $p: String!) { signIn(input: {email: $e, password: $p}) { token errors { code message retryAfter } } }`

type signInResult struct {
	SignIn struct {
		Token  *string
		Errors []struct {
			Code       string
			Message    string
			RetryAfter *int
		}
	}
}

// signInFrom signs in from the client address ip.
func signInFrom(t *testing.T, e *testutil.Env, ip, email, pw string) signInResult {
	t.Helper()
	body, _ := json.Marshal(map[string]any{"query": signInQuery, "variables": map[string]any{"e": email, "p": pw}})
	req := httptest.NewRequest(http.MethodPost, "/query", bytes.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	req.RemoteAddr = net.JoinHostPort(ip, "40000")
	var out signInResult
	e.Serve(req).MustData(&out)
	return out
}

func errorCode(r signInResult) string {
	if len(r.SignIn.Errors) == 0 {
		return ""
	}
	return r.SignIn.Errors[0].Code
}

// The finding: one request with hundreds of aliased signIn mutations tried
// hundreds of passwords, and the right one signed in.
func TestAliasedSignInsAreRefusedWhole(t *testing.T) {
	t.Parallel()
	e := testutil.New(t)
	org := e.NewOrg("Acme")
	var b strings.Builder
	b.WriteString("mutation {")
	for i := range 100 {
		pw := fmt.Sprintf("guess number %d", i)
		if i == 57 {
			pw = org.AdminPassword
		}
		fmt.Fprintf(&b, " a%d: signIn(input: {email: %q, password: %q}) { token }", i, org.AdminEmail, pw)
	}
	b.WriteString(" }")
	r := e.Do("", b.String(), nil)
	r.MustFail("OPERATION_LIMIT_EXCEEDED")
	if strings.Contains(string(r.Body), "ads_") {
		t.Fatalf("a session token came back: %s", r.Body)
	}

	// Two are refused too, through fragments as well as side by side.
	for _, q := range []string{
		`mutation { a: signIn(input: {email: "x@acme.test", password: "p"}) { token } b: signIn(input: {email: "y@acme.test", password: "p"}) { token } }`,
		`mutation { ...F ... on Mutation { signIn(input: {email: "y@acme.test", password: "p"}) { token } } } fragment F on Mutation { x: signIn(input: {email: "x@acme.test", password: "p"}) { token } }`,
		`query { a: invitationPreview(token: "x") { __typename } b: invitationPreview(token: "y") { __typename } }`,
		`query { a: inviteLinkPreview(token: "x") { __typename } b: inviteLinkPreview(token: "y") { __typename } }`,
		`mutation { a: acceptInvitation(input: {token: "x", name: "n", password: "long enough pw"}) { errors { code } } b: acceptInvitation(input: {token: "y", name: "n", password: "long enough pw"}) { errors { code } } }`,
		`mutation { a: joinWithInviteLink(input: {token: "x", email: "a@b.test"}) { errors { code } } b: joinWithInviteLink(input: {token: "y", email: "a@b.test"}) { errors { code } } }`,
	} {
		e.Do("", q, nil).MustFail("OPERATION_LIMIT_EXCEEDED")
	}
}

func TestRootMutationFieldsAreCapped(t *testing.T) {
	t.Parallel()
	e := testutil.New(t, func(o *server.Options) { o.Limits.MaxRootMutations = 3 })
	org := e.NewOrg("Acme")
	ops := func(n int) string {
		var b strings.Builder
		b.WriteString("mutation {")
		for i := range n {
			fmt.Fprintf(&b, " r%d: createRole(input: {name: \"Role %d\", rank: 5}) { errors { code } }", i, i)
		}
		return b.String() + " }"
	}
	r := e.Do(org.AdminToken, ops(4), nil)
	r.MustFail("OPERATION_LIMIT_EXCEEDED")
	var out map[string]any
	e.Do(org.AdminToken, ops(3), nil).MustData(&out)
	if len(out) != 3 {
		t.Fatalf("want 3 results, got %v", out)
	}
}

// Ten failures lock an address for the window, whether or not it has an
// account, and a locked account refuses even its right password, with the
// same answer an unknown address gets.
func TestFailedSignInsLockTheAccount(t *testing.T) {
	t.Parallel()
	e := testutil.New(t)
	org := e.NewOrg("Acme")
	const ip = "198.51.100.7"
	for _, email := range []string{org.AdminEmail, "nobody@acme.test"} {
		for i := range 10 {
			if got := errorCode(signInFrom(t, e, ip, email, "wrong password "+fmt.Sprint(i))); got != "INVALID_CREDENTIALS" {
				t.Fatalf("%s, failure %d: got %q, want INVALID_CREDENTIALS", email, i+1, got)
			}
		}
	}
	known := signInFrom(t, e, ip, org.AdminEmail, org.AdminPassword)
	unknown := signInFrom(t, e, ip, "nobody@acme.test", org.AdminPassword)
	for _, r := range []signInResult{known, unknown} {
		if r.SignIn.Token != nil || errorCode(r) != "RATE_LIMITED" {
			t.Fatalf("locked: want RATE_LIMITED and no token, got %+v", r.SignIn)
		}
		if ra := r.SignIn.Errors[0].RetryAfter; ra == nil || *ra < 1 || *ra > 15*60 {
			t.Fatalf("retryAfter = %v, want 1..900 seconds", ra)
		}
	}
	if known.SignIn.Errors[0].Message != unknown.SignIn.Errors[0].Message {
		t.Fatalf("a locked account reads differently from an unknown one: %q vs %q",
			known.SignIn.Errors[0].Message, unknown.SignIn.Errors[0].Message)
	}
	// Another client address does not unlock the account: the count is per
	// account too.
	if got := errorCode(signInFrom(t, e, "203.0.113.9", org.AdminEmail, org.AdminPassword)); got != "RATE_LIMITED" {
		t.Fatalf("from another address: got %q, want RATE_LIMITED", got)
	}
	// The window ends, and the right password works again.
	e.Clock.Advance(15*time.Minute + time.Second)
	if r := signInFrom(t, e, ip, org.AdminEmail, org.AdminPassword); r.SignIn.Token == nil {
		t.Fatalf("after the window: want a session, got %+v", r.SignIn)
	}
}

func TestSuccessfulSignInClearsTheAccountsFailures(t *testing.T) {
	t.Parallel()
	e := testutil.New(t)
	org := e.NewOrg("Acme")
	for range 2 {
		for i := range 9 {
			if got := errorCode(signInFrom(t, e, "198.51.100.7", org.AdminEmail, "wrong password "+fmt.Sprint(i))); got != "INVALID_CREDENTIALS" {
				t.Fatalf("failure %d: got %q", i+1, got)
			}
		}
		if r := signInFrom(t, e, "198.51.100.7", org.AdminEmail, org.AdminPassword); r.SignIn.Token == nil {
			t.Fatalf("after 9 failures: want a session, got %+v", r.SignIn)
		}
	}
}

func TestFailedSignInsAreLimitedPerClientAddress(t *testing.T) {
	t.Parallel()
	e := testutil.New(t)
	org := e.NewOrg("Acme")
	e.Accounts.SignInLimits.PerAddress = 5
	const ip = "2001:db8:7:7::1"
	for i := range 5 {
		email := fmt.Sprintf("guess%d@acme.test", i) // a new account each time
		if got := errorCode(signInFrom(t, e, ip, email, "wrong password")); got != "INVALID_CREDENTIALS" {
			t.Fatalf("failure %d: got %q", i+1, got)
		}
	}
	// The same /64 is the same client; the right password is not checked.
	if got := errorCode(signInFrom(t, e, "2001:db8:7:7::2", org.AdminEmail, org.AdminPassword)); got != "RATE_LIMITED" {
		t.Fatalf("same /64: got %q, want RATE_LIMITED", got)
	}
	if r := signInFrom(t, e, "2001:db8:7:8::1", org.AdminEmail, org.AdminPassword); r.SignIn.Token == nil {
		t.Fatalf("another network: want a session, got %+v", r.SignIn)
	}
}
