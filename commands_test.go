package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"

	"admit/ent/user"
	"admit/internal/db"
	"admit/internal/testutil"
)

// The finding: an unknown subcommand started a second server on the same
// database. It now prints the usage and fails with errUsage (exit 2).
func TestUnknownSubcommandPrintsUsage(t *testing.T) {
	t.Parallel()
	env := map[string]string{"DATABASE_URL": testutil.DatabaseURL(t), "ADMIT_SECRET_KEY": strings.Repeat("k", 32), "ADDR": "127.0.0.1:0"}
	var out bytes.Buffer
	served := false
	err := run(context.Background(), []string{"create-organisation", "--name", "x"}, func(k string) string { return env[k] }, &out, &out,
		func(net.Addr) { served = true })
	if !errors.Is(err, errUsage) {
		t.Fatalf("want errUsage, got %v", err)
	}
	if served || !strings.Contains(out.String(), "usage:") || !strings.Contains(out.String(), "reset-password") {
		t.Fatalf("served=%v output:\n%s", served, out.String())
	}
}

func TestCreateOrganizationRefusesAnExistingName(t *testing.T) {
	t.Parallel()
	env := map[string]string{"DATABASE_URL": testutil.DatabaseURL(t), "ADMIT_SECRET_KEY": strings.Repeat("k", 32)}
	getenv := func(k string) string { return env[k] }
	create := func(name, email string, extra ...string) error {
		var out bytes.Buffer
		args := append([]string{"create-organization", "--name", name, "--admin-email", email, "--admin-password", "cypress creek"}, extra...)
		return run(context.Background(), args, getenv, &out, &out, nil)
	}
	if err := create("Globex", "hank@globex.test"); err != nil {
		t.Fatal(err)
	}
	err := create(" globex ", "other@globex.test")
	if err == nil || !strings.Contains(err.Error(), "--allow-duplicate-name") {
		t.Fatalf("same name again: want a refusal naming --allow-duplicate-name, got %v", err)
	}
	if err := create("Globex", "other@globex.test", "--allow-duplicate-name"); err != nil {
		t.Fatalf("with --allow-duplicate-name: %v", err)
	}
}

func TestResetPasswordCommand(t *testing.T) {
	t.Parallel()
	env := map[string]string{"DATABASE_URL": testutil.DatabaseURL(t), "ADMIT_SECRET_KEY": strings.Repeat("k", 32)}
	getenv := func(k string) string { return env[k] }
	var out bytes.Buffer
	if err := run(context.Background(), []string{"create-organization", "--name", "Globex", "--admin-email", "hank@globex.test", "--admin-password", "cypress creek"}, getenv, &out, &out, nil); err != nil {
		t.Fatal(err)
	}
	in := start(t, env)
	token := post(t, in.url, "", `mutation { signIn(input: {email: "hank@globex.test", password: "cypress creek"}) { token } }`)["signIn"].(map[string]any)["token"].(string)

	out.Reset()
	if err := run(context.Background(), []string{"reset-password", "--email", "Hank@Globex.test"}, getenv, &out, &out, nil); err != nil {
		t.Fatalf("reset-password: %v\n%s", err, out.String())
	}
	_, pw, ok := strings.Cut(strings.SplitN(out.String(), "\n", 2)[0], "once): ")
	if !ok || len(pw) < 10 {
		t.Fatalf("want the generated password printed once, got %q", out.String())
	}
	if body := postRaw(t, in.url, token, `{ me { email } }`); !strings.Contains(body, "UNAUTHENTICATED") {
		t.Fatalf("the old session still works: %s", body)
	}
	signIn := post(t, in.url, "", `mutation { signIn(input: {email: "hank@globex.test", password: "`+pw+`"}) { token } }`)
	if signIn["signIn"].(map[string]any)["token"] == nil {
		t.Fatalf("the new password does not sign in: %v", signIn)
	}
	if err := run(context.Background(), []string{"reset-password", "--email", "nobody@globex.test"}, getenv, &out, &out, nil); err == nil {
		t.Fatal("unknown address: want an error")
	}

	// An account reached only by phone is reset by its number.
	d, err := db.Open(env["DATABASE_URL"])
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	if err := d.Client.User.Update().Where(user.Email("hank@globex.test")).ClearEmail().SetPhone("+442079460958").Exec(testutil.System()); err != nil {
		t.Fatal(err)
	}
	out.Reset()
	if err := run(context.Background(), []string{"reset-password", "--phone", "+44 20 7946 0958", "--password", "a new phone password"}, getenv, &out, &out, nil); err != nil {
		t.Fatalf("reset-password --phone: %v\n%s", err, out.String())
	}
	if !strings.Contains(out.String(), "Password of +442079460958 changed.") {
		t.Fatalf("output: %q", out.String())
	}
	signIn = post(t, in.url, "", `mutation { signIn(input: {phone: "+442079460958", password: "a new phone password"}) { token } }`)
	if signIn["signIn"].(map[string]any)["token"] == nil {
		t.Fatalf("the new password does not sign in by phone: %v", signIn)
	}
	if err := run(context.Background(), []string{"reset-password", "--email", "a@b.test", "--phone", "+442079460958"}, getenv, &out, &out, nil); err == nil {
		t.Fatal("both --email and --phone: want an error")
	}
}

// postRaw runs query and returns the response body, errors and all.
func postRaw(t *testing.T, url, token, query string) string {
	t.Helper()
	body, _ := json.Marshal(map[string]any{"query": query})
	req, _ := http.NewRequest(http.MethodPost, url+"/query", bytes.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+token)
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	return string(b)
}
