package graph

import (
	"fmt"
	"math"
	"time"
)

// rateLimitedError is the payload error of a refused attempt: RATE_LIMITED
// with the whole seconds to wait.
func rateLimitedError(wait time.Duration) *UserError {
	secs := max(1, int(math.Ceil(wait.Seconds())))
	return &UserError{
		Code:       ErrorCodeRateLimited,
		Message:    fmt.Sprintf("too many attempts; try again in %d seconds", secs),
		RetryAfter: &secs,
	}
}

// userErrors returns a one-error list for a payload's `errors`.
func userErrors(code ErrorCode, field, msg string) []*UserError {
	e := &UserError{Code: code, Message: msg}
	if field != "" {
		e.Field = &field
	}
	return []*UserError{e}
}

func derefString(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}
