package graph

import (
	"context"
	"log/slog"
	"strings"

	"entgo.io/contrib/entgql"
	"github.com/99designs/gqlgen/graphql"
	"github.com/vektah/gqlparser/v2/gqlerror"

	"admit/internal/apperr"
)

// Transactioner runs each mutation in a transaction (entgql's), and fixes
// two edges of it: a request that failed before it had an operation (bad
// JSON) no longer panics, and a failure to open or commit the transaction
// answers INTERNAL instead of sending the driver's text to the client.
type Transactioner struct {
	entgql.Transactioner
	Log *slog.Logger
}

// InterceptResponse implements graphql.ResponseInterceptor.
func (t Transactioner) InterceptResponse(ctx context.Context, next graphql.ResponseHandler) *graphql.Response {
	if !graphql.HasOperationContext(ctx) {
		return next(ctx)
	}
	rsp := t.Transactioner.InterceptResponse(ctx, next)
	if rsp == nil {
		return rsp
	}
	for i, e := range rsp.Errors {
		if e.Err == nil && (strings.HasPrefix(e.Message, "cannot create transaction") || strings.HasPrefix(e.Message, "cannot commit transaction")) {
			t.Log.ErrorContext(ctx, "transaction failed", "error", e.Message)
			rsp.Errors[i] = &gqlerror.Error{
				Message:    "internal server error",
				Extensions: map[string]any{"code": apperr.Internal},
			}
		}
	}
	return rsp
}
