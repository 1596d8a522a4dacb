package graph_test

import (
	"strings"
	"testing"
	"time"

	"admit/internal/testutil"
)

const meQuery = `{ me { id email name role { name admin rank } organization { name } } }`

type meResult struct {
	Me struct {
		ID    string
		Email string
		Name  string
		Role  struct {
			Name  string
			Admin bool
			Rank  int
		}
		Organization struct{ Name string }
	}
}

func TestSignInAndMe(t *testing.T) {
	t.Parallel()
	e := testutil.New(t)
	org := e.NewOrg("Acme")

	var out struct {
		SignIn struct {
			Token     string
			ExpiresAt time.Time
			User      struct {
				Email string
				Role  struct{ Name string }
			}
			Errors []struct{ Code string }
		}
	}
	// Mixed case and spaces in the address still find the account.
	e.Do("", `mutation { signIn(input: {email: "  ADMIN@acme.TEST ", password: "correct horse battery"}) { token expiresAt user { email role { name } } errors { code } } }`, nil).MustData(&out)
	if !strings.HasPrefix(out.SignIn.Token, "ads_") || len(out.SignIn.Token) < 40 {
		t.Fatalf("token %q: want an ads_ token with 256 random bits", out.SignIn.Token)
	}
	if out.SignIn.User.Email != org.AdminEmail || out.SignIn.User.Role.Name != "Admin" {
		t.Fatalf("signed in as %+v", out.SignIn.User)
	}
	if d := time.Until(out.SignIn.ExpiresAt); d < 23*time.Hour || d > 25*time.Hour {
		t.Fatalf("expiresAt %v: want the configured 24h TTL", out.SignIn.ExpiresAt)
	}

	var me meResult
	e.Do(out.SignIn.Token, meQuery, nil).MustData(&me)
	if me.Me.Email != org.AdminEmail || !me.Me.Role.Admin || me.Me.Role.Rank != 100 || me.Me.Organization.Name != "Acme" {
		t.Fatalf("me = %+v", me.Me)
	}
}

func TestSignInWrongEmailAndWrongPasswordLookAlike(t *testing.T) {
	t.Parallel()
	e := testutil.New(t)
	e.NewOrg("Acme")
	const q = `mutation($e: String!, $p: String!) { signIn(input: {email: $e, password: $p}) { token user { id } errors { code field message } } }`
	type result struct {
		SignIn struct {
			Token  *string
			User   *struct{ ID string }
			Errors []struct {
				Code    string
				Field   *string
				Message string
			}
		}
	}
	var wrongPassword, wrongEmail result
	e.Do("", q, map[string]any{"e": "admin@acme.test", "p": "not the password"}).MustData(&wrongPassword)
	e.Do("", q, map[string]any{"e": "nobody@acme.test", "p": "not the password"}).MustData(&wrongEmail)
	for _, r := range []result{wrongPassword, wrongEmail} {
		if r.SignIn.Token != nil || r.SignIn.User != nil || len(r.SignIn.Errors) != 1 || r.SignIn.Errors[0].Code != "INVALID_CREDENTIALS" {
			t.Fatalf("want INVALID_CREDENTIALS and no token, got %+v", r.SignIn)
		}
	}
	if wrongPassword.SignIn.Errors[0].Message != wrongEmail.SignIn.Errors[0].Message {
		t.Fatalf("messages differ: %q vs %q", wrongPassword.SignIn.Errors[0].Message, wrongEmail.SignIn.Errors[0].Message)
	}
}

func TestMeNeedsAValidSession(t *testing.T) {
	t.Parallel()
	e := testutil.New(t)
	org := e.NewOrg("Acme")
	tests := []struct {
		name, token string
	}{
		{"no token", ""},
		{"garbage", "not-a-token"},
		{"well-formed but unknown", "ads_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"},
		{"a token of another purpose", "adi_" + strings.TrimPrefix(org.AdminToken, "ads_")},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := e.Do(tt.token, meQuery, nil)
			r.MustFail("UNAUTHENTICATED")
			if strings.Contains(string(r.Body), "sql") || strings.Contains(string(r.Body), "ent:") {
				t.Fatalf("error leaks internals: %s", r.Body)
			}
		})
	}
}

func TestSessionExpires(t *testing.T) {
	t.Parallel()
	e := testutil.New(t)
	org := e.NewOrg("Acme")
	e.Do(org.AdminToken, meQuery, nil).MustData(&meResult{})
	e.Clock.Advance(24*time.Hour + time.Second)
	e.Do(org.AdminToken, meQuery, nil).MustFail("UNAUTHENTICATED")
}

func TestSignOutEndsTheSession(t *testing.T) {
	t.Parallel()
	e := testutil.New(t)
	org := e.NewOrg("Acme")
	other := e.SignIn(org.AdminEmail, org.AdminPassword)
	var out struct{ SignOut struct{ SignedOut bool } }
	e.Do(org.AdminToken, `mutation { signOut { signedOut } }`, nil).MustData(&out)
	if !out.SignOut.SignedOut {
		t.Fatal("signOut returned false")
	}
	e.Do(org.AdminToken, meQuery, nil).MustFail("UNAUTHENTICATED")
	// Only that session ended; another device stays signed in.
	e.Do(other, meQuery, nil).MustData(&meResult{})
}

func TestSessionTokensAreStoredOnlyAsHashes(t *testing.T) {
	t.Parallel()
	e := testutil.New(t)
	org := e.NewOrg("Acme")
	rows, err := e.DB.SQL.Query("SELECT token_hash FROM sessions")
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	n := 0
	for rows.Next() {
		var h string
		if err := rows.Scan(&h); err != nil {
			t.Fatal(err)
		}
		n++
		if strings.Contains(h, strings.TrimPrefix(org.AdminToken, "ads_")) || len(h) != 64 {
			t.Fatalf("stored %q for token %q: want a 64-hex-digit keyed hash", h, org.AdminToken)
		}
	}
	if n != 1 {
		t.Fatalf("%d sessions stored, want 1", n)
	}
	if strings.Contains(e.LogText(), org.AdminToken) {
		t.Fatal("the session token appears in the log")
	}
}

func TestSignInAcrossOrganizationsNeedsAChoiceOnlyWhenAmbiguous(t *testing.T) {
	t.Parallel()
	e := testutil.New(t)
	a := e.NewOrg("Acme")
	b := e.NewOrg("Globex")
	e.NewUser(a, "pat@shared.test", a.MemberRoleID)
	e.NewUser(b, "pat@shared.test", b.MemberRoleID)
	const q = `mutation($org: ID) { signIn(input: {email: "pat@shared.test", password: "correct horse battery", organizationID: $org}) { token user { organization { name } } errors { code field } } }`
	var out struct {
		SignIn struct {
			Token  *string
			User   *struct{ Organization struct{ Name string } }
			Errors []struct {
				Code  string
				Field *string
			}
		}
	}
	e.Do("", q, nil).MustData(&out)
	if out.SignIn.Token != nil || len(out.SignIn.Errors) != 1 || out.SignIn.Errors[0].Code != "ORGANIZATION_REQUIRED" {
		t.Fatalf("ambiguous sign-in: %+v", out.SignIn)
	}
	e.Do("", q, map[string]any{"org": testutil.ID(b.ID)}).MustData(&out)
	if out.SignIn.Token == nil || out.SignIn.User.Organization.Name != "Globex" {
		t.Fatalf("sign-in with organizationID: %+v", out.SignIn)
	}
}

func TestDeactivatedUserCannotSignIn(t *testing.T) {
	t.Parallel()
	e := testutil.New(t)
	org := e.NewOrg("Acme")
	u := e.NewUser(org, "pat@acme.test", org.MemberRoleID)
	patToken := e.SignIn("pat@acme.test", testutil.DefaultPassword)
	var out struct {
		UpdateUser struct {
			User   struct{ Status string }
			Errors []struct{ Code string }
		}
	}
	e.Do(org.AdminToken, `mutation($id: ID!) { updateUser(input: {id: $id, status: DEACTIVATED}) { user { status } errors { code } } }`,
		map[string]any{"id": testutil.ID(u.ID)}).MustData(&out)
	if out.UpdateUser.User.Status != "DEACTIVATED" {
		t.Fatalf("updateUser: %+v", out.UpdateUser)
	}
	e.Do(patToken, meQuery, nil).MustFail("UNAUTHENTICATED")
	var in struct {
		SignIn struct {
			Token  *string
			Errors []struct{ Code string }
		}
	}
	e.Do("", `mutation { signIn(input: {email: "pat@acme.test", password: "correct horse battery"}) { token errors { code } } }`, nil).MustData(&in)
	if in.SignIn.Token != nil || in.SignIn.Errors[0].Code != "INVALID_CREDENTIALS" {
		t.Fatalf("deactivated sign-in: %+v", in.SignIn)
	}
}
