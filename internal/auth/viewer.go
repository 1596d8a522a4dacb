// Package auth holds the signed-in viewer that every request carries in its
// context. It imports nothing from ent so that schemas, rules and resolvers can
// all depend on it.
package auth

import "context"

// Viewer is who is making the request: a signed-in user of one organization.
type Viewer struct {
	UserID    int
	OrgID     int
	RoleID    int
	Admin     bool // the user's role confers admin rights
	Rank      int  // the user's role rank; nobody grants a rank above their own
	SessionID int
	Client    bool // the user is a CLIENT, not an internal user
	// Socket marks a viewer authenticated once for a websocket; its session
	// is re-checked before each operation.
	Socket bool
}

type ctxKey struct{}

// NewContext returns a copy of ctx carrying v.
func NewContext(ctx context.Context, v *Viewer) context.Context {
	return context.WithValue(ctx, ctxKey{}, v)
}

// FromContext returns the viewer in ctx, or nil for an anonymous request.
func FromContext(ctx context.Context) *Viewer {
	v, _ := ctx.Value(ctxKey{}).(*Viewer)
	return v
}

type clientIPKey struct{}

// WithClientIP records the caller's network address (for rate limits).
func WithClientIP(ctx context.Context, ip string) context.Context {
	return context.WithValue(ctx, clientIPKey{}, ip)
}

// ClientIP returns the caller's network address, or "".
func ClientIP(ctx context.Context) string {
	ip, _ := ctx.Value(clientIPKey{}).(string)
	return ip
}
