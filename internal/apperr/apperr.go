// Package apperr holds the closed set of GraphQL error codes and an error
// type that carries one. The error presenter (graph/errors.go) turns any
// error with an ErrorCode into `extensions.code`; everything else becomes
// INTERNAL with a generic message.
package apperr

// Codes sent in `extensions.code`.
const (
	Unauthenticated = "UNAUTHENTICATED"
	Forbidden       = "FORBIDDEN"
	NotFound        = "NOT_FOUND"
	BadUserInput    = "BAD_USER_INPUT"
	Conflict        = "CONFLICT"
	RateLimited     = "RATE_LIMITED"
	// Busy: a write waited too long for the database; nothing was
	// written, and the request may be retried.
	Busy     = "DATABASE_BUSY"
	Internal = "INTERNAL"
)

// Error is an error whose message is safe to show to the caller.
type Error struct {
	Code    string
	Message string
}

func (e *Error) Error() string { return e.Message }

// ErrorCode returns the code for `extensions.code`.
func (e *Error) ErrorCode() string { return e.Code }

// New returns an error with code and a caller-safe message.
func New(code, msg string) error { return &Error{Code: code, Message: msg} }

// ErrNotFound is the one answer for missing and foreign objects alike.
var ErrNotFound = New(NotFound, "not found")
