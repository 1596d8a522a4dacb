package graph

import (
	"context"
	"fmt"
	"unicode/utf8"

	"admit/ent"
	"admit/ent/invitation"
	"admit/ent/invitelink"
	"admit/ent/organization"
	"admit/ent/role"
	"admit/ent/user"
	"admit/internal/auth"
	"admit/internal/rule"
)

// lockOrganization loads the viewer's organization for a read-modify-write
// of its domain list, locking the row on PostgreSQL so concurrent edits
// do not overwrite each other.
func (r *mutationResolver) lockOrganization(ctx context.Context) (*ent.Organization, error) {
	v := auth.FromContext(ctx)
	if v == nil {
		return nil, rule.ErrUnauthenticated
	}
	q := r.db(ctx).Organization.Query().Where(organization.ID(v.OrgID))
	if r.postgres() {
		q = q.ForUpdate()
	}
	return q.Only(ctx)
}

// validateRoleInput checks a role's name, description and rank.
func validateRoleInput(name, description *string, rank *int) []*UserError {
	var errs []*UserError
	if name != nil && (*name == "" || utf8.RuneCountInString(*name) > 100) {
		errs = append(errs, userErrors(ErrorCodeInvalidInput, "input.name", "name must be 1 to 100 characters")...)
	}
	if description != nil && utf8.RuneCountInString(*description) > 500 {
		errs = append(errs, userErrors(ErrorCodeInvalidInput, "input.description", "description must be at most 500 characters")...)
	}
	if rank != nil && (*rank < 1 || *rank > 100) {
		errs = append(errs, userErrors(ErrorCodeInvalidInput, "input.rank", "rank must be between 1 and 100")...)
	}
	return errs
}

// roleInUse names what still uses a role, or returns "".
func roleInUse(ctx context.Context, c *ent.Client, id int) (string, error) {
	if n, err := c.User.Query().Where(user.RoleID(id)).Count(ctx); err != nil || n > 0 {
		return fmt.Sprintf("%d user(s)", n), err
	}
	if n, err := c.Invitation.Query().Where(invitation.RoleID(id), invitation.StatusEQ(invitation.StatusPENDING)).Count(ctx); err != nil || n > 0 {
		return fmt.Sprintf("%d pending invitation(s)", n), err
	}
	if n, err := c.InviteLink.Query().Where(invitelink.RoleID(id), invitelink.RevokedAtIsNil()).Count(ctx); err != nil || n > 0 {
		return fmt.Sprintf("%d invite link(s)", n), err
	}
	return "", nil
}

// hasActiveAdmin reports whether the organization still has an active
// user holding an admin role.
func hasActiveAdmin(ctx context.Context, c *ent.Client) (bool, error) {
	return c.User.Query().
		Where(user.StatusEQ(user.StatusACTIVE), user.HasRoleWith(role.Admin(true))).
		Exist(ctx)
}
