package graph

import (
	"context"
	"sync/atomic"
)

// Stream lets a websocket transport run a subscription without a goroutine
// waiting on it. gqlgen's response handler for a subscription blocks until
// the resolver's channel yields; a transport that calls it only when told
// an event is ready holds nothing while the subscription is idle.
//
// The contract, for a resolver that claims its Stream: every value it
// hands to the subscription's response handler, and the end of the
// stream, is announced by exactly one call of the transport's ready func,
// made before the resolver blocks on handing it over. The transport then
// calls the response handler once per announcement. A resolver that does not claim the
// Stream is served the usual way, by a goroutine that waits on it.
type Stream struct {
	ready   func()
	claimed atomic.Bool
}

// NewStream returns a Stream that calls ready for each announcement.
func NewStream(ready func()) *Stream { return &Stream{ready: ready} }

type streamKey struct{}

// WithStream gives the subscription started with ctx its Stream.
func WithStream(ctx context.Context, s *Stream) context.Context {
	return context.WithValue(ctx, streamKey{}, s)
}

func streamFrom(ctx context.Context) *Stream {
	s, _ := ctx.Value(streamKey{}).(*Stream)
	return s
}

// Claimed reports whether the resolver announces its values.
func (s *Stream) Claimed() bool { return s != nil && s.claimed.Load() }

func (s *Stream) claim() {
	if s != nil {
		s.claimed.Store(true)
	}
}

// announce is the resolver's side; nil-safe, for subscriptions served by
// another transport.
func (s *Stream) announce() {
	if s != nil {
		s.ready()
	}
}
