package graph

import (
	"context"
	"fmt"

	"github.com/99designs/gqlgen/graphql"
	"github.com/vektah/gqlparser/v2/ast"
	"github.com/vektah/gqlparser/v2/gqlerror"
)

// IntrospectionLimit bounds introspection, which the complexity limit does
// not see (gqlgen's complexity skips __schema): an operation may hold one
// __schema and MaxTypeFields __type fields; inside them no field is
// selected twice under different aliases, and no list (types, fields,
// args, …) is nested inside itself. GraphiQL's and every client library's
// introspection query passes; an aliased flood of __schema, which made a
// 43 KB request produce a 20 MB response, does not.
type IntrospectionLimit struct{ MaxTypeFields int }

var _ interface {
	graphql.HandlerExtension
	graphql.OperationContextMutator
} = IntrospectionLimit{}

// ExtensionName implements graphql.HandlerExtension.
func (IntrospectionLimit) ExtensionName() string { return "IntrospectionLimit" }

// Validate implements graphql.HandlerExtension.
func (IntrospectionLimit) Validate(graphql.ExecutableSchema) error { return nil }

// introspectionLists are the list fields of the introspection types.
var introspectionLists = map[string]bool{
	"types": true, "directives": true, "fields": true, "args": true, "inputFields": true,
	"interfaces": true, "possibleTypes": true, "enumValues": true, "locations": true,
}

// MutateOperationContext implements graphql.OperationContextMutator.
func (l IntrospectionLimit) MutateOperationContext(_ context.Context, oc *graphql.OperationContext) *gqlerror.Error {
	if oc.Operation == nil {
		return nil
	}
	schemas, types := 0, 0
	for _, f := range rootFields(oc.Operation.SelectionSet, nil, 0) {
		switch f.Name {
		case "__schema":
			schemas++
		case "__type":
			types++
		default:
			continue
		}
		if err := checkIntrospection(f.SelectionSet, map[string]bool{}, 0); err != nil {
			return err
		}
	}
	switch {
	case schemas > 1:
		return introspectionError("an operation may select __schema only once, this one does %d times", schemas)
	case types > l.MaxTypeFields:
		return introspectionError("an operation may select __type at most %d times, this one does %d times", l.MaxTypeFields, types)
	}
	return nil
}

// checkIntrospection walks an introspection selection set: each field name
// once per selection set (fragments merged), each list at most once on a
// path.
func checkIntrospection(set ast.SelectionSet, onPath map[string]bool, depth int) *gqlerror.Error {
	if depth > 30 {
		return introspectionError("introspection is nested too deep")
	}
	keys := map[string]string{} // field name → the response key it uses
	var fields []*ast.Field
	var collect func(ast.SelectionSet, int)
	collect = func(set ast.SelectionSet, d int) {
		if d > 10 {
			return
		}
		for _, sel := range set {
			switch s := sel.(type) {
			case *ast.Field:
				fields = append(fields, s)
			case *ast.InlineFragment:
				collect(s.SelectionSet, d+1)
			case *ast.FragmentSpread:
				if s.Definition != nil {
					collect(s.Definition.SelectionSet, d+1)
				}
			}
		}
	}
	collect(set, 0)
	for _, f := range fields {
		key := f.Alias
		if key == "" {
			key = f.Name
		}
		if prev, ok := keys[f.Name]; ok && prev != key {
			return introspectionError("introspection may not select %s under two names", f.Name)
		}
		keys[f.Name] = key
	}
	done := map[string]bool{}
	for _, f := range fields {
		if done[f.Name] || len(f.SelectionSet) == 0 {
			continue
		}
		done[f.Name] = true
		if introspectionLists[f.Name] {
			if onPath[f.Name] {
				return introspectionError("introspection may not nest %s inside %s", f.Name, f.Name)
			}
			onPath[f.Name] = true
		}
		// Every selection of this field, merged, as GraphQL executes them.
		var merged ast.SelectionSet
		for _, g := range fields {
			if g.Name == f.Name {
				merged = append(merged, g.SelectionSet...)
			}
		}
		if err := checkIntrospection(merged, onPath, depth+1); err != nil {
			return err
		}
		if introspectionLists[f.Name] {
			delete(onPath, f.Name)
		}
	}
	return nil
}

func introspectionError(format string, args ...any) *gqlerror.Error {
	err := gqlerror.Errorf(format, args...)
	err.Extensions = map[string]any{"code": "INTROSPECTION_LIMIT_EXCEEDED"}
	return err
}

// ResponseSizeLimit refuses a response whose data exceeds Max bytes: the
// client gets RESPONSE_TOO_LARGE instead (and a mutation is rolled back,
// as for any error, when this runs inside the Transactioner).
type ResponseSizeLimit struct{ Max int }

var _ interface {
	graphql.HandlerExtension
	graphql.ResponseInterceptor
} = ResponseSizeLimit{}

// ExtensionName implements graphql.HandlerExtension.
func (ResponseSizeLimit) ExtensionName() string { return "ResponseSizeLimit" }

// Validate implements graphql.HandlerExtension.
func (l ResponseSizeLimit) Validate(graphql.ExecutableSchema) error {
	if l.Max < 1 {
		return fmt.Errorf("response size limit must be at least 1 byte, got %d", l.Max)
	}
	return nil
}

// InterceptResponse implements graphql.ResponseInterceptor.
func (l ResponseSizeLimit) InterceptResponse(ctx context.Context, next graphql.ResponseHandler) *graphql.Response {
	rsp := next(ctx)
	if rsp == nil || len(rsp.Data) <= l.Max {
		return rsp
	}
	return &graphql.Response{Errors: gqlerror.List{{
		Message:    fmt.Sprintf("the response would be %d bytes, more than the limit of %d; ask for less (a smaller page, fewer fields)", len(rsp.Data), l.Max),
		Extensions: map[string]any{"code": "RESPONSE_TOO_LARGE"},
	}}}
}
