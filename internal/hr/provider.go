// Package hr connects organizations to HR systems: providers that read
// employees over each system's documented REST API, the encrypted
// credentials, the employee snapshot with its statuses, invitations through
// the one invitation pipeline, and the scheduled sync (autopilot) that runs
// on exactly one replica at a time.
package hr

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"
)

// EmploymentStatus is an employee's state in the HR system, normalized.
type EmploymentStatus string

// Employment states.
const (
	Active   EmploymentStatus = "ACTIVE"
	Pending  EmploymentStatus = "PENDING"  // hired, not started yet
	Inactive EmploymentStatus = "INACTIVE" // left
	Leave    EmploymentStatus = "LEAVE"    // employed, on leave
)

// Employee is one person as any provider describes them.
type Employee struct {
	ID         string
	Name       string
	Email      string // work email
	Phone      string
	Department string
	Status     EmploymentStatus
	StartDate  *time.Time
	EndDate    *time.Time
	UpdatedAt  *time.Time
}

// Provider reads every employee of one account. It fails as a whole: a
// page that cannot be read fails the fetch, and nothing is written.
type Provider interface {
	Employees(ctx context.Context) ([]Employee, error)
}

// Field is one credential a provider needs.
type Field struct {
	Name     string // as sent in connectHRSystem's credentials
	Label    string
	Secret   bool // never shown again; the hint comes from the first secret field
	Optional bool
}

// Spec describes a provider. Adding a provider is one file that defines
// a Spec and one line in providers.
type Spec struct {
	Name   string // stored on the connection; lower case
	Label  string
	Fields []Field
	// DefaultBaseURL is used without an override. It may hold
	// {credential} placeholders (BambooHR's company subdomain).
	DefaultBaseURL string
	New            func(Config) Provider
}

// Config is what a provider is built from.
type Config struct {
	Credentials map[string]string
	// BaseURL is the override or the default, without a trailing slash.
	BaseURL string
	// Override is whether BaseURL came from the connection.
	Override bool
	HTTP     *HTTP
}

// providers lists every provider, one line each.
var providers = []Spec{
	bambooHR,
	personio,
	hiBob,
	mergeHRIS,
	komboHRIS,
}

// Providers returns every provider, in display order.
func Providers() []Spec { return slices.Clone(providers) }

// Lookup returns the provider called name.
func Lookup(name string) (Spec, bool) {
	for _, s := range providers {
		if s.Name == name {
			return s, true
		}
	}
	return Spec{}, false
}

// hintField is the credential whose last characters the hint shows.
func (s Spec) hintField() string {
	for _, f := range s.Fields {
		if f.Secret {
			return f.Name
		}
	}
	return s.Fields[0].Name
}

// baseURL resolves the URL a provider talks to.
func (s Spec) baseURL(override string, creds map[string]string) string {
	if override != "" {
		return strings.TrimRight(override, "/")
	}
	u := s.DefaultBaseURL
	for k, v := range creds {
		u = strings.ReplaceAll(u, "{"+k+"}", url.PathEscape(v))
	}
	return u
}

// Provider errors, each a distinct answer to the admin.
var (
	// ErrRejected: the provider refused the credentials (401/403).
	ErrRejected = errors.New("the HR system rejected the credentials")
	// ErrUnreachable: no answer, a timeout, or 5xx/429 beyond the retries.
	ErrUnreachable = errors.New("the HR system could not be reached")
	// ErrBadResponse: an answer this adapter cannot read.
	ErrBadResponse = errors.New("the HR system sent an answer that could not be read")
)

// ProviderError is a failed call to a provider with a message safe to show
// and store: it never holds credentials, tokens or response bodies.
type ProviderError struct {
	Kind    error // ErrRejected, ErrUnreachable, ErrBadResponse or ErrHostNotAllowed
	Message string
	Status  int // the HTTP status of the final answer, if there was one
}

func perr(kind error, msg string) *ProviderError { return &ProviderError{Kind: kind, Message: msg} }

func (e *ProviderError) Error() string { return e.Message }

// Unwrap lets errors.Is match the kind.
func (e *ProviderError) Unwrap() error { return e.Kind }

// classify turns a transport or status failure into a ProviderError.
func classify(label, what string, err error) (out error) {
	var pe *ProviderError
	if errors.As(err, &pe) {
		return err
	}
	var se *StatusError
	if errors.As(err, &se) {
		defer func() {
			if pe, ok := out.(*ProviderError); ok {
				pe.Status = se.Status
			}
		}()
	}
	switch {
	case errors.Is(err, ErrHostNotAllowed):
		return perr(ErrHostNotAllowed, label+": "+ErrHostNotAllowed.Error())
	case se != nil && (se.Status == http.StatusUnauthorized || se.Status == http.StatusForbidden):
		return perr(ErrRejected, fmt.Sprintf("%s rejected the credentials (%s, HTTP %d)", label, what, se.Status))
	case se != nil && (se.Status == http.StatusTooManyRequests || se.Status >= 500):
		return perr(ErrUnreachable, fmt.Sprintf("%s is unavailable (%s, HTTP %d after retries)", label, what, se.Status))
	case se != nil:
		return perr(ErrBadResponse, fmt.Sprintf("%s refused the request (%s, HTTP %d)", label, what, se.Status))
	case errors.Is(err, context.DeadlineExceeded):
		return perr(ErrUnreachable, fmt.Sprintf("%s did not answer in time (%s)", label, what))
	case errors.Is(err, context.Canceled):
		return perr(ErrUnreachable, fmt.Sprintf("%s: the request was cancelled (%s)", label, what))
	}
	var ue *url.Error
	if errors.As(err, &ue) && ue.Timeout() {
		return perr(ErrUnreachable, fmt.Sprintf("%s did not answer in time (%s)", label, what))
	}
	// Transport failures: DNS, refused connections, TLS. The url.Error
	// text names the URL, which holds no secret in any adapter here; keep
	// only the innermost cause to stay short.
	cause := err
	for errors.Unwrap(cause) != nil {
		cause = errors.Unwrap(cause)
	}
	return perr(ErrUnreachable, fmt.Sprintf("%s could not be reached (%s): %v", label, what, cause))
}

// maxBody bounds one JSON page.
const maxBody = 32 << 20

// getJSON sends a request built by newReq and decodes a 2xx JSON answer
// into v; label and what name the call in errors.
func getJSON(ctx context.Context, h *HTTP, label, what string, v any, newReq func(context.Context) (*http.Request, error)) error {
	resp, err := h.do(ctx, func(ctx context.Context) (*http.Request, error) {
		req, err := newReq(ctx)
		if err == nil {
			req.Header.Set("Accept", "application/json")
			req.Header.Set("User-Agent", "Admit HR sync")
		}
		return req, err
	})
	if err != nil {
		return classify(label, what, err)
	}
	defer resp.Body.Close()
	if err := json.NewDecoder(io.LimitReader(resp.Body, maxBody)).Decode(v); err != nil {
		if errors.Is(err, context.DeadlineExceeded) {
			return classify(label, what, err)
		}
		return perr(ErrBadResponse, fmt.Sprintf("%s sent an answer that is not the expected JSON (%s)", label, what))
	}
	return nil
}

// maxPages stops a provider that keeps handing out cursors.
const maxPages = 10000

// parseDate reads the date formats providers use: RFC 3339 timestamps and
// plain dates. Empty, zero ("0000-00-00") and unreadable values are nil.
func parseDate(s string) *time.Time {
	s = strings.TrimSpace(s)
	if s == "" || strings.HasPrefix(s, "0000-00-00") {
		return nil
	}
	for _, layout := range []string{time.RFC3339Nano, "2006-01-02T15:04:05", "2006-01-02", "02/01/2006"} {
		if t, err := time.Parse(layout, s); err == nil {
			t = t.UTC()
			return &t
		}
	}
	return nil
}

func joinName(parts ...string) string {
	var out []string
	for _, p := range parts {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return strings.Join(out, " ")
}

func firstNonEmpty(ss ...string) string {
	for _, s := range ss {
		if s = strings.TrimSpace(s); s != "" {
			return s
		}
	}
	return ""
}

// idString reads an ID that providers send as a string or a number.
func idString(v any) string {
	switch x := v.(type) {
	case string:
		return strings.TrimSpace(x)
	case float64:
		return strconv.FormatInt(int64(x), 10)
	case json.Number:
		return x.String()
	}
	return ""
}

func itoa(n int) string { return strconv.Itoa(n) }
