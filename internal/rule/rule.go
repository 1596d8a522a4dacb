// Package rule holds the ent privacy rules: the one place where tenant
// isolation, admin-only writes and the role ceiling are enforced. Code that
// must act outside a viewer (sign-in, token lookups, workers) bypasses them on
// purpose with System(ctx).
package rule

import (
	"context"
	"sync"

	"entgo.io/ent/entql"

	"admit/ent"
	"admit/ent/privacy"
	"admit/ent/role"
	"admit/ent/user"
	"admit/internal/auth"
)

// Error is a denial with a stable code for the error presenter. It unwraps
// to privacy.Deny so ent treats it as a deny decision.
type Error struct {
	Code    string
	Message string
}

func (e *Error) Error() string { return e.Message }

// ErrorCode returns the code for `extensions.code`.
func (e *Error) ErrorCode() string { return e.Code }

// Unwrap makes the error a privacy deny decision.
func (e *Error) Unwrap() error { return privacy.Deny }

// ErrUnauthenticated is returned to anonymous callers of protected data.
var ErrUnauthenticated = &Error{Code: "UNAUTHENTICATED", Message: "sign in required: the session token is missing, invalid or expired"}

// Forbidden builds a denial that tells the caller what they lack.
func Forbidden(msg string) error { return &Error{Code: "FORBIDDEN", Message: msg} }

// ErrRoleNotFound is returned when a mutation names a role that does not
// exist in the viewer's organization (a foreign role reads as missing).
var ErrRoleNotFound = &Error{Code: "NOT_FOUND", Message: "role not found"}

// DenyIfNoViewer denies anonymous requests.
func DenyIfNoViewer() privacy.QueryMutationRule {
	return privacy.ContextQueryMutationRule(func(ctx context.Context) error {
		if auth.FromContext(ctx) == nil {
			return ErrUnauthenticated
		}
		return privacy.Skip
	})
}

// FilterTenantRule limits reads, updates and deletes to the viewer's
// organization. A row of another organization reads as missing.
func FilterTenantRule() privacy.QueryMutationRule {
	type tenantFilter interface {
		WhereOrganizationID(entql.IntP)
	}
	return filterViewer(func(f tenantFilter, v *auth.Viewer) {
		f.WhereOrganizationID(entql.IntEQ(v.OrgID))
	})
}

// FilterOwnOrganization limits Organization reads and writes to the
// viewer's own organization.
func FilterOwnOrganization() privacy.QueryMutationRule {
	return filterViewer(func(f interface{ WhereID(entql.IntP) }, v *auth.Viewer) {
		f.WhereID(entql.IntEQ(v.OrgID))
	})
}

// filterViewer is a rule that narrows what every signed-in viewer reads
// (and, as a mutation rule, changes) with apply, and refuses everyone else.
func filterViewer[F any](apply func(F, *auth.Viewer)) privacy.FilterFunc {
	return privacy.FilterFunc(func(ctx context.Context, f privacy.Filter) error {
		v := auth.FromContext(ctx)
		if v == nil {
			return ErrUnauthenticated
		}
		tf, ok := f.(F)
		if !ok {
			return privacy.Denyf("rule: %T is not the filter this rule narrows", f)
		}
		apply(tf, v)
		return privacy.Skip
	})
}

// DenyCreateOutsideTenant requires every created row to name the viewer's
// organization explicitly.
func DenyCreateOutsideTenant() privacy.MutationRule {
	return privacy.MutationRuleFunc(func(ctx context.Context, m ent.Mutation) error {
		if !m.Op().Is(ent.OpCreate) {
			return privacy.Skip
		}
		v := auth.FromContext(ctx)
		tm, ok := m.(interface{ OrganizationID() (int, bool) })
		if v == nil || !ok {
			return ErrUnauthenticated
		}
		if id, set := tm.OrganizationID(); !set || id != v.OrgID {
			return Forbidden("rows may only be created in your own organization")
		}
		return privacy.Skip
	})
}

// DenyIfNotAdmin denies writes by viewers whose role confers no admin rights.
func DenyIfNotAdmin(what string) privacy.MutationRule {
	return privacy.MutationRuleFunc(func(ctx context.Context, _ ent.Mutation) error {
		if err := RequireAdmin(ctx, what); err != nil {
			return err
		}
		return privacy.Skip
	})
}

// RequireAdmin is the admin check of the policies above, for resolvers to
// ask before they validate input: a non-admin learns nothing from
// validation messages. The policies still decide every write.
func RequireAdmin(ctx context.Context, what string) error {
	v := auth.FromContext(ctx)
	if v == nil {
		return ErrUnauthenticated
	}
	if !v.Admin {
		return Forbidden("only administrators may " + what)
	}
	return nil
}

// DenyQueryIfNotAdmin denies reads by viewers without admin rights.
func DenyQueryIfNotAdmin(what string) privacy.QueryRule {
	return privacy.ContextQueryMutationRule(func(ctx context.Context) error {
		v := auth.FromContext(ctx)
		if v == nil {
			return ErrUnauthenticated
		}
		if !v.Admin {
			return Forbidden("only administrators may " + what)
		}
		return privacy.Skip
	})
}

// DenyRoleAboveViewer is the role ceiling: nobody creates, edits or deletes a
// role ranked above their own, makes a role an admin role without being an
// admin, or gives any row (user, invitation, link) a role above their own.
func DenyRoleAboveViewer() privacy.MutationRule {
	return privacy.MutationRuleFunc(func(ctx context.Context, m ent.Mutation) error {
		v := auth.FromContext(ctx)
		if v == nil {
			return ErrUnauthenticated
		}
		switch m := m.(type) {
		case *ent.RoleMutation:
			return checkRoleMutation(ctx, v, m)
		case *ent.UserMutation:
			if err := checkExistingUser(ctx, v, m); err != privacy.Skip {
				return err
			}
		}
		rm, ok := m.(interface {
			RoleID() (int, bool)
			Client() *ent.Client
		})
		if !ok {
			return privacy.Skip
		}
		id, set := rm.RoleID()
		if !set {
			return privacy.Skip
		}
		r, err := loadRole(ctx, rm.Client(), v, id)
		if err != nil {
			return err
		}
		if err := grantable(v, r.Rank, r.Admin); err != privacy.Skip {
			return err
		}
		if im, ok := m.(*ent.InvitationMutation); ok {
			if admin, _ := im.Admin(); admin && !v.Admin {
				return Forbidden("you cannot grant administrator rights you do not have")
			}
		}
		return privacy.Skip
	})
}

type roleCacheKey struct{}

// WithRoleCache lets the role ceiling look each role up once per request,
// not once per row, when a request writes many rows (bulk invitations).
func WithRoleCache(ctx context.Context) context.Context {
	return context.WithValue(ctx, roleCacheKey{}, &sync.Map{})
}

func loadRole(ctx context.Context, c *ent.Client, v *auth.Viewer, id int) (*ent.Role, error) {
	cache, _ := ctx.Value(roleCacheKey{}).(*sync.Map)
	if cache != nil {
		if r, ok := cache.Load(id); ok {
			return r.(*ent.Role), nil
		}
	}
	r, err := c.Role.Query().
		Where(role.ID(id), role.OrganizationID(v.OrgID)).
		Only(System(ctx))
	if ent.IsNotFound(err) {
		return nil, ErrRoleNotFound
	}
	if err != nil {
		return nil, err
	}
	if cache != nil {
		cache.Store(id, r)
	}
	return r, nil
}

// CacheRole remembers a role the caller already loaded, for the rules of
// this request.
func CacheRole(ctx context.Context, r *ent.Role) {
	if cache, _ := ctx.Value(roleCacheKey{}).(*sync.Map); cache != nil {
		cache.Store(r.ID, r)
	}
}

// CheckGrant applies the role ceiling outside a write (for dry runs, which
// must refuse exactly what the real run would). Callers have already
// required admin rights.
func CheckGrant(ctx context.Context, rank int, admin bool) error {
	v := auth.FromContext(ctx)
	if v == nil {
		return ErrUnauthenticated
	}
	if err := grantable(v, rank, admin); err != privacy.Skip {
		return err
	}
	return nil
}

// CanGrant is the role ceiling: a holder of a role with rank and admin may
// grant a role with targetRank and targetAdmin.
func CanGrant(rank int, admin bool, targetRank int, targetAdmin bool) bool {
	return (admin || !targetAdmin) && targetRank <= rank
}

func grantable(v *auth.Viewer, rank int, admin bool) error {
	if CanGrant(v.Rank, v.Admin, rank, admin) {
		return privacy.Skip
	}
	if admin && !v.Admin {
		return Forbidden("you cannot grant administrator rights you do not have")
	}
	return Forbidden("you cannot grant a role ranked above your own")
}

// System lets code act outside any viewer, on purpose: sign-in, token
// lookups, the outbox worker. Every bypass of the policies goes through
// here, so they are easy to find and review.
func System(ctx context.Context) context.Context {
	return privacy.DecisionContext(ctx, privacy.Allow)
}

func checkRoleMutation(ctx context.Context, v *auth.Viewer, m *ent.RoleMutation) error {
	if m.Op().Is(ent.OpUpdateOne | ent.OpDeleteOne) {
		if id, ok := m.ID(); ok {
			old, err := m.Client().Role.Query().
				Where(role.ID(id), role.OrganizationID(v.OrgID)).
				Only(System(ctx))
			if ent.IsNotFound(err) {
				return ErrRoleNotFound
			}
			if err != nil {
				return err
			}
			if err := grantable(v, old.Rank, old.Admin); err != privacy.Skip {
				return err
			}
		}
	}
	rank, rankSet := m.Rank()
	admin, _ := m.Admin()
	if !rankSet {
		rank = 0
	}
	return grantable(v, rank, admin)
}

// checkExistingUser stops a viewer from editing a user whose current role is
// above the viewer's own (demoting or deactivating a stronger admin).
func checkExistingUser(ctx context.Context, v *auth.Viewer, m *ent.UserMutation) error {
	if !m.Op().Is(ent.OpUpdateOne) {
		return privacy.Skip
	}
	id, ok := m.ID()
	if !ok || id == v.UserID {
		return privacy.Skip
	}
	r, err := m.Client().User.Query().
		Where(user.ID(id), user.OrganizationID(v.OrgID)).
		QueryRole().
		Only(System(ctx))
	if ent.IsNotFound(err) {
		return privacy.Skip // the tenant filter answers NOT_FOUND
	}
	if err != nil {
		return err
	}
	if err := grantable(v, r.Rank, r.Admin); err != privacy.Skip {
		return Forbidden("you cannot change a user whose role is above your own")
	}
	return privacy.Skip
}
