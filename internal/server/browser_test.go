package server_test

import (
	"context"
	"net"
	"net/http/httptest"
	"os"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"

	cdpruntime "github.com/chromedp/cdproto/runtime"
	"github.com/chromedp/chromedp"

	"admit/internal/testutil"
)

// browser starts headless Chromium for a test, or skips outside CI when
// none is installed (CI installs it: .ci/run).
func browser(t *testing.T) context.Context {
	t.Helper()
	path := ""
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome"} {
		if p, err := exec.LookPath(name); err == nil {
			path = p
			break
		}
	}
	if path == "" {
		if os.Getenv("CI") != "" {
			t.Fatal("no Chromium on PATH; .ci/run installs Debian's chromium package")
		}
		t.Skip("no Chromium on PATH (apt-get install -y chromium); CI always runs these tests")
	}
	opts := append(chromedp.DefaultExecAllocatorOptions[:], chromedp.ExecPath(path), chromedp.NoSandbox,
		chromedp.Flag("headless", "new"), chromedp.Flag("disable-dev-shm-usage", true))
	actx, cancelA := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancelC := chromedp.NewContext(actx)
	ctx, cancelT := context.WithTimeout(ctx, 90*time.Second)
	t.Cleanup(func() { cancelT(); cancelC(); cancelA() })
	return ctx
}

// serveHTTP runs the handler on a real listener and returns its base URL.
func serveHTTP(t *testing.T, e *testutil.Env) string {
	t.Helper()
	ts := httptest.NewUnstartedServer(e.Server)
	ts.Config.BaseContext = func(net.Listener) context.Context { return e.Server.BaseContext() }
	ts.Start()
	t.Cleanup(ts.Close)
	return ts.URL
}

// setEditor replaces the text of one of GraphiQL's CodeMirror editors.
func setEditor(selector, text string) chromedp.Action[chromedp.Void] {
	js := `document.querySelector(` + jsString(selector+` .CodeMirror`) + `).CodeMirror.setValue(` + jsString(text) + `)`
	return chromedp.Evaluate[chromedp.Void](js)
}

func jsString(s string) string {
	r := strings.NewReplacer(`\`, `\\`, "`", "\\`", "$", "\\$")
	return "`" + r.Replace(s) + "`"
}

// resultText reads GraphiQL's result pane.
func resultText(ctx context.Context) (string, error) {
	return chromedp.Run(ctx, chromedp.Evaluate[string](`(function(){var c=document.querySelector('.result-window .CodeMirror');return c?c.CodeMirror.getValue():''})()`))
}

func waitResult(t *testing.T, ctx context.Context, want string) string {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	last := ""
	for time.Now().Before(deadline) {
		got, err := resultText(ctx)
		if err != nil {
			t.Fatalf("read the result: %v", err)
		}
		if strings.Contains(got, want) {
			return got
		}
		last = got
		time.Sleep(100 * time.Millisecond)
	}
	if shot, err := chromedp.Run(ctx, chromedp.FullScreenshot(100)); err == nil {
		_ = os.WriteFile(os.TempDir()+"/graphiql-failure.png", shot, 0o644)
	}
	body, _ := chromedp.Run(ctx, chromedp.Evaluate[string](`document.body.innerText.slice(0, 2000)`))
	t.Fatalf("GraphiQL never showed %q; result pane:\n%s\npage:\n%s\n(screenshot: %s)", want, last, body, os.TempDir()+"/graphiql-failure.png")
	return ""
}

// GraphiQL is served from the binary (no request leaves the server), runs a
// query with the bearer token of its Headers tab, and shows a subscription's
// events as they arrive over the websocket.
func TestBrowserGraphiQLQueryAndSubscription(t *testing.T) {
	t.Parallel()
	ctx := browser(t)
	e := testutil.New(t)
	org := e.NewOrg("Acme")
	base := serveHTTP(t, e)

	var mu sync.Mutex
	var console []string
	_ = chromedp.Listen(ctx, func(ev any) {
		mu.Lock()
		defer mu.Unlock()
		switch ev := ev.(type) {
		case *cdpruntime.EventConsoleAPICalled:
			for _, a := range ev.Args {
				console = append(console, string(a.Value))
			}
		case *cdpruntime.EventExceptionThrown:
			console = append(console, ev.ExceptionDetails.Text)
		}
	})
	t.Cleanup(func() {
		if t.Failed() {
			mu.Lock()
			t.Logf("browser console: %v", console)
			mu.Unlock()
		}
	})
	headers := `{"Authorization": "Bearer ` + org.AdminToken + `"}`
	err := chromedp.Do(ctx,
		chromedp.Navigate(base+"/"),
		chromedp.WaitVisible(chromedp.CSS(`.graphiql-query-editor .CodeMirror`)),
		chromedp.Click(chromedp.Search(`//button[normalize-space(text())="Headers"]`)),
		chromedp.WaitVisible(chromedp.CSS(`.graphiql-editor-tool .CodeMirror`)),
	)
	if err != nil {
		t.Fatalf("open GraphiQL: %v", err)
	}
	err = chromedp.Do(ctx,
		chromedp.Evaluate[chromedp.Void](`(function(){var eds=document.querySelectorAll('.graphiql-editor-tool .CodeMirror');eds[eds.length-1].CodeMirror.setValue(`+jsString(headers)+`)})()`),
		setEditor(`.graphiql-query-editor`, `query Me { me { email organization { name } } }`),
		chromedp.Sleep(300*time.Millisecond), // GraphiQL reads the editors on change
		chromedp.Evaluate[chromedp.Void](`document.querySelector('.graphiql-execute-button').click()`),
	)
	if err != nil {
		t.Fatalf("run a query: %v", err)
	}
	waitResult(t, ctx, org.AdminEmail)

	// A subscription: GraphiQL opens the websocket with the same header.
	before := e.Broker.Subscribers()
	err = chromedp.Do(ctx,
		setEditor(`.graphiql-query-editor`, `subscription Members { membershipEvents { type user { email } workspace { name } } }`),
		chromedp.Sleep(300*time.Millisecond), // GraphiQL reads the editors on change
		chromedp.Evaluate[chromedp.Void](`document.querySelector('.graphiql-execute-button').click()`),
	)
	if err != nil {
		t.Fatalf("start a subscription: %v", err)
	}
	deadline := time.Now().Add(20 * time.Second)
	for e.Broker.Subscribers() <= before {
		if time.Now().After(deadline) {
			got, _ := resultText(ctx)
			t.Fatalf("GraphiQL's subscription never reached the server; result pane:\n%s", got)
		}
		time.Sleep(50 * time.Millisecond)
	}
	r := e.Do(org.AdminToken, `mutation { createWorkspace(input: {name: "Seen live", type: GROUP}) { errors { code } } }`, nil)
	if len(r.Errors) > 0 {
		t.Fatalf("create workspace: %s", r.Body)
	}
	got := waitResult(t, ctx, "Seen live")
	if !strings.Contains(got, "ADDED") || !strings.Contains(got, org.AdminEmail) {
		t.Fatalf("subscription event in GraphiQL: %s", got)
	}
}

// GraphiQL's page and files come from the binary and point nowhere else.
func TestGraphiQLIsServedFromTheBinary(t *testing.T) {
	t.Parallel()
	e := testutil.New(t)
	for _, path := range []string{"/", "/graphiql/admit.js", "/graphiql/graphiql.min.js", "/graphiql/react.production.min.js", "/graphiql/graphql-ws.min.js", "/graphiql/graphiql.min.css"} {
		r := e.Serve(httptest.NewRequest("GET", path, nil))
		if r.Status != 200 || len(r.Body) == 0 {
			t.Fatalf("GET %s: HTTP %d", path, r.Status)
		}
		csp := r.Header.Get("Content-Security-Policy")
		if !strings.Contains(csp, "default-src 'self'") || strings.Contains(csp, "http") || strings.Contains(csp, "unsafe") {
			t.Fatalf("GET %s: Content-Security-Policy %q", path, csp)
		}
	}
	page := string(e.Serve(httptest.NewRequest("GET", "/", nil)).Body)
	if strings.Contains(page, "http://") || strings.Contains(page, "https://") || strings.Contains(page, "//cdn") {
		t.Fatalf("the GraphiQL page refers to another host:\n%s", page)
	}
	for _, path := range []string{"/graphiql/nope.js", "/graphiql/VERSIONS.md", "/graphiql/graphiql.go"} {
		if r := e.Serve(httptest.NewRequest("GET", path, nil)); r.Status != 404 {
			t.Fatalf("GET %s: want 404, got HTTP %d", path, r.Status)
		}
	}
}

// fill types into the inputs of a page (by element id) and submits its form.
func fill(values map[string]string, submit string) chromedp.Action[chromedp.Void] {
	var steps []chromedp.Action[chromedp.Void]
	for id, v := range values {
		steps = append(steps, chromedp.SendKeys(chromedp.ID(id), v))
	}
	steps = append(steps, chromedp.Click(chromedp.CSS(submit)))
	return chromedp.Steps(steps...)
}

// waitText waits until the element with id shows want.
func waitText(t *testing.T, ctx context.Context, id, want string) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	got := ""
	for time.Now().Before(deadline) {
		got, _ = chromedp.Run(ctx, chromedp.Evaluate[string](`(document.getElementById(`+jsString(id)+`)||{}).textContent||""`))
		if strings.Contains(got, want) {
			return
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatalf("#%s never showed %q; it shows %q", id, want, got)
}

// An emailed invitation link, opened in a browser: fill in name and
// password, submit, and land signed in.
func TestBrowserAcceptInvitation(t *testing.T) {
	t.Parallel()
	ctx := browser(t)
	e := testutil.New(t)
	org := e.NewOrg("Acme")
	base := serveHTTP(t, e)
	if r := e.Do(org.AdminToken, `mutation { inviteUsers(input: {emails: ["ann@example.com"]}) { errors { code } } }`, nil); len(r.Errors) > 0 {
		t.Fatal(string(r.Body))
	}
	e.Deliver()
	token := testutil.TokenIn(t, e.Mail.To("ann@example.com")[0])
	err := chromedp.Do(ctx,
		chromedp.Navigate(base+"/invitations/accept?token="+token),
		chromedp.WaitVisible(chromedp.ID("form")),
		fill(map[string]string{"name": "Ann Example", "password": "a long enough password"}, "#form button"),
	)
	if err != nil {
		t.Fatal(err)
	}
	waitText(t, ctx, "message", "You are signed in to Acme as ann@example.com")
	if token := e.SignIn("ann@example.com", "a long enough password"); token == "" {
		t.Fatal("the account cannot sign in")
	}
}

// The same page for an invitation sent by SMS: it asks for an optional
// address, and the account signs in by phone.
func TestBrowserAcceptPhoneInvitation(t *testing.T) {
	t.Parallel()
	ctx := browser(t)
	e := testutil.New(t)
	org := e.NewOrg("Acme")
	base := serveHTTP(t, e)
	if r := e.Do(org.AdminToken, `mutation { inviteUsers(input: {invitees: [{name: "Ada", phone: "+44 20 7946 0958"}]}) { results { code } errors { code } } }`, nil); len(r.Errors) > 0 || strings.Contains(string(r.Body), `"code":"`) {
		t.Fatal(string(r.Body))
	}
	e.Deliver()
	texts := e.Texts.To("+442079460958")
	if len(texts) != 1 {
		t.Fatalf("want one SMS, got %d", len(texts))
	}
	link := texts[0].Body[strings.Index(texts[0].Body, "https://"):]
	token := link[strings.Index(link, "token=")+len("token="):]
	err := chromedp.Do(ctx,
		chromedp.Navigate(base+"/invitations/accept?token="+token),
		chromedp.WaitVisible(chromedp.ID("email")),
		fill(map[string]string{"name": "Ada Lovelace", "email": "ada@example.com", "password": "a long enough password"}, "#form button"),
	)
	if err != nil {
		t.Fatal(err)
	}
	waitText(t, ctx, "message", "You are signed in to Acme as ada@example.com")
	r := e.Do("", `mutation { signIn(input: {phone: "+442079460958", password: "a long enough password"}) { token errors { code } } }`, nil)
	if !strings.Contains(string(r.Body), `"token":"`) {
		t.Fatalf("sign in by phone: %s", r.Body)
	}
}

// An invite link's page, then the workspace link's page and its emailed
// confirmation link, as a stranger uses them.
func TestBrowserJoinPages(t *testing.T) {
	t.Parallel()
	ctx := browser(t)
	w := newEvWorld(t)
	base := "http" + strings.TrimSuffix(strings.TrimPrefix(w.url, "ws"), "/query")

	link := evDo(t, w.e, w.org.AdminToken, `mutation { createInviteLink(input: {kind: CLIENT}) { link { url } errors { code } } }`, nil)
	u := link["createInviteLink"].(map[string]any)["link"].(map[string]any)["url"].(string)
	err := chromedp.Do(ctx,
		chromedp.Navigate(base+"/join?token="+u[strings.Index(u, "token=")+len("token="):]),
		chromedp.WaitVisible(chromedp.ID("form")),
		fill(map[string]string{"name": "Bea", "email": "bea@example.com"}, "#form button"),
	)
	if err != nil {
		t.Fatal(err)
	}
	waitText(t, ctx, "message", "Check your inbox")
	w.e.Deliver()
	if len(w.e.Mail.To("bea@example.com")) != 1 {
		t.Fatal("the invite link page sent no confirmation")
	}

	err = chromedp.Do(ctx,
		chromedp.Navigate(base+"/workspaces/join?token="+w.linkToken),
		chromedp.WaitVisible(chromedp.ID("form")),
		fill(map[string]string{"name": "Cy", "email": "cy@example.com", "note": "Hello"}, "#form button"),
	)
	if err != nil {
		t.Fatal(err)
	}
	waitText(t, ctx, "title", "Ask to join Deals")
	waitText(t, ctx, "message", "Check your inbox")
	w.e.Deliver()
	msgs := w.e.Mail.To("cy@example.com")
	if len(msgs) != 1 {
		t.Fatalf("want the confirmation email, got %d", len(msgs))
	}
	if err := chromedp.Do(ctx, chromedp.Navigate(base+"/workspaces/request?token="+testutil.TokenIn(t, msgs[0]))); err != nil {
		t.Fatal(err)
	}
	waitText(t, ctx, "summary", "Your address is confirmed")
	w.pendingID(t, "cy@example.com")
}

// A password reset email's link, opened in a browser: choose a new
// password, and it signs in.
func TestBrowserResetPassword(t *testing.T) {
	t.Parallel()
	ctx := browser(t)
	e := testutil.New(t)
	org := e.NewOrg("Acme")
	base := serveHTTP(t, e)
	if r := e.Do("", `mutation($e: String!) { requestPasswordReset(input: {email: $e}) { accepted errors { code } } }`, map[string]any{"e": org.AdminEmail}); len(r.Errors) > 0 {
		t.Fatal(string(r.Body))
	}
	e.Deliver()
	msgs := e.Mail.To(org.AdminEmail)
	if len(msgs) == 0 {
		t.Fatal("no reset email")
	}
	err := chromedp.Do(ctx,
		chromedp.Navigate(base+"/reset-password?token="+testutil.TokenIn(t, msgs[len(msgs)-1])),
		chromedp.WaitVisible(chromedp.ID("form")),
		fill(map[string]string{"password": "a brand new password"}, "#form button"),
	)
	if err != nil {
		t.Fatal(err)
	}
	waitText(t, ctx, "message", "Your password is changed")
	if token := e.SignIn(org.AdminEmail, "a brand new password"); token == "" {
		t.Fatal("the new password does not sign in")
	}
}
