// Package testutil runs Admit's real HTTP handler in-process for tests. Each
// test gets its own database: an in-memory SQLite by default, or a fresh
// PostgreSQL schema (dropped afterwards) when TEST_DATABASE_URL is set, so
// packages and tests can run in parallel on either.
package testutil

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/tls"
	"database/sql"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	_ "admit/ent/runtime" // privacy policies and hooks

	"admit/ent"
	"admit/internal/account"
	"admit/internal/db"
	"admit/internal/eventlog"
	"admit/internal/hr"
	"admit/internal/importfile"
	"admit/internal/invite"
	"admit/internal/mail"
	"admit/internal/outbox"
	"admit/internal/password"
	"admit/internal/pubsub"
	"admit/internal/ratelimit"
	"admit/internal/rule"
	"admit/internal/secret"
	"admit/internal/server"
	"admit/internal/sms"
	"admit/internal/workspace"
)

// PostgresURL is the database the suite runs against, or "" for SQLite.
func PostgresURL() string { return strings.TrimSpace(getenv("TEST_DATABASE_URL")) }

// OpenDB returns a migrated database that only this test uses.
func OpenDB(t testing.TB) *db.DB {
	t.Helper()
	var dsn string
	if base := PostgresURL(); base != "" {
		dsn = postgresSchema(t, base)
	} else {
		// A WAL file as in production: a shared-cache in-memory database
		// locks tables and answers SQLITE_LOCKED, which no busy timeout
		// waits out, so it would test something production never runs.
		dsn = t.TempDir() + "/admit.db"
	}
	d, err := db.Open(dsn)
	if err != nil {
		t.Fatalf("open database: %v", err)
	}
	t.Cleanup(func() { d.Close() })
	if err := d.Migrate(context.Background(), nil); err != nil {
		t.Fatalf("migrate: %v", err)
	}
	return d
}

// postgresSchema creates a schema for one test and returns a DSN whose
// search_path points at it.
func postgresSchema(t testing.TB, base string) string {
	t.Helper()
	admin, err := sql.Open("postgres", base)
	if err != nil {
		t.Fatalf("postgres: %v", err)
	}
	name := "t_" + strings.ToLower(rand.Text()[:16])
	if _, err := admin.Exec("CREATE SCHEMA " + name); err != nil {
		admin.Close()
		t.Fatalf("postgres: create schema: %v", err)
	}
	t.Cleanup(func() {
		_, _ = admin.Exec("DROP SCHEMA " + name + " CASCADE")
		admin.Close()
	})
	u, err := url.Parse(base)
	if err != nil {
		t.Fatalf("TEST_DATABASE_URL: %v", err)
	}
	q := u.Query()
	q.Set("search_path", name)
	u.RawQuery = q.Encode()
	return u.String()
}

// Clock is a settable time source for expiry tests.
type Clock struct {
	mu  sync.Mutex
	now time.Time
}

// Now returns the clock's time.
func (c *Clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

// Advance moves the clock forward.
func (c *Clock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

// Env is one running Admit for one test.
type Env struct {
	T        testing.TB
	DB       *db.DB
	Keys     *secret.Keyring
	Accounts *account.Service
	Server   *server.Server
	Clock    *Clock
	Invites  *invite.Service
	Broker   *pubsub.Broker
	Events   *eventlog.Log
	Work     *workspace.Service
	Worker   *outbox.Worker
	Mail     *Mailbox
	// Texts keeps the SMS the outbox sends; tests of the provider's API
	// replace Env.Worker.SMS.
	Texts *Textbox
	// HR runs HR connections. Its HTTP may reach local addresses and
	// trusts httptest's TLS servers; tests replace it to test refusals.
	HR   *hr.Service
	logs *syncBuffer
}

// HRTestHTTP is an hr.HTTP for tests: private hosts allowed, httptest's
// TLS certificate trusted, and retries that do not wait.
func HRTestHTTP() *hr.HTTP {
	return &hr.HTTP{
		AllowPrivate: true,
		TLS:          testTLS(),
		Sleep:        func(context.Context, time.Duration) error { return nil },
	}
}

// testTLS trusts the certificate every httptest TLS server uses.
var testTLS = sync.OnceValue(func() *tls.Config {
	ts := httptest.NewTLSServer(http.NotFoundHandler())
	defer ts.Close()
	return ts.Client().Transport.(*http.Transport).TLSClientConfig.Clone()
})

// Mailbox is a mail.Sender that keeps what it is asked to send. Tests that
// need a real SMTP conversation replace Env.Worker.Sender.
type Mailbox struct {
	mu   sync.Mutex
	msgs []mail.Message
	// Fail, when set, is returned by Send instead of keeping the message.
	Fail error
}

// Send implements mail.Sender.
func (m *Mailbox) Send(_ context.Context, msg mail.Message) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.Fail != nil {
		return m.Fail
	}
	m.msgs = append(m.msgs, msg)
	return nil
}

// Messages returns the messages sent so far.
func (m *Mailbox) Messages() []mail.Message {
	m.mu.Lock()
	defer m.mu.Unlock()
	return slices.Clone(m.msgs)
}

// To returns the messages sent to addr.
func (m *Mailbox) To(addr string) []mail.Message {
	var out []mail.Message
	for _, msg := range m.Messages() {
		if msg.To == addr {
			out = append(out, msg)
		}
	}
	return out
}

// Textbox is an sms.Sender that keeps what it is asked to send.
type Textbox struct {
	mu   sync.Mutex
	msgs []sms.Message
}

// Send implements sms.Sender.
func (b *Textbox) Send(_ context.Context, m sms.Message) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.msgs = append(b.msgs, m)
	return nil
}

// To returns the texts sent to number.
func (b *Textbox) To(number string) []sms.Message {
	b.mu.Lock()
	defer b.mu.Unlock()
	var out []sms.Message
	for _, m := range b.msgs {
		if m.To == number {
			out = append(out, m)
		}
	}
	return out
}

// Count returns how many texts were sent.
func (b *Textbox) Count() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return len(b.msgs)
}

// JoinURL is the invite link template tests run with.
func JoinURL(token string) string {
	return "https://admit.test/join?token=" + url.QueryEscape(token)
}

// WorkspaceLinkURL is the workspace link template tests run with.
func WorkspaceLinkURL(token string) string {
	return "https://admit.test/workspaces/join?token=" + url.QueryEscape(token)
}

// JoinRequestURL is the join-request confirmation link tests run with.
func JoinRequestURL(token string) string {
	return "https://admit.test/workspaces/request?token=" + url.QueryEscape(token)
}

// ResetURL is the password reset link template tests run with.
func ResetURL(token string) string {
	return "https://admit.test/reset-password?token=" + url.QueryEscape(token)
}

// AcceptURL is the link template tests run with.
func AcceptURL(token string) string {
	return "https://admit.test/invitations/accept?token=" + url.QueryEscape(token)
}

// TokenIn returns the invitation token in a message's text.
func TokenIn(t testing.TB, msg mail.Message) string {
	t.Helper()
	i := strings.Index(msg.Text, "?token=")
	if i < 0 {
		t.Fatalf("no link in message to %s:\n%s", msg.To, msg.Text)
	}
	rest := msg.Text[i+len("?token="):]
	if j := strings.IndexAny(rest, " \r\n"); j >= 0 {
		rest = rest[:j]
	}
	tok, err := url.QueryUnescape(rest)
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

// Deliver runs the outbox worker until nothing is due.
func (e *Env) Deliver() {
	e.T.Helper()
	for {
		n, err := e.Worker.RunOnce(context.Background())
		if err != nil {
			e.T.Fatalf("outbox: %v", err)
		}
		if n == 0 {
			return
		}
	}
}

// LogText returns everything the server logged so far.
func (e *Env) LogText() string {
	e.logs.mu.Lock()
	defer e.logs.mu.Unlock()
	return e.logs.String()
}

// Option changes the server options before it starts.
type Option func(*server.Options)

// New starts an Admit handler on a fresh database.
func New(t testing.TB, opts ...Option) *Env {
	t.Helper()
	d := OpenDB(t)
	keys, err := secret.New(secret.Ephemeral())
	if err != nil {
		t.Fatal(err)
	}
	clock := &Clock{now: time.Now()}
	logs := &syncBuffer{}
	log := slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	accounts := &account.Service{
		Dialect: d.Dialect, Keys: keys, SessionTTL: 24 * time.Hour, Now: clock.Now,
		SignInLimits: account.DefaultSignInLimits,
	}
	broker := pubsub.New()
	accounts.Broker = broker
	events := &eventlog.Log{Broker: broker, Dialect: d.Dialect, Now: clock.Now}
	invites := &invite.Service{Keys: keys, Now: clock.Now, Broker: broker, ResendCooldown: time.Minute, Dialect: d.Dialect, Events: events}
	workspaces := &workspace.Service{Keys: keys, Now: clock.Now, Invites: invites, Events: events}
	mailbox, texts := &Mailbox{}, &Textbox{}
	worker := &outbox.Worker{
		Client: d.Client, Dialect: d.Dialect, Sender: mailbox, SMS: texts, Invites: invites, Broker: broker,
		Log: log, Now: clock.Now, AcceptURL: AcceptURL, MessageIDDomain: "admit.test", SignInURL: "https://admit.test/",
		JoinRequestURL: JoinRequestURL,
		BaseBackoff:    time.Second, MaxBackoff: 10 * time.Second,
		Accounts: accounts, ResetURL: ResetURL,
	}
	hrs := &hr.Service{
		Client: d.Client, Keys: keys, Invites: invites, Accounts: accounts,
		HTTP: HRTestHTTP(), Now: clock.Now, Log: log,
	}
	o := server.Options{
		HR:               hrs,
		DB:               d,
		Accounts:         accounts,
		Invites:          invites,
		Broker:           broker,
		ImportLimits:     importfile.DefaultLimits,
		JoinURL:          JoinURL,
		Workspaces:       workspaces,
		Events:           events,
		WorkspaceLinkURL: WorkspaceLinkURL,
		LinkLimits: invite.LinkLimits{
			PerLink:    &ratelimit.Limiter{Limit: 1000, Window: time.Hour, Now: clock.Now},
			PerAddress: &ratelimit.Limiter{Limit: 1000, Window: time.Hour, Now: clock.Now},
		},
		Log:           log,
		Limits:        server.DefaultLimits,
		Introspection: true,
	}
	for _, f := range opts {
		f(&o)
	}
	srv, err := server.New(o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(srv.CloseSockets)
	return &Env{T: t, DB: d, Keys: keys, Accounts: accounts, Server: srv, Clock: clock,
		Invites: invites, Broker: broker, Events: events, Work: workspaces, Worker: worker, Mail: mailbox, Texts: texts, HR: hrs, logs: logs}
}

type syncBuffer struct {
	mu sync.Mutex
	bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.Buffer.Write(p)
}

// System returns a context that bypasses privacy, for fixtures only.
func System() context.Context {
	return rule.System(context.Background())
}

// Org is an organization made for a test, with its signed-in admin.
type Org struct {
	ID            int
	Name          string
	AdminID       int
	AdminEmail    string
	AdminPassword string
	AdminToken    string
	AdminRoleID   int
	MemberRoleID  int
}

// DefaultPassword is the password fixtures give every user.
const DefaultPassword = "correct horse battery"

// NewOrg creates an organization and signs its admin in.
func (e *Env) NewOrg(name string) *Org {
	e.T.Helper()
	email := "admin@" + strings.ToLower(strings.ReplaceAll(name, " ", "")) + ".test"
	org, admin, err := account.CreateOrganization(context.Background(), e.DB.Client, account.NewOrganization{
		Name: name, AdminEmail: email, AdminPassword: DefaultPassword, AdminName: name + " Admin",
	})
	if err != nil {
		e.T.Fatalf("create organization: %v", err)
	}
	o := &Org{ID: org.ID, Name: name, AdminID: admin.ID, AdminEmail: email, AdminPassword: DefaultPassword}
	adminRole, err := account.BuiltinRole(context.Background(), e.DB.Client, org.ID, true)
	if err != nil {
		e.T.Fatal(err)
	}
	memberRole, err := account.BuiltinRole(context.Background(), e.DB.Client, org.ID, false)
	if err != nil {
		e.T.Fatal(err)
	}
	o.AdminRoleID, o.MemberRoleID = adminRole.ID, memberRole.ID
	o.AdminToken = e.SignIn(email, DefaultPassword)
	return o
}

// passwordHash is computed once: argon2id is slow on purpose.
var passwordHash = sync.OnceValue(func() string {
	h, err := password.Hash(context.Background(), DefaultPassword)
	if err != nil {
		panic(err)
	}
	return h
})

// NewUser adds an active user with DefaultPassword to org and returns it.
func (e *Env) NewUser(org *Org, email string, roleID int) *ent.User {
	e.T.Helper()
	u, err := e.DB.Client.User.Create().
		SetOrganizationID(org.ID).
		SetEmail(email).
		SetName(strings.Split(email, "@")[0]).
		SetPasswordHash(passwordHash()).
		SetRoleID(roleID).
		Save(System())
	if err != nil {
		e.T.Fatalf("create user: %v", err)
	}
	return u
}

// NewRole adds a custom role directly (bypassing the API).
func (e *Env) NewRole(org *Org, name string, admin bool, rank int) *ent.Role {
	e.T.Helper()
	r, err := e.DB.Client.Role.Create().
		SetOrganizationID(org.ID).SetName(name).SetAdmin(admin).SetRank(rank).
		Save(System())
	if err != nil {
		e.T.Fatalf("create role: %v", err)
	}
	return r
}

// SignIn signs in through the API and returns the session token.
func (e *Env) SignIn(email, pw string) string {
	e.T.Helper()
	var out struct {
		SignIn struct {
			Token  *string
			Errors []struct{ Code, Message string }
		}
	}
	e.Do("", `mutation($e: String!, $p: String!) { signIn(input: {email: $e, password: $p}) { token errors { code message } } }`,
		map[string]any{"e": email, "p": pw}).MustData(&out)
	if out.SignIn.Token == nil {
		e.T.Fatalf("sign in %s: %+v", email, out.SignIn.Errors)
	}
	return *out.SignIn.Token
}

// GQLError is one error of a GraphQL response.
type GQLError struct {
	Message    string         `json:"message"`
	Path       []any          `json:"path"`
	Extensions map[string]any `json:"extensions"`
}

// Code returns extensions.code.
func (g GQLError) Code() string { s, _ := g.Extensions["code"].(string); return s }

// Response is a GraphQL HTTP response.
type Response struct {
	t      testing.TB
	Status int             `json:"-"`
	Header http.Header     `json:"-"`
	Body   []byte          `json:"-"`
	Data   json.RawMessage `json:"data"`
	Errors []GQLError      `json:"errors"`
}

// MustData fails the test on GraphQL errors and decodes data into v,
// refusing fields v does not declare (catches schema drift).
func (r *Response) MustData(v any) {
	r.t.Helper()
	if len(r.Errors) > 0 {
		r.t.Fatalf("unexpected GraphQL errors (HTTP %d): %s", r.Status, r.Body)
	}
	dec := json.NewDecoder(bytes.NewReader(r.Data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		r.t.Fatalf("decode data %s: %v", r.Data, err)
	}
}

// MustFail fails the test unless the response has an error with code,
// and returns that error.
func (r *Response) MustFail(code string) GQLError {
	r.t.Helper()
	for _, e := range r.Errors {
		if e.Code() == code {
			return e
		}
	}
	r.t.Fatalf("want error code %s, got HTTP %d: %s", code, r.Status, r.Body)
	return GQLError{}
}

// Do runs a GraphQL operation as token ("" for anonymous) through the real
// HTTP handler.
func (e *Env) Do(token, query string, vars map[string]any) *Response {
	e.T.Helper()
	body, _ := json.Marshal(map[string]any{"query": query, "variables": vars})
	req := httptest.NewRequest(http.MethodPost, "/query", bytes.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	return e.Serve(req)
}

// Serve sends any request through the handler and decodes a GraphQL body.
func (e *Env) Serve(req *http.Request) *Response {
	e.T.Helper()
	rec := httptest.NewRecorder()
	e.Server.ServeHTTP(rec, req)
	res := rec.Result()
	b, _ := io.ReadAll(res.Body)
	r := &Response{t: e.T, Status: res.StatusCode, Header: res.Header, Body: b}
	if strings.HasPrefix(res.Header.Get("Content-Type"), "application/json") {
		if err := json.Unmarshal(b, r); err != nil {
			e.T.Fatalf("response is not JSON (%v): %s", err, b)
		}
	}
	return r
}

// ID formats an int ID for GraphQL variables.
func ID(id int) string { return fmt.Sprint(id) }

// DatabaseURL returns a DATABASE_URL for a fresh, empty database that only
// this test uses: a PostgreSQL schema when TEST_DATABASE_URL is set, else a
// SQLite file in a temporary directory.
func DatabaseURL(t testing.TB) string {
	t.Helper()
	if base := PostgresURL(); base != "" {
		return postgresSchema(t, base)
	}
	return t.TempDir() + "/admit.db"
}
