package hr_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"admit/internal/hr"
	"admit/internal/hr/hrtest"
)

// sleeps records the waits between retries instead of waiting.
type sleeps struct {
	mu sync.Mutex
	d  []time.Duration
}

func (s *sleeps) sleep(_ context.Context, d time.Duration) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.d = append(s.d, d)
	return nil
}

func (s *sleeps) all() []time.Duration {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.d)
}

func testHTTP(ts *hrtest.Server, sl *sleeps) *hr.HTTP {
	h := &hr.HTTP{AllowPrivate: true, TLS: ts.Client().Transport.(*http.Transport).TLSClientConfig}
	if sl != nil {
		h.Sleep = sl.sleep
	}
	return h
}

func fetch(t *testing.T, provider string, ts *hrtest.Server, h *hr.HTTP, creds map[string]string) ([]hr.Employee, error) {
	t.Helper()
	spec, ok := hr.Lookup(provider)
	if !ok {
		t.Fatalf("no provider %q", provider)
	}
	return spec.New(hr.Config{Credentials: creds, BaseURL: ts.URL, Override: true, HTTP: h}).Employees(context.Background())
}

var staff = []hrtest.Person{
	{ID: "101", First: "Ada", Last: "Lovelace", Email: "ada@acme.test", Department: "Engineering", Start: "2020-01-06"},
	{ID: "102", First: "Grace", Last: "Hopper", Email: "grace@acme.test", Phone: "+15550100", Department: "Engineering"},
	{ID: "103", First: "Alan", Last: "Turing", Email: "alan@acme.test", Status: "inactive", End: "2024-06-30"},
	{ID: "104", First: "Kat", Last: "Johnson", Email: "kat@acme.test", Status: "pending", Start: "2099-01-01"},
	{ID: "105", First: "Edsger", Last: "Dijkstra"},
}

func byID(es []hr.Employee) map[string]hr.Employee {
	m := map[string]hr.Employee{}
	for _, e := range es {
		m[e.ID] = e
	}
	return m
}

// checkStaff checks the normalized fields every adapter must fill.
func checkStaff(t *testing.T, es []hr.Employee, idPrefix string) {
	t.Helper()
	if len(es) != len(staff) {
		t.Fatalf("got %d employees, want %d: %+v", len(es), len(staff), es)
	}
	m := byID(es)
	ada := m[idPrefix+"101"]
	if ada.Name != "Ada Lovelace" || ada.Email != "ada@acme.test" || ada.Status != hr.Active || ada.Department != "Engineering" {
		t.Errorf("Ada = %+v", ada)
	}
	if ada.StartDate == nil || ada.StartDate.Year() != 2020 {
		t.Errorf("Ada's start date = %v", ada.StartDate)
	}
	alan := m[idPrefix+"103"]
	if alan.Status != hr.Inactive || alan.EndDate == nil || alan.EndDate.Format("2006-01") != "2024-06" {
		t.Errorf("Alan (left) = %+v", alan)
	}
	// BambooHR has no "not started" status, only the future hire date.
	if kat := m[idPrefix+"104"]; kat.Status != hr.Pending && (kat.StartDate == nil || kat.StartDate.Year() != 2099) {
		t.Errorf("Kat (not started) = %+v", kat)
	}
	if ed := m[idPrefix+"105"]; ed.Email != "" || ed.Name != "Edsger Dijkstra" {
		t.Errorf("Edsger (no email) = %+v", ed)
	}
}

func TestProviders(t *testing.T) {
	cases := []struct {
		provider string
		server   func(t testing.TB) *hrtest.Server
		creds    map[string]string
		bad      map[string]string
		prefix   string
	}{
		{"bamboohr", func(t testing.TB) *hrtest.Server { return hrtest.BambooHR(t, "acme", "bamboo-key-0001", false) },
			map[string]string{"companyDomain": "acme", "apiKey": "bamboo-key-0001"}, map[string]string{"companyDomain": "acme", "apiKey": "wrong"}, ""},
		{"personio", func(t testing.TB) *hrtest.Server { return hrtest.Personio(t, "client-1", "secret-0001", 86400) },
			map[string]string{"clientID": "client-1", "clientSecret": "secret-0001"}, map[string]string{"clientID": "client-1", "clientSecret": "wrong"}, ""},
		{"hibob", func(t testing.TB) *hrtest.Server { return hrtest.HiBob(t, "SERVICE-1", "bob-token-0001") },
			map[string]string{"serviceUserID": "SERVICE-1", "token": "bob-token-0001"}, map[string]string{"serviceUserID": "SERVICE-1", "token": "wrong"}, ""},
		{"merge", func(t testing.TB) *hrtest.Server { return hrtest.Merge(t, "merge-key-0001", "acct-0001") },
			map[string]string{"apiKey": "merge-key-0001", "accountToken": "acct-0001"}, map[string]string{"apiKey": "merge-key-0001", "accountToken": "wrong"}, "emp-"},
		{"kombo", func(t testing.TB) *hrtest.Server { return hrtest.Kombo(t, "kombo-key-0001", "acme:int-1") },
			map[string]string{"apiKey": "kombo-key-0001", "integrationID": "acme:int-1"}, map[string]string{"apiKey": "wrong", "integrationID": "acme:int-1"}, "emp-"},
	}
	for _, tc := range cases {
		t.Run(tc.provider, func(t *testing.T) {
			ts := tc.server(t)
			ts.SetPeople(staff...)
			ts.PageSize = 2 // three pages for the paged APIs
			es, err := fetch(t, tc.provider, ts, testHTTP(ts, nil), tc.creds)
			if err != nil {
				t.Fatal(err)
			}
			checkStaff(t, es, tc.prefix)

			_, err = fetch(t, tc.provider, ts, testHTTP(ts, nil), tc.bad)
			if !errors.Is(err, hr.ErrRejected) {
				t.Fatalf("bad credentials: err = %v, want ErrRejected", err)
			}
			if strings.Contains(err.Error(), "wrong") {
				t.Errorf("error quotes the credential: %v", err)
			}
		})
	}
}

func TestBambooHRPagesAndFallsBackToDirectory(t *testing.T) {
	ts := hrtest.BambooHR(t, "acme", "bamboo-key-0001", false)
	ts.SetPeople(staff...)
	ts.PageSize = 2
	creds := map[string]string{"companyDomain": "acme", "apiKey": "bamboo-key-0001"}
	if _, err := fetch(t, "bamboohr", ts, testHTTP(ts, nil), creds); err != nil {
		t.Fatal(err)
	}
	if n := ts.Hits("/api/v1/employees"); n != 3 {
		t.Errorf("paged endpoint hit %d times, want 3 pages", n)
	}
	for _, h := range ts.Headers() {
		if h.Get("Accept") != "application/json" || !strings.HasPrefix(h.Get("Authorization"), "Basic ") {
			t.Errorf("request headers %v", h)
		}
	}

	dir := hrtest.BambooHR(t, "acme", "bamboo-key-0001", true)
	dir.SetPeople(staff...)
	es, err := fetch(t, "bamboohr", dir, testHTTP(dir, nil), creds)
	if err != nil {
		t.Fatal(err)
	}
	if dir.Hits("/api/gateway.php/acme/v1/employees/directory") != 1 {
		t.Error("the directory was not read")
	}
	if len(es) != 3 { // active employees only
		t.Errorf("directory gave %d employees, want the 3 active ones", len(es))
	}
}

func TestPersonioTokenCachedUntilExpiry(t *testing.T) {
	ts := hrtest.Personio(t, "client-cache", "secret-cache-1", 3600)
	var many []hrtest.Person
	for i := range 230 {
		many = append(many, hrtest.Person{ID: fmt.Sprint(1000 + i), First: "P", Last: fmt.Sprint(i), Email: fmt.Sprintf("p%d@acme.test", i)})
	}
	ts.SetPeople(many...)
	creds := map[string]string{"clientID": "client-cache", "clientSecret": "secret-cache-1"}
	for range 2 {
		es, err := fetch(t, "personio", ts, testHTTP(ts, nil), creds)
		if err != nil {
			t.Fatal(err)
		}
		if len(es) != 230 {
			t.Fatalf("got %d employees, want 230", len(es))
		}
	}
	if n := ts.Hits("/v2/auth/token"); n != 1 {
		t.Errorf("authenticated %d times for two fetches, want 1 (cached token)", n)
	}
	if n := ts.Hits("/v1/company/employees"); n != 6 {
		t.Errorf("read %d pages for two fetches of 230, want 6 (100 a page)", n)
	}

	// A token that expires at once is never reused.
	short := hrtest.Personio(t, "client-short", "secret-short-1", 1)
	short.SetPeople(staff...)
	creds = map[string]string{"clientID": "client-short", "clientSecret": "secret-short-1"}
	for range 2 {
		if _, err := fetch(t, "personio", short, testHTTP(short, nil), creds); err != nil {
			t.Fatal(err)
		}
		time.Sleep(600 * time.Millisecond) // past the half-life renewal point
	}
	if n := short.Hits("/v2/auth/token"); n != 2 {
		t.Errorf("authenticated %d times with 1-second tokens, want 2", n)
	}
}

func TestPersonioV1Auth(t *testing.T) {
	ts := hrtest.PersonioV1(t, "client-v1", "secret-v1-0001")
	ts.SetPeople(staff...)
	es, err := fetch(t, "personio", ts, testHTTP(ts, nil), map[string]string{"clientID": "client-v1", "clientSecret": "secret-v1-0001"})
	if err != nil {
		t.Fatal(err)
	}
	checkStaff(t, es, "")
	if ts.Hits("/v1/auth") != 1 || ts.Hits("/v2/auth/token") != 1 {
		t.Errorf("auth hits: v1 %d, v2 %d", ts.Hits("/v1/auth"), ts.Hits("/v2/auth/token"))
	}
	_, err = fetch(t, "personio", ts, testHTTP(ts, nil), map[string]string{"clientID": "client-v1", "clientSecret": "wrong-secret"})
	if !errors.Is(err, hr.ErrRejected) {
		t.Errorf("wrong secret: %v", err)
	}
}

func TestRetries(t *testing.T) {
	creds := map[string]string{"apiKey": "merge-key-0001", "accountToken": "acct-0001"}
	t.Run("429 with Retry-After, then success", func(t *testing.T) {
		ts := hrtest.Merge(t, "merge-key-0001", "acct-0001")
		ts.SetPeople(staff...)
		ts.Fail("/api/hris", 1, 2, http.StatusTooManyRequests, "3")
		sl := &sleeps{}
		es, err := fetch(t, "merge", ts, testHTTP(ts, sl), creds)
		if err != nil || len(es) != len(staff) {
			t.Fatalf("got %d employees, err %v", len(es), err)
		}
		if got := sl.all(); !slices.Equal(got, []time.Duration{3 * time.Second, 3 * time.Second}) {
			t.Errorf("waited %v, want Retry-After twice", got)
		}
	})
	t.Run("5xx with backoff, bounded attempts", func(t *testing.T) {
		ts := hrtest.Merge(t, "merge-key-0001", "acct-0001")
		ts.SetPeople(staff...)
		ts.Fail("/api/hris", 0, -1, http.StatusServiceUnavailable, "")
		sl := &sleeps{}
		h := testHTTP(ts, sl)
		h.MaxAttempts = 4
		_, err := fetch(t, "merge", ts, h, creds)
		if !errors.Is(err, hr.ErrUnreachable) {
			t.Fatalf("err = %v, want ErrUnreachable", err)
		}
		if n := ts.Hits("/api/hris/v1/employees"); n != 4 {
			t.Errorf("%d attempts, want 4", n)
		}
		for i, d := range sl.all() {
			if ceiling := 500 * time.Millisecond << i; d <= 0 || d > ceiling {
				t.Errorf("wait %d = %v, want in (0, %v]", i, d, ceiling)
			}
		}
	})
	t.Run("Retry-After beyond the budget fails at once", func(t *testing.T) {
		ts := hrtest.Merge(t, "merge-key-0001", "acct-0001")
		ts.Fail("", 0, -1, http.StatusTooManyRequests, "3600")
		sl := &sleeps{}
		_, err := fetch(t, "merge", ts, testHTTP(ts, sl), creds)
		if !errors.Is(err, hr.ErrUnreachable) || len(sl.all()) != 0 || ts.Hits("/api/hris/v1/employees") != 1 {
			t.Fatalf("err = %v, waits %v, hits %d", err, sl.all(), ts.Hits("/api/hris/v1/employees"))
		}
	})
	t.Run("a timeout is bounded", func(t *testing.T) {
		slow := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			select {
			case <-r.Context().Done():
			case <-time.After(5 * time.Second):
			}
		}))
		defer slow.Close()
		h := &hr.HTTP{AllowPrivate: true, TLS: slow.Client().Transport.(*http.Transport).TLSClientConfig, Timeout: 200 * time.Millisecond}
		spec, _ := hr.Lookup("merge")
		start := time.Now()
		_, err := spec.New(hr.Config{Credentials: creds, BaseURL: slow.URL, HTTP: h}).Employees(context.Background())
		if !errors.Is(err, hr.ErrUnreachable) {
			t.Fatalf("err = %v, want ErrUnreachable", err)
		}
		if d := time.Since(start); d > 2*time.Second {
			t.Errorf("took %v", d)
		}
	})
}

func TestPrivateAddressesRefused(t *testing.T) {
	ts := hrtest.Merge(t, "merge-key-0001", "acct-0001")
	ts.SetPeople(staff...)
	creds := map[string]string{"apiKey": "merge-key-0001", "accountToken": "acct-0001"}
	h := testHTTP(ts, nil)
	h.AllowPrivate = false
	_, err := fetch(t, "merge", ts, h, creds)
	if !errors.Is(err, hr.ErrHostNotAllowed) {
		t.Fatalf("loopback base URL: err = %v, want ErrHostNotAllowed", err)
	}
	if ts.Hits("/api/hris/v1/employees") != 0 {
		t.Error("the request reached the loopback server")
	}

	// A redirect off https is refused even where private hosts are allowed.
	redir := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, "http://169.254.169.254/latest/meta-data/", http.StatusFound)
	}))
	defer redir.Close()
	h2 := &hr.HTTP{AllowPrivate: true, TLS: redir.Client().Transport.(*http.Transport).TLSClientConfig}
	spec, _ := hr.Lookup("merge")
	_, err = spec.New(hr.Config{Credentials: creds, BaseURL: redir.URL, HTTP: h2}).Employees(context.Background())
	if !errors.Is(err, hr.ErrHostNotAllowed) {
		t.Fatalf("redirect to http: err = %v, want ErrHostNotAllowed", err)
	}

	for addr, public := range map[string]bool{
		"127.0.0.1": false, "10.1.2.3": false, "172.16.0.1": false, "192.168.1.1": false,
		"169.254.169.254": false, "100.64.0.1": false, "0.0.0.0": false, "::1": false, "fe80::1": false,
		"fd00::1": false, "::ffff:127.0.0.1": false, "64:ff9b::a00:1": false, "224.0.0.1": false,
		"93.184.216.34": true, "2606:2800:220:1::1": true, "8.8.8.8": true,
	} {
		if got := hr.PublicAddress(netip.MustParseAddr(addr)); got != public {
			t.Errorf("PublicAddress(%s) = %v, want %v", addr, got, public)
		}
	}
}

func TestValidateBaseURL(t *testing.T) {
	for raw, ok := range map[string]bool{
		"":                               true,
		"https://api-eu.merge.dev":       true,
		"https://hr.example.com/gateway": true,
		"http://api.merge.dev":           false,
		"https://":                       false,
		"api.merge.dev":                  false,
		"https://user:pw@api.merge.dev":  false,
		"https://api.merge.dev/?x=1":     false,
		"ftp://api.merge.dev":            false,
		"https://api.merge.dev/#frag":    false,
	} {
		if got := hr.ValidateBaseURL(raw) == nil; got != ok {
			t.Errorf("ValidateBaseURL(%q) ok = %v, want %v", raw, got, ok)
		}
	}
}

func TestHint(t *testing.T) {
	if got := hr.Hint("sk_live_abcdefgh1234"); got != "••••1234" {
		t.Errorf("Hint = %q", got)
	}
	if got := hr.Hint("short"); got != "••••" {
		t.Errorf("Hint of a short secret = %q, want nothing of it", got)
	}
}
