package graph

import (
	"context"
	"encoding/json"
	"fmt"

	"github.com/99designs/gqlgen/graphql"
	"github.com/vektah/gqlparser/v2/ast"
	"github.com/vektah/gqlparser/v2/gqlerror"

	"admit/internal/apperr"
)

// pagedSchema makes complexity count list sizes: a connection field costs
// its children times the page it asks for, so nested connections cannot
// multiply into millions of rows under a fixed complexity limit.
type pagedSchema struct {
	graphql.ExecutableSchema
	maxPage int
}

// Complexity implements graphql.ExecutableSchema.
func (s pagedSchema) Complexity(ctx context.Context, typeName, field string, child int, args map[string]any) (int, bool) {
	if c, ok := s.ExecutableSchema.Complexity(ctx, typeName, field, child, args); ok {
		return c, true
	}
	if !s.isConnection(typeName, field) {
		return 0, false // the default: 1 + children
	}
	// A connection without first/last gets the default page (PageSize).
	n := s.maxPage
	for _, k := range []string{"first", "last"} {
		if v, ok := toInt(args[k]); ok {
			n = v
		}
	}
	n = min(max(n, 1), s.maxPage)
	return 1 + child*n, true
}

// isConnection reports whether the field takes first/last page arguments.
func (s pagedSchema) isConnection(typeName, field string) bool {
	t := s.Schema().Types[typeName]
	if t == nil {
		return false
	}
	f := t.Fields.ForName(field)
	return f != nil && f.Arguments.ForName("first") != nil
}

// toInt reads an argument as gqlgen hands it to Complexity: an int64 for a
// literal, a json.Number or float for a variable.
func toInt(v any) (int, bool) {
	switch n := v.(type) {
	case int:
		return n, true
	case int64:
		return int(n), true
	case *int:
		if n != nil {
			return *n, true
		}
	case float64:
		return int(n), true
	case json.Number:
		if i, err := n.Int64(); err == nil {
			return int(i), true
		}
	}
	return 0, false
}

// PageSize caps `first` and `last` on every connection and gives a
// connection without either the default page, so no list answers with the
// whole table.
func PageSize(maxPage int) graphql.FieldMiddleware {
	return func(ctx context.Context, next graphql.Resolver) (any, error) {
		fc := graphql.GetFieldContext(ctx)
		if fc == nil || fc.Args == nil {
			return next(ctx)
		}
		first, hasFirst := fc.Args["first"].(*int)
		last, hasLast := fc.Args["last"].(*int)
		if !hasFirst && !hasLast {
			return next(ctx)
		}
		for name, v := range map[string]*int{"first": first, "last": last} {
			if v != nil && (*v < 0 || *v > maxPage) {
				return nil, apperr.New(apperr.BadUserInput, fmt.Sprintf("%s must be between 0 and %d", name, maxPage))
			}
		}
		if first == nil && last == nil {
			n := maxPage
			fc.Args["first"] = &n
		}
		return next(withoutPageInfoCount(ctx, fc))
	}
}

// withoutPageInfoCount hides pageInfo from entgql's Paginate when the
// connection also selects edges and no totalCount. Paginate runs a COUNT
// for pageInfo that it does not need then: hasNextPage and
// hasPreviousPage come from the page fetched one row longer, and the
// cursors from its rows (upstream: ent/contrib#625). The connection is
// still marshalled with the selection the client sent; only the copy of
// the field context the resolver sees lacks pageInfo. Like entgql, this
// matches fields by their response name.
func withoutPageInfoCount(ctx context.Context, fc *graphql.FieldContext) context.Context {
	if !graphql.HasOperationContext(ctx) {
		return ctx
	}
	fields := graphql.CollectFields(graphql.GetOperationContext(ctx), fc.Field.Selections, nil)
	var edges, pageInfo bool
	for _, f := range fields {
		switch f.Alias {
		case "edges":
			edges = true
		case "pageInfo":
			pageInfo = true
		case "totalCount":
			return ctx
		}
	}
	if !edges || !pageInfo {
		return ctx
	}
	kept := make(ast.SelectionSet, 0, len(fields)-1)
	for _, f := range fields {
		if f.Alias == "pageInfo" {
			continue
		}
		// Merged duplicates keep every sub-selection, so field
		// collection still loads every column the client asked for.
		nf := *f.Field
		nf.SelectionSet = f.Selections
		kept = append(kept, &nf)
	}
	cp := *fc
	cp.Field.Field = &ast.Field{}
	*cp.Field.Field = *fc.Field.Field
	cp.Field.Selections = kept
	cp.Field.Field.SelectionSet = kept
	ctx = graphql.WithFieldContext(ctx, &cp)
	cp.Parent = fc.Parent // a sibling of fc, not its child: paths stay the same
	return ctx
}

// DepthLimit refuses operations nested deeper than Max fields, before
// execution. Introspection fields are not counted, so GraphiQL's schema
// query works under any sensible limit.
type DepthLimit struct{ Max int }

var _ interface {
	graphql.HandlerExtension
	graphql.OperationContextMutator
} = DepthLimit{}

// ExtensionName implements graphql.HandlerExtension.
func (DepthLimit) ExtensionName() string { return "DepthLimit" }

// Validate implements graphql.HandlerExtension.
func (d DepthLimit) Validate(graphql.ExecutableSchema) error {
	if d.Max < 1 {
		return fmt.Errorf("depth limit must be at least 1, got %d", d.Max)
	}
	return nil
}

// MutateOperationContext implements graphql.OperationContextMutator.
func (d DepthLimit) MutateOperationContext(ctx context.Context, oc *graphql.OperationContext) *gqlerror.Error {
	if oc.Operation == nil {
		return nil
	}
	if depth := selectionDepth(oc.Operation.SelectionSet); depth > d.Max {
		err := gqlerror.Errorf("operation is nested %d levels deep, which exceeds the limit of %d", depth, d.Max)
		err.Extensions = map[string]any{"code": "DEPTH_LIMIT_EXCEEDED"}
		return err
	}
	return nil
}

func selectionDepth(set ast.SelectionSet) int {
	deepest := 0
	for _, sel := range set {
		var d int
		switch s := sel.(type) {
		case *ast.Field:
			if len(s.Name) > 1 && s.Name[:2] == "__" {
				continue
			}
			d = 1 + selectionDepth(s.SelectionSet)
		case *ast.InlineFragment:
			d = selectionDepth(s.SelectionSet)
		case *ast.FragmentSpread:
			if s.Definition != nil {
				d = selectionDepth(s.Definition.SelectionSet)
			}
		}
		deepest = max(deepest, d)
	}
	return deepest
}
