package server_test

import (
	"bytes"
	"encoding/json"
	"io"
	"math"
	"mime/multipart"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"

	"admit/internal/server"
	"admit/internal/testutil"
)

const (
	appOrigin = "https://app.example.com"
	meQuery   = `{ me { email } }`
)

func allowApp(o *server.Options) { o.AllowedOrigins = []string{appOrigin} }

// createRoleMutation creates a custom role called name when it executes.
func createRoleMutation(name string) string {
	return `mutation { createRole(input: {name: "` + name + `"}) { role { id name } errors { code } } }`
}

// roleNames lists the roles the org's admin sees, through the API.
func roleNames(t *testing.T, e *testutil.Env, org *testutil.Org) map[string]bool {
	t.Helper()
	var out struct {
		Roles struct {
			Edges []struct{ Node struct{ Name string } }
		}
	}
	r := e.Do(org.AdminToken, `{ roles { edges { node { name } } } }`, nil)
	wantNoErrors(t, r)
	if err := json.Unmarshal(r.Data, &out); err != nil {
		t.Fatalf("decode roles %s: %v", r.Data, err)
	}
	names := map[string]bool{}
	for _, edge := range out.Roles.Edges {
		names[edge.Node.Name] = true
	}
	if !names["Admin"] {
		t.Fatalf("roles query sees no Admin role, so it cannot show what exists: %v", names)
	}
	return names
}

func assertNoRole(t *testing.T, e *testutil.Env, org *testutil.Org, name string) {
	t.Helper()
	if roleNames(t, e, org)[name] {
		t.Fatalf("want no role %q (the refused mutation must not execute), got one", name)
	}
}

// wantCode fails t unless r has an error with extensions.code code.
// (Response.MustFail reports to the Env's test, not to a subtest.)
func wantCode(t *testing.T, r *testutil.Response, code string) {
	t.Helper()
	for _, err := range r.Errors {
		if err.Code() == code {
			return
		}
	}
	t.Fatalf("want error code %s, got HTTP %d: %.500s", code, r.Status, r.Body)
}

func wantNoErrors(t *testing.T, r *testutil.Response) {
	t.Helper()
	if r.Status != http.StatusOK || len(r.Errors) > 0 {
		t.Fatalf("want HTTP 200 without errors, got %d: %.500s", r.Status, r.Body)
	}
}

func assertNoData(t *testing.T, r *testutil.Response) {
	t.Helper()
	if d := strings.TrimSpace(string(r.Data)); d != "" && d != "null" {
		t.Fatalf("want no data, got HTTP %d: %s", r.Status, r.Body)
	}
}

// jsonBody encodes a GraphQL request.
func jsonBody(t *testing.T, query string, vars map[string]any) []byte {
	t.Helper()
	b, err := json.Marshal(map[string]any{"query": query, "variables": vars})
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func newRequest(method, target, contentType, token string, body io.Reader) *http.Request {
	req := httptest.NewRequest(method, target, body)
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	return req
}

func preflight(e *testutil.Env, origin string) *testutil.Response {
	req := httptest.NewRequest(http.MethodOptions, "/query", nil)
	req.Header.Set("Origin", origin)
	req.Header.Set("Access-Control-Request-Method", http.MethodPost)
	// Browsers send this list lower-case and sorted (Fetch standard), and
	// rs/cors only accepts it in that form.
	req.Header.Set("Access-Control-Request-Headers", "authorization,content-type")
	return e.Serve(req)
}

func TestCORSPreflight(t *testing.T) {
	t.Parallel()
	e := testutil.New(t, allowApp)
	tests := []struct {
		name, origin string
		allowed      bool
	}{
		{"allowed origin", appOrigin, true},
		{"allowed origin in another case", "https://APP.example.com", true},
		{"other site", "https://evil.example", false},
		{"look-alike suffix", "https://app.example.com.evil.example", false},
		{"look-alike prefix", "https://evilapp.example.com", false},
		{"subdomain", "https://x.app.example.com", false},
		{"plain http", "http://app.example.com", false},
		{"other port", "https://app.example.com:8443", false},
		{"opaque origin", "null", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := preflight(e, tt.origin)
			got := r.Header.Get("Access-Control-Allow-Origin")
			if !tt.allowed {
				if got != "" {
					t.Fatalf("origin %s: want no Access-Control-Allow-Origin, got %q", tt.origin, got)
				}
				return
			}
			if r.Status != http.StatusNoContent && r.Status != http.StatusOK {
				t.Fatalf("want a 2xx preflight answer, got %d", r.Status)
			}
			if got != tt.origin {
				t.Fatalf("want Access-Control-Allow-Origin %q, got %q", tt.origin, got)
			}
			if m := r.Header.Get("Access-Control-Allow-Methods"); !strings.Contains(strings.ToUpper(m), "POST") {
				t.Fatalf("want POST in Access-Control-Allow-Methods, got %q", m)
			}
			h := strings.ToLower(r.Header.Get("Access-Control-Allow-Headers"))
			if !strings.Contains(h, "content-type") || !strings.Contains(h, "authorization") {
				t.Fatalf("want content-type and authorization in Access-Control-Allow-Headers, got %q", h)
			}
			if c := r.Header.Get("Access-Control-Allow-Credentials"); c != "" {
				t.Fatalf("want no Access-Control-Allow-Credentials (bearer tokens only), got %q", c)
			}
		})
	}
}

func TestCORSActualRequest(t *testing.T) {
	t.Parallel()
	e := testutil.New(t, allowApp)
	org := e.NewOrg("Acme")
	for _, tt := range []struct {
		origin, want string
	}{
		{appOrigin, appOrigin},
		{"https://evil.example", ""},
	} {
		req := newRequest(http.MethodPost, "/query", "application/json", org.AdminToken, bytes.NewReader(jsonBody(t, meQuery, nil)))
		req.Header.Set("Origin", tt.origin)
		r := e.Serve(req)
		if got := r.Header.Get("Access-Control-Allow-Origin"); got != tt.want {
			t.Fatalf("origin %s: want Access-Control-Allow-Origin %q, got %q", tt.origin, tt.want, got)
		}
		if !strings.Contains(r.Header.Get("Vary"), "Origin") {
			t.Fatalf("origin %s: want Vary: Origin so caches keep answers apart, got %q", tt.origin, r.Header.Get("Vary"))
		}
	}
}

// With no CORS_ALLOWED_ORIGINS configured (the default) no other site may
// read answers, just as no other site may open a websocket.
func TestCORSWithoutConfiguredOriginsAllowsNone(t *testing.T) {
	t.Parallel()
	e := testutil.New(t) // AllowedOrigins unset
	r := preflight(e, "https://evil.example")
	if got := r.Header.Get("Access-Control-Allow-Origin"); got != "" {
		t.Fatalf("no allowed origins configured: want no Access-Control-Allow-Origin for https://evil.example, got %q", got)
	}
}

// ValidateOrigins accepts an origin with a trailing slash; once accepted it
// must take effect (browsers send Origin without one).
func TestCORSOriginWithTrailingSlash(t *testing.T) {
	t.Parallel()
	if err := server.ValidateOrigins([]string{appOrigin + "/"}); err != nil {
		return // refused at configuration time: fine
	}
	e := testutil.New(t, func(o *server.Options) { o.AllowedOrigins = []string{appOrigin + "/"} })
	r := preflight(e, appOrigin)
	if got := r.Header.Get("Access-Control-Allow-Origin"); got != appOrigin {
		t.Fatalf("configured %q (accepted by ValidateOrigins): want Access-Control-Allow-Origin %q, got %q", appOrigin+"/", appOrigin, got)
	}
}

func TestSimpleCrossSitePostsAreRefused(t *testing.T) {
	t.Parallel()
	e := testutil.New(t)
	org := e.NewOrg("Acme")

	// Control: the same mutation as JSON does create a role, so the check
	// below can see one.
	e.Do(org.AdminToken, createRoleMutation("Via JSON"), nil).MustData(&struct {
		CreateRole struct {
			Role   struct{ ID, Name string }
			Errors []struct{ Code string }
		}
	}{})
	if !roleNames(t, e, org)["Via JSON"] {
		t.Fatal("control: want role \"Via JSON\" created through application/json")
	}

	mutation := createRoleMutation("Forged")
	tests := []struct {
		name, contentType string
		body              string
	}{
		{"form", "application/x-www-form-urlencoded", url.Values{"query": {mutation}}.Encode()},
		{"text/plain", "text/plain", string(jsonBody(t, mutation, nil))},
		{"text/plain with charset", "text/plain; charset=utf-8", string(jsonBody(t, mutation, nil))},
		{"no content type", "", string(jsonBody(t, mutation, nil))},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := e.Serve(newRequest(http.MethodPost, "/query", tt.contentType, org.AdminToken, strings.NewReader(tt.body)))
			if r.Status != http.StatusUnsupportedMediaType {
				t.Fatalf("want HTTP 415, got %d: %s", r.Status, r.Body)
			}
			wantCode(t, r, "UNSUPPORTED_MEDIA_TYPE")
			assertNoData(t, r)
			assertNoRole(t, e, org, "Forged")
		})
	}
}

// multipartBody builds a GraphQL multipart request (operations, map).
func multipartBody(t *testing.T, query string) (contentType string, body *bytes.Buffer) {
	t.Helper()
	body = &bytes.Buffer{}
	w := multipart.NewWriter(body)
	if err := w.WriteField("operations", string(jsonBody(t, query, nil))); err != nil {
		t.Fatal(err)
	}
	if err := w.WriteField("map", "{}"); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return w.FormDataContentType(), body
}

func TestMultipartNeedsAPreflightHeader(t *testing.T) {
	t.Parallel()
	e := testutil.New(t)
	org := e.NewOrg("Acme")

	t.Run("refused without a preflight header", func(t *testing.T) {
		for _, h := range []map[string]string{nil, {"Apollo-Require-Preflight": ""}, {"GraphQL-Require-Preflight": ""}} {
			ct, body := multipartBody(t, createRoleMutation("Forged"))
			req := newRequest(http.MethodPost, "/query", ct, org.AdminToken, body)
			for k, v := range h {
				req.Header.Set(k, v)
			}
			r := e.Serve(req)
			if r.Status != http.StatusBadRequest {
				t.Fatalf("headers %v: want HTTP 400, got %d: %s", h, r.Status, r.Body)
			}
			wantCode(t, r, "CSRF_PREVENTED")
			assertNoData(t, r)
		}
		assertNoRole(t, e, org, "Forged")
	})

	for _, header := range []string{"GraphQL-Require-Preflight", "Apollo-Require-Preflight"} {
		t.Run("let through with "+header, func(t *testing.T) {
			ct, body := multipartBody(t, meQuery)
			req := newRequest(http.MethodPost, "/query", ct, org.AdminToken, body)
			req.Header.Set(header, "1")
			r := e.Serve(req)
			if r.Status != http.StatusOK {
				t.Fatalf("want HTTP 200, got %d: %s", r.Status, r.Body)
			}
			var out struct{ Me struct{ Email string } }
			r.MustData(&out)
			if out.Me.Email != org.AdminEmail {
				t.Fatalf("want me.email %q, got %q", org.AdminEmail, out.Me.Email)
			}
		})
	}
}

func TestGETAllowsOnlyQueries(t *testing.T) {
	t.Parallel()
	e := testutil.New(t)
	org := e.NewOrg("Acme")

	t.Run("mutation refused", func(t *testing.T) {
		target := "/query?" + url.Values{"query": {createRoleMutation("Via GET")}}.Encode()
		r := e.Serve(newRequest(http.MethodGet, target, "", org.AdminToken, nil))
		if r.Status != http.StatusNotAcceptable {
			t.Fatalf("want HTTP 406, got %d: %s", r.Status, r.Body)
		}
		if len(r.Errors) == 0 {
			t.Fatalf("want an error, got %s", r.Body)
		}
		assertNoData(t, r)
		assertNoRole(t, e, org, "Via GET")
	})

	t.Run("query works", func(t *testing.T) {
		r := e.Serve(newRequest(http.MethodGet, "/query?"+url.Values{"query": {meQuery}}.Encode(), "", org.AdminToken, nil))
		if r.Status != http.StatusOK {
			t.Fatalf("want HTTP 200, got %d: %s", r.Status, r.Body)
		}
		var out struct{ Me struct{ Email string } }
		r.MustData(&out)
		if out.Me.Email != org.AdminEmail {
			t.Fatalf("want me.email %q, got %q", org.AdminEmail, out.Me.Email)
		}
	})
}

// onlyReader hides the body's length, so the request has no Content-Length
// (as with chunked transfer encoding).
type onlyReader struct{ io.Reader }

func TestBodyLimit(t *testing.T) {
	t.Parallel()
	const limit = 1024
	e := testutil.New(t, func(o *server.Options) {
		l := server.DefaultLimits
		l.MaxBodyBytes = limit
		o.Limits = l
	})
	org := e.NewOrg("Acme")

	// body is a createRole request padded with JSON whitespace to size bytes.
	body := func(name string, size int) []byte {
		b := jsonBody(t, createRoleMutation(name), nil)
		pad := size - len(b)
		if pad < 0 {
			t.Fatalf("request is already %d bytes", len(b))
		}
		return append(b[:len(b)-1], append(bytes.Repeat([]byte(" "), pad), '}')...)
	}

	t.Run("under the limit", func(t *testing.T) {
		b := body("Small", limit-10)
		r := e.Serve(newRequest(http.MethodPost, "/query", "application/json", org.AdminToken, onlyReader{bytes.NewReader(b)}))
		if r.Status != http.StatusOK || len(r.Errors) > 0 {
			t.Fatalf("want HTTP 200 without errors for %d bytes, got %d: %s", len(b), r.Status, r.Body)
		}
		if !roleNames(t, e, org)["Small"] {
			t.Fatal("want role \"Small\" created by a request under the limit")
		}
	})

	t.Run("over the limit with Content-Length", func(t *testing.T) {
		req := newRequest(http.MethodPost, "/query", "application/json", org.AdminToken, bytes.NewReader(body("Big", 4*limit)))
		if req.ContentLength != 4*limit {
			t.Fatalf("want Content-Length %d, got %d", 4*limit, req.ContentLength)
		}
		r := e.Serve(req)
		if r.Status != http.StatusRequestEntityTooLarge {
			t.Fatalf("want HTTP 413, got %d: %s", r.Status, r.Body)
		}
		wantCode(t, r, "REQUEST_TOO_LARGE")
		assertNoData(t, r)
		assertNoRole(t, e, org, "Big")
	})

	t.Run("over the limit without Content-Length", func(t *testing.T) {
		req := newRequest(http.MethodPost, "/query", "application/json", org.AdminToken, onlyReader{bytes.NewReader(body("Chunked", 4*limit))})
		if req.ContentLength != -1 {
			t.Fatalf("want an unknown Content-Length, got %d", req.ContentLength)
		}
		r := e.Serve(req)
		// Not executed, and the same answer as with a Content-Length: the
		// limit is the client's problem, not a server fault.
		assertNoRole(t, e, org, "Chunked")
		assertNoData(t, r)
		if r.Status != http.StatusRequestEntityTooLarge {
			t.Fatalf("want HTTP 413, got %d: %s", r.Status, r.Body)
		}
		wantCode(t, r, "REQUEST_TOO_LARGE")
	})
}

// A body that is not a GraphQL JSON request is the client's mistake: 400,
// not an INTERNAL error.
func TestMalformedJSONIsABadRequest(t *testing.T) {
	t.Parallel()
	e := testutil.New(t)
	for _, body := range []string{`{not json`, `[]`, `{"query": 5}`, ``} {
		t.Run(body, func(t *testing.T) {
			r := e.Serve(newRequest(http.MethodPost, "/query", "application/json", "", strings.NewReader(body)))
			if r.Status != http.StatusBadRequest {
				t.Fatalf("want HTTP 400, got %d: %s", r.Status, r.Body)
			}
			if len(r.Errors) == 0 {
				t.Fatalf("want an error, got %s", r.Body)
			}
			for _, err := range r.Errors {
				if err.Code() == "INTERNAL" {
					t.Fatalf("want a client error, got INTERNAL: %s", r.Body)
				}
			}
		})
	}
}

func TestDepthLimit(t *testing.T) {
	t.Parallel()
	e := testutil.New(t, func(o *server.Options) {
		// Only depth is under test here.
		o.Limits.ComplexityLimit = math.MaxInt32
	}) // DepthLimit 12
	org := e.NewOrg("Acme")
	const depth12 = `{ users(first: 1) { edges { node { role { users(first: 1) { edges { node { role { users(first: 1) { edges { node { name } } } } } } } } } } } }`
	const depth13 = `{ users(first: 1) { edges { node { role { users(first: 1) { edges { node { role { users(first: 1) { edges { node { role { name } } } } } } } } } } } } }`

	wantNoErrors(t, e.Do(org.AdminToken, depth12, nil))

	r := e.Do(org.AdminToken, depth13, nil)
	wantCode(t, r, "DEPTH_LIMIT_EXCEEDED")
	assertNoData(t, r)

	// Fragments count too.
	r = e.Do(org.AdminToken, `query { users(first: 1) { ...U } }
		fragment U on UserConnection { edges { node { role { users(first: 1) { edges { node { role { users(first: 1) { edges { node { role { name } } } } } } } } } } } }`, nil)
	wantCode(t, r, "DEPTH_LIMIT_EXCEEDED")
	assertNoData(t, r)
}

// Complexity counts each connection's children once per row of the page it
// returns: the page asked for with first/last, else the default page
// (MaxPageSize rows, which PageSize gives a connection without either).
func TestComplexityLimit(t *testing.T) {
	t.Parallel()
	e := testutil.New(t, func(o *server.Options) { o.Limits.ComplexityLimit = 1000 }) // MaxPageSize 100
	org := e.NewOrg("Acme")

	t.Run("cheap query", func(t *testing.T) {
		// 1 + 10*(edges 1 + node 1 + name 1) = 31
		wantNoErrors(t, e.Do(org.AdminToken, `{ users(first: 10) { edges { node { name } } } }`, nil))
	})

	refused := []struct{ name, query string }{
		// Inner connection 1+100*3 = 301, outer 1+100*(1+1+1+301) = 30401.
		{"explicit pages", `{ users(first: 100) { edges { node { role { users(first: 100) { edges { node { name } } } } } } } }`},
		{"last", `{ roles(last: 100) { edges { node { users(last: 100) { edges { node { name } } } } } } }`},
		// No first/last: PageSize serves 100 rows per connection, so this
		// costs the same 30401.
		{"default pages", `{ users { edges { node { role { users { edges { node { name } } } } } } } }`},
	}
	for _, tt := range refused {
		t.Run("refused: "+tt.name, func(t *testing.T) {
			r := e.Do(org.AdminToken, tt.query, nil)
			wantCode(t, r, "COMPLEXITY_LIMIT_EXCEEDED")
			assertNoData(t, r)
		})
	}

	allowed := []struct {
		name, query string
		vars        map[string]any
	}{
		// Inner 1+2*3 = 7, outer 1+2*(1+1+1+7) = 21.
		{"small nested pages", `{ users(first: 2) { edges { node { role { users(first: 2) { edges { node { name } } } } } } } }`, nil},
		{"small nested pages from variables", `query($n: Int) { users(first: $n) { edges { node { role { users(first: $n) { edges { node { name } } } } } } } }`, map[string]any{"n": 2}},
		{"small last", `{ roles(last: 2) { edges { node { users(last: 2) { edges { node { name } } } } } } }`, nil},
	}
	for _, tt := range allowed {
		t.Run("allowed: "+tt.name, func(t *testing.T) {
			wantNoErrors(t, e.Do(org.AdminToken, tt.query, tt.vars))
		})
	}
}

func TestPageSizeLimit(t *testing.T) {
	t.Parallel()
	e := testutil.New(t) // MaxPageSize 100
	org := e.NewOrg("Acme")
	for _, q := range []string{
		`{ users(first: 1000) { edges { node { name } } } }`,
		`{ users(last: 101) { edges { node { name } } } }`,
		`{ users(first: -1) { edges { node { name } } } }`,
	} {
		wantCode(t, e.Do(org.AdminToken, q, nil), "BAD_USER_INPUT")
	}
	wantNoErrors(t, e.Do(org.AdminToken, `{ users(first: 100) { edges { node { name } } } }`, nil))
}

func TestParserTokenLimit(t *testing.T) {
	t.Parallel()
	e := testutil.New(t) // ParserTokens 15000
	org := e.NewOrg("Acme")
	query := "mutation { createRole(input: {name: \"Tokens\"}) { role { id } } " + strings.Repeat("__typename ", 20000) + "}"
	r := e.Do(org.AdminToken, query, nil)
	if r.Status == http.StatusOK || len(r.Errors) == 0 {
		t.Fatalf("want the oversized query refused, got HTTP %d: %.300s", r.Status, r.Body)
	}
	assertNoData(t, r)
	assertNoRole(t, e, org, "Tokens")

	// A query under the limit still runs.
	r = e.Do(org.AdminToken, "{ "+strings.Repeat("__typename ", 1000)+"}", nil)
	if len(r.Errors) > 0 {
		t.Fatalf("1000 tokens: want no errors, got HTTP %d: %.300s", r.Status, r.Body)
	}
}

const schemaQuery = `{ __schema { types { name } } }`

// graphiQLIntrospection is the query GraphiQL sends to load the schema.
const graphiQLIntrospection = `
query IntrospectionQuery {
  __schema {
    queryType { name }
    mutationType { name }
    subscriptionType { name }
    types { ...FullType }
    directives { name description locations args { ...InputValue } }
  }
}
fragment FullType on __Type {
  kind name description
  fields(includeDeprecated: true) {
    name description
    args { ...InputValue }
    type { ...TypeRef }
    isDeprecated deprecationReason
  }
  inputFields { ...InputValue }
  interfaces { ...TypeRef }
  enumValues(includeDeprecated: true) { name description isDeprecated deprecationReason }
  possibleTypes { ...TypeRef }
}
fragment InputValue on __InputValue {
  name description
  type { ...TypeRef }
  defaultValue
}
fragment TypeRef on __Type {
  kind name
  ofType { kind name ofType { kind name ofType { kind name ofType { kind name ofType { kind name ofType { kind name ofType { kind name ofType { kind name } } } } } } } }
}`

type schemaResult struct {
	Schema *struct {
		Types []struct{ Name string }
	} `json:"__schema"`
}

func TestIntrospection(t *testing.T) {
	t.Parallel()

	t.Run("disabled", func(t *testing.T) {
		t.Parallel()
		e := testutil.New(t, func(o *server.Options) { o.Introspection = false })
		for _, q := range []string{schemaQuery, `{ __type(name: "User") { name fields { name } } }`} {
			r := e.Do("", q, nil)
			if len(r.Errors) == 0 {
				t.Fatalf("%s: want an error, got HTTP %d: %s", q, r.Status, r.Body)
			}
			if strings.Contains(string(r.Data), `"name"`) {
				t.Fatalf("%s: want no schema in data, got %s", q, r.Data)
			}
		}
	})

	t.Run("disabled is a refusal, not a server fault", func(t *testing.T) {
		t.Parallel()
		e := testutil.New(t, func(o *server.Options) { o.Introspection = false })
		r := e.Do("", schemaQuery, nil)
		if len(r.Errors) == 0 {
			t.Fatalf("want an error, got HTTP %d: %s", r.Status, r.Body)
		}
		for _, err := range r.Errors {
			if err.Code() == "INTERNAL" {
				t.Fatalf("want a refusal code, got INTERNAL (indistinguishable from a server fault): %s", r.Body)
			}
		}
	})

	t.Run("enabled", func(t *testing.T) {
		t.Parallel()
		e := testutil.New(t, func(o *server.Options) { o.Introspection = true })
		var out schemaResult
		e.Do("", schemaQuery, nil).MustData(&out)
		if out.Schema == nil || len(out.Schema.Types) == 0 {
			t.Fatalf("want schema types, got %+v", out.Schema)
		}
	})

	t.Run("GraphiQL's query passes the limits", func(t *testing.T) {
		t.Parallel()
		e := testutil.New(t) // default limits
		r := e.Do("", graphiQLIntrospection, nil)
		if r.Status != http.StatusOK || len(r.Errors) > 0 {
			t.Fatalf("want HTTP 200 without errors, got %d: %.500s", r.Status, r.Body)
		}
		if !strings.Contains(string(r.Data), `"queryType":{"name":"Query"}`) {
			t.Fatalf("want the schema, got %.300s", r.Data)
		}
	})
}

// get serves a GET without Env.Serve, whose GraphQL decoding would clash
// with a {"status": ...} body.
func get(e *testutil.Env, target string) *http.Response {
	rec := httptest.NewRecorder()
	e.Server.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, target, nil))
	return rec.Result()
}

// statusBody decodes a health check's {"status": ...} body.
func statusBody(t *testing.T, res *http.Response) string {
	t.Helper()
	if ct := res.Header.Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
		t.Fatalf("want application/json, got %q", ct)
	}
	var out map[string]string
	if err := json.NewDecoder(res.Body).Decode(&out); err != nil || len(out) != 1 {
		t.Fatalf(`want {"status": ...}, got %v (%v)`, out, err)
	}
	return out["status"]
}

func TestHealthz(t *testing.T) {
	t.Parallel()
	e := testutil.New(t)
	res := get(e, "/healthz")
	if res.StatusCode != http.StatusOK {
		t.Fatalf("want HTTP 200, got %d", res.StatusCode)
	}
	if s := statusBody(t, res); s != "ok" {
		t.Fatalf(`want status "ok", got %q`, s)
	}
}

func TestReadyz(t *testing.T) {
	t.Parallel()
	e := testutil.New(t)
	status := func() (int, string) {
		res := get(e, "/readyz")
		return res.StatusCode, statusBody(t, res)
	}
	if code, s := status(); code != http.StatusOK || s != "ok" {
		t.Fatalf("database up: want 200 ok, got %d %q", code, s)
	}
	if err := e.DB.SQL.Close(); err != nil {
		t.Fatal(err)
	}
	if code, s := status(); code != http.StatusServiceUnavailable || s != "unavailable" {
		t.Fatalf("database closed: want 503 unavailable, got %d %q", code, s)
	}
}

func TestGraphiQLPage(t *testing.T) {
	t.Parallel()
	e := testutil.New(t)
	r := e.Serve(httptest.NewRequest(http.MethodGet, "/", nil))
	if r.Status != http.StatusOK {
		t.Fatalf("want HTTP 200, got %d", r.Status)
	}
	if ct := r.Header.Get("Content-Type"); !strings.HasPrefix(ct, "text/html") {
		t.Fatalf("want text/html, got %q", ct)
	}
	if !strings.Contains(strings.ToLower(string(r.Body)), "graphiql") {
		t.Fatalf("want the GraphiQL page, got %.300s", r.Body)
	}
	if js := e.Serve(httptest.NewRequest(http.MethodGet, "/graphiql/admit.js", nil)); !strings.Contains(string(js.Body), `"/query"`) {
		t.Fatalf("want the page's script to point at /query, got %.300s", js.Body)
	}
	// Only the root is the page.
	if r := e.Serve(httptest.NewRequest(http.MethodGet, "/nope", nil)); r.Status != http.StatusNotFound {
		t.Fatalf("GET /nope: want 404, got %d", r.Status)
	}
}
