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
	"admit/internal/phone"
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
	CodeInvalidPhone     = "INVALID_PHONE"
	CodeInvalidInput     = "INVALID_INPUT"
	CodeExternalIDTaken  = "EXTERNAL_ID_TAKEN"
	CodePhoneNotAllowed  = "PHONE_NOT_ALLOWED"
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
	// SMSRegions, when set, are the only regions whose numbers may be
	// invited by text message (SMS_ALLOWED_REGIONS).
	SMSRegions []string
}

// Entry is one address, or one person's details, as the user gave them.
type Entry struct {
	Row   int    // file row, 0 for typed entries
	Field string // the input position, such as input.invitees[2]; "" for addresses
	Input string // the address as given; may be empty when Phone is not
	Phone string // the phone number as given, if any
	Name  string // from a name column, if any
	// ExternalID is the person's ID in the system the entry came from (an
	// HR provider's employee ID, the organization's own User ID), kept on
	// the invitation and, on acceptance, on the user.
	ExternalID string
	// Invitee marks a person given by details, who needs an address or a
	// phone number; NeedsName, also a name.
	Invitee, NeedsName bool
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
	// Admin asks for administrator rights (the Administrator toggle): the
	// role must be an administrator role, the built-in Admin by default.
	Admin bool
	// Mode is how the invitees are brought in (INVITE by default); every
	// mode but INVITE also gives each a not-yet-active account at once.
	Mode invitation.DeliveryMode
}

// Result is what happened to one entry.
type Result struct {
	Row          int    `json:"row,omitempty"`
	Field        string `json:"field,omitempty"`
	Input        string `json:"input"`
	Email        string `json:"email,omitempty"`
	Phone        string `json:"phone,omitempty"`
	Code         string `json:"code,omitempty"` // "" when invited
	Message      string `json:"message,omitempty"`
	InvitationID int    `json:"invitationID,omitempty"`
	// UserID is the not-yet-active account made for the invitee, and
	// MembershipID their NOT_JOINED membership (modes other than INVITE).
	UserID       int `json:"userID,omitempty"`
	MembershipID int `json:"membershipID,omitempty"`
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
	result     int    // index in Outcome.Results
	email      string // normalized; "" for a phone-only invitee
	phone      string // E.164; "" when none was given
	name       string
	externalID string
}

// key names a candidate within a request: by address, or by phone when it
// has none. Addresses and phones are each unique in a request.
func (p candidate) key() string { return personKey(p.email, p.phone) }

func personKey(email, phone string) string {
	if email != "" {
		return "e:" + email
	}
	return "p:" + phone
}

// reachSet is a set of addresses and phones.
type reachSet map[string]bool

func (s reachSet) add(email, phone string) {
	if email != "" {
		s["e:"+email] = true
	}
	if phone != "" {
		s["p:"+phone] = true
	}
}

// has reports whether the address or the phone is in the set.
func (s reachSet) has(email, phone string) bool {
	return (email != "" && s["e:"+email]) || (phone != "" && s["p:"+phone])
}

// who is how results name a candidate.
func (p candidate) who() string { return cmpOr(p.email, p.phone) }

// Invite validates every entry and writes an invitation, a queued message
// and an audit event for each valid, new address, with c (the mutation's
// transaction). A role or workspace that does not exist fails the whole
// request; problems with single addresses are reported in the results.
func (s *Service) Invite(ctx context.Context, c *ent.Client, req Request) (*Outcome, error) {
	if req.Kind == "" {
		req.Kind = invitation.KindINTERNAL
	}
	if req.Mode == "" {
		req.Mode = invitation.DeliveryModeINVITE
	}
	if req.Mode == invitation.DeliveryModeADD_TO_WORKSPACE && req.WorkspaceID == nil {
		return nil, apperr.New(apperr.BadUserInput, "deliveryMode ADD_TO_WORKSPACE needs a workspaceID")
	}
	if req.Admin && req.Kind == invitation.KindCLIENT {
		return nil, apperr.New(apperr.BadUserInput, "clients cannot be administrators: invite them as INTERNAL users or leave admin off")
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
	rl, err := grantableRole(ctx, c, req.RoleID, req.Admin)
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

	out, cands := s.classify(org, req.Entries)
	// One order for every request: concurrent requests with overlapping
	// lists then take the unique-index locks in the same order and cannot
	// deadlock each other.
	slices.SortFunc(cands, func(a, b candidate) int { return strings.Compare(a.key(), b.key()) })
	now := s.Now()
	expires := now.Add(time.Duration(org.InvitationExpiryDays) * 24 * time.Hour)
	for start := 0; start < len(cands); start += batch {
		part := cands[start:min(start+batch, len(cands))]
		if err := s.invitePart(ctx, c, v, req, rl, out, part, now, expires); err != nil {
			return nil, err
		}
	}
	if n := out.Count(""); n > 0 {
		if s.Kick != nil && req.Mode != invitation.DeliveryModeADD_TO_CONTACTS_QUIETLY {
			txn.AfterCommit(ctx, s.Kick)
		}
		if s.Invited != nil {
			txn.AfterCommit(ctx, func() { s.Invited(string(req.Source), n) })
		}
	}
	return out, nil
}

// classify parses every entry and settles what needs no database: invalid
// addresses and phone numbers, repeats and addresses outside the
// organization's domains.
func (s *Service) classify(org *ent.Organization, entries []Entry) (*Outcome, []candidate) {
	out := &Outcome{Results: make([]Result, 0, len(entries))}
	var cands []candidate
	seen := make(reachSet, len(entries))
	seenExternal := map[string]bool{}
	for _, e := range entries {
		r := Result{Row: e.Row, Field: e.Field, Input: cmpOr(e.Input, e.Phone)}
		p, code, msg := parseEntry(org, e)
		r.Email, r.Phone = p.email, p.phone
		textOnly := p.email == "" && p.phone != ""
		var untextable error
		if code == "" && textOnly {
			untextable = phone.CheckTextable(p.phone, s.SMSRegions)
		}
		switch {
		case code != "":
			r.Code, r.Message = code, msg
		case textOnly && org.RestrictInvitationsToDomains:
			// The domain rule holds on every path: someone reached only by
			// phone has no address to check.
			r.Code, r.Message = CodeDomainNotAllowed, "the organization invites only addresses in its domains; give this person's address"
		case untextable != nil:
			r.Code, r.Message = CodePhoneNotAllowed, untextable.Error()
		case seen.has(p.email, p.phone):
			r.Code, r.Message = CodeDuplicate, p.who()+" appears earlier in this request"
		case p.email != "" && org.RestrictInvitationsToDomains && !slices.Contains(org.Domains, domainOf(p.email)):
			seen.add(p.email, "")
			r.Code = CodeDomainNotAllowed
			r.Message = domainOf(p.email) + " is not one of the organization's domains"
		case p.externalID != "" && seenExternal[p.externalID]:
			r.Code, r.Message = CodeExternalIDTaken, "User ID "+p.externalID+" appears earlier in this request"
		default:
			seen.add(p.email, p.phone)
			if p.externalID != "" {
				seenExternal[p.externalID] = true
			}
			p.result = len(out.Results)
			cands = append(cands, p)
		}
		out.Results = append(out.Results, r)
	}
	return out, cands
}

// parseEntry normalizes one entry's address, phone, name and User ID, or
// says why it cannot be invited.
func parseEntry(org *ent.Organization, e Entry) (p candidate, code, msg string) {
	input, phoneInput := strings.TrimSpace(e.Input), strings.TrimSpace(e.Phone)
	if e.Invitee && input == "" && phoneInput == "" {
		return p, CodeInvalidInput, "give an email address or a phone number"
	}
	var name string
	if input != "" || !e.Invitee {
		var err error
		if p.email, name, err = address.Parse(e.Input); err != nil {
			return p, CodeInvalidAddress, err.Error()
		}
	}
	if phoneInput != "" {
		var err error
		if p.phone, err = phone.Normalize(phoneInput, org.DefaultRegion); err != nil {
			return p, CodeInvalidPhone, phoneInput + ": " + err.Error()
		}
	}
	p.name = clipName(address.CleanName(cmpOr(name, e.Name)))
	if e.NeedsName && p.name == "" {
		return p, CodeInvalidInput, "give the invitee's name"
	}
	p.externalID = strings.TrimSpace(e.ExternalID)
	if len(p.externalID) > 200 {
		return p, CodeInvalidInput, "the User ID must be at most 200 bytes"
	}
	return p, "", ""
}

func (s *Service) invitePart(ctx context.Context, c *ent.Client, v *auth.Viewer, req Request, rl *ent.Role,
	out *Outcome, part []candidate, now, expires time.Time) error {
	var emails, phones, externals []string
	for _, p := range part {
		if p.email != "" {
			emails = append(emails, p.email)
		}
		if p.phone != "" {
			phones = append(phones, p.phone)
		}
		if p.externalID != "" {
			externals = append(externals, p.externalID)
		}
	}
	members, err := c.User.Query().
		Where(user.Or(user.EmailIn(emails...), user.PhoneIn(phones...)), user.StatusIn(user.StatusACTIVE, user.StatusDEACTIVATED)).
		Select(user.FieldEmail, user.FieldPhone).
		All(ctx)
	if err != nil {
		return fmt.Errorf("invite: members: %w", err)
	}
	rows, err := c.Invitation.Query().
		Where(invitation.Or(invitation.EmailIn(emails...), invitation.PhoneIn(phones...)), invitation.StatusEQ(invitation.StatusPENDING)).
		Select(invitation.FieldID, invitation.FieldEmail, invitation.FieldPhone, invitation.FieldExpiresAt).
		All(ctx)
	if err != nil {
		return fmt.Errorf("invite: pending: %w", err)
	}
	isMember, isPending := reachSet{}, reachSet{}
	for _, m := range members {
		isMember.add(deref(m.Email), deref(m.Phone))
	}
	var stale []int
	for _, row := range rows {
		if row.ExpiresAt.After(now) {
			isPending.add(deref(row.Email), deref(row.Phone))
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
	takenBy, err := s.externalIDsTaken(ctx, c, externals, now)
	if err != nil {
		return err
	}

	var todo []candidate
	var fresh []newInvitation
	for _, p := range part {
		r := &out.Results[p.result]
		switch {
		case isMember.has(p.email, p.phone):
			r.Code, r.Message = CodeAlreadyMember, p.who()+" already has an account in this organization"
		case isPending.has(p.email, p.phone):
			r.Code, r.Message = CodeAlreadyInvited, p.who()+" already has a pending invitation"
		case p.externalID != "" && takenBy[p.externalID] != "" && takenBy[p.externalID] != p.key() && takenBy[p.externalID] != "p:"+p.phone:
			r.Code, r.Message = CodeExternalIDTaken, "User ID "+p.externalID+" belongs to another user or invitation of the organization"
		default:
			todo = append(todo, p)
			fresh = append(fresh, newInvitation{Email: p.email, Phone: p.phone, Name: p.name, Nonce: secret.NewNonce(), ExternalID: p.externalID})
		}
	}
	// A concurrent request may have invited the same address since the
	// check above: the partial unique index refuses the second row, and DO
	// NOTHING turns that into "already invited" instead of an error.
	created, err := s.writeInvitations(ctx, c, batchFields{
		orgID: v.OrgID, roleID: rl.ID, inviterID: v.UserID, workspaceID: req.WorkspaceID,
		source: req.Source, kind: req.Kind, admin: rl.Admin, mode: req.Mode, message: req.Message, now: now, expires: expires,
	}, fresh)
	if err != nil {
		return err
	}
	var made []candidate
	for _, p := range todo {
		r := &out.Results[p.result]
		id, ok := created[p.key()]
		if !ok {
			r.Code, r.Message = CodeAlreadyInvited, p.who()+" already has a pending invitation"
			continue
		}
		r.InvitationID = id
		r.Message = "invited " + p.who()
		if req.Mode == invitation.DeliveryModeADD_TO_CONTACTS_QUIETLY {
			r.Message = "added " + p.who() + " to your contacts; nothing sent until the invitation is resent"
		}
		made = append(made, p)
	}
	return s.attach(ctx, c, v, req, rl, out, made)
}

// externalIDsTaken returns, for each of ids held by a user or a live
// pending invitation of the organization, the key of the person holding it.
func (s *Service) externalIDsTaken(ctx context.Context, c *ent.Client, ids []string, now time.Time) (map[string]string, error) {
	taken := map[string]string{}
	if len(ids) == 0 {
		return taken, nil
	}
	users, err := c.User.Query().
		Where(user.ExternalIDIn(ids...)).
		Select(user.FieldEmail, user.FieldPhone, user.FieldExternalID).
		All(ctx)
	if err != nil {
		return nil, fmt.Errorf("invite: external IDs: %w", err)
	}
	for _, u := range users {
		taken[*u.ExternalID] = personKey(deref(u.Email), deref(u.Phone))
	}
	invs, err := c.Invitation.Query().
		Where(invitation.ExternalIDIn(ids...), invitation.StatusEQ(invitation.StatusPENDING), invitation.ExpiresAtGT(now)).
		Select(invitation.FieldEmail, invitation.FieldPhone, invitation.FieldExternalID).
		All(ctx)
	if err != nil {
		return nil, fmt.Errorf("invite: external IDs: %w", err)
	}
	for _, inv := range invs {
		taken[*inv.ExternalID] = personKey(deref(inv.Email), deref(inv.Phone))
	}
	return taken, nil
}

// queueInvitation builds the outbox row for one invitation message: by
// email when the invitation has an address, else by SMS. The worker
// renders and sends it.
func queueInvitation(c *ent.Client, inv *ent.Invitation, generation int, now time.Time) *ent.DeliveryCreate {
	channel, to := delivery.ChannelEMAIL, deref(inv.Email)
	if inv.Email == nil {
		channel, to = delivery.ChannelSMS, deref(inv.Phone)
	}
	return c.Delivery.Create().
		SetOrganizationID(inv.OrganizationID).
		SetChannel(channel).
		SetRecipient(to).
		SetTemplate(TemplateInvitation).
		SetInvitationID(inv.ID).
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

// grantableRole returns the requested role, or the built-in Member role
// (Admin with the Administrator toggle), once the role ceiling allows the
// viewer to grant it. A dry run is refused exactly as the real run would be.
func grantableRole(ctx context.Context, c *ent.Client, id *int, admin bool) (*ent.Role, error) {
	q := c.Role.Query()
	if id != nil {
		q = q.Where(role.ID(*id))
	} else {
		q = q.Where(role.Builtin(true), role.Admin(admin))
	}
	rl, err := q.Only(ctx)
	if ent.IsNotFound(err) {
		return nil, apperr.New(apperr.NotFound, "role not found")
	}
	if err != nil {
		return nil, fmt.Errorf("invite: role: %w", err)
	}
	if admin && !rl.Admin {
		return nil, apperr.New(apperr.BadUserInput, "role "+rl.Name+" gives no administrator rights: choose an administrator role, or omit roleID with admin")
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
