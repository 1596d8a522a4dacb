package invite

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"
	"unicode/utf8"

	"admit/ent"
	"admit/ent/delivery"
	"admit/ent/invitation"
	"admit/ent/membership"
	"admit/ent/predicate"
	"admit/ent/user"
	"admit/internal/account"
	"admit/internal/address"
	"admit/internal/auth"
	"admit/internal/eventlog"
	"admit/internal/password"
	"admit/internal/rule"
	"admit/internal/secret"
	"admit/internal/txn"
)

// UserError is a refusal the caller can act on, reported in a payload.
type UserError struct {
	Code    string
	Field   string
	Message string
	// RetryAfter is, for RATE_LIMITED, the seconds to wait.
	RetryAfter int
}

func (e *UserError) Error() string { return e.Message }

func userErr(code, field, msg string) *UserError {
	return &UserError{Code: code, Field: field, Message: msg}
}

// Token lookup failures, distinct so the invitee is told what to do.
var (
	ErrNotFound        = userErr("INVITATION_NOT_FOUND", "token", "no invitation has this link; check that it was copied whole")
	ErrReplaced        = userErr("INVITATION_REPLACED", "token", "this invitation was sent again; use the link in the newest message")
	ErrRevoked         = userErr("INVITATION_REVOKED", "token", "this invitation was revoked")
	ErrExpired         = userErr("INVITATION_EXPIRED", "token", "this invitation has expired; ask for it to be sent again")
	ErrAlreadyAccepted = userErr("INVITATION_ALREADY_ACCEPTED", "token", "this invitation was already accepted; sign in instead")
)

// Lookup finds the invitation a token stands for, with its organization,
// role, workspace and inviter, checking the token in constant time. It
// needs no viewer: the token is the credential.
func (s *Service) Lookup(ctx context.Context, c *ent.Client, token string) (*ent.Invitation, error) {
	id, gen, ok := secret.ParseDerived(secret.Invitation, token)
	if !ok {
		return nil, ErrNotFound
	}
	inv, err := c.Invitation.Query().
		Where(invitation.ID(id)).
		WithOrganization().
		WithRole().
		WithWorkspace().
		WithInviter().
		Only(rule.System(ctx))
	if ent.IsNotFound(err) {
		return nil, ErrNotFound
	}
	if err != nil {
		return nil, fmt.Errorf("invite.Lookup: %w", err)
	}
	if gen > len(inv.TokenNonces) || !s.Keys.VerifyDerived(secret.Invitation, token, id, gen, inv.TokenNonces[gen-1]) {
		return nil, ErrNotFound
	}
	switch {
	case gen != inv.TokenGeneration:
		return inv, ErrReplaced
	case inv.Status == invitation.StatusACCEPTED:
		return inv, ErrAlreadyAccepted
	case inv.Status == invitation.StatusREVOKED:
		return inv, ErrRevoked
	case inv.Status == invitation.StatusEXPIRED || !inv.ExpiresAt.After(s.Now()):
		return inv, ErrExpired
	}
	return inv, nil
}

// Token returns the live token of inv (for the outbox worker).
func (s *Service) Token(inv *ent.Invitation, generation int) (string, bool) {
	if generation < 1 || generation > len(inv.TokenNonces) {
		return "", false
	}
	return s.Keys.Derive(secret.Invitation, inv.ID, generation, inv.TokenNonces[generation-1]), true
}

// Status is the invitation's status as a reader should see it: a pending
// invitation past its expiry reads as expired at once, with no batch job.
func Status(inv *ent.Invitation, now time.Time) invitation.Status {
	if inv.Status == invitation.StatusPENDING && !inv.ExpiresAt.After(now) {
		return invitation.StatusEXPIRED
	}
	return inv.Status
}

// AcceptInput is what the invitee sends.
type AcceptInput struct {
	Token    string
	Name     string
	Password string
	// Email is, for an invitation sent to a phone, an address for the new
	// account (optional).
	Email string
}

// Accepted is the result of Accept.
type Accepted struct {
	User         *ent.User
	SessionToken string
	Session      *ent.Session
}

// Accept turns an invitation into an account and signs it in. The rules are
// checked as they are now, not as they were when the invitation was sent.
// Of two concurrent accepts exactly one wins: the invitation is claimed with
// a conditional update before anything else is written.
func (s *Service) Accept(ctx context.Context, c *ent.Client, accounts *account.Service, in AcceptInput) (*Accepted, error) {
	inv, err := s.Lookup(ctx, c, in.Token)
	if err != nil {
		return nil, err
	}
	sys := rule.System(ctx)
	org, rl := inv.Edges.Organization, inv.Edges.Role
	email := deref(inv.Email)
	who := cmpOr(email, deref(inv.Phone))
	if email != "" && org.RestrictInvitationsToDomains && !slices.Contains(org.Domains, domainOf(email)) {
		return nil, userErr(CodeDomainNotAllowed, "token", domainOf(email)+" is no longer one of the organization's domains")
	}
	if err := s.stillGrantable(sys, c, inv); err != nil {
		return nil, err
	}
	now := s.Now()
	// Claim the invitation before anything that depends on it: a
	// concurrent accept waits on this row and then finds it no longer
	// pending. Any refusal below is a payload error, which rolls the
	// claim back.
	n, err := c.Invitation.Update().
		Where(
			invitation.ID(inv.ID),
			invitation.StatusEQ(invitation.StatusPENDING),
			invitation.TokenGeneration(inv.TokenGeneration),
			invitation.ExpiresAtGT(now),
		).
		SetStatus(invitation.StatusACCEPTED).
		SetAcceptedAt(now).
		Save(sys)
	if err != nil {
		return nil, fmt.Errorf("invite.Accept: claim: %w", err)
	}
	if n == 0 {
		if _, err := s.Lookup(ctx, c, in.Token); err != nil {
			return nil, err
		}
		return nil, ErrAlreadyAccepted
	}

	// The account is the one the invitation reaches: its address, or its
	// phone when it was sent by SMS.
	reach := user.Email(email)
	if inv.Email == nil {
		reach = user.Phone(deref(inv.Phone))
	}
	existing, err := c.User.Query().
		Where(user.OrganizationID(inv.OrganizationID), reach).
		Only(sys)
	if err != nil && !ent.IsNotFound(err) {
		return nil, fmt.Errorf("invite.Accept: %w", err)
	}
	v := auth.FromContext(ctx)
	name := strings.TrimSpace(in.Name)
	switch {
	case existing != nil && existing.Status == user.StatusDEACTIVATED:
		return nil, userErr("ACCOUNT_DEACTIVATED", "token", "the account for "+who+" is deactivated; ask an administrator")
	case existing != nil && existing.Status == user.StatusACTIVE:
		if v == nil {
			return nil, userErr("SIGN_IN_REQUIRED", "token", who+" already has an account: sign in, then accept")
		}
		if v.UserID != existing.ID {
			return nil, userErr("WRONG_ACCOUNT", "token", "this invitation is for "+who+"; sign in as that account to accept it")
		}
	default:
		if v != nil {
			return nil, userErr("WRONG_ACCOUNT", "token", "you are signed in as someone else; sign out to accept this invitation")
		}
		if name == "" || utf8.RuneCountInString(name) > 200 {
			return nil, userErr("INVALID_INPUT", "input.name", "name must be 1 to 200 characters")
		}
		if err := password.Check(in.Password); err != nil {
			return nil, userErr("PASSWORD_TOO_WEAK", "input.password", err.Error())
		}
	}
	// A phone invitee may add an address to the new account; an email
	// invitation's address is the account's.
	if strings.TrimSpace(in.Email) != "" && inv.Email != nil {
		if addr, _, err := address.Parse(in.Email); err != nil || addr != email {
			return nil, userErr(CodeInvalidInput, "input.email", "this invitation is for "+email+"; the account gets that address")
		}
	}
	var extraEmail *string
	if strings.TrimSpace(in.Email) != "" && inv.Email == nil && (existing == nil || existing.Status != user.StatusACTIVE) {
		addr, _, err := address.Parse(in.Email)
		if err != nil {
			return nil, userErr(CodeInvalidAddress, "input.email", err.Error())
		}
		taken, err := c.User.Query().
			Where(user.OrganizationID(inv.OrganizationID), user.Email(addr)).
			Exist(sys)
		if err != nil {
			return nil, fmt.Errorf("invite.Accept: %w", err)
		}
		if taken {
			return nil, userErr(CodeAlreadyMember, "input.email", addr+" already has an account in this organization; leave the address out or use another")
		}
		if org.RestrictInvitationsToDomains && !slices.Contains(org.Domains, domainOf(addr)) {
			return nil, userErr(CodeDomainNotAllowed, "input.email", domainOf(addr)+" is not one of the organization's domains")
		}
		extraEmail = &addr
	}
	// The User ID travels with the invitation; if someone took it since,
	// the account is made without it rather than not at all.
	externalID := inv.ExternalID
	if externalID != nil {
		taken, err := c.User.Query().
			Where(user.OrganizationID(inv.OrganizationID), user.ExternalID(*externalID)).
			Exist(sys)
		if err != nil {
			return nil, fmt.Errorf("invite.Accept: %w", err)
		}
		if taken {
			externalID = nil
		}
	}

	var u *ent.User
	var pwHash string
	if existing == nil || existing.Status != user.StatusACTIVE {
		if pwHash, err = password.Hash(ctx, in.Password); err != nil {
			return nil, fmt.Errorf("invite.Accept: %w", err)
		}
	}
	switch {
	case existing != nil && existing.Status == user.StatusACTIVE:
		u = existing // never changes an existing account's password or role
	case existing != nil: // INVITED: created quietly, activated now
		up := c.User.UpdateOne(existing).
			SetName(name).
			SetPasswordHash(pwHash).
			SetStatus(user.StatusACTIVE).
			SetRoleID(rl.ID).
			SetKind(user.Kind(inv.Kind))
		if existing.Email == nil {
			up.SetNillableEmail(extraEmail)
		}
		u, err = up.Save(sys)
	default:
		u, err = c.User.Create().
			SetOrganizationID(inv.OrganizationID).
			SetNillableEmail(cmpOrNil(inv.Email, extraEmail)).
			SetNillablePhone(inv.Phone).
			SetName(name).
			SetPasswordHash(pwHash).
			SetRoleID(rl.ID).
			SetKind(user.Kind(inv.Kind)).
			SetNillableExternalID(externalID).
			Save(sys)
	}
	if err != nil {
		return nil, fmt.Errorf("invite.Accept: account: %w", err)
	}
	if err := c.Invitation.UpdateOneID(inv.ID).SetUserID(u.ID).Exec(sys); err != nil {
		return nil, fmt.Errorf("invite.Accept: %w", err)
	}
	if err := s.joinWorkspaces(ctx, c, inv, u.ID); err != nil {
		return nil, err
	}
	if err := cancelQueued(ctx, c, inv.ID); err != nil {
		return nil, err
	}
	if err := c.AuditEvent.Create().
		SetOrganizationID(inv.OrganizationID).
		SetActorID(u.ID).
		SetAction("invitation.accepted").
		SetTargetType("Invitation").
		SetTargetID(inv.ID).
		SetSummary(who).
		Exec(sys); err != nil {
		return nil, fmt.Errorf("invite.Accept: audit: %w", err)
	}
	token, sess, err := accounts.StartSession(ctx, c, u.ID)
	if err != nil {
		return nil, err
	}
	s.publish(ctx, inv.OrganizationID, inv.ID, "ACCEPTED")
	return &Accepted{User: u, SessionToken: token, Session: sess}, nil
}

// joinWorkspaces makes the accepting user a JOINED member of the
// invitation's workspace and of every workspace they were added to while
// invited, and records a JOINED (or, for a membership new here, ADDED)
// event for each.
func (s *Service) joinWorkspaces(ctx context.Context, c *ent.Client, inv *ent.Invitation, userID int) error {
	sys := rule.System(ctx)
	waiting, err := c.Membership.Query().
		Where(membership.UserID(userID), membership.StatusEQ(membership.StatusNOT_JOINED)).
		All(sys)
	if err != nil {
		return fmt.Errorf("invite.Accept: memberships: %w", err)
	}
	joined := map[int]bool{}
	for _, m := range waiting {
		if err := c.Membership.UpdateOne(m).SetStatus(membership.StatusJOINED).ClearInvitationID().Exec(sys); err != nil {
			return fmt.Errorf("invite.Accept: membership: %w", err)
		}
		joined[m.WorkspaceID] = true
		if err := s.recordMembership(ctx, m, "JOINED"); err != nil {
			return err
		}
	}
	if inv.WorkspaceID == nil || joined[*inv.WorkspaceID] {
		return nil
	}
	existing, err := c.Membership.Query().
		Where(membership.WorkspaceID(*inv.WorkspaceID), membership.UserID(userID)).
		Only(sys)
	if err == nil && existing.Status == membership.StatusJOINED {
		return nil // already a member
	}
	if err != nil && !ent.IsNotFound(err) {
		return fmt.Errorf("invite.Accept: membership: %w", err)
	}
	m, err := c.Membership.Create().
		SetOrganizationID(inv.OrganizationID).
		SetWorkspaceID(*inv.WorkspaceID).
		SetUserID(userID).
		SetStatus(membership.StatusJOINED).
		Save(sys)
	if err != nil {
		return fmt.Errorf("invite.Accept: membership: %w", err)
	}
	return s.recordMembership(ctx, m, "ADDED")
}

func (s *Service) recordMembership(ctx context.Context, m *ent.Membership, kind string) error {
	if s.Events == nil {
		return nil
	}
	return s.Events.Record(ctx, eventlog.Event{
		OrgID: m.OrganizationID, WorkspaceID: m.WorkspaceID, Subject: eventlog.Membership,
		Type: kind, ObjectID: m.ID, UserID: m.UserID,
	})
}

// stillGrantable refuses an invitation whose role its inviter could no
// longer grant (the inviter was demoted, deactivated or the role raised).
func (s *Service) stillGrantable(ctx context.Context, c *ent.Client, inv *ent.Invitation) error {
	refuse := userErr("INVITATION_NOT_ACCEPTABLE", "token", "this invitation can no longer be accepted as sent; ask for a new one")
	inviter := inv.Edges.Inviter
	if inviter == nil || inviter.Status != user.StatusACTIVE {
		return refuse
	}
	ir, err := c.User.QueryRole(inviter).Only(ctx)
	if err != nil {
		return fmt.Errorf("invite: inviter role: %w", err)
	}
	rl := inv.Edges.Role
	if !rule.CanGrant(ir.Rank, ir.Admin, rl.Rank, rl.Admin || inv.Admin) {
		return refuse // the role is no longer within the inviter's reach
	}
	if ir.Admin {
		return nil
	}
	// A workspace's owners invite clients into it: still an owner?
	if inv.Kind != invitation.KindCLIENT || inv.WorkspaceID == nil {
		return refuse
	}
	owner, err := c.Membership.Query().
		Where(membership.WorkspaceID(*inv.WorkspaceID), membership.UserID(inviter.ID),
			membership.RoleEQ(membership.RoleOWNER), membership.StatusEQ(membership.StatusJOINED)).
		Exist(ctx)
	if err != nil {
		return fmt.Errorf("invite: inviter ownership: %w", err)
	}
	if !owner {
		return refuse
	}
	return nil
}

// Resend issues a fresh token, expiry and message for a pending or expired
// invitation; every earlier link stops working.
func (s *Service) Resend(ctx context.Context, c *ent.Client, id int) (*ent.Invitation, error) {
	if err := rule.RequireAdminOrOwner(ctx, c, "resend invitations"); err != nil {
		return nil, err
	}
	inv, err := c.Invitation.Query().Where(invitation.ID(id)).WithOrganization().Only(ctx)
	if err != nil {
		return nil, err
	}
	now := s.Now()
	switch inv.Status {
	case invitation.StatusACCEPTED:
		return nil, userErr(ErrAlreadyAccepted.Code, "input.id", "this invitation was already accepted")
	case invitation.StatusREVOKED:
		return nil, userErr(ErrRevoked.Code, "input.id", "this invitation was revoked; send a new one")
	}
	if inv.LastSentAt != nil {
		if wait := inv.LastSentAt.Add(s.ResendCooldown).Sub(now); wait > 0 {
			return nil, userErr("RESEND_TOO_SOON", "input.id",
				fmt.Sprintf("this invitation was sent moments ago; try again in %d seconds", int(wait.Seconds())+1))
		}
	}
	// Reviving an expired invitation must not create a second pending one
	// for the address or phone.
	sameReach := invitation.Or(invitation.EmailEQ(deref(inv.Email)), invitation.PhoneEQ(deref(inv.Phone)))
	if inv.Email == nil {
		sameReach = invitation.PhoneEQ(*inv.Phone)
	} else if inv.Phone == nil {
		sameReach = invitation.EmailEQ(*inv.Email)
	}
	others := []predicate.Invitation{invitation.OrganizationID(inv.OrganizationID), invitation.IDNEQ(inv.ID), sameReach, invitation.StatusEQ(invitation.StatusPENDING)}
	other, err := c.Invitation.Query().
		Where(append(others, invitation.ExpiresAtGT(now))...).
		Exist(rule.System(ctx))
	if err != nil {
		return nil, err
	}
	if other {
		return nil, userErr("ALREADY_INVITED", "input.id", cmpOr(deref(inv.Email), deref(inv.Phone))+" has a newer pending invitation")
	}
	// Those are expired already (checked above); marking them so is
	// bookkeeping, not a change the caller makes.
	if _, err := c.Invitation.Update().
		Where(others...).
		SetStatus(invitation.StatusEXPIRED).
		Save(rule.System(ctx)); err != nil {
		return nil, err
	}
	gen := inv.TokenGeneration + 1
	inv, err = c.Invitation.UpdateOne(inv).
		SetTokenNonces(append(slices.Clone(inv.TokenNonces), secret.NewNonce())).
		SetTokenGeneration(gen).
		SetStatus(invitation.StatusPENDING).
		SetExpiresAt(now.Add(time.Duration(inv.Edges.Organization.InvitationExpiryDays) * 24 * time.Hour)).
		AddSendCount(1).
		SetLastSentAt(now).
		SetLastDeliveryError("").
		Save(ctx)
	if err != nil {
		return nil, err
	}
	if err := cancelQueued(ctx, c, inv.ID); err != nil {
		return nil, err
	}
	if err := queueInvitation(c, inv, gen, now).Exec(rule.System(ctx)); err != nil {
		return nil, err
	}
	if err := auditCreate(c, auth.FromContext(ctx), "invitation.resent", inv.ID, cmpOr(deref(inv.Email), deref(inv.Phone))).Exec(ctx); err != nil {
		return nil, err
	}
	if s.Kick != nil {
		txn.AfterCommit(ctx, s.Kick)
	}
	return inv, nil
}

// Revoke ends a pending (or expired) invitation; its link stops working.
func (s *Service) Revoke(ctx context.Context, c *ent.Client, id int) (*ent.Invitation, error) {
	if err := rule.RequireAdmin(ctx, "revoke invitations"); err != nil {
		return nil, err
	}
	inv, err := c.Invitation.Get(ctx, id)
	if err != nil {
		return nil, err
	}
	switch inv.Status {
	case invitation.StatusACCEPTED:
		return nil, userErr(ErrAlreadyAccepted.Code, "input.id", "this invitation was already accepted")
	case invitation.StatusREVOKED:
		return nil, userErr(ErrRevoked.Code, "input.id", "this invitation is already revoked")
	}
	now := s.Now()
	inv, err = c.Invitation.UpdateOne(inv).SetStatus(invitation.StatusREVOKED).SetRevokedAt(now).Save(ctx)
	if err != nil {
		return nil, err
	}
	if err := cancelQueued(ctx, c, inv.ID); err != nil {
		return nil, err
	}
	if err := auditCreate(c, auth.FromContext(ctx), "invitation.revoked", inv.ID, deref(inv.Email)).Exec(ctx); err != nil {
		return nil, err
	}
	s.publish(ctx, inv.OrganizationID, inv.ID, "REVOKED")
	return inv, nil
}

// cancelQueued cancels the messages of an invitation not yet sent: they
// would carry a link that no longer works.
func cancelQueued(ctx context.Context, c *ent.Client, invitationID int) error {
	_, err := c.Delivery.Update().
		Where(delivery.InvitationID(invitationID), delivery.StatusEQ(delivery.StatusQUEUED)).
		SetStatus(delivery.StatusCANCELLED).
		Save(rule.System(ctx))
	if err != nil {
		return fmt.Errorf("invite: cancel queued messages: %w", err)
	}
	return nil
}

func cmpOrNil(a, b *string) *string {
	if a != nil {
		return a
	}
	return b
}

func deref(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}

// AsUserError returns the payload error inside err, if it is one.
func AsUserError(err error) (*UserError, bool) {
	var ue *UserError
	ok := errors.As(err, &ue)
	return ue, ok
}

// RetryDeliveries queues FAILED deliveries of the viewer's organization
// again (admins): ids, or all of them when ids is nil. Each gets a fresh
// retry window (OUTBOX_MAX_AGE from now). It returns how many.
func (s *Service) RetryDeliveries(ctx context.Context, c *ent.Client, ids []int) (int, error) {
	if err := rule.RequireAdmin(ctx, "retry deliveries"); err != nil {
		return 0, err
	}
	now := s.Now()
	q := c.Delivery.Update().Where(delivery.StatusEQ(delivery.StatusFAILED))
	if ids != nil {
		q = q.Where(delivery.IDIn(ids...))
	}
	// The tenant rule limits the update to the viewer's organization.
	n, err := q.SetStatus(delivery.StatusQUEUED).
		SetAttempts(0).
		SetQueuedAt(now).
		SetNextAttemptAt(now).
		Save(ctx)
	if err != nil {
		return 0, fmt.Errorf("invite.RetryDeliveries: %w", err)
	}
	if n > 0 && s.Kick != nil {
		txn.AfterCommit(ctx, s.Kick)
	}
	return n, nil
}
