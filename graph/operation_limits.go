package graph

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"slices"
	"strconv"
	"sync"

	"github.com/99designs/gqlgen/graphql"
	"github.com/vektah/gqlparser/v2/ast"
	"github.com/vektah/gqlparser/v2/gqlerror"

	"admit/ent"
	"admit/internal/account"
	"admit/internal/auth"
)

// CodeOperationLimit is the extensions.code of an operation refused by
// OperationLimits.
const CodeOperationLimit = "OPERATION_LIMIT_EXCEEDED"

// OnceFields are the public root fields that are expensive (a password
// hash, a token lookup, a message sent) or guessable: an operation may hold
// each at most once, so aliases cannot multiply one request into hundreds
// of attempts. Fields that do not exist (yet) in the schema cost nothing.
var OnceFields = []string{
	"signIn", "acceptInvitation", "joinWithInviteLink", "invitationPreview", "inviteLinkPreview",
	"requestToJoinWorkspace", "confirmJoinRequest", "cancelJoinRequest", "workspaceLinkPreview", "joinRequestByToken",
	"requestPasswordReset", "resetPassword", "changePassword",
}

// OperationLimits refuses, before execution, operations that use a field of
// Once more than once, or mutations with more than MaxRootMutations root
// fields (each runs in the one transaction, holding SQLite's writer).
type OperationLimits struct {
	MaxRootMutations int
	Once             []string
}

var _ interface {
	graphql.HandlerExtension
	graphql.OperationContextMutator
} = OperationLimits{}

// ExtensionName implements graphql.HandlerExtension.
func (OperationLimits) ExtensionName() string { return "OperationLimits" }

// Validate implements graphql.HandlerExtension.
func (l OperationLimits) Validate(graphql.ExecutableSchema) error {
	if l.MaxRootMutations < 1 {
		return fmt.Errorf("root mutation limit must be at least 1, got %d", l.MaxRootMutations)
	}
	return nil
}

// MutateOperationContext implements graphql.OperationContextMutator.
func (l OperationLimits) MutateOperationContext(_ context.Context, oc *graphql.OperationContext) *gqlerror.Error {
	if oc.Operation == nil {
		return nil
	}
	fields := rootFields(oc.Operation.SelectionSet, nil, 0)
	if oc.Operation.Operation == ast.Mutation && len(fields) > l.MaxRootMutations {
		return limitError("a mutation may have at most %d root fields, this one has %d", l.MaxRootMutations, len(fields))
	}
	seen := map[string]bool{}
	for _, f := range fields {
		if !slices.Contains(l.Once, f.Name) {
			continue
		}
		if seen[f.Name] {
			return limitError("%s may appear only once in an operation", f.Name)
		}
		seen[f.Name] = true
	}
	return nil
}

func limitError(format string, args ...any) *gqlerror.Error {
	err := gqlerror.Errorf(format, args...)
	err.Extensions = map[string]any{"code": CodeOperationLimit}
	return err
}

// rootFields lists the fields of a root selection set, through inline
// fragments and fragment spreads, each alias once. Fields under @skip or
// @include count too: the limit holds whatever the variables say.
func rootFields(set ast.SelectionSet, out []*ast.Field, depth int) []*ast.Field {
	if depth > 20 { // fragment cycles are refused by validation; be safe
		return out
	}
	for _, sel := range set {
		switch s := sel.(type) {
		case *ast.Field:
			out = append(out, s)
		case *ast.InlineFragment:
			out = rootFields(s.SelectionSet, out, depth+1)
		case *ast.FragmentSpread:
			if s.Definition != nil {
				out = rootFields(s.Definition.SelectionSet, out, depth+1)
			}
		}
	}
	return out
}

// SignInThrottle counts each signIn (and changePassword) of a mutation
// against the sign-in limits before the mutation's transaction opens, with the plain client,
// so the count survives the rollback of a refused sign-in and is shared
// by every replica. The resolver reads the verdict from the context.
type SignInThrottle struct {
	Client   *ent.Client
	Accounts *account.Service
	Log      *slog.Logger
}

var _ interface {
	graphql.HandlerExtension
	graphql.OperationInterceptor
} = SignInThrottle{}

// ExtensionName implements graphql.HandlerExtension.
func (SignInThrottle) ExtensionName() string { return "SignInThrottle" }

// Validate implements graphql.HandlerExtension.
func (SignInThrottle) Validate(graphql.ExecutableSchema) error { return nil }

type signInKey struct{}

// signInAttempts are the attempts counted for the operation's password
// checks (signIn, changePassword), per field, in order.
type signInAttempts struct {
	mu      sync.Mutex
	byField map[string][]*account.SignInAttempt
	err     error
}

// next hands the resolver of field the attempt counted for it.
func (a *signInAttempts) next(field string) (*account.SignInAttempt, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.err != nil {
		return nil, a.err
	}
	l := a.byField[field]
	if len(l) == 0 {
		return nil, fmt.Errorf("graph: %s was not counted", field)
	}
	a.byField[field] = l[1:]
	return l[0], nil
}

// InterceptOperation implements graphql.OperationInterceptor.
func (t SignInThrottle) InterceptOperation(ctx context.Context, next graphql.OperationHandler) graphql.ResponseHandler {
	oc := graphql.GetOperationContext(ctx)
	if oc.Operation == nil || oc.Operation.Operation != ast.Mutation {
		return next(ctx)
	}
	attempts := &signInAttempts{byField: map[string][]*account.SignInAttempt{}}
	var all []*account.SignInAttempt
	for _, f := range rootFields(oc.Operation.SelectionSet, nil, 0) {
		var a *account.SignInAttempt
		var err error
		switch f.Name {
		case "signIn":
			input, _ := f.ArgumentMap(oc.Variables)["input"].(map[string]any)
			email, _ := input["email"].(string)
			phone, _ := input["phone"].(string)
			login := account.Login{Email: email, Phone: phone, OrgID: argumentID(input["organizationID"])}
			var key string
			if key, err = login.Key(ctx, t.Client); err == nil {
				a, err = t.Accounts.BeginSignIn(ctx, t.Client, key, auth.ClientIP(ctx))
			}
		case "changePassword":
			// A stolen session must not turn into unlimited guesses at
			// the current password either.
			v := auth.FromContext(ctx)
			if v == nil {
				continue // refused UNAUTHENTICATED by the resolver
			}
			a, err = t.Accounts.BeginPasswordCheck(ctx, t.Client, v.UserID, auth.ClientIP(ctx))
		default:
			continue
		}
		if err != nil {
			attempts.err = err
			break
		}
		attempts.byField[f.Name] = append(attempts.byField[f.Name], a)
		all = append(all, a)
	}
	if attempts.err == nil && len(all) == 0 {
		return next(ctx)
	}
	h := next(context.WithValue(ctx, signInKey{}, attempts))
	var once sync.Once
	return func(ctx context.Context) *graphql.Response {
		rsp := h(ctx)
		once.Do(func() {
			// The mutation's transaction has ended: settle with the
			// plain client, on a context the client cannot cancel.
			for _, a := range all {
				if err := t.Accounts.EndSignIn(context.WithoutCancel(ctx), t.Client, a); err != nil {
					t.Log.ErrorContext(ctx, "sign-in limits", "error", err)
				}
			}
		})
		return rsp
	}
}

// signInAttempt returns the attempt SignInThrottle counted for this field
// (signIn or changePassword).
func signInAttempt(ctx context.Context, field string) (*account.SignInAttempt, error) {
	a, _ := ctx.Value(signInKey{}).(*signInAttempts)
	if a == nil {
		return nil, fmt.Errorf("graph: %s outside SignInThrottle", field)
	}
	return a.next(field)
}

// argumentID reads an ID argument as the operation gave it (a string or a
// number), or nil when it is absent or not an ID.
func argumentID(v any) *int {
	var n int
	var err error
	switch x := v.(type) {
	case string:
		n, err = strconv.Atoi(x)
	case json.Number:
		var i int64
		i, err = x.Int64()
		n = int(i)
	case int64:
		n = int(x)
	case int:
		n = x
	default:
		return nil
	}
	if err != nil {
		return nil
	}
	return &n
}
