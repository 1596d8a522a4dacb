package graph

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"strings"

	"github.com/99designs/gqlgen/graphql"
	"github.com/lib/pq"
	"github.com/vektah/gqlparser/v2/gqlerror"

	"admit/ent"
	"admit/ent/privacy"
	"admit/internal/apperr"
	"admit/internal/db"
)

// ErrorPresenter maps errors to `extensions.code` from the closed set in
// apperr. Errors that carry a code keep their (caller-safe) message; ent
// validation, not-found and constraint errors get fixed messages; anything
// else is logged and replaced by a generic INTERNAL error, so no SQL, stack
// or driver text reaches a client.
func ErrorPresenter(log *slog.Logger) graphql.ErrorPresenterFunc {
	return func(ctx context.Context, err error) *gqlerror.Error {
		out := graphql.DefaultErrorPresenter(ctx, err)
		code, msg := classify(err)
		var ne *strconv.NumError
		if errors.As(err, &ne) && len(out.Path) > 0 {
			// An ID (or Int) argument that is not a number: the caller's
			// mistake, named by its path, such as inviteUsers.input.roleID.
			code, msg = apperr.BadUserInput, fmt.Sprintf("%s is not a valid ID", out.Path.String())
		}
		if code == "" {
			// gqlgen's own errors (parsing, validation, limits) and errors
			// that already carry a code are safe as they are.
			return out
		}
		if code == apperr.Internal {
			log.ErrorContext(ctx, "request failed", "path", out.Path.String(), "error", err)
		}
		return &gqlerror.Error{
			Message:    msg,
			Path:       out.Path,
			Locations:  out.Locations,
			Extensions: map[string]any{"code": code},
		}
	}
}

// coded is an error that names its own code (apperr.Error, rule.Error).
type coded interface {
	error
	ErrorCode() string
}

// classify returns the code and message to show, or "" to keep err as it is.
func classify(err error) (code, msg string) {
	var c coded
	if errors.As(err, &c) {
		return c.ErrorCode(), c.Error()
	}
	for e := err; e != nil; e = errors.Unwrap(e) {
		if e.Error() == "introspection disabled" { // gqlgen's text; it has no sentinel
			return apperr.Forbidden, "introspection is disabled on this server"
		}
	}
	var ge *gqlerror.Error
	if errors.As(err, &ge) && ge.Err == nil {
		if ge.Extensions["code"] == nil && len(ge.Path) == 0 && strings.HasPrefix(ge.Message, "json request body could not be decoded") {
			// gqlgen echoes the body back; say what is wrong instead.
			return "BAD_REQUEST", "the request body is not a valid GraphQL JSON request"
		}
		return "", "" // built by gqlgen or entgql with a caller-safe message
	}
	var ve *ent.ValidationError
	switch {
	case errors.As(err, &ve):
		return apperr.BadUserInput, fmt.Sprintf("invalid value for %s", ve.Name)
	case ent.IsNotFound(err):
		return apperr.NotFound, "not found"
	case errors.Is(err, privacy.Deny):
		return apperr.Forbidden, "permission denied"
	case ent.IsConstraintError(err):
		return apperr.Conflict, "this conflicts with an existing record"
	case db.IsBusy(err):
		return apperr.Busy, "the database is busy; retry the request"
	case isRetryable(err):
		return apperr.Conflict, "this collided with a concurrent change; retry the request"
	case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		return apperr.Internal, "the request was cancelled or timed out"
	}
	if ge != nil && ge.Extensions != nil && ge.Extensions["code"] != nil {
		return "", "" // entgql's NOT_FOUND and similar already carry a code
	}
	return apperr.Internal, "internal server error"
}

// isRetryable reports PostgreSQL deadlocks and serialization failures:
// the transaction was rolled back whole and the same request may succeed.
func isRetryable(err error) bool {
	var pe *pq.Error
	return errors.As(err, &pe) && (pe.Code == "40P01" || pe.Code == "40001")
}

// RecoverFunc logs a resolver panic and answers INTERNAL.
func RecoverFunc(log *slog.Logger) graphql.RecoverFunc {
	return func(ctx context.Context, p any) error {
		log.ErrorContext(ctx, "resolver panic", "panic", p)
		return errors.New("panic in resolver")
	}
}
