package main

import (
	"bytes"
	"context"
	"encoding/json"
	"net"
	"net/http"
	"os"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"admit/internal/testutil"
)

// instance is one `go run .` started in-process on a real port.
type instance struct {
	url    string
	out    *lockedBuffer
	cancel context.CancelFunc
	done   chan error
	once   sync.Once
}

type lockedBuffer struct {
	mu sync.Mutex
	bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.Buffer.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.Buffer.String()
}

func start(t *testing.T, env map[string]string) *instance {
	t.Helper()
	env["ADDR"] = "127.0.0.1:0"
	ctx, cancel := context.WithCancel(context.Background())
	in := &instance{out: &lockedBuffer{}, cancel: cancel, done: make(chan error, 1)}
	ready := make(chan net.Addr, 1)
	go func() {
		in.done <- run(ctx, nil, func(k string) string { return env[k] }, in.out, in.out, func(a net.Addr) { ready <- a })
	}()
	select {
	case a := <-ready:
		in.url = "http://" + a.String()
	case err := <-in.done:
		t.Fatalf("server did not start: %v\n%s", err, in.out)
	case <-time.After(60 * time.Second):
		t.Fatalf("server did not start in time:\n%s", in.out)
	}
	t.Cleanup(in.stop)
	return in
}

func (in *instance) stop() {
	in.once.Do(func() {
		in.cancel()
		<-in.done
	})
}

func post(t *testing.T, url, token, query string) map[string]any {
	t.Helper()
	body, _ := json.Marshal(map[string]any{"query": query})
	req, _ := http.NewRequest(http.MethodPost, url+"/query", bytes.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	var out map[string]any
	if err := json.NewDecoder(res.Body).Decode(&out); err != nil {
		t.Fatal(err)
	}
	if out["errors"] != nil {
		t.Fatalf("%s: errors %v", query, out["errors"])
	}
	return out["data"].(map[string]any)
}

var signInLine = regexp.MustCompile(`(?m)^\s*(mutation \{ signIn\(.*)$`)

// signInFromWelcome runs the signIn mutation exactly as the welcome text
// printed it, as a newcomer pasting it into GraphiQL would.
func signInFromWelcome(t *testing.T, in *instance, welcome string) string {
	t.Helper()
	m := signInLine.FindStringSubmatch(welcome)
	if m == nil {
		t.Fatalf("no signIn mutation printed:\n%s", welcome)
	}
	data := post(t, in.url, "", m[1])
	token, _ := data["signIn"].(map[string]any)["token"].(string)
	if token == "" {
		t.Fatalf("printed signIn did not sign in: %v", data)
	}
	return token
}

func TestFirstRunPrintsAWorkingSignInAndRestartsKeepSessions(t *testing.T) {
	t.Parallel()
	env := map[string]string{"DATABASE_URL": t.TempDir() + "/admit.db"}
	first := start(t, env)
	welcome := first.out.String()
	for _, want := range []string{"GraphiQL at http://localhost:", "First run: created organization \"Example\"", "admin@example.com", "shown only this once", "Authorization"} {
		if !strings.Contains(welcome, want) {
			t.Fatalf("welcome text lacks %q:\n%s", want, welcome)
		}
	}
	token := signInFromWelcome(t, first, welcome)
	me := post(t, first.url, token, `{ me { email role { name } organization { name } } }`)["me"].(map[string]any)
	if me["email"] != "admin@example.com" || me["organization"].(map[string]any)["name"] != "Example" {
		t.Fatalf("me = %v", me)
	}
	first.stop()

	// Same file, no ADMIT_SECRET_KEY: the generated secret was kept, so the
	// session survives the restart and nothing is bootstrapped twice.
	second := start(t, env)
	if strings.Contains(second.out.String(), "First run") {
		t.Fatalf("bootstrapped twice:\n%s", second.out)
	}
	post(t, second.url, token, `{ me { email } }`)
}

func TestTwoServersShareOneDatabase(t *testing.T) {
	t.Parallel()
	// Both start at once: migration and bootstrap must happen exactly once.
	a, b := startReplicas(t, testutil.DatabaseURL(t))
	if n := strings.Count(a.out.String()+b.out.String(), "First run"); n != 1 {
		t.Fatalf("%d servers bootstrapped, want 1:\n%s\n%s", n, a.out, b.out)
	}

	signIn := post(t, a.url, "", `mutation { signIn(input: {email: "peter@initech.test", password: "tps reports 42"}) { token } }`)
	token := signIn["signIn"].(map[string]any)["token"].(string)
	// A session opened on one replica works on the other.
	me := post(t, b.url, token, `{ me { email } }`)["me"].(map[string]any)
	if me["email"] != "peter@initech.test" {
		t.Fatalf("me on the second server = %v", me)
	}
	post(t, b.url, token, `mutation { createRole(input: {name: "Auditor", rank: 20}) { errors { code } } }`)
	roles := post(t, a.url, token, `{ roles(where: {name: "Auditor"}) { totalCount } }`)["roles"].(map[string]any)
	if roles["totalCount"] != float64(1) {
		t.Fatalf("role created on one server, seen %v times on the other", roles["totalCount"])
	}
}

// startReplicas starts two servers at once on dbURL with one secret and the
// bootstrap admin peter@initech.test ("tps reports 42").
func startReplicas(t *testing.T, dbURL string) (a, b *instance) {
	t.Helper()
	env := map[string]string{
		"DATABASE_URL":                   dbURL,
		"ADMIT_SECRET_KEY":               "0123456789abcdef0123456789abcdef-shared",
		"ADMIT_BOOTSTRAP_ORGANIZATION":   "Initech",
		"ADMIT_BOOTSTRAP_ADMIN_EMAIL":    "peter@initech.test",
		"ADMIT_BOOTSTRAP_ADMIN_PASSWORD": "tps reports 42",
	}
	var wg sync.WaitGroup
	wg.Add(2)
	go func() { defer wg.Done(); a = start(t, copyEnv(env)) }()
	go func() { defer wg.Done(); b = start(t, copyEnv(env)) }()
	wg.Wait()
	return a, b
}

func copyEnv(m map[string]string) map[string]string {
	c := make(map[string]string, len(m))
	for k, v := range m {
		c[k] = v
	}
	return c
}

func TestCreateOrganizationCommand(t *testing.T) {
	t.Parallel()
	dbURL := testutil.DatabaseURL(t)
	env := map[string]string{"DATABASE_URL": dbURL, "ADMIT_SECRET_KEY": strings.Repeat("k", 32)}
	getenv := func(k string) string { return env[k] }
	var out bytes.Buffer
	err := run(context.Background(), []string{"create-organization", "--name", "Globex", "--admin-email", "Hank@Globex.test", "--admin-password", "cypress creek"}, getenv, &out, &out, nil)
	if err != nil {
		t.Fatalf("create-organization: %v\n%s", err, out.String())
	}
	id := strings.TrimSpace(out.String())
	if !regexp.MustCompile(`^\d+$`).MatchString(id) {
		t.Fatalf("want the new organization's ID, got %q", id)
	}

	in := start(t, env)
	signIn := post(t, in.url, "", `mutation { signIn(input: {email: "hank@globex.test", password: "cypress creek"}) { token user { organization { id name } } } }`)
	user := signIn["signIn"].(map[string]any)["user"].(map[string]any)
	org := user["organization"].(map[string]any)
	if org["name"] != "Globex" || org["id"] != id {
		t.Fatalf("signed in to %v, want Globex %s", org, id)
	}

	for _, args := range [][]string{
		{"create-organization", "--name", "NoAdmin"},
		{"create-organization", "--name", "Short", "--admin-email", "a@b.test", "--admin-password", "short"},
		{"create-organization", "--name", "BadMail", "--admin-email", "not-an-address", "--admin-password", "long enough pw"},
	} {
		if err := run(context.Background(), args, getenv, &out, &out, nil); err == nil {
			t.Errorf("%v: want an error", args)
		}
	}
}

func TestConfigurationErrorsAreClear(t *testing.T) {
	t.Parallel()
	tests := []struct {
		env  map[string]string
		want string
	}{
		{map[string]string{"DATABASE_URL": "postgres://postgres@127.0.0.1:1/none"}, "ADMIT_SECRET_KEY is required with PostgreSQL"},
		{map[string]string{"ADMIT_SECRET_KEY": "too short"}, "at least 32 characters"},
		{map[string]string{"CORS_ALLOWED_ORIGINS": "https://*.example.com"}, "not an exact origin"},
		{map[string]string{"SESSION_TTL": "forever"}, "SESSION_TTL"},
		{map[string]string{"GRAPHQL_DEPTH_LIMIT": "-3"}, "GRAPHQL_DEPTH_LIMIT"},
	}
	for _, tt := range tests {
		t.Run(tt.want, func(t *testing.T) {
			var out bytes.Buffer
			err := run(context.Background(), nil, func(k string) string { return tt.env[k] }, &out, &out, func(net.Addr) {
				t.Errorf("server started with %v", tt.env)
			})
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("want an error mentioning %q, got %v", tt.want, err)
			}
		})
	}
}

// The quick start stays true: the README's first query is the one the
// banner prints, and without PUBLIC_URL the links point at the real port.
func TestQuickStartMatchesTheBanner(t *testing.T) {
	t.Parallel()
	b, err := os.ReadFile("README.md")
	if err != nil {
		t.Fatal(err)
	}
	readme := string(b)
	i := strings.Index(readme, "Run your first query:")
	if i < 0 {
		t.Fatal("README has no first query")
	}
	block := readme[i:]
	block = block[strings.Index(block, "```graphql")+len("```graphql"):]
	block = block[:strings.Index(block, "```")]
	if squash(block) != squash(firstQuery) {
		t.Fatalf("README's first query:\n%s\nbanner's:\n%s", squash(block), squash(firstQuery))
	}

	env := map[string]string{"DATABASE_URL": t.TempDir() + "/admit.db"}
	in := start(t, env)
	welcome := in.out.String()
	if !strings.Contains(welcome, "GraphiQL at "+strings.Replace(in.url, "127.0.0.1", "localhost", 1)+"/") {
		t.Fatalf("the banner does not name the port the server listens on (%s):\n%s", in.url, welcome)
	}
	if !strings.Contains(welcome, firstQuery) {
		t.Fatalf("the banner lacks the first query:\n%s", welcome)
	}
	token := signInFromWelcome(t, in, welcome)
	post(t, in.url, token, firstQuery)
	// An invitation's link points at this server.
	post(t, in.url, token, `mutation { inviteUsers(input: {emails: ["ann@example.com"]}) { errors { code } } }`)
	deadline := time.Now().Add(10 * time.Second)
	want := "http://localhost:" + in.url[strings.LastIndex(in.url, ":")+1:] + "/invitations/accept?token="
	for !strings.Contains(in.out.String(), want) {
		if time.Now().After(deadline) {
			t.Fatalf("no emailed link to %s in the log:\n%s", want, in.out)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func squash(s string) string { return strings.Join(strings.Fields(s), " ") }
