package server_test

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"

	"admit/internal/testutil"
)

// Apollo's automatic persisted queries: a client sends only the hash; the
// server answers PERSISTED_QUERY_NOT_FOUND once, the client sends hash and
// query together, and from then on the hash alone works, over POST and GET.
func TestAutomaticPersistedQueries(t *testing.T) {
	t.Parallel()
	e := testutil.New(t)
	org := e.NewOrg("Acme")
	query := `query Me { me { email } }`
	sum := sha256.Sum256([]byte(query))
	hash := hex.EncodeToString(sum[:])
	ext := map[string]any{"persistedQuery": map[string]any{"version": 1, "sha256Hash": hash}}

	post := func(body map[string]any) *testutil.Response {
		b, _ := json.Marshal(body)
		req := httptest.NewRequest(http.MethodPost, "/query", strings.NewReader(string(b)))
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Authorization", "Bearer "+org.AdminToken)
		return e.Serve(req)
	}
	get := func() *testutil.Response {
		extJSON, _ := json.Marshal(ext)
		req := httptest.NewRequest(http.MethodGet, "/query?extensions="+url.QueryEscape(string(extJSON))+"&operationName=Me", nil)
		req.Header.Set("Authorization", "Bearer "+org.AdminToken)
		return e.Serve(req)
	}
	email := func(r *testutil.Response) string {
		var out struct{ Me struct{ Email string } }
		r.MustData(&out)
		return out.Me.Email
	}

	// Unknown hash, POST and GET alike.
	post(map[string]any{"extensions": ext}).MustFail("PERSISTED_QUERY_NOT_FOUND")
	get().MustFail("PERSISTED_QUERY_NOT_FOUND")
	// A wrong hash for the query is refused, and registers nothing.
	bad := map[string]any{"persistedQuery": map[string]any{"version": 1, "sha256Hash": strings.Repeat("0", 64)}}
	if r := post(map[string]any{"query": query, "extensions": bad}); len(r.Errors) == 0 {
		t.Fatalf("a query with the wrong hash: want an error, got %s", r.Body)
	}
	// Register, then use the hash alone.
	if got := email(post(map[string]any{"query": query, "extensions": ext})); got != org.AdminEmail {
		t.Fatalf("register: %s", got)
	}
	if got := email(post(map[string]any{"extensions": ext})); got != org.AdminEmail {
		t.Fatalf("hash over POST: %s", got)
	}
	if got := email(get()); got != org.AdminEmail {
		t.Fatalf("hash over GET: %s", got)
	}
}
