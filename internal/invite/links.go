package invite

import (
	"context"
	"fmt"
	"math"
	"slices"
	"strings"
	"time"

	"entgo.io/ent/dialect/sql"

	"admit/ent"
	"admit/ent/delivery"
	"admit/ent/invitation"
	"admit/ent/invitelink"
	"admit/ent/predicate"
	"admit/ent/user"
	"admit/internal/address"
	"admit/internal/auth"
	"admit/internal/ratelimit"
	"admit/internal/rule"
	"admit/internal/secret"
	"admit/internal/txn"
)

// TemplateAccountExists names the message sent when someone joins through a
// link with an address that already has an account.
const TemplateAccountExists = "account_exists"

// TemplateJoinRequestConfirm names the message that proves a workspace join
// requester's address.
const TemplateJoinRequestConfirm = "join_request_confirm"

// CompanyLinkTTL is how long a domain-restricted (company) link lives by
// default.
const CompanyLinkTTL = 10 * 24 * time.Hour

// Link lookup failures.
var (
	ErrLinkNotFound  = userErr("LINK_NOT_FOUND", "token", "no invite link has this address; check that it was copied whole")
	ErrLinkRefreshed = userErr("LINK_REFRESHED", "token", "this invite link was replaced by a newer one; ask for the current link")
	ErrLinkRevoked   = userErr("LINK_REVOKED", "token", "this invite link was turned off")
	ErrLinkExpired   = userErr("LINK_EXPIRED", "token", "this invite link has expired")
	ErrLinkExhausted = userErr("LINK_EXHAUSTED", "token", "this invite link has been used as many times as allowed")
)

// LinkLimits rate-limit joins per link and per client address.
type LinkLimits struct {
	PerLink    *ratelimit.Limiter
	PerAddress *ratelimit.Limiter
}

// CreateLinkInput describes a new link.
type CreateLinkInput struct {
	Kind              invitelink.Kind
	RoleID            *int
	RestrictToDomains bool
	ExpiresAt         *time.Time
	MaxUses           *int
}

// CreateLink makes an organization invite link (admins). A link restricted
// to the organization's domains (the company link) expires after 10 days
// unless told otherwise; a shareable link never expires unless told.
func (s *Service) CreateLink(ctx context.Context, c *ent.Client, in CreateLinkInput) (*ent.InviteLink, error) {
	if err := rule.RequireAdmin(ctx, "manage invite links"); err != nil {
		return nil, err
	}
	v := auth.FromContext(ctx)
	now := s.Now()
	if in.ExpiresAt != nil && !in.ExpiresAt.After(now) {
		return nil, userErr("INVALID_INPUT", "input.expiresAt", "expiresAt must be in the future")
	}
	if in.MaxUses != nil && *in.MaxUses < 1 {
		return nil, userErr("INVALID_INPUT", "input.maxUses", "maxUses must be at least 1")
	}
	rl, err := grantableRole(ctx, c, in.RoleID, false)
	if err != nil {
		return nil, err
	}
	expires := in.ExpiresAt
	if in.RestrictToDomains {
		org, err := c.Organization.Get(ctx, v.OrgID)
		if err != nil {
			return nil, err
		}
		if len(org.Domains) == 0 {
			return nil, userErr("NO_DOMAINS", "input.restrictToDomains", "add a verified domain to the organization before creating a domain-restricted link")
		}
		if expires == nil {
			expires = ptrTime(now.Add(CompanyLinkTTL))
		}
	}
	link, err := c.InviteLink.Create().
		SetOrganizationID(v.OrgID).
		SetPurpose(invitelink.PurposeORGANIZATION).
		SetKind(in.Kind).
		SetRoleID(rl.ID).
		SetRestrictToDomains(in.RestrictToDomains).
		SetNillableExpiresAt(expires).
		SetNillableMaxUses(in.MaxUses).
		SetCreatedByID(v.UserID).
		SetTokenNonces([][]byte{secret.NewNonce()}).
		Save(ctx)
	if err != nil {
		return nil, err
	}
	return link, s.auditLink(ctx, c, "invite_link.created", link)
}

// RefreshLink gives a link a new URL; the previous one stops working at once.
func (s *Service) RefreshLink(ctx context.Context, c *ent.Client, id int) (*ent.InviteLink, error) {
	if err := rule.RequireAdmin(ctx, "manage invite links"); err != nil {
		return nil, err
	}
	link, err := c.InviteLink.Get(ctx, id)
	if err != nil {
		return nil, err
	}
	if link.RevokedAt != nil {
		return nil, userErr(ErrLinkRevoked.Code, "input.id", "this link was turned off; create a new one")
	}
	link, err = c.InviteLink.UpdateOne(link).
		SetTokenNonces(append(slices.Clone(link.TokenNonces), secret.NewNonce())).
		AddGeneration(1).
		Save(ctx)
	if err != nil {
		return nil, err
	}
	return link, s.auditLink(ctx, c, "invite_link.refreshed", link)
}

// RevokeLink turns a link off for good.
func (s *Service) RevokeLink(ctx context.Context, c *ent.Client, id int) (*ent.InviteLink, error) {
	if err := rule.RequireAdmin(ctx, "manage invite links"); err != nil {
		return nil, err
	}
	link, err := c.InviteLink.Get(ctx, id)
	if err != nil {
		return nil, err
	}
	if link.RevokedAt != nil {
		return nil, userErr(ErrLinkRevoked.Code, "input.id", "this link is already turned off")
	}
	if link, err = c.InviteLink.UpdateOne(link).SetRevokedAt(s.Now()).Save(ctx); err != nil {
		return nil, err
	}
	return link, s.auditLink(ctx, c, "invite_link.revoked", link)
}

func (s *Service) auditLink(ctx context.Context, c *ent.Client, action string, link *ent.InviteLink) error {
	v := auth.FromContext(ctx)
	return c.AuditEvent.Create().
		SetOrganizationID(link.OrganizationID).
		SetActorID(v.UserID).
		SetAction(action).
		SetTargetType("InviteLink").
		SetTargetID(link.ID).
		SetSummary(string(link.Kind)).
		Exec(ctx)
}

// LinkToken is the link's current token; nothing of it is stored.
func (s *Service) LinkToken(link *ent.InviteLink) string {
	g := link.Generation
	if g < 1 || g > len(link.TokenNonces) {
		return ""
	}
	return s.Keys.Derive(secret.Link, link.ID, g, link.TokenNonces[g-1])
}

// LinkStatus is the link's state as a reader should see it.
func LinkStatus(link *ent.InviteLink, now time.Time) string {
	switch {
	case link.RevokedAt != nil:
		return "REVOKED"
	case link.ExpiresAt != nil && !link.ExpiresAt.After(now):
		return "EXPIRED"
	case link.MaxUses != nil && link.UseCount >= *link.MaxUses:
		return "EXHAUSTED"
	}
	return "ACTIVE"
}

// LookupLink finds the live link a token stands for, with its organization
// and role, checking the token in constant time. It needs no viewer.
func (s *Service) LookupLink(ctx context.Context, c *ent.Client, token string) (*ent.InviteLink, error) {
	id, gen, ok := secret.ParseDerived(secret.Link, token)
	if !ok {
		return nil, ErrLinkNotFound
	}
	link, err := c.InviteLink.Query().
		Where(invitelink.ID(id), invitelink.PurposeEQ(invitelink.PurposeORGANIZATION)).
		WithOrganization().
		WithRole().
		Only(rule.System(ctx))
	if ent.IsNotFound(err) {
		return nil, ErrLinkNotFound
	}
	if err != nil {
		return nil, fmt.Errorf("invite.LookupLink: %w", err)
	}
	if gen > len(link.TokenNonces) || !s.Keys.VerifyDerived(secret.Link, token, id, gen, link.TokenNonces[gen-1]) {
		return nil, ErrLinkNotFound
	}
	switch {
	case link.RevokedAt != nil:
		return link, ErrLinkRevoked
	case gen != link.Generation:
		return link, ErrLinkRefreshed
	}
	switch LinkStatus(link, s.Now()) {
	case "EXPIRED":
		return link, ErrLinkExpired
	case "EXHAUSTED":
		return link, ErrLinkExhausted
	}
	return link, nil
}

// JoinInput is what someone with the link sends.
type JoinInput struct {
	Token string
	Email string
	Name  string
}

// Join lets anyone holding a live link ask to join: it counts one use,
// creates a pending invitation (source LINK) and sends its confirmation
// message, so the address is proven before any account exists. The answer
// is the same whether or not the address already has an account (that
// person is sent an "you already have an account" message instead), so a
// link cannot be used to find out who is a member.
func (s *Service) Join(ctx context.Context, c *ent.Client, limits LinkLimits, in JoinInput) error {
	id, _, _ := secret.ParseDerived(secret.Link, in.Token)
	if ok, wait := limits.PerAddress.Allow("ip:" + auth.ClientIP(ctx)); !ok {
		return rateLimited(wait)
	}
	if ok, wait := limits.PerLink.Allow(fmt.Sprint("link:", id)); !ok {
		return rateLimited(wait)
	}
	link, err := s.LookupLink(ctx, c, in.Token)
	if err != nil {
		return err
	}
	email, typedName, err := address.Parse(in.Email)
	if err != nil {
		return userErr(CodeInvalidAddress, "input.email", err.Error())
	}
	name := strings.TrimSpace(cmpOr(in.Name, typedName))
	if len([]rune(name)) > 200 {
		return userErr("INVALID_INPUT", "input.name", "name must be at most 200 characters")
	}
	org := link.Edges.Organization
	if link.RestrictToDomains && !slices.Contains(org.Domains, domainOf(email)) {
		return userErr(CodeDomainNotAllowed, "input.email", "this link is only for addresses at "+strings.Join(org.Domains, ", "))
	}

	sys := rule.System(ctx)
	now := s.Now()
	// Count the use first, atomically: of N+k concurrent joins on a link
	// with N uses left exactly N get through.
	conds := []predicate.InviteLink{
		invitelink.ID(link.ID),
		invitelink.Generation(link.Generation),
		invitelink.RevokedAtIsNil(),
		invitelink.Or(invitelink.ExpiresAtIsNil(), invitelink.ExpiresAtGT(now)),
		invitelink.Or(invitelink.MaxUsesIsNil(), predicate.InviteLink(func(s *sql.Selector) {
			s.Where(sql.ColumnsLT(s.C(invitelink.FieldUseCount), s.C(invitelink.FieldMaxUses)))
		})),
	}
	n, err := c.InviteLink.Update().Where(conds...).AddUseCount(1).Save(sys)
	if err != nil {
		return fmt.Errorf("invite.Join: count use: %w", err)
	}
	if n == 0 {
		if _, err := s.LookupLink(ctx, c, in.Token); err != nil {
			return err
		}
		return ErrLinkExhausted
	}

	member, err := c.User.Query().
		Where(user.OrganizationID(link.OrganizationID), user.Email(email), user.StatusIn(user.StatusACTIVE, user.StatusDEACTIVATED)).
		Exist(sys)
	if err != nil {
		return fmt.Errorf("invite.Join: %w", err)
	}
	if err := c.AuditEvent.Create().
		SetOrganizationID(link.OrganizationID).
		SetAction("invite_link.used").
		SetTargetType("InviteLink").
		SetTargetID(link.ID).
		SetSummary(email).
		Exec(sys); err != nil {
		return fmt.Errorf("invite.Join: audit: %w", err)
	}
	if member {
		err := c.Delivery.Create().
			SetOrganizationID(link.OrganizationID).
			SetChannel(delivery.ChannelEMAIL).
			SetRecipient(email).
			SetTemplate(TemplateAccountExists).
			SetNextAttemptAt(now).
			Exec(sys)
		if err != nil {
			return fmt.Errorf("invite.Join: %w", err)
		}
		s.kickAfterCommit(ctx)
		return nil
	}
	return s.joinInvitation(ctx, c, link, email, name, now)
}

// joinInvitation creates the pending invitation for a link join, or sends
// the existing pending one again (at most once per cooldown).
func (s *Service) joinInvitation(ctx context.Context, c *ent.Client, link *ent.InviteLink, email, name string, now time.Time) error {
	sys := rule.System(ctx)
	if _, err := c.Invitation.Update().
		Where(invitation.OrganizationID(link.OrganizationID), invitation.Email(email), invitation.StatusEQ(invitation.StatusPENDING), invitation.ExpiresAtLTE(now)).
		SetStatus(invitation.StatusEXPIRED).
		Save(sys); err != nil {
		return fmt.Errorf("invite.Join: %w", err)
	}
	pending, err := c.Invitation.Query().
		Where(invitation.OrganizationID(link.OrganizationID), invitation.Email(email), invitation.StatusEQ(invitation.StatusPENDING)).
		Only(sys)
	switch {
	case err == nil:
		if pending.LastSentAt != nil && now.Sub(*pending.LastSentAt) < s.ResendCooldown {
			return nil
		}
		if err := c.Invitation.UpdateOne(pending).AddSendCount(1).SetLastSentAt(now).Exec(sys); err != nil {
			return err
		}
		if err := queueInvitation(c, pending, pending.TokenGeneration, now).Exec(sys); err != nil {
			return err
		}
		s.kickAfterCommit(ctx)
		return nil
	case !ent.IsNotFound(err):
		return fmt.Errorf("invite.Join: %w", err)
	}
	inv, err := c.Invitation.Create().
		SetOrganizationID(link.OrganizationID).
		SetEmail(email).
		SetName(name).
		SetKind(invitation.Kind(link.Kind)).
		SetSource(invitation.SourceLINK).
		SetRoleID(*link.RoleID).
		SetNillableInviterID(link.CreatedByID).
		SetInviteLinkID(link.ID).
		SetTokenNonces([][]byte{secret.NewNonce()}).
		SetExpiresAt(now.Add(time.Duration(link.Edges.Organization.InvitationExpiryDays) * 24 * time.Hour)).
		SetSendCount(1).
		SetLastSentAt(now).
		Save(sys)
	if err != nil {
		return fmt.Errorf("invite.Join: invitation: %w", err)
	}
	if err := queueInvitation(c, inv, 1, now).Exec(sys); err != nil {
		return fmt.Errorf("invite.Join: %w", err)
	}
	s.kickAfterCommit(ctx)
	return nil
}

func (s *Service) kickAfterCommit(ctx context.Context) {
	if s.Kick != nil {
		txn.AfterCommit(ctx, s.Kick)
	}
}

func rateLimited(wait time.Duration) error {
	secs := max(1, int(math.Ceil(wait.Seconds())))
	return &UserError{Code: "RATE_LIMITED", Message: fmt.Sprintf("too many attempts; try again in %d seconds", secs), RetryAfter: secs}
}

func ptrTime(t time.Time) *time.Time { return &t }
