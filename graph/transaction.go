package graph

import (
	"context"
	"log/slog"
	"reflect"
	"sync"
	"sync/atomic"

	"github.com/99designs/gqlgen/graphql"
	"github.com/vektah/gqlparser/v2/ast"
	"github.com/vektah/gqlparser/v2/gqlerror"

	"admit/ent"
	"admit/internal/apperr"
	"admit/internal/db"
)

// Transactioner runs each mutation operation in one transaction and commits
// it only when the operation fully succeeded: no GraphQL errors, no payload
// with a non-empty `errors` list, and no resolver asking for a rollback (a
// dry run). entgql's Transactioner commits payload errors, which would keep
// half of a refused mutation, so Admit uses its own.
type Transactioner struct {
	Client *ent.Client
	Log    *slog.Logger
}

var _ interface {
	graphql.HandlerExtension
	graphql.OperationContextMutator
	graphql.ResponseInterceptor
} = Transactioner{}

// ExtensionName implements graphql.HandlerExtension.
func (Transactioner) ExtensionName() string { return "AdmitTransactioner" }

// Validate implements graphql.HandlerExtension.
func (Transactioner) Validate(graphql.ExecutableSchema) error { return nil }

// MutateOperationContext serializes field resolvers of a mutation, which
// share one transaction.
func (Transactioner) MutateOperationContext(_ context.Context, oc *graphql.OperationContext) *gqlerror.Error {
	if oc.Operation == nil || oc.Operation.Operation != ast.Mutation {
		return nil
	}
	previous := oc.ResolverMiddleware
	var mu sync.Mutex
	oc.ResolverMiddleware = func(ctx context.Context, next graphql.Resolver) (any, error) {
		mu.Lock()
		defer mu.Unlock()
		res, err := previous(ctx, next)
		if fc := graphql.GetFieldContext(ctx); fc != nil && fc.Object == "Mutation" && payloadHasErrors(res) {
			Rollback(ctx)
		}
		return res, err
	}
	return nil
}

// ownTransaction lists mutations that open their own transaction, after
// a slow outside call (an HR system's API) that must not hold the
// database's write lock. An operation made only of these runs without the
// shared transaction; mixed with any other field, it runs in it as usual.
var ownTransaction = map[string]bool{
	"connectHRSystem": true,
	"syncHRSystem":    true,
}

// onlyOwnTransaction reports whether every root field of op manages its
// own transaction.
func onlyOwnTransaction(op *ast.OperationDefinition) bool {
	if len(op.SelectionSet) == 0 {
		return false
	}
	for _, sel := range op.SelectionSet {
		f, ok := sel.(*ast.Field)
		if !ok || !ownTransaction[f.Name] {
			return false
		}
	}
	return true
}

// InterceptResponse implements graphql.ResponseInterceptor.
func (t Transactioner) InterceptResponse(ctx context.Context, next graphql.ResponseHandler) *graphql.Response {
	if !graphql.HasOperationContext(ctx) {
		return next(ctx) // the request failed before it had an operation
	}
	op := graphql.GetOperationContext(ctx).Operation
	if op == nil || op.Operation != ast.Mutation || onlyOwnTransaction(op) {
		return next(ctx)
	}
	tx, err := t.Client.Tx(ctx)
	if err != nil {
		if db.IsBusy(err) {
			// Another write held the database too long: say so, and that
			// a retry may work, rather than INTERNAL.
			t.Log.WarnContext(ctx, "database busy: mutation refused before it started", "error", err)
			return busyError()
		}
		t.Log.ErrorContext(ctx, "cannot open transaction", "error", err)
		return internalError()
	}
	flag := new(atomic.Bool)
	ctx = context.WithValue(ent.NewTxContext(ent.NewContext(ctx, tx.Client()), tx), rollbackKey{}, flag)
	defer func() {
		if r := recover(); r != nil {
			_ = tx.Rollback()
			panic(r)
		}
	}()
	rsp := next(ctx)
	if rsp == nil || len(rsp.Errors) > 0 || flag.Load() {
		_ = tx.Rollback()
		if rsp != nil && len(rsp.Errors) > 0 {
			rsp.Data = nil // nothing the response described was kept
		}
		return rsp
	}
	if err := tx.Commit(); err != nil {
		if db.IsBusy(err) {
			t.Log.WarnContext(ctx, "database busy: commit refused", "error", err)
			return busyError()
		}
		t.Log.ErrorContext(ctx, "cannot commit transaction", "error", err)
		return internalError()
	}
	return rsp
}

func internalError() *graphql.Response {
	return &graphql.Response{Errors: gqlerror.List{{
		Message:    "internal server error",
		Extensions: map[string]any{"code": apperr.Internal},
	}}}
}

// busyError answers a mutation that could not get the database in time.
func busyError() *graphql.Response {
	return &graphql.Response{Errors: gqlerror.List{{
		Message:    "the database is busy; retry the request",
		Extensions: map[string]any{"code": apperr.Busy},
	}}}
}

type rollbackKey struct{}

// Rollback asks for the current mutation's transaction to be rolled back
// even though the mutation succeeded (dry runs).
func Rollback(ctx context.Context) {
	if f, ok := ctx.Value(rollbackKey{}).(*atomic.Bool); ok {
		f.Store(true)
	}
}

// payloadHasErrors reports whether a mutation result is a payload struct
// whose Errors list is not empty.
func payloadHasErrors(res any) bool {
	v := reflect.ValueOf(res)
	if v.Kind() != reflect.Pointer || v.IsNil() || v.Elem().Kind() != reflect.Struct {
		return false
	}
	f := v.Elem().FieldByName("Errors")
	return f.IsValid() && f.Kind() == reflect.Slice && f.Len() > 0
}
