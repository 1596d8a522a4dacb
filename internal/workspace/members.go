package workspace

import (
	"context"
	"fmt"
	"strings"

	"admit/ent"
	"admit/ent/invitation"
	"admit/ent/membership"
	"admit/ent/predicate"
	"admit/ent/user"
	"admit/ent/workspace"
	"admit/internal/address"
	"admit/internal/auth"
	"admit/internal/invite"
	"admit/internal/phone"
	"admit/internal/rule"
)

// Outcomes of one person in InviteMembers.
const (
	OutcomeAdded   = "ADDED"
	OutcomeInvited = "INVITED"
	OutcomeSkipped = "SKIPPED"
)

// Person is one invitee given by their details.
type Person struct {
	Name       string
	Email      string
	Phone      string
	ExternalID string
}

// MembersInput is a request to add people to a workspace.
type MembersInput struct {
	WorkspaceID int
	UserIDs     []int
	Invitees    []Person
	// Kind of new invitees: CLIENT unless told.
	Kind    user.Kind
	RoleID  *int
	Message string
}

// Result is what happened to one person.
type Result struct {
	Field        string // input.userIDs[0], input.invitees[2]
	Input        string
	Email        string
	Phone        string
	Outcome      string
	Code         string
	Message      string
	InvitationID int
	Membership   *ent.Membership
}

// InviteMembers adds existing users to a workspace and invites new people
// into it, with one result per person. New internal users may be invited
// this way only into GROUP workspaces, and only by admins: a FLOW
// workspace takes internal users who are already in the organization.
func (s *Service) InviteMembers(ctx context.Context, c *ent.Client, in MembersInput) ([]Result, error) {
	ws, err := s.managed(ctx, c, in.WorkspaceID, "invite members")
	if err != nil {
		return nil, err
	}
	if ws.ArchivedAt != nil {
		return nil, ErrArchived
	}
	kind := in.Kind
	if kind == "" {
		kind = user.KindCLIENT
	}
	v := auth.FromContext(ctx)
	if kind == user.KindINTERNAL && len(in.Invitees) > 0 && !v.Admin {
		return nil, rule.Forbidden("only administrators may invite new internal users; a workspace's owners may invite clients")
	}
	if len(in.UserIDs)+len(in.Invitees) == 0 {
		return nil, userErr("INVALID_INPUT", "input", "give at least one user or invitee")
	}
	if len(in.UserIDs)+len(in.Invitees) > 1000 {
		return nil, userErr("INVALID_INPUT", "input", "at most 1,000 people per request")
	}
	var results []Result
	seen := map[int]bool{}
	for i, id := range in.UserIDs {
		r := Result{Field: fmt.Sprintf("input.userIDs[%d]", i), Input: fmt.Sprint(id)}
		u, err := c.User.Query().Where(user.ID(id)).Only(ctx)
		switch {
		case ent.IsNotFound(err):
			r.Outcome, r.Code, r.Message = OutcomeSkipped, "USER_NOT_FOUND", "no user of the organization has this ID"
		case err != nil:
			return nil, fmt.Errorf("workspace.InviteMembers: %w", err)
		case seen[u.ID]:
			r.Outcome, r.Code, r.Message = OutcomeSkipped, "DUPLICATE_IN_REQUEST", "this user appears earlier in this request"
		default:
			seen[u.ID] = true
			r.Email = deref(u.Email)
			if err := s.addExisting(ctx, c, ws, u, &r); err != nil {
				return nil, err
			}
		}
		results = append(results, r)
	}

	org, err := c.Organization.Get(ctx, v.OrgID)
	if err != nil {
		return nil, fmt.Errorf("workspace.InviteMembers: %w", err)
	}
	var fresh []newPerson
	known := map[int]bool{}
	for i, p := range in.Invitees {
		r := Result{Field: fmt.Sprintf("input.invitees[%d]", i), Input: cmpOr(p.Email, p.Phone)}
		if kind == user.KindINTERNAL && ws.Type == workspace.TypeFLOW {
			r.Outcome, r.Code = OutcomeSkipped, "INVITE_TO_ORGANIZATION_FIRST"
			r.Message = "new internal users join a FLOW workspace after being invited to the organization: invite them there first, then add them"
			results = append(results, r)
			continue
		}
		existing, err := s.existingPerson(ctx, c, org, p)
		if err != nil {
			return nil, err
		}
		if existing != nil && !known[existing.ID] {
			known[existing.ID] = true
			r.Email = deref(existing.Email)
			if existing.Status == user.StatusACTIVE || existing.Status == user.StatusINVITED {
				// Someone the organization already has: added, as for a
				// user ID, whatever kind was asked for.
				if err := s.addExisting(ctx, c, ws, existing, &r); err != nil {
					return nil, err
				}
			} else {
				r.Outcome, r.Code, r.Message = OutcomeSkipped, "ACCOUNT_DEACTIVATED", "the account for "+r.Input+" is deactivated"
			}
			results = append(results, r)
			continue
		}
		// Everything else (malformed, repeated, taken User IDs) is the
		// pipeline's to judge, as for any invitation.
		results = append(results, r)
		fresh = append(fresh, newPerson{Row: len(results) - 1, Person: p})
	}
	if len(fresh) > 0 {
		if err := s.invite(ctx, c, ws, fresh, results, invitation.Kind(kind), in.RoleID, in.Message); err != nil {
			return nil, err
		}
	}
	return results, nil
}

// existingPerson finds the organization's user an invitee's address or
// phone already belongs to, if any.
func (s *Service) existingPerson(ctx context.Context, c *ent.Client, org *ent.Organization, p Person) (*ent.User, error) {
	var reach []predicate.User
	if email, _, err := address.Parse(strings.TrimSpace(p.Email)); err == nil && strings.TrimSpace(p.Email) != "" {
		reach = append(reach, user.Email(email))
	}
	if number, err := phone.Normalize(p.Phone, org.DefaultRegion); err == nil {
		reach = append(reach, user.Phone(number))
	}
	if len(reach) == 0 {
		return nil, nil
	}
	u, err := c.User.Query().
		Where(user.OrganizationID(org.ID), user.Or(reach...)).
		Order(ent.Asc(user.FieldID)).
		First(rule.System(ctx))
	if ent.IsNotFound(err) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("workspace.InviteMembers: %w", err)
	}
	return u, nil
}

// addExisting makes an organization's user a member: JOINED at once for an
// active account, NOT_JOINED (with their pending invitation) for one still
// invited.
func (s *Service) addExisting(ctx context.Context, c *ent.Client, ws *ent.Workspace, u *ent.User, r *Result) error {
	switch u.Status {
	case user.StatusDEACTIVATED:
		r.Outcome, r.Code, r.Message = OutcomeSkipped, "ACCOUNT_DEACTIVATED", "this account is deactivated"
		return nil
	case user.StatusINVITED:
		inv, err := c.Invitation.Query().
			Where(invitation.OrganizationID(u.OrganizationID), invitation.Email(deref(u.Email)), invitation.StatusEQ(invitation.StatusPENDING)).
			Order(ent.Desc(invitation.FieldID)).
			First(rule.System(ctx))
		if err != nil && !ent.IsNotFound(err) {
			return fmt.Errorf("workspace: pending invitation: %w", err)
		}
		var invID *int
		if inv != nil {
			invID = &inv.ID
		}
		m, err := s.addMember(ctx, c, ws, u, membership.StatusNOT_JOINED, invID)
		if err != nil {
			return s.alreadyMember(err, r)
		}
		r.Outcome, r.Membership, r.Message = OutcomeAdded, m, "added; joins on accepting their invitation"
		return nil
	}
	m, err := s.addMember(ctx, c, ws, u, membership.StatusJOINED, nil)
	if err != nil {
		return s.alreadyMember(err, r)
	}
	r.Outcome, r.Membership, r.Message = OutcomeAdded, m, "added"
	return nil
}

var errAlreadyMember = userErr("ALREADY_WORKSPACE_MEMBER", "", "already a member of this workspace")

func (s *Service) alreadyMember(err error, r *Result) error {
	if err == errAlreadyMember {
		r.Outcome, r.Code, r.Message = OutcomeSkipped, errAlreadyMember.Code, errAlreadyMember.Message
		return nil
	}
	return err
}

// addMember adds u to ws, or turns their NOT_JOINED membership JOINED.
func (s *Service) addMember(ctx context.Context, c *ent.Client, ws *ent.Workspace, u *ent.User, status membership.Status, invitationID *int) (*ent.Membership, error) {
	existing, err := c.Membership.Query().
		Where(membership.WorkspaceID(ws.ID), membership.UserID(u.ID)).
		Only(rule.System(ctx))
	switch {
	case err == nil && (existing.Status == membership.StatusJOINED || status == membership.StatusNOT_JOINED):
		return nil, errAlreadyMember
	case err == nil:
		m, err := c.Membership.UpdateOne(existing).SetStatus(membership.StatusJOINED).ClearInvitationID().Save(ctx)
		if err != nil {
			return nil, fmt.Errorf("workspace: join: %w", err)
		}
		return m, s.membershipEvent(ctx, m, "JOINED")
	case !ent.IsNotFound(err):
		return nil, fmt.Errorf("workspace: membership: %w", err)
	}
	m, err := c.Membership.Create().
		SetOrganizationID(ws.OrganizationID).
		SetWorkspaceID(ws.ID).
		SetUserID(u.ID).
		SetStatus(status).
		SetNillableInvitationID(invitationID).
		Save(ctx)
	if err != nil {
		return nil, fmt.Errorf("workspace: add member: %w", err)
	}
	return m, s.membershipEvent(ctx, m, "ADDED")
}

// newPerson is someone to invite into a workspace, and the index of
// their result.
type newPerson struct {
	Row int
	Person
}

// invite sends people new to the organization an invitation into ws
// through the pipeline, which also gives each a not-yet-active account and
// a NOT_JOINED membership so the member list shows them; it fills in their
// results.
func (s *Service) invite(ctx context.Context, c *ent.Client, ws *ent.Workspace, people []newPerson, results []Result, kind invitation.Kind, roleID *int, message string) error {
	entries := make([]invite.Entry, len(people))
	for i, p := range people {
		entries[i] = invite.Entry{Field: results[p.Row].Field, Input: p.Email, Phone: p.Phone, Name: p.Name, ExternalID: p.ExternalID, Invitee: true}
	}
	out, err := s.Invites.Invite(ctx, c, invite.Request{
		Entries: entries, RoleID: roleID, WorkspaceID: &ws.ID, Message: message,
		Source: invitation.SourceWORKSPACE, Kind: kind, Mode: invitation.DeliveryModeADD_TO_WORKSPACE,
	})
	if err != nil {
		return err
	}
	var ids []int
	for _, r := range out.Results {
		if r.MembershipID != 0 {
			ids = append(ids, r.MembershipID)
		}
	}
	ms, err := c.Membership.Query().Where(membership.IDIn(ids...)).All(rule.System(ctx))
	if err != nil {
		return fmt.Errorf("workspace: memberships: %w", err)
	}
	byID := map[int]*ent.Membership{}
	for _, m := range ms {
		byID[m.ID] = m
	}
	for i, p := range people {
		o, r := out.Results[i], &results[p.Row]
		r.Email, r.Phone, r.Code, r.Message, r.InvitationID, r.Membership = o.Email, o.Phone, o.Code, o.Message, o.InvitationID, byID[o.MembershipID]
		r.Outcome = OutcomeInvited
		if o.Code != "" {
			r.Outcome = OutcomeSkipped
		}
	}
	return nil
}

// Skipped is a NOT_JOINED member whose invitation was not sent again.
type Skipped struct {
	Membership *ent.Membership
	Code       string
	Message    string
}

// ResendAll sends every NOT_JOINED member's pending invitation again, each
// with a fresh link (the old one dies) and each within its own cooldown.
func (s *Service) ResendAll(ctx context.Context, c *ent.Client, workspaceID int) (int, []Skipped, error) {
	ws, err := s.managed(ctx, c, workspaceID, "resend its invitations")
	if err != nil {
		return 0, nil, err
	}
	if ws.ArchivedAt != nil {
		return 0, nil, ErrArchived
	}
	waiting, err := c.Membership.Query().
		Where(membership.WorkspaceID(ws.ID), membership.StatusEQ(membership.StatusNOT_JOINED)).
		Order(ent.Asc(membership.FieldID)).
		All(ctx)
	if err != nil {
		return 0, nil, fmt.Errorf("workspace.ResendAll: %w", err)
	}
	sent := 0
	var skipped []Skipped
	for _, m := range waiting {
		if m.InvitationID == nil {
			skipped = append(skipped, Skipped{m, "NO_PENDING_INVITATION", "this member has no invitation to send again"})
			continue
		}
		_, err := s.Invites.Resend(ctx, c, *m.InvitationID)
		if ue, ok := invite.AsUserError(err); ok {
			skipped = append(skipped, Skipped{m, ue.Code, ue.Message})
			continue
		}
		if err != nil {
			return 0, nil, err
		}
		sent++
	}
	return sent, skipped, nil
}

// UpdateMember changes a member's workspace role.
func (s *Service) UpdateMember(ctx context.Context, c *ent.Client, id int, role membership.Role) (*ent.Membership, error) {
	m, err := s.managedMembership(ctx, c, id)
	if err != nil {
		return nil, err
	}
	if m.Role == role {
		return m, nil
	}
	if m.Role == membership.RoleOWNER {
		if err := s.keepAnOwner(ctx, c, m); err != nil {
			return nil, err
		}
	}
	if m, err = c.Membership.UpdateOne(m).SetRole(role).Save(ctx); err != nil {
		return nil, fmt.Errorf("workspace.UpdateMember: %w", err)
	}
	if err := s.membershipEvent(ctx, m, "ROLE_CHANGED"); err != nil {
		return nil, err
	}
	return m, s.audit(ctx, c, "membership.role_changed", "Membership", m.ID, string(role))
}

// RemoveMember takes someone out of a workspace.
func (s *Service) RemoveMember(ctx context.Context, c *ent.Client, id int) (int, error) {
	m, err := s.managedMembership(ctx, c, id)
	if err != nil {
		return 0, err
	}
	if m.Role == membership.RoleOWNER {
		if err := s.keepAnOwner(ctx, c, m); err != nil {
			return 0, err
		}
	}
	if err := c.Membership.DeleteOne(m).Exec(ctx); err != nil {
		return 0, fmt.Errorf("workspace.RemoveMember: %w", err)
	}
	if err := s.membershipEvent(ctx, m, "REMOVED"); err != nil {
		return 0, err
	}
	return m.ID, s.audit(ctx, c, "membership.removed", "Membership", m.ID, fmt.Sprint(m.UserID))
}

func (s *Service) managedMembership(ctx context.Context, c *ent.Client, id int) (*ent.Membership, error) {
	if auth.FromContext(ctx) == nil {
		return nil, rule.ErrUnauthenticated
	}
	m, err := c.Membership.Get(ctx, id)
	if ent.IsNotFound(err) {
		return nil, notFound("membership")
	}
	if err != nil {
		return nil, fmt.Errorf("workspace: membership %d: %w", id, err)
	}
	if err := rule.CanManageWorkspace(ctx, c, m.WorkspaceID, "manage its members"); err != nil {
		return nil, err
	}
	return m, nil
}

// keepAnOwner refuses to leave a workspace without a joined owner.
func (s *Service) keepAnOwner(ctx context.Context, c *ent.Client, m *ent.Membership) error {
	others, err := c.Membership.Query().
		Where(membership.WorkspaceID(m.WorkspaceID), membership.IDNEQ(m.ID),
			membership.RoleEQ(membership.RoleOWNER), membership.StatusEQ(membership.StatusJOINED)).
		Exist(rule.System(ctx))
	if err != nil {
		return fmt.Errorf("workspace: owners: %w", err)
	}
	if !others {
		return userErr("LAST_OWNER", "input.id", "a workspace keeps at least one owner; make someone else an owner first")
	}
	return nil
}

func deref(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}
