// Package hrtest runs local HTTPS servers that answer like the HR
// providers' documented REST APIs (auth headers, paging, error shapes), for
// tests of internal/hr and of the GraphQL API.
package hrtest

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
)

// Person is one employee of a fake HR system.
type Person struct {
	ID         string
	First      string
	Last       string
	Email      string
	Phone      string
	Department string
	// Status is "active" (default), "inactive" (left) or "pending"
	// (hired, not started).
	Status string
	Start  string // YYYY-MM-DD
	End    string // YYYY-MM-DD, termination date
}

// Server is one fake provider.
type Server struct {
	*httptest.Server
	// PageSize caps the page the server returns, whatever is asked.
	PageSize int
	// Before, when set, runs before each request is answered (to change
	// the world mid-fetch).
	Before func(*http.Request)

	mu      sync.Mutex
	people  []Person
	hits    map[string]int
	headers []http.Header
	// fail makes requests fail: the first n matching requests get status.
	failures []failure
}

type failure struct {
	path       string // prefix of the path that fails ("" for any)
	skip       int    // requests to let through first
	n          int    // how many fail; -1 for all
	status     int
	retryAfter string
}

// SetPeople replaces the employee list.
func (s *Server) SetPeople(ps ...Person) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.people = append([]Person(nil), ps...)
}

// People returns the employee list.
func (s *Server) People() []Person {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Person(nil), s.people...)
}

// Fail makes n requests whose path starts with path fail with status,
// after letting skip of them through; n = -1 fails all of them.
// retryAfter, when set, is sent as the Retry-After header.
func (s *Server) Fail(path string, skip, n, status int, retryAfter string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.failures = append(s.failures, failure{path, skip, n, status, retryAfter})
}

// Heal drops every configured failure.
func (s *Server) Heal() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.failures = nil
}

// Hits returns how many requests reached path (exact, without query).
func (s *Server) Hits(path string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.hits[path]
}

// Headers returns the headers of every request so far.
func (s *Server) Headers() []http.Header {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]http.Header(nil), s.headers...)
}

func (s *Server) pageSize(asked int) int {
	n := s.PageSize
	if n <= 0 {
		n = 2
	}
	if asked > 0 && asked < n {
		n = asked
	}
	return n
}

// failing reports (and consumes) a configured failure for r.
func (s *Server) failing(w http.ResponseWriter, r *http.Request) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.hits[r.URL.Path]++
	s.headers = append(s.headers, r.Header.Clone())
	for i := range s.failures {
		f := &s.failures[i]
		if !strings.HasPrefix(r.URL.Path, f.path) || f.n == 0 {
			continue
		}
		if f.skip > 0 {
			f.skip--
			continue
		}
		if f.n > 0 {
			f.n--
		}
		if f.retryAfter != "" {
			w.Header().Set("Retry-After", f.retryAfter)
		}
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(f.status)
		fmt.Fprintf(w, `{"error":"injected failure %d"}`, f.status)
		return true
	}
	return false
}

func start(t testing.TB, h func(s *Server, w http.ResponseWriter, r *http.Request)) *Server {
	t.Helper()
	s := &Server{hits: map[string]int{}}
	s.Server = httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if s.Before != nil {
			s.Before(r)
		}
		if s.failing(w, r) {
			return
		}
		h(s, w, r)
	}))
	t.Cleanup(s.Close)
	return s
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

func basic(r *http.Request) (user, pass string, ok bool) {
	h := r.Header.Get("Authorization")
	if !strings.HasPrefix(h, "Basic ") {
		return "", "", false
	}
	b, err := base64.StdEncoding.DecodeString(h[len("Basic "):])
	if err != nil {
		return "", "", false
	}
	user, pass, ok = strings.Cut(string(b), ":")
	return user, pass, ok
}

// page returns the people from offset, at most n, and the next offset
// (-1 at the end).
func page(ps []Person, offset, n int) ([]Person, int) {
	if offset >= len(ps) {
		return nil, -1
	}
	end := min(offset+n, len(ps))
	if end == len(ps) {
		return ps[offset:end], -1
	}
	return ps[offset:end], end
}

// cursor encodes an offset opaquely, as the providers' cursors are.
func cursor(offset int) string {
	return base64.RawURLEncoding.EncodeToString([]byte("offset:" + strconv.Itoa(offset)))
}

func uncursor(c string) int {
	b, err := base64.RawURLEncoding.DecodeString(c)
	if err != nil || !strings.HasPrefix(string(b), "offset:") {
		return -1
	}
	n, err := strconv.Atoi(strings.TrimPrefix(string(b), "offset:"))
	if err != nil {
		return -1
	}
	return n
}

func status(p Person) string {
	if p.Status == "" {
		return "active"
	}
	return p.Status
}

func nullable(s string) any {
	if s == "" {
		return nil
	}
	return s
}
