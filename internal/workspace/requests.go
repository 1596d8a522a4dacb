package workspace

import (
	"bytes"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"math"
	"strings"
	"time"
	"unicode/utf8"

	entsql "entgo.io/ent/dialect/sql"

	"admit/ent"
	"admit/ent/delivery"
	"admit/ent/invitation"
	"admit/ent/joinrequest"
	"admit/ent/membership"
	"admit/ent/user"
	"admit/internal/address"
	"admit/internal/apperr"
	"admit/internal/auth"
	"admit/internal/invite"
	"admit/internal/rule"
	"admit/internal/secret"
)

// Join request failures.
var (
	ErrRequestNotFound = userErr("JOIN_REQUEST_NOT_FOUND", "token", "no join request has this link; check that it was copied whole")
	ErrRequestClosed   = userErr("JOIN_REQUEST_CLOSED", "token", "this join request was already decided or withdrawn")
)

// RequestInput is what someone holding a workspace link sends.
type RequestInput struct {
	Token   string
	Email   string
	Name    string
	Message string
}

// Requested is the outcome of a request to join. Request and Token are set
// only for a signed-in requester; anyone else gets them through the emailed
// link, once the address is proven.
type Requested struct {
	Request *ent.JoinRequest
	Token   string
}

// openStatuses are the statuses of a request still waiting.
var openStatuses = []joinrequest.Status{joinrequest.StatusUNCONFIRMED, joinrequest.StatusPENDING}

// Request asks to join the workspace whose link token is given. A signed-in
// user of the organization asks as themselves, and the request is pending
// at once. Anyone else gets a confirmation email, whether or not the
// address has an account, and the request stays unconfirmed (unseen by
// approvers) until its link is followed. Asking again returns the open
// request, and sends its email again at most once per cooldown.
func (s *Service) Request(ctx context.Context, c *ent.Client, limits invite.LinkLimits, in RequestInput) (*Requested, error) {
	if ok, wait := limits.PerAddress.Allow("ip:" + auth.ClientIP(ctx)); !ok {
		return nil, rateLimited(wait)
	}
	if ok, wait := limits.PerLink.Allow(linkRateKey(in.Token)); !ok {
		return nil, rateLimited(wait)
	}
	ws, err := s.LookupLink(ctx, c, in.Token)
	if err != nil {
		return nil, err
	}
	if utf8.RuneCountInString(in.Message) > 2000 {
		return nil, userErr("INVALID_INPUT", "input.message", "message must be at most 2000 characters")
	}
	name := strings.TrimSpace(in.Name)
	if utf8.RuneCountInString(name) > 200 {
		return nil, userErr("INVALID_INPUT", "input.name", "name must be at most 200 characters")
	}
	sys := rule.System(ctx)
	now := s.Now()
	if v := auth.FromContext(ctx); v != nil && v.OrgID == ws.OrganizationID {
		u, err := c.User.Get(sys, v.UserID)
		if err != nil {
			return nil, fmt.Errorf("workspace.Request: %w", err)
		}
		if u.Email == nil {
			return nil, userErr("INVALID_INPUT", "", "your account has no email address")
		}
		member, err := c.Membership.Query().
			Where(membership.WorkspaceID(ws.ID), membership.UserID(u.ID)).
			Exist(sys)
		if err != nil {
			return nil, fmt.Errorf("workspace.Request: %w", err)
		}
		if member {
			return nil, userErr("ALREADY_WORKSPACE_MEMBER", "", "you are already a member of this workspace")
		}
		jr, err := s.openRequest(ctx, c, ws, *u.Email, cmpOr(name, u.Name), in.Message, now, &u.ID)
		if err != nil {
			return nil, err
		}
		if jr.Status == joinrequest.StatusUNCONFIRMED {
			// An earlier request for this address, made signed out: the
			// session proves the address now.
			if jr, err = s.confirm(ctx, c, jr, now); err != nil {
				return nil, err
			}
		}
		return &Requested{Request: jr, Token: s.RequestToken(jr)}, nil
	}

	email, typedName, err := address.Parse(in.Email)
	if err != nil {
		return nil, userErr(invite.CodeInvalidAddress, "input.email", err.Error())
	}
	jr, err := s.openRequest(ctx, c, ws, email, cmpOr(name, typedName), in.Message, now, nil)
	if err != nil {
		return nil, err
	}
	if jr.LastSentAt != nil && now.Sub(*jr.LastSentAt) < s.cooldown() {
		return &Requested{}, nil // same answer; no second email yet
	}
	if err := c.JoinRequest.UpdateOne(jr).SetLastSentAt(now).Exec(sys); err != nil {
		return nil, fmt.Errorf("workspace.Request: %w", err)
	}
	err = c.Delivery.Create().
		SetOrganizationID(ws.OrganizationID).
		SetChannel(delivery.ChannelEMAIL).
		SetRecipient(email).
		SetTemplate(invite.TemplateJoinRequestConfirm).
		SetJoinRequestID(jr.ID).
		SetNextAttemptAt(now).
		Exec(sys)
	if err != nil {
		return nil, fmt.Errorf("workspace.Request: queue: %w", err)
	}
	s.kickAfterCommit(ctx)
	return &Requested{}, nil
}

// openRequest returns the waiting request of email for ws, creating it
// (UNCONFIRMED, or PENDING for a signed-in requester) when there is none.
// The partial unique index decides between concurrent first requests: the
// loser's insert does nothing and it reads the winner's row.
func (s *Service) openRequest(ctx context.Context, c *ent.Client, ws *ent.Workspace, email, name, message string, now time.Time, requesterID *int) (*ent.JoinRequest, error) {
	sys := rule.System(ctx)
	status := joinrequest.StatusUNCONFIRMED
	var confirmed *time.Time
	if requesterID != nil {
		status, confirmed = joinrequest.StatusPENDING, &now
	}
	nonce := secret.NewNonce()
	err := c.JoinRequest.Create().
		SetOrganizationID(ws.OrganizationID).
		SetWorkspaceID(ws.ID).
		SetEmail(email).
		SetName(clip(name, 200)).
		SetMessage(message).
		SetStatus(status).
		SetNillableConfirmedAt(confirmed).
		SetNillableRequesterID(requesterID).
		SetTokenNonces([][]byte{nonce}).
		OnConflict(
			entsql.ConflictColumns(joinrequest.FieldWorkspaceID, joinrequest.FieldEmail),
			// Literal text: SQLite takes a partial index as the conflict
			// target only when this implies the index's WHERE clause.
			entsql.ConflictWhere(entsql.ExprP("status IN ('UNCONFIRMED', 'PENDING')")),
		).
		DoNothing().
		Exec(sys)
	if err != nil && !errors.Is(err, sql.ErrNoRows) {
		return nil, fmt.Errorf("workspace.Request: %w", err)
	}
	jr, err := c.JoinRequest.Query().
		Where(joinrequest.WorkspaceID(ws.ID), joinrequest.Email(email), joinrequest.StatusIn(openStatuses...)).
		Only(sys)
	if err != nil {
		return nil, fmt.Errorf("workspace.Request: %w", err)
	}
	created := len(jr.TokenNonces) > 0 && bytes.Equal(jr.TokenNonces[0], nonce)
	if created && jr.Status == joinrequest.StatusPENDING {
		// Created just now by a signed-in requester: approvers hear of it.
		if err := s.joinRequestEvent(ctx, jr, "CREATED"); err != nil {
			return nil, err
		}
		if err := s.auditSystem(ctx, c, jr, "join_request.created"); err != nil {
			return nil, err
		}
	}
	return jr, nil
}

// RequestToken is the requester's token for jr; nothing of it is stored.
func (s *Service) RequestToken(jr *ent.JoinRequest) string {
	if len(jr.TokenNonces) == 0 {
		return ""
	}
	return s.Keys.Derive(secret.JoinRequest, jr.ID, 1, jr.TokenNonces[0])
}

// LookupRequest finds the join request a requester token stands for, with
// its workspace and organization, in constant time. It needs no viewer.
func (s *Service) LookupRequest(ctx context.Context, c *ent.Client, token string) (*ent.JoinRequest, error) {
	id, gen, ok := secret.ParseDerived(secret.JoinRequest, token)
	if !ok || gen != 1 {
		return nil, ErrRequestNotFound
	}
	jr, err := c.JoinRequest.Query().
		Where(joinrequest.ID(id)).
		WithWorkspace().
		WithOrganization().
		Only(rule.System(ctx))
	if ent.IsNotFound(err) {
		return nil, ErrRequestNotFound
	}
	if err != nil {
		return nil, fmt.Errorf("workspace.LookupRequest: %w", err)
	}
	if len(jr.TokenNonces) == 0 || !s.Keys.VerifyDerived(secret.JoinRequest, token, id, 1, jr.TokenNonces[0]) {
		return nil, ErrRequestNotFound
	}
	return jr, nil
}

// Confirm proves a requester's address (they followed the emailed link):
// the request becomes pending and approvers hear of it. Confirming again
// changes nothing.
func (s *Service) Confirm(ctx context.Context, c *ent.Client, token string) (*ent.JoinRequest, error) {
	jr, err := s.LookupRequest(ctx, c, token)
	if err != nil {
		return nil, err
	}
	if jr.Status != joinrequest.StatusUNCONFIRMED {
		return jr, nil
	}
	if jr.Edges.Workspace.ArchivedAt != nil {
		return nil, ErrLinkArchived
	}
	confirmed, err := s.confirm(ctx, c, jr, s.Now())
	if err != nil {
		return nil, err
	}
	confirmed.Edges = jr.Edges
	return confirmed, nil
}

// confirm turns an unconfirmed request pending, linking the account that
// has its address, if any.
func (s *Service) confirm(ctx context.Context, c *ent.Client, jr *ent.JoinRequest, now time.Time) (*ent.JoinRequest, error) {
	sys := rule.System(ctx)
	up := c.JoinRequest.UpdateOneID(jr.ID).
		Where(joinrequest.StatusEQ(joinrequest.StatusUNCONFIRMED)).
		SetStatus(joinrequest.StatusPENDING).
		SetConfirmedAt(now)
	if jr.RequesterID == nil {
		existing, err := c.User.Query().
			Where(user.OrganizationID(jr.OrganizationID), user.Email(jr.Email)).
			OnlyID(sys)
		if err != nil && !ent.IsNotFound(err) {
			return nil, fmt.Errorf("workspace.Confirm: %w", err)
		}
		if err == nil {
			up.SetRequesterID(existing)
		}
	}
	updated, err := up.Save(sys)
	if ent.IsNotFound(err) {
		return c.JoinRequest.Get(sys, jr.ID) // confirmed concurrently
	}
	if err != nil {
		return nil, fmt.Errorf("workspace.Confirm: %w", err)
	}
	if err := s.joinRequestEvent(ctx, updated, "CREATED"); err != nil {
		return nil, err
	}
	return updated, s.auditSystem(ctx, c, updated, "join_request.created")
}

// Cancel withdraws a waiting request, through its requester token.
func (s *Service) Cancel(ctx context.Context, c *ent.Client, token string) (*ent.JoinRequest, error) {
	jr, err := s.LookupRequest(ctx, c, token)
	if err != nil {
		return nil, err
	}
	sys := rule.System(ctx)
	updated, err := c.JoinRequest.UpdateOneID(jr.ID).
		Where(joinrequest.StatusIn(openStatuses...)).
		SetStatus(joinrequest.StatusCANCELLED).
		Save(sys)
	if ent.IsNotFound(err) {
		return nil, ErrRequestClosed
	}
	if err != nil {
		return nil, fmt.Errorf("workspace.Cancel: %w", err)
	}
	updated.Edges = jr.Edges
	if jr.Status == joinrequest.StatusPENDING {
		// Approvers never saw an unconfirmed request; nothing to tell them.
		if err := s.joinRequestEvent(ctx, updated, "CANCELLED"); err != nil {
			return nil, err
		}
	}
	return updated, s.auditSystem(ctx, c, updated, "join_request.cancelled")
}

// RequesterView is what a requester may read through their token.
type RequesterView struct {
	Request *ent.JoinRequest
	// Members is set while the request waits, is confirmed, and the
	// workspace allows viewing.
	Members []*ent.Membership
	Viewing bool
}

// View returns the request a token stands for and, with viewing
// permission, the workspace's members.
func (s *Service) View(ctx context.Context, c *ent.Client, token string) (*RequesterView, error) {
	jr, err := s.LookupRequest(ctx, c, token)
	if err != nil {
		return nil, err
	}
	return s.view(ctx, c, jr)
}

func (s *Service) view(ctx context.Context, c *ent.Client, jr *ent.JoinRequest) (*RequesterView, error) {
	out := &RequesterView{Request: jr}
	ws := jr.Edges.Workspace
	if ws == nil || !ws.LinkAllowsViewing || ws.ArchivedAt != nil || jr.Status != joinrequest.StatusPENDING {
		return out, nil
	}
	members, err := c.Membership.Query().
		Where(membership.WorkspaceID(ws.ID)).
		WithUser().
		Order(ent.Asc(membership.FieldID)).
		Limit(500).
		All(rule.System(ctx))
	if err != nil {
		return nil, fmt.Errorf("workspace.View: %w", err)
	}
	out.Members, out.Viewing = members, true
	return out, nil
}

// ViewOf is View for a request just changed by this request.
func (s *Service) ViewOf(ctx context.Context, c *ent.Client, jr *ent.JoinRequest) (*RequesterView, error) {
	return s.view(ctx, c, jr)
}

func (s *Service) auditSystem(ctx context.Context, c *ent.Client, jr *ent.JoinRequest, action string) error {
	create := c.AuditEvent.Create().
		SetOrganizationID(jr.OrganizationID).
		SetAction(action).
		SetTargetType("JoinRequest").
		SetTargetID(jr.ID).
		SetSummary(jr.Email)
	if v := auth.FromContext(ctx); v != nil && v.OrgID == jr.OrganizationID {
		create.SetActorID(v.UserID)
	}
	if err := create.Exec(rule.System(ctx)); err != nil {
		return fmt.Errorf("workspace: audit %s: %w", action, err)
	}
	return nil
}

// ApproveInput says how to admit a requester.
type ApproveInput struct {
	ID     int
	As     user.Kind
	RoleID *int
}

// Approve admits the requester of a pending request. An active account
// joins at once; anyone else gets an invitation of the chosen kind through
// the pipeline and a NOT_JOINED membership. Of concurrent decisions on one
// request exactly one wins; the others get CONFLICT.
func (s *Service) Approve(ctx context.Context, c *ent.Client, in ApproveInput) (*ent.JoinRequest, *ent.Membership, error) {
	jr, err := s.decidable(ctx, c, in.ID)
	if err != nil {
		return nil, nil, err
	}
	v := auth.FromContext(ctx)
	ws := jr.Edges.Workspace
	sys := rule.System(ctx)
	existing, err := c.User.Query().
		Where(user.OrganizationID(jr.OrganizationID), user.Email(jr.Email)).
		Only(sys)
	if err != nil && !ent.IsNotFound(err) {
		return nil, nil, fmt.Errorf("workspace.Approve: %w", err)
	}
	active := existing != nil && existing.Status == user.StatusACTIVE
	switch {
	case existing != nil && existing.Status == user.StatusDEACTIVATED:
		return nil, nil, userErr("ACCOUNT_DEACTIVATED", "input.id", "the account for "+jr.Email+" is deactivated; ask an administrator")
	case !active && in.As == user.KindINTERNAL && !v.Admin:
		return nil, nil, rule.Forbidden("only administrators may admit someone new to the organization as an internal user")
	}
	decided, err := s.decide(ctx, c, jr, joinrequest.StatusAPPROVED, func(u *ent.JoinRequestUpdateOne) {
		u.SetDecidedAs(joinrequest.DecidedAs(in.As))
	})
	if err != nil {
		return nil, nil, err
	}
	var m *ent.Membership
	if active {
		m, err = s.addMember(ctx, c, ws, existing, membership.StatusJOINED, nil)
		if err != nil {
			return nil, nil, err
		}
		if decided, err = c.JoinRequest.UpdateOne(decided).SetRequesterID(existing.ID).Save(sys); err != nil {
			return nil, nil, fmt.Errorf("workspace.Approve: %w", err)
		}
	} else {
		out := []Result{{Field: "input.id"}}
		if err := s.invite(ctx, c, ws, []newPerson{{Person: Person{Email: jr.Email, Name: jr.Name}}}, out, invitation.Kind(in.As), in.RoleID, ""); err != nil {
			return nil, nil, err
		}
		r := out[0]
		if r.Code != "" {
			return nil, nil, userErr(r.Code, "input.id", r.Message)
		}
		m = r.Membership
		if decided, err = c.JoinRequest.UpdateOne(decided).SetRequesterID(m.UserID).SetInvitationID(r.InvitationID).Save(sys); err != nil {
			return nil, nil, fmt.Errorf("workspace.Approve: %w", err)
		}
	}
	if err := s.joinRequestEvent(ctx, decided, "APPROVED"); err != nil {
		return nil, nil, err
	}
	return decided, m, s.audit(ctx, c, "join_request.approved", "JoinRequest", decided.ID, decided.Email+" as "+string(in.As))
}

// Deny refuses a pending request.
func (s *Service) Deny(ctx context.Context, c *ent.Client, id int, reason string) (*ent.JoinRequest, error) {
	jr, err := s.decidable(ctx, c, id)
	if err != nil {
		return nil, err
	}
	reason = strings.TrimSpace(reason)
	if utf8.RuneCountInString(reason) > 1000 {
		return nil, userErr("INVALID_INPUT", "input.reason", "reason must be at most 1000 characters")
	}
	decided, err := s.decide(ctx, c, jr, joinrequest.StatusDENIED, func(u *ent.JoinRequestUpdateOne) {
		u.SetDenyReason(reason)
	})
	if err != nil {
		return nil, err
	}
	if err := s.joinRequestEvent(ctx, decided, "DENIED"); err != nil {
		return nil, err
	}
	return decided, s.audit(ctx, c, "join_request.denied", "JoinRequest", decided.ID, decided.Email)
}

// decidable loads a pending request the viewer may decide.
func (s *Service) decidable(ctx context.Context, c *ent.Client, id int) (*ent.JoinRequest, error) {
	v := auth.FromContext(ctx)
	if v == nil {
		return nil, rule.ErrUnauthenticated
	}
	if err := rule.RequireAdminOrOwner(ctx, c, "decide join requests"); err != nil {
		return nil, err
	}
	jr, err := c.JoinRequest.Query().Where(joinrequest.ID(id)).WithWorkspace().Only(ctx)
	if ent.IsNotFound(err) {
		return nil, notFound("join request")
	}
	if err != nil {
		return nil, fmt.Errorf("workspace: join request %d: %w", id, err)
	}
	if jr.RequesterID != nil && *jr.RequesterID == v.UserID {
		return nil, rule.Forbidden("you cannot decide your own join request")
	}
	if jr.Status != joinrequest.StatusPENDING {
		return nil, apperr.New(apperr.Conflict, "this join request was already "+strings.ToLower(string(jr.Status)))
	}
	if jr.Edges.Workspace.ArchivedAt != nil {
		return nil, userErr(ErrArchived.Code, "input.id", ErrArchived.Message)
	}
	return jr, nil
}

// decide claims the request with a conditional update: of two concurrent
// decisions the second finds it no longer pending (on PostgreSQL it waits
// for the first's row lock, then re-reads) and gets CONFLICT.
func (s *Service) decide(ctx context.Context, c *ent.Client, jr *ent.JoinRequest, to joinrequest.Status, set func(*ent.JoinRequestUpdateOne)) (*ent.JoinRequest, error) {
	v := auth.FromContext(ctx)
	up := c.JoinRequest.UpdateOneID(jr.ID).
		Where(joinrequest.StatusEQ(joinrequest.StatusPENDING)).
		SetStatus(to).
		SetDecidedAt(s.Now()).
		SetDecidedByID(v.UserID)
	set(up)
	decided, err := up.Save(ctx)
	if ent.IsNotFound(err) {
		return nil, apperr.New(apperr.Conflict, "this join request was decided by someone else a moment ago")
	}
	if err != nil {
		return nil, fmt.Errorf("workspace: decide %d: %w", jr.ID, err)
	}
	decided.Edges = jr.Edges
	return decided, nil
}

func rateLimited(wait time.Duration) error {
	secs := max(1, int(math.Ceil(wait.Seconds())))
	return &invite.UserError{Code: "RATE_LIMITED", Message: fmt.Sprintf("too many attempts; try again in %d seconds", secs), RetryAfter: secs}
}

func (s *Service) cooldown() time.Duration {
	if s.ConfirmCooldown > 0 {
		return s.ConfirmCooldown
	}
	return time.Minute
}

func cmpOr(a, b string) string {
	if a != "" {
		return a
	}
	return b
}
