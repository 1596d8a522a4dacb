package rule

import (
	"context"

	"entgo.io/ent/entql"

	"admit/ent"
	"admit/ent/invitation"
	"admit/ent/joinrequest"
	"admit/ent/membership"
	"admit/ent/predicate"
	"admit/ent/privacy"
	"admit/ent/user"
	"admit/ent/workspace"
	"admit/internal/auth"
)

// The workspace rules: admins see and manage every workspace; a
// workspace's OWNERs manage it, its members and its join requests, and may
// invite clients into it; its members read it; nobody else sees it.

// ownedBy matches workspaces v is a joined owner of.
func ownedBy(v *auth.Viewer) predicate.Workspace {
	return workspace.HasMembersWith(
		membership.UserID(v.UserID),
		membership.RoleEQ(membership.RoleOWNER),
		membership.StatusEQ(membership.StatusJOINED),
	)
}

// OwnsWorkspace reports whether the viewer is a joined owner of workspace
// id (an admin need not be).
func OwnsWorkspace(ctx context.Context, c *ent.Client, id int) (bool, error) {
	v := auth.FromContext(ctx)
	if v == nil {
		return false, ErrUnauthenticated
	}
	return c.Membership.Query().
		Where(
			membership.OrganizationID(v.OrgID),
			membership.WorkspaceID(id),
			membership.UserID(v.UserID),
			membership.RoleEQ(membership.RoleOWNER),
			membership.StatusEQ(membership.StatusJOINED),
		).
		Exist(System(ctx))
}

// CanManageWorkspace is nil for admins and the workspace's owners, and a
// denial otherwise.
func CanManageWorkspace(ctx context.Context, c *ent.Client, id int, what string) error {
	v := auth.FromContext(ctx)
	if v == nil {
		return ErrUnauthenticated
	}
	if v.Admin {
		return nil
	}
	ok, err := OwnsWorkspace(ctx, c, id)
	if err != nil {
		return err
	}
	if !ok {
		return Forbidden("only administrators and the workspace's owners may " + what)
	}
	return nil
}

// RequireInviter is the check of who may invite whom, for callers to ask
// before they validate input: admins invite anyone; a workspace's owners
// invite clients into that workspace.
func RequireInviter(ctx context.Context, c *ent.Client, kind invitation.Kind, workspaceID *int) error {
	v := auth.FromContext(ctx)
	if v == nil {
		return ErrUnauthenticated
	}
	if v.Admin {
		return nil
	}
	if workspaceID == nil {
		return Forbidden("only administrators may invite people")
	}
	if kind != invitation.KindCLIENT {
		return Forbidden("only administrators may invite internal users; a workspace's owners may invite clients")
	}
	return CanManageWorkspace(ctx, c, *workspaceID, "invite people to it")
}

// RequireAdminOrOwner admits admins and anyone who owns a workspace, for
// calls that then act only on what the policies let the caller see.
func RequireAdminOrOwner(ctx context.Context, c *ent.Client, what string) error {
	v := auth.FromContext(ctx)
	if v == nil {
		return ErrUnauthenticated
	}
	if v.Admin {
		return nil
	}
	owns, err := c.Membership.Query().
		Where(
			membership.OrganizationID(v.OrgID),
			membership.UserID(v.UserID),
			membership.RoleEQ(membership.RoleOWNER),
			membership.StatusEQ(membership.StatusJOINED),
		).
		Exist(System(ctx))
	if err != nil {
		return err
	}
	if !owns {
		return Forbidden("only administrators may " + what)
	}
	return nil
}

// FilterWorkspacesToMembers hides workspaces from non-admins who are not
// their members.
func FilterWorkspacesToMembers() privacy.QueryRule {
	return filterNonAdmins(func(f *ent.WorkspaceFilter, v *auth.Viewer) {
		f.WhereHasMembersWith(membership.UserID(v.UserID))
	})
}

// FilterMembershipsToMembers lets non-admins see only the memberships of
// workspaces they are members of.
func FilterMembershipsToMembers() privacy.QueryRule {
	return filterNonAdmins(func(f *ent.MembershipFilter, v *auth.Viewer) {
		f.WhereHasWorkspaceWith(workspace.HasMembersWith(membership.UserID(v.UserID)))
	})
}

// filterNonAdmins is a query rule that lets admins see everything and
// narrows what everyone else signed in sees with apply.
func filterNonAdmins[F privacy.Filter](apply func(F, *auth.Viewer)) privacy.QueryRule {
	return filterViewer(func(f F, v *auth.Viewer) {
		if !v.Admin {
			apply(f, v)
		}
	})
}

// FilterJoinRequestsToDeciders shows confirmed join requests to admins and
// to the owners of their workspace. Unconfirmed requests (address not yet
// proven) are never shown.
func FilterJoinRequestsToDeciders() privacy.QueryRule {
	return privacy.FilterFunc(func(ctx context.Context, f privacy.Filter) error {
		v := auth.FromContext(ctx)
		if v == nil {
			return ErrUnauthenticated
		}
		jf, ok := f.(*ent.JoinRequestFilter)
		if !ok {
			return privacy.Denyf("rule: %T is not a join request filter", f)
		}
		jf.WhereStatus(entql.StringNEQ(joinrequest.StatusUNCONFIRMED.String()))
		if !v.Admin {
			jf.WhereHasWorkspaceWith(ownedBy(v))
		}
		return privacy.Skip
	})
}

// FilterInvitationsToManagers shows admins every invitation and a
// workspace's owners the invitations into their workspace.
func FilterInvitationsToManagers() privacy.QueryRule {
	return filterNonAdmins(func(f *ent.InvitationFilter, v *auth.Viewer) {
		f.WhereHasWorkspaceWith(ownedBy(v))
	})
}

// DenyWorkspaceWriteUnlessManager lets internal users create workspaces
// and only admins and owners change them.
func DenyWorkspaceWriteUnlessManager() privacy.MutationRule {
	return privacy.MutationRuleFunc(func(ctx context.Context, m ent.Mutation) error {
		v := auth.FromContext(ctx)
		if v == nil {
			return ErrUnauthenticated
		}
		wm, ok := m.(*ent.WorkspaceMutation)
		if !ok {
			return privacy.Denyf("rule: %T is not a workspace mutation", m)
		}
		switch {
		case m.Op().Is(ent.OpCreate):
			if v.Client {
				return Forbidden("clients cannot create workspaces")
			}
			if owner, set := wm.OwnerID(); !set || owner != v.UserID {
				return Forbidden("a new workspace is owned by its creator")
			}
			return privacy.Skip
		case v.Admin:
			return privacy.Skip
		case m.Op().Is(ent.OpUpdateOne):
			id, _ := wm.ID()
			return skipIf(CanManageWorkspace(ctx, wm.Client(), id, "change it"))
		}
		return Forbidden("only administrators may change workspaces in bulk")
	})
}

// DenyMembershipWriteUnlessManager lets admins and a workspace's owners add,
// change and remove its members. The creator of a workspace becomes its
// first owner.
func DenyMembershipWriteUnlessManager() privacy.MutationRule {
	return forNonAdmins(func(ctx context.Context, v *auth.Viewer, m ent.Mutation) error {
		mm, ok := m.(*ent.MembershipMutation)
		if !ok {
			return privacy.Denyf("rule: %T is not a membership mutation", m)
		}
		const what = "manage the workspace's members"
		switch {
		case m.Op().Is(ent.OpCreate):
			wsID, _ := mm.WorkspaceID()
			uid, _ := mm.UserID()
			if r, _ := mm.Role(); r == membership.RoleOWNER && uid == v.UserID {
				created, err := mm.Client().Workspace.Query().
					Where(workspace.ID(wsID), workspace.OwnerID(v.UserID), workspace.Not(workspace.HasMembers())).
					Exist(System(ctx))
				if err != nil {
					return err
				}
				if created {
					return privacy.Skip
				}
			}
			return skipIf(CanManageWorkspace(ctx, mm.Client(), wsID, what))
		case m.Op().Is(ent.OpUpdateOne | ent.OpDeleteOne):
			id, _ := mm.ID()
			wsID, err := mm.Client().Membership.Query().
				Where(membership.ID(id), membership.OrganizationID(v.OrgID)).
				QueryWorkspace().OnlyID(System(ctx))
			if ent.IsNotFound(err) {
				return privacy.Skip // the tenant filter answers NOT_FOUND
			}
			if err != nil {
				return err
			}
			return skipIf(CanManageWorkspace(ctx, mm.Client(), wsID, what))
		}
		return Forbidden("only administrators may change memberships in bulk")
	})
}

// DenyJoinRequestWriteUnlessDecider lets admins and the workspace's owners
// decide a join request, lets its requester cancel it, and never lets the
// requester decide it. New requests come only from the link path.
func DenyJoinRequestWriteUnlessDecider() privacy.MutationRule {
	return privacy.MutationRuleFunc(func(ctx context.Context, m ent.Mutation) error {
		v := auth.FromContext(ctx)
		if v == nil {
			return ErrUnauthenticated
		}
		jm, ok := m.(*ent.JoinRequestMutation)
		if !ok || !m.Op().Is(ent.OpUpdateOne) {
			return Forbidden("join requests are made through the workspace link and decided one at a time")
		}
		id, _ := jm.ID()
		jr, err := jm.Client().JoinRequest.Query().
			Where(joinrequest.ID(id), joinrequest.OrganizationID(v.OrgID)).
			Only(System(ctx))
		if ent.IsNotFound(err) {
			return privacy.Skip // the tenant filter answers NOT_FOUND
		}
		if err != nil {
			return err
		}
		mine := jr.RequesterID != nil && *jr.RequesterID == v.UserID
		if status, set := jm.Status(); set && status == joinrequest.StatusCANCELLED {
			if mine {
				return privacy.Skip
			}
		} else if mine {
			return Forbidden("you cannot decide your own join request")
		}
		return skipIf(CanManageWorkspace(ctx, jm.Client(), jr.WorkspaceID, "decide its join requests"))
	})
}

// DenyInvitationWriteUnlessAllowed lets admins write any invitation, and a
// workspace's owners create client invitations into it and resend the
// invitations of its members.
func DenyInvitationWriteUnlessAllowed() privacy.MutationRule {
	return forNonAdmins(func(ctx context.Context, v *auth.Viewer, m ent.Mutation) error {
		im, ok := m.(*ent.InvitationMutation)
		if !ok {
			return privacy.Denyf("rule: %T is not an invitation mutation", m)
		}
		switch {
		case m.Op().Is(ent.OpCreate):
			kind, _ := im.Kind()
			if kind == "" {
				kind = invitation.DefaultKind
			}
			var ws *int
			if id, set := im.WorkspaceID(); set {
				ws = &id
			}
			return skipIf(RequireInviter(ctx, im.Client(), kind, ws))
		case m.Op().Is(ent.OpUpdateOne):
			id, _ := im.ID()
			inv, err := im.Client().Invitation.Query().
				Where(invitation.ID(id), invitation.OrganizationID(v.OrgID)).
				Only(System(ctx))
			if ent.IsNotFound(err) {
				return privacy.Skip
			}
			if err != nil {
				return err
			}
			if inv.WorkspaceID == nil {
				return Forbidden("only administrators may manage invitations")
			}
			return skipIf(CanManageWorkspace(ctx, im.Client(), *inv.WorkspaceID, "manage its invitations"))
		}
		return Forbidden("only administrators may manage invitations")
	})
}

// DenyUserWriteUnlessAllowed lets admins manage users, and a workspace's
// owners create the not-yet-active client account an invitation into
// their workspace brings in.
func DenyUserWriteUnlessAllowed() privacy.MutationRule {
	return forNonAdmins(func(ctx context.Context, v *auth.Viewer, m ent.Mutation) error {
		um, ok := m.(*ent.UserMutation)
		if ok && m.Op().Is(ent.OpCreate) {
			status, _ := um.Status()
			kind, _ := um.Kind()
			if status == user.StatusINVITED && kind == user.KindCLIENT {
				return skipIf(RequireAdminOrOwner(ctx, um.Client(), "manage users"))
			}
		}
		return Forbidden("only administrators may manage users")
	})
}

// forNonAdmins is a mutation rule that lets admins through and asks decide
// about everyone else signed in.
func forNonAdmins(decide func(ctx context.Context, v *auth.Viewer, m ent.Mutation) error) privacy.MutationRule {
	return privacy.MutationRuleFunc(func(ctx context.Context, m ent.Mutation) error {
		v := auth.FromContext(ctx)
		if v == nil {
			return ErrUnauthenticated
		}
		if v.Admin {
			return privacy.Skip
		}
		return decide(ctx, v, m)
	})
}

func skipIf(err error) error {
	if err != nil {
		return err
	}
	return privacy.Skip
}
