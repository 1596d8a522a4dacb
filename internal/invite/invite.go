// Package invite is the invitation pipeline every invite path shares:
// validate addresses, write invitations and their outbox messages in the
// caller's transaction, and later preview, accept, resend and revoke them.
package invite

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"time"
	"unicode/utf8"

	"admit/ent"
	"admit/ent/delivery"
	"admit/ent/invitation"
	"admit/ent/role"
	"admit/ent/user"
	"admit/internal/address"
	"admit/internal/apperr"
	"admit/internal/auth"
	"admit/internal/eventlog"
	"admit/internal/pubsub"
	"admit/internal/rule"
	"admit/internal/secret"
	"admit/internal/txn"
)

// Result codes for one address (the GraphQL ErrorCode names).
const (
	CodeInvalidAddress   = "INVALID_ADDRESS"
	CodeDuplicate        = "DUPLICATE_IN_REQUEST"
	CodeAlreadyMember    = "ALREADY_MEMBER"
	CodeAlreadyInvited   = "ALREADY_INVITED"
	CodeDomainNotAllowed = "DOMAIN_NOT_ALLOWED"
)

// TemplateInvitation names the invitation message template.
const TemplateInvitation = "invitation"

// Service holds what the pipeline needs.
type Service struct {
	Keys   *secret.Keyring
	Now    func() time.Time
	Broker *pubsub.Broker
	// Kick wakes the outbox worker after new messages commit; may be nil.
	Kick func()
	// ResendCooldown is the least time between two sends of one invitation.
	ResendCooldown time.Duration
	// Dialect is dialect.Postgres or dialect.SQLite (the default); bulk
	// writes use each one's own SQL.
	Dialect string
	// Events stores workspace events (a member joining on acceptance).
	Events *eventlog.Log
	// Invited, when set, is told after commit how many invitations a
	// request created, by source (for metrics).
	Invited func(source string, n int)
}

// Entry is one address as the user gave it.
type Entry struct {
	Row   int    // file row, 0 for typed entries
	Input string // as given
	Name  string // from a name column, if any
	// ExternalID is the person's ID in the system the entry came from (an
	// HR provider's employee ID), kept on the invitation and, on
	// acceptance, on the user.
	ExternalID string
}

// Request is one invite request.
type Request struct {
	Entries     []Entry
	RoleID      *int
	WorkspaceID *int
	Message     string
	Source      invitation.Source
	// Kind is INTERNAL (the default) or CLIENT.
	Kind invitation.Kind
}

// Result is what happened to one entry.
type Result struct {
	Row          int    `json:"row,omitempty"`
	Input        string `json:"input"`
	Email        string `json:"email,omitempty"`
	Code         string `json:"code,omitempty"` // "" when invited
	Message      string `json:"message,omitempty"`
	InvitationID int    `json:"invitationID,omitempty"`
}

// Outcome is the result of a request.
type Outcome struct {
	Results []Result `json:"results"`
}

// Count returns how many results carry code ("" counts the invited).
func (o *Outcome) Count(code string) int {
	n := 0
	for _, r := range o.Results {
		if r.Code == code {
			n++
		}
	}
	return n
}

// batch is how many addresses go in one IN list or multi-row INSERT: under
// SQLite's and PostgreSQL's bound-parameter limits for every statement here.
const batch = 1000

// candidate is a valid, new-to-this-request address still to be checked
// against the database.
type candidate struct {
	result     int // index in Outcome.Results
	email      string
	name       string
	externalID string
}

// Invite validates every entry and writes an invitation, a queued message
// and an audit event for each valid, new address, with c (the mutation's
// transaction). A role or workspace that does not exist fails the whole
// request; problems with single addresses are reported in the results.
func (s *Service) Invite(ctx context.Context, c *ent.Client, req Request) (*Outcome, error) {
	if req.Kind == "" {
		req.Kind = invitation.KindINTERNAL
	}
	if err := rule.RequireInviter(ctx, c, req.Kind, req.WorkspaceID); err != nil {
		return nil, err
	}
	v := auth.FromContext(ctx)
	ctx = rule.WithRoleCache(ctx)
	org, err := c.Organization.Get(ctx, v.OrgID)
	if err != nil {
		return nil, fmt.Errorf("invite.Invite: %w", err)
	}
	rl, err := grantableRole(ctx, c, req.RoleID)
	if err != nil {
		return nil, err
	}
	if req.WorkspaceID != nil {
		ws, err := c.Workspace.Get(ctx, *req.WorkspaceID)
		if ent.IsNotFound(err) {
			return nil, apperr.New(apperr.NotFound, "workspace not found")
		} else if err != nil {
			return nil, fmt.Errorf("invite.Invite: %w", err)
		}
		if ws.ArchivedAt != nil {
			return nil, apperr.New(apperr.BadUserInput, "the workspace is archived and takes no new members")
		}
	}
	if len([]rune(req.Message)) > 2000 {
		return nil, apperr.New(apperr.BadUserInput, "message must be at most 2000 characters")
	}

	out, cands := classify(org, req.Entries)
	// One order for every request: concurrent requests with overlapping
	// lists then take the unique-index locks in the same order and cannot
	// deadlock each other.
	slices.SortFunc(cands, func(a, b candidate) int { return strings.Compare(a.email, b.email) })
	now := s.Now()
	expires := now.Add(time.Duration(org.InvitationExpiryDays) * 24 * time.Hour)
	for start := 0; start < len(cands); start += batch {
		part := cands[start:min(start+batch, len(cands))]
		if err := s.invitePart(ctx, c, v, req, rl, out, part, now, expires); err != nil {
			return nil, err
		}
	}
	if n := out.Count(""); n > 0 {
		if s.Kick != nil {
			txn.AfterCommit(ctx, s.Kick)
		}
		if s.Invited != nil {
			txn.AfterCommit(ctx, func() { s.Invited(string(req.Source), n) })
		}
	}
	return out, nil
}

// classify parses every entry and settles what needs no database: invalid
// addresses, repeats and addresses outside the organization's domains.
func classify(org *ent.Organization, entries []Entry) (*Outcome, []candidate) {
	out := &Outcome{Results: make([]Result, 0, len(entries))}
	var cands []candidate
	seen := make(map[string]bool, len(entries))
	for _, e := range entries {
		r := Result{Row: e.Row, Input: e.Input}
		email, name, err := address.Parse(e.Input)
		switch {
		case err != nil:
			r.Code, r.Message = CodeInvalidAddress, err.Error()
		case seen[email]:
			r.Email, r.Code, r.Message = email, CodeDuplicate, email+" appears earlier in this request"
		case org.RestrictInvitationsToDomains && !slices.Contains(org.Domains, domainOf(email)):
			seen[email] = true
			r.Email, r.Code = email, CodeDomainNotAllowed
			r.Message = domainOf(email) + " is not one of the organization's domains"
		default:
			r.Email = email
			seen[email] = true
			cands = append(cands, candidate{result: len(out.Results), email: email, name: clipName(address.CleanName(cmpOr(name, e.Name))), externalID: e.ExternalID})
		}
		out.Results = append(out.Results, r)
	}
	return out, cands
}

func (s *Service) invitePart(ctx context.Context, c *ent.Client, v *auth.Viewer, req Request, rl *ent.Role,
	out *Outcome, part []candidate, now, expires time.Time) error {
	emails := make([]string, len(part))
	for i, p := range part {
		emails[i] = p.email
	}
	members, err := c.User.Query().
		Where(user.EmailIn(emails...), user.StatusIn(user.StatusACTIVE, user.StatusDEACTIVATED)).
		Select(user.FieldEmail).
		Strings(ctx)
	if err != nil {
		return fmt.Errorf("invite: members: %w", err)
	}
	rows, err := c.Invitation.Query().
		Where(invitation.EmailIn(emails...), invitation.StatusEQ(invitation.StatusPENDING)).
		Select(invitation.FieldID, invitation.FieldEmail, invitation.FieldExpiresAt).
		All(ctx)
	if err != nil {
		return fmt.Errorf("invite: pending: %w", err)
	}
	var pending []string
	var stale []int
	for _, row := range rows {
		if row.ExpiresAt.After(now) {
			pending = append(pending, *row.Email)
		} else {
			stale = append(stale, row.ID)
		}
	}
	// An expired invitation never blocks a new one: mark it expired first
	// so the one-pending-per-address index lets the new row in.
	if len(stale) > 0 {
		if _, err := c.Invitation.Update().
			Where(invitation.IDIn(stale...)).
			SetStatus(invitation.StatusEXPIRED).
			Save(ctx); err != nil {
			return fmt.Errorf("invite: expire: %w", err)
		}
	}
	isMember, isPending := set(members), set(pending)

	var todo []candidate
	var fresh []newInvitation
	for _, p := range part {
		r := &out.Results[p.result]
		switch {
		case isMember[p.email]:
			r.Code, r.Message = CodeAlreadyMember, p.email+" already has an account in this organization"
		case isPending[p.email]:
			r.Code, r.Message = CodeAlreadyInvited, p.email+" already has a pending invitation"
		default:
			todo = append(todo, p)
			fresh = append(fresh, newInvitation{Email: p.email, Name: p.name, Nonce: secret.NewNonce(), ExternalID: p.externalID})
		}
	}
	// A concurrent request may have invited the same address since the
	// check above: the partial unique index refuses the second row, and DO
	// NOTHING turns that into "already invited" instead of an error.
	created, err := s.writeInvitations(ctx, c, batchFields{
		orgID: v.OrgID, roleID: rl.ID, inviterID: v.UserID, workspaceID: req.WorkspaceID,
		source: req.Source, kind: req.Kind, message: req.Message, now: now, expires: expires,
	}, fresh)
	if err != nil {
		return err
	}
	for _, p := range todo {
		r := &out.Results[p.result]
		id, ok := created[p.email]
		if !ok {
			r.Code, r.Message = CodeAlreadyInvited, p.email+" already has a pending invitation"
			continue
		}
		r.InvitationID = id
		r.Message = "invited " + p.email
	}
	return nil
}

// queueInvitation builds the outbox row for one invitation message. The
// worker renders and sends it.
func queueInvitation(c *ent.Client, orgID, invitationID int, to string, generation int, now time.Time) *ent.DeliveryCreate {
	return c.Delivery.Create().
		SetOrganizationID(orgID).
		SetChannel(delivery.ChannelEMAIL).
		SetRecipient(to).
		SetTemplate(TemplateInvitation).
		SetInvitationID(invitationID).
		SetTokenGeneration(generation).
		SetNextAttemptAt(now)
}

func auditCreate(c *ent.Client, v *auth.Viewer, action string, invitationID int, summary string) *ent.AuditEventCreate {
	return c.AuditEvent.Create().
		SetOrganizationID(v.OrgID).
		SetActorID(v.UserID).
		SetAction(action).
		SetTargetType("Invitation").
		SetTargetID(invitationID).
		SetSummary(summary)
}

// grantableRole returns the requested role, or the built-in Member role,
// once the role ceiling allows the viewer to grant it. A dry run is refused
// exactly as the real run would be.
func grantableRole(ctx context.Context, c *ent.Client, id *int) (*ent.Role, error) {
	q := c.Role.Query()
	if id != nil {
		q = q.Where(role.ID(*id))
	} else {
		q = q.Where(role.Builtin(true), role.Admin(false))
	}
	rl, err := q.Only(ctx)
	if ent.IsNotFound(err) {
		return nil, apperr.New(apperr.NotFound, "role not found")
	}
	if err != nil {
		return nil, fmt.Errorf("invite: role: %w", err)
	}
	if err := rule.CheckGrant(ctx, rl.Rank, rl.Admin); err != nil {
		return nil, err
	}
	rule.CacheRole(ctx, rl)
	return rl, nil
}

func domainOf(email string) string { return email[strings.LastIndexByte(email, '@')+1:] }

func set(ss []string) map[string]bool {
	m := make(map[string]bool, len(ss))
	for _, s := range ss {
		m[s] = true
	}
	return m
}

// maxName is the schema's limit on an invitee's name, in characters.
const maxName = 200

// clipName shortens a name to maxName characters: a name is only a
// greeting hint, so an over-long cell in a file should not refuse the
// address beside it.
func clipName(name string) string {
	if utf8.RuneCountInString(name) <= maxName {
		return name
	}
	return string([]rune(name)[:maxName])
}

func cmpOr(a, b string) string {
	if a != "" {
		return a
	}
	return b
}

// publish announces an invitation event after commit.
func (s *Service) publish(ctx context.Context, orgID, invitationID int, kind string) {
	if s.Broker == nil {
		return
	}
	at := s.Now()
	txn.AfterCommit(ctx, func() {
		s.Broker.Publish(pubsub.Event{Topic: "invitation", OrgID: orgID, Kind: kind, ObjectID: invitationID, At: at})
	})
}
