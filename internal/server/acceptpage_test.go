package server_test

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"admit/internal/testutil"
)

func TestAcceptPageKeepsTheTokenToItself(t *testing.T) {
	t.Parallel()
	e := testutil.New(t)
	for path, wantType := range map[string]string{
		"/invitations/accept?token=adi_1_1_x": "text/html",
		"/invitations/accept.js":              "text/javascript",
		"/invitations/accept.css":             "text/css",
		"/join?token=adl_1_1_x":               "text/html",
		"/join.js":                            "text/javascript",
	} {
		rec := httptest.NewRecorder()
		e.Server.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, path, nil))
		h := rec.Result().Header
		if rec.Code != http.StatusOK || !strings.HasPrefix(h.Get("Content-Type"), wantType) {
			t.Fatalf("%s: HTTP %d %q, want 200 %s", path, rec.Code, h.Get("Content-Type"), wantType)
		}
		if h.Get("Referrer-Policy") != "no-referrer" || h.Get("Cache-Control") != "no-store" ||
			!strings.Contains(h.Get("Content-Security-Policy"), "script-src 'self'") {
			t.Fatalf("%s: headers %v: want no-referrer, no-store and a self-only CSP", path, h)
		}
	}
	rec := httptest.NewRecorder()
	e.Server.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/invitations/accept", nil))
	if body := rec.Body.String(); !strings.Contains(body, "acceptInvitation") && !strings.Contains(body, "accept.js") {
		t.Fatalf("the page does not load its script: %s", body)
	}
}
