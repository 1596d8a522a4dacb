package graph

import (
	"bytes"
	"context"
	"encoding/json"

	"github.com/99designs/gqlgen/graphql"
	"github.com/vektah/gqlparser/v2/ast"
)

// SharedFrames lets subscribers of one workspace event that run the same
// operation as the same viewer share one execution of it. gqlgen executes
// each subscription's selection for every event; with a thousand sockets
// that is a thousand identical executions. Here the first of them runs as
// usual and the others answer with a copy of its data, unless it failed,
// in which case each runs its own. Add it last (innermost), so that the
// other extensions still see every response.
type SharedFrames struct{}

var _ interface {
	graphql.HandlerExtension
	graphql.OperationInterceptor
	graphql.ResponseInterceptor
} = SharedFrames{}

func (SharedFrames) ExtensionName() string                   { return "AdmitSharedFrames" }
func (SharedFrames) Validate(graphql.ExecutableSchema) error { return nil }

type framesKey struct{}

// frames connects one subscription's resolver (which sets items) with its
// responses.
type frames struct {
	op    string // query, operation name and variables
	items chan frameItem
}

// frameItem is one event for a subscriber: the memo it shares, and push,
// which hands the subscriber's loaded event to gqlgen's channel.
type frameItem struct {
	memo *memoEvent
	key  frameKey
	push func() bool
}

// framesFrom returns the subscription's frames, ready for items, or nil
// when SharedFrames is not in use.
func framesFrom(ctx context.Context) *frames {
	f, _ := ctx.Value(framesKey{}).(*frames)
	if f != nil {
		f.items = make(chan frameItem)
	}
	return f
}

// InterceptOperation gives each subscription its frames.
func (SharedFrames) InterceptOperation(ctx context.Context, next graphql.OperationHandler) graphql.ResponseHandler {
	oc := graphql.GetOperationContext(ctx)
	if oc.Operation == nil || oc.Operation.Operation != ast.Subscription {
		return next(ctx)
	}
	vars, err := json.Marshal(oc.Variables)
	if err != nil {
		return next(ctx)
	}
	f := &frames{op: oc.RawQuery + "\x00" + oc.OperationName + "\x00" + string(vars)}
	return next(context.WithValue(ctx, framesKey{}, f))
}

// InterceptResponse answers each event of a subscription that has frames.
func (SharedFrames) InterceptResponse(ctx context.Context, next graphql.ResponseHandler) *graphql.Response {
	f, _ := ctx.Value(framesKey{}).(*frames)
	if f == nil || f.items == nil {
		return next(ctx)
	}
	var it frameItem
	select {
	case i, ok := <-f.items:
		if !ok {
			return next(ctx) // the stream ended: gqlgen's channel is closed too
		}
		it = i
	case <-ctx.Done():
		return next(ctx)
	}
	var own *graphql.Response
	data := it.memo.frame(it.key, func() []byte {
		if !it.push() {
			return nil
		}
		own = next(ctx)
		if own == nil || len(own.Errors) > 0 || len(own.Extensions) > 0 {
			return nil
		}
		return bytes.Clone(own.Data) // gqlgen reuses its buffer for the next event
	})
	switch {
	case own != nil:
		return own
	case data != nil:
		return &graphql.Response{Data: data}
	case !it.push():
		return nil
	}
	return next(ctx)
}
