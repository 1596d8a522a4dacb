package graph

import (
	"errors"
	"fmt"
	"math"
	"time"

	"admit/internal/account"
	"admit/internal/password"
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

// passwordError is the payload error of a refused password change or
// reset, or nil when err is not one.
func passwordError(err error) *UserError {
	switch {
	case errors.Is(err, password.ErrPolicy):
		return userErrors(ErrorCodePasswordTooWeak, "input.password", err.Error())[0]
	case errors.Is(err, account.ErrResetTokenInvalid):
		return userErrors(ErrorCodeResetTokenInvalid, "input.token", err.Error())[0]
	case errors.Is(err, account.ErrResetTokenExpired):
		return userErrors(ErrorCodeResetTokenExpired, "input.token", err.Error())[0]
	case errors.Is(err, account.ErrWrongPassword):
		return userErrors(ErrorCodeInvalidCredentials, "input.currentPassword", err.Error())[0]
	}
	return nil
}
