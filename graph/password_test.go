package graph_test

import (
	"strings"
	"testing"
	"time"

	"admit/internal/testutil"
)

type codedPayload struct {
	Done     bool
	Accepted bool
	Errors   []struct {
		Code       string
		Field      *string
		RetryAfter *int
	}
}

func (p codedPayload) code() string {
	if len(p.Errors) == 0 {
		return ""
	}
	return p.Errors[0].Code
}

func requestReset(t *testing.T, e *testutil.Env, email string) codedPayload {
	t.Helper()
	var out struct{ RequestPasswordReset codedPayload }
	e.Do("", `mutation($e: String!) { requestPasswordReset(input: {email: $e}) { accepted errors { code field retryAfter } } }`,
		map[string]any{"e": email}).MustData(&out)
	return out.RequestPasswordReset
}

func resetPassword(t *testing.T, e *testutil.Env, token, pw string) codedPayload {
	t.Helper()
	var out struct{ ResetPassword codedPayload }
	e.Do("", `mutation($t: String!, $p: String!) { resetPassword(input: {token: $t, password: $p}) { done errors { code field retryAfter } } }`,
		map[string]any{"t": token, "p": pw}).MustData(&out)
	return out.ResetPassword
}

func signInWorks(e *testutil.Env, email, pw string) bool {
	var out signInResult
	e.Do("", signInQuery, map[string]any{"e": email, "p": pw}).MustData(&out)
	return out.SignIn.Token != nil
}

func TestPasswordResetByEmail(t *testing.T) {
	t.Parallel()
	e := testutil.New(t)
	org := e.NewOrg("Acme")

	// The same answer for an unknown address, and no email to it.
	known, unknown := requestReset(t, e, org.AdminEmail), requestReset(t, e, "nobody@acme.test")
	if !known.Accepted || !unknown.Accepted || known.code() != "" || unknown.code() != "" {
		t.Fatalf("want both accepted alike, got %+v and %+v", known, unknown)
	}
	e.Deliver()
	if n := len(e.Mail.To("nobody@acme.test")); n != 0 {
		t.Fatalf("%d emails to an address without an account", n)
	}
	msgs := e.Mail.To(org.AdminEmail)
	if len(msgs) != 1 || !strings.Contains(msgs[0].Subject, "Reset") {
		t.Fatalf("want one reset email, got %+v", msgs)
	}
	token := testutil.TokenIn(t, msgs[0])
	if !strings.HasPrefix(token, "adp_") || len(token) < 43 {
		t.Fatalf("token %q: want an adp_ token with a 256-bit MAC", token)
	}
	// Nothing usable rests in the database: no row holds the token.
	var stored int
	if err := e.DB.SQL.QueryRow(`SELECT COUNT(*) FROM deliveries WHERE body_text LIKE '%' || $1 || '%' OR body_html LIKE '%' || $1 || '%'`, token).Scan(&stored); err != nil {
		t.Fatal(err)
	}
	if stored != 0 {
		t.Fatal("the reset token is stored in the outbox")
	}

	if got := resetPassword(t, e, token, "short").code(); got != "PASSWORD_TOO_WEAK" {
		t.Fatalf("weak password: got %q", got)
	}
	if r := resetPassword(t, e, token, "a brand new passphrase"); !r.Done || r.code() != "" {
		t.Fatalf("reset: %+v", r)
	}
	// Every session ended; only the new password works; the link works once.
	e.Do(org.AdminToken, meQuery, nil).MustFail("UNAUTHENTICATED")
	if signInWorks(e, org.AdminEmail, org.AdminPassword) || !signInWorks(e, org.AdminEmail, "a brand new passphrase") {
		t.Fatal("want only the new password to sign in")
	}
	if got := resetPassword(t, e, token, "yet another passphrase").code(); got != "RESET_TOKEN_INVALID" {
		t.Fatalf("second use: got %q, want RESET_TOKEN_INVALID", got)
	}
	for _, bad := range []string{"adp_1_1_" + strings.Repeat("A", 43), token[:len(token)-1] + "x", "garbage"} {
		if got := resetPassword(t, e, bad, "yet another passphrase").code(); got != "RESET_TOKEN_INVALID" {
			t.Fatalf("forged token %q: got %q", bad, got)
		}
	}

	// A link expires after an hour, and a newer one replaces it.
	requestReset(t, e, org.AdminEmail)
	e.Deliver()
	first := testutil.TokenIn(t, e.Mail.To(org.AdminEmail)[1])
	requestReset(t, e, org.AdminEmail)
	e.Deliver()
	second := testutil.TokenIn(t, e.Mail.To(org.AdminEmail)[2])
	if got := resetPassword(t, e, first, "yet another passphrase").code(); got != "RESET_TOKEN_INVALID" {
		t.Fatalf("replaced link: got %q", got)
	}
	e.Clock.Advance(time.Hour + time.Second)
	if got := resetPassword(t, e, second, "yet another passphrase").code(); got != "RESET_TOKEN_EXPIRED" {
		t.Fatalf("expired link: got %q", got)
	}
}

func TestPasswordResetRequestsAreLimited(t *testing.T) {
	t.Parallel()
	e := testutil.New(t)
	org := e.NewOrg("Acme")
	for _, email := range []string{org.AdminEmail, "nobody@acme.test"} {
		for i := range 3 {
			if r := requestReset(t, e, email); !r.Accepted {
				t.Fatalf("%s request %d: %+v", email, i+1, r)
			}
		}
		r := requestReset(t, e, email)
		if r.Accepted || r.code() != "RATE_LIMITED" || r.Errors[0].RetryAfter == nil {
			t.Fatalf("%s 4th request: want RATE_LIMITED with retryAfter, got %+v", email, r)
		}
	}
	e.Deliver()
	// Each request replaced the one before: only the newest link is sent.
	if n := len(e.Mail.To(org.AdminEmail)); n != 1 {
		t.Fatalf("want 1 reset email, got %d", n)
	}
	// Aliases cannot multiply one request.
	e.Do("", `mutation { a: requestPasswordReset(input: {email: "x@acme.test"}) { accepted } b: requestPasswordReset(input: {email: "y@acme.test"}) { accepted } }`, nil).
		MustFail("OPERATION_LIMIT_EXCEEDED")
}

func TestChangePasswordNeedsTheCurrentOne(t *testing.T) {
	t.Parallel()
	e := testutil.New(t)
	org := e.NewOrg("Acme")
	other := e.SignIn(org.AdminEmail, org.AdminPassword)
	const q = `mutation($c: String!, $n: String!) { changePassword(input: {currentPassword: $c, newPassword: $n}) { done errors { code field retryAfter } } }`
	change := func(cur, next string) codedPayload {
		var out struct{ ChangePassword codedPayload }
		e.Do(org.AdminToken, q, map[string]any{"c": cur, "n": next}).MustData(&out)
		return out.ChangePassword
	}
	if got := change("not the password", "a brand new passphrase").code(); got != "INVALID_CREDENTIALS" {
		t.Fatalf("wrong current password: got %q", got)
	}
	if p := change(org.AdminPassword, "short"); p.code() != "PASSWORD_TOO_WEAK" || *p.Errors[0].Field != "input.newPassword" {
		t.Fatalf("weak: got %+v", p)
	}
	if p := change(org.AdminPassword, "a brand new passphrase"); !p.Done {
		t.Fatalf("change: %+v", p)
	}
	var me meResult
	e.Do(org.AdminToken, meQuery, nil).MustData(&me) // this session stays
	e.Do(other, meQuery, nil).MustFail("UNAUTHENTICATED")
	if !signInWorks(e, org.AdminEmail, "a brand new passphrase") || signInWorks(e, org.AdminEmail, org.AdminPassword) {
		t.Fatal("want only the new password to sign in")
	}
	e.Do("", q, map[string]any{"c": "x", "n": "y"}).MustFail("UNAUTHENTICATED")
}

func TestSignOutEverywhere(t *testing.T) {
	t.Parallel()
	e := testutil.New(t)
	org := e.NewOrg("Acme")
	other := e.SignIn(org.AdminEmail, org.AdminPassword)
	var out struct{ SignOutEverywhere struct{ SignedOut bool } }
	e.Do(org.AdminToken, `mutation { signOutEverywhere { signedOut } }`, nil).MustData(&out)
	if !out.SignOutEverywhere.SignedOut {
		t.Fatal("want signedOut")
	}
	for _, tok := range []string{org.AdminToken, other} {
		e.Do(tok, meQuery, nil).MustFail("UNAUTHENTICATED")
	}
}

// A stolen session cannot guess the current password without limit.
func TestChangePasswordGuessesAreLimited(t *testing.T) {
	t.Parallel()
	e := testutil.New(t)
	org := e.NewOrg("Acme")
	const q = `mutation($c: String!) { changePassword(input: {currentPassword: $c, newPassword: "a brand new passphrase"}) { done errors { code field retryAfter } } }`
	change := func(cur string) codedPayload {
		var out struct{ ChangePassword codedPayload }
		e.Do(org.AdminToken, q, map[string]any{"c": cur}).MustData(&out)
		return out.ChangePassword
	}
	for i := range 10 {
		if got := change("wrong guess " + string(rune('a'+i))).code(); got != "INVALID_CREDENTIALS" {
			t.Fatalf("guess %d: got %q", i+1, got)
		}
	}
	if p := change(org.AdminPassword); p.Done || p.code() != "RATE_LIMITED" || p.Errors[0].RetryAfter == nil {
		t.Fatalf("after 10 wrong guesses: want RATE_LIMITED even for the right password, got %+v", p)
	}
	e.Clock.Advance(15*time.Minute + time.Second)
	admin := e.SignIn(org.AdminEmail, org.AdminPassword)
	var out struct{ ChangePassword codedPayload }
	e.Do(admin, q, map[string]any{"c": org.AdminPassword}).MustData(&out)
	if !out.ChangePassword.Done {
		t.Fatalf("after the window: %+v", out.ChangePassword)
	}
}
