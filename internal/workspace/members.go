package workspace

import (
	"context"
	"fmt"
	"strings"

	"admit/ent"
	"admit/ent/invitation"
	"admit/ent/membership"
	"admit/ent/user"
	"admit/ent/workspace"
	"admit/internal/address"
	"admit/internal/auth"
	"admit/internal/invite"
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
	sys := rule.System(ctx)
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

	var fresh []newPerson
	emails := map[string]bool{}
	for i, p := range in.Invitees {
		r := Result{Field: fmt.Sprintf("input.invitees[%d]", i), Input: cmpOr(p.Email, p.Phone)}
		email := strings.TrimSpace(p.Email)
		switch {
		case email == "" && strings.TrimSpace(p.Phone) != "":
			r.Outcome, r.Code, r.Message = OutcomeSkipped, "PHONE_NOT_SUPPORTED", "phone invitations are not available yet; give an email address"
		case email == "":
			r.Outcome, r.Code, r.Message = OutcomeSkipped, "INVALID_INPUT", "give an email address"
		case kind == user.KindINTERNAL && ws.Type == workspace.TypeFLOW:
			r.Outcome, r.Code = OutcomeSkipped, "INVITE_TO_ORGANIZATION_FIRST"
			r.Message = "new internal users join a FLOW workspace after being invited to the organization: invite them there first, then add them"
		case len([]rune(p.ExternalID)) > 200:
			r.Outcome, r.Code, r.Message = OutcomeSkipped, "INVALID_INPUT", "externalID must be at most 200 characters"
		}
		if r.Code != "" {
			results = append(results, r)
			continue
		}
		norm, _, perr := address.Parse(email)
		if perr == nil {
			existing, err := c.User.Query().Where(user.OrganizationID(v.OrgID), user.Email(norm)).Only(sys)
			if err != nil && !ent.IsNotFound(err) {
				return nil, fmt.Errorf("workspace.InviteMembers: %w", err)
			}
			if existing != nil && !emails[norm] {
				emails[norm] = true
				r.Email = norm
				if existing.Status == user.StatusACTIVE || existing.Status == user.StatusINVITED {
					// Someone the organization already has: added, as
					// for a user ID, whatever kind was asked for.
					if err := s.addExisting(ctx, c, ws, existing, &r); err != nil {
						return nil, err
					}
				} else {
					r.Outcome, r.Code, r.Message = OutcomeSkipped, "ACCOUNT_DEACTIVATED", "the account for "+norm+" is deactivated"
				}
				results = append(results, r)
				continue
			}
			emails[norm] = true
		}
		results = append(results, r)
		fresh = append(fresh, newPerson{Row: len(results) - 1, Email: email, Name: strings.TrimSpace(p.Name), ExternalID: strings.TrimSpace(p.ExternalID)})
	}
	if len(fresh) > 0 {
		out, err := s.invite(ctx, c, ws, fresh, invitation.Kind(kind), in.RoleID, in.Message)
		if err != nil {
			return nil, err
		}
		for i, p := range fresh {
			o := out[i]
			r := &results[p.Row]
			r.Email, r.Code, r.Message, r.InvitationID, r.Membership = o.Email, o.Code, o.Message, o.InvitationID, o.Membership
			r.Outcome = OutcomeInvited
			if o.Code != "" {
				r.Outcome = OutcomeSkipped
			}
		}
	}
	return results, nil
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

// newPerson is someone to invite into a workspace.
type newPerson struct {
	Row        int
	Email      string
	Name       string
	ExternalID string
}

// invite sends people new to the organization an invitation into ws
// through the pipeline, and gives each invited person a not-yet-active
// account and a NOT_JOINED membership, so the member list shows them.
// Results are in the order of people.
func (s *Service) invite(ctx context.Context, c *ent.Client, ws *ent.Workspace, people []newPerson, kind invitation.Kind, roleID *int, message string) ([]Result, error) {
	entries := make([]invite.Entry, len(people))
	for i, p := range people {
		entries[i] = invite.Entry{Input: p.Email, Name: p.Name}
	}
	out, err := s.Invites.Invite(ctx, c, invite.Request{
		Entries: entries, RoleID: roleID, WorkspaceID: &ws.ID, Message: message,
		Source: invitation.SourceWORKSPACE, Kind: kind,
	})
	if err != nil {
		return nil, err
	}
	var ids []int
	for _, r := range out.Results {
		if r.InvitationID != 0 {
			ids = append(ids, r.InvitationID)
		}
	}
	invs, err := c.Invitation.Query().Where(invitation.IDIn(ids...)).All(rule.System(ctx))
	if err != nil {
		return nil, fmt.Errorf("workspace: invitations: %w", err)
	}
	byID := map[int]*ent.Invitation{}
	for _, inv := range invs {
		byID[inv.ID] = inv
	}
	results := make([]Result, len(people))
	for i, r := range out.Results {
		res := Result{Email: r.Email, Code: r.Code, Message: r.Message, InvitationID: r.InvitationID}
		if inv := byID[r.InvitationID]; inv != nil {
			u, err := s.invitedUser(ctx, c, inv, people[i])
			if err != nil {
				return nil, err
			}
			if u == nil {
				res.Code, res.Message = "EXTERNAL_ID_TAKEN", "another user of the organization has this externalID"
			} else if res.Membership, err = s.addMember(ctx, c, ws, u, membership.StatusNOT_JOINED, &inv.ID); err != nil {
				if err != errAlreadyMember {
					return nil, err
				}
				res.Code, res.Message = errAlreadyMember.Code, errAlreadyMember.Message
			}
		}
		results[i] = res
	}
	return results, nil
}

// invitedUser returns the not-yet-active account for an invitation,
// creating it. It returns nil when the person's external ID is taken.
func (s *Service) invitedUser(ctx context.Context, c *ent.Client, inv *ent.Invitation, p newPerson) (*ent.User, error) {
	existing, err := c.User.Query().
		Where(user.OrganizationID(inv.OrganizationID), user.Email(*inv.Email)).
		Only(rule.System(ctx))
	if err == nil {
		return existing, nil
	}
	if !ent.IsNotFound(err) {
		return nil, fmt.Errorf("workspace: invited user: %w", err)
	}
	create := c.User.Create().
		SetOrganizationID(inv.OrganizationID).
		SetEmail(*inv.Email).
		SetName(inv.Name).
		SetKind(user.Kind(inv.Kind)).
		SetStatus(user.StatusINVITED).
		SetRoleID(inv.RoleID)
	if p.ExternalID != "" {
		taken, err := c.User.Query().
			Where(user.OrganizationID(inv.OrganizationID), user.ExternalID(p.ExternalID)).
			Exist(rule.System(ctx))
		if err != nil {
			return nil, fmt.Errorf("workspace: external ID: %w", err)
		}
		if taken {
			return nil, nil
		}
		create.SetExternalID(p.ExternalID)
	}
	u, err := create.Save(ctx)
	if err != nil {
		return nil, fmt.Errorf("workspace: invited user: %w", err)
	}
	return u, nil
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
