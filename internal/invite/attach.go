package invite

import (
	"context"
	"fmt"

	"entgo.io/ent/dialect/sql"

	"admit/ent"
	"admit/ent/contact"
	"admit/ent/invitation"
	"admit/ent/membership"
	"admit/ent/user"
	"admit/internal/auth"
)

// attach does what the delivery mode adds to the invitations just written:
// every mode but INVITE gives each invitee a not-yet-active (INVITED)
// account at once, so they can be listed before they accept; the contact
// modes add that account to the inviter's contacts, and ADD_TO_WORKSPACE
// makes it a NOT_JOINED member of the workspace.
func (s *Service) attach(ctx context.Context, c *ent.Client, v *auth.Viewer, req Request, rl *ent.Role, out *Outcome, made []candidate) error {
	if req.Mode == invitation.DeliveryModeINVITE || len(made) == 0 {
		return nil
	}
	users, err := s.invitedUsers(ctx, c, v, req, rl, made)
	if err != nil {
		return err
	}
	switch req.Mode {
	case invitation.DeliveryModeADD_TO_CONTACTS, invitation.DeliveryModeADD_TO_CONTACTS_QUIETLY:
		creates := make([]*ent.ContactCreate, len(made))
		for i := range made {
			creates[i] = c.Contact.Create().SetOrganizationID(v.OrgID).SetOwnerID(v.UserID).SetContactID(users[i].ID)
		}
		// Already a contact (an earlier, revoked invitation) is fine.
		if err := c.Contact.CreateBulk(creates...).
			OnConflict(sql.ConflictColumns(contact.FieldOwnerID, contact.FieldContactID)).
			DoNothing().
			Exec(ctx); err != nil {
			return fmt.Errorf("invite: contacts: %w", err)
		}
	case invitation.DeliveryModeADD_TO_WORKSPACE:
		for i, p := range made {
			m, err := s.waitingMembership(ctx, c, v.OrgID, *req.WorkspaceID, users[i].ID, out.Results[p.result].InvitationID)
			if err != nil {
				return err
			}
			out.Results[p.result].MembershipID = m.ID
		}
	}
	for i, p := range made {
		out.Results[p.result].UserID = users[i].ID
	}
	return nil
}

// invitedUsers returns the INVITED account of each invitee, in order,
// creating the missing ones: an account left by an earlier invitation that
// was revoked or expired is reused.
func (s *Service) invitedUsers(ctx context.Context, c *ent.Client, v *auth.Viewer, req Request, rl *ent.Role, made []candidate) ([]*ent.User, error) {
	var emails, phones []string
	for _, p := range made {
		if p.email != "" {
			emails = append(emails, p.email)
		}
		if p.phone != "" {
			phones = append(phones, p.phone)
		}
	}
	existing, err := c.User.Query().
		Where(user.Or(user.EmailIn(emails...), user.PhoneIn(phones...)), user.StatusEQ(user.StatusINVITED)).
		All(ctx)
	if err != nil {
		return nil, fmt.Errorf("invite: invited users: %w", err)
	}
	byKey := map[string]*ent.User{}
	for _, u := range existing {
		if u.Email != nil {
			byKey["e:"+*u.Email] = u
		}
		if u.Phone != nil {
			byKey["p:"+*u.Phone] = u
		}
	}
	users := make([]*ent.User, len(made))
	var missing []int
	var creates []*ent.UserCreate
	for i, p := range made {
		if u := byKey["e:"+p.email]; p.email != "" && u != nil {
			users[i] = u
			continue
		}
		if u := byKey["p:"+p.phone]; p.phone != "" && u != nil {
			users[i] = u
			continue
		}
		missing = append(missing, i)
		creates = append(creates, c.User.Create().
			SetOrganizationID(v.OrgID).
			SetNillableEmail(nonEmpty(p.email)).
			SetNillablePhone(nonEmpty(p.phone)).
			SetNillableExternalID(nonEmpty(p.externalID)).
			SetName(p.name).
			SetKind(user.Kind(req.Kind)).
			SetStatus(user.StatusINVITED).
			SetRoleID(rl.ID))
	}
	if len(creates) > 0 {
		created, err := c.User.CreateBulk(creates...).Save(ctx)
		if err != nil {
			return nil, fmt.Errorf("invite: invited users: %w", err)
		}
		for j, i := range missing {
			users[i] = created[j]
		}
	}
	return users, nil
}

// waitingMembership makes userID a NOT_JOINED member of workspaceID,
// waiting on invitationID, and records the ADDED event; a member already
// waiting now waits on the new invitation.
func (s *Service) waitingMembership(ctx context.Context, c *ent.Client, orgID, workspaceID, userID, invitationID int) (*ent.Membership, error) {
	existing, err := c.Membership.Query().
		Where(membership.WorkspaceID(workspaceID), membership.UserID(userID)).
		Only(ctx)
	switch {
	case err == nil:
		return c.Membership.UpdateOne(existing).SetInvitationID(invitationID).Save(ctx)
	case !ent.IsNotFound(err):
		return nil, fmt.Errorf("invite: membership: %w", err)
	}
	m, err := c.Membership.Create().
		SetOrganizationID(orgID).
		SetWorkspaceID(workspaceID).
		SetUserID(userID).
		SetStatus(membership.StatusNOT_JOINED).
		SetInvitationID(invitationID).
		Save(ctx)
	if err != nil {
		return nil, fmt.Errorf("invite: membership: %w", err)
	}
	return m, s.recordMembership(ctx, m, "ADDED")
}
