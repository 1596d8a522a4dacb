package graph

import (
	"cmp"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/99designs/gqlgen/graphql"

	"admit/ent"
	"admit/ent/idempotencykey"
	"admit/ent/invitation"
	"admit/ent/membership"
	"admit/internal/address"
	"admit/internal/apperr"
	"admit/internal/auth"
	"admit/internal/importfile"
	"admit/internal/invite"
)

// entriesFromInput splits what people typed or pasted into one entry per
// address candidate; each entry is then validated as exactly one address.
func entriesFromInput(inputs []string) []invite.Entry {
	var out []invite.Entry
	for _, in := range inputs {
		for _, piece := range address.Split(in) {
			out = append(out, invite.Entry{Input: piece})
		}
	}
	return out
}

// maxInvitees bounds the people one inviteUsers may list by their details.
const maxInvitees = 1000

// entriesFromInvitees turns people given by their details into entries
// that name their position in the input.
func entriesFromInvitees(people []*InviteeInput) []invite.Entry {
	out := make([]invite.Entry, len(people))
	for i, p := range people {
		out[i] = invite.Entry{
			Field: fmt.Sprintf("input.invitees[%d]", i), Input: derefString(p.Email), Phone: derefString(p.Phone),
			Name: derefString(p.Name), ExternalID: derefString(p.ExternalID), Invitee: true, NeedsName: true,
		}
	}
	return out
}

// entriesFromFile reads an uploaded file into entries with row numbers.
func entriesFromFile(r io.Reader, filename string, lim importfile.Limits) ([]invite.Entry, *UserError) {
	rows, err := importfile.Read(r, filename, lim)
	if err != nil {
		code := ErrorCodeFileMalformed
		for sentinel, c := range map[error]ErrorCode{
			importfile.ErrEmpty:           ErrorCodeFileEmpty,
			importfile.ErrTooLarge:        ErrorCodeFileTooLarge,
			importfile.ErrTooManyRows:     ErrorCodeFileTooManyRows,
			importfile.ErrNotText:         ErrorCodeFileNotText,
			importfile.ErrUnsupportedType: ErrorCodeFileUnsupportedType,
			importfile.ErrNoAddressColumn: ErrorCodeFileNoAddressColumn,
		} {
			if errors.Is(err, sentinel) {
				code = c
			}
		}
		return nil, userErrors(code, "input.file", err.Error())[0]
	}
	out := make([]invite.Entry, len(rows))
	for i, row := range rows {
		// A row with only a phone is a person to reach by SMS.
		out[i] = invite.Entry{Row: row.Line, Input: row.Email, Phone: row.Phone, Name: row.Name, ExternalID: row.UserID, Invitee: row.Email == ""}
	}
	return out, nil
}

// results turns an outcome into GraphQL results, loading the new
// invitations and memberships in batches.
func (r *Resolver) results(ctx context.Context, c *ent.Client, out *invite.Outcome, dryRun bool) ([]*InviteResult, *InviteCounts, error) {
	var ids, memberIDs []int
	for _, res := range out.Results {
		if res.InvitationID != 0 {
			ids = append(ids, res.InvitationID)
		}
		if res.MembershipID != 0 {
			memberIDs = append(memberIDs, res.MembershipID)
		}
	}
	byID := make(map[int]*ent.Invitation, len(ids))
	if !dryRun && selects(ctx, "results", "invitation") {
		for start := 0; start < len(ids); start += 1000 {
			invs, err := c.Invitation.Query().Where(invitation.IDIn(ids[start:min(start+1000, len(ids))]...)).All(ctx)
			if err != nil {
				return nil, nil, err
			}
			for _, inv := range invs {
				byID[inv.ID] = inv
			}
		}
	}
	memberships := map[int]*ent.Membership{}
	if !dryRun && len(memberIDs) > 0 && selects(ctx, "results", "membership") {
		ms, err := c.Membership.Query().Where(membership.IDIn(memberIDs...)).All(ctx)
		if err != nil {
			return nil, nil, err
		}
		for _, m := range ms {
			memberships[m.ID] = m
		}
	}
	counts := &InviteCounts{Total: len(out.Results)}
	results := make([]*InviteResult, len(out.Results))
	for i, res := range out.Results {
		ir := &InviteResult{Input: res.Input, Message: nonEmpty(res.Message), Email: nonEmpty(res.Email), Phone: nonEmpty(res.Phone), Field: nonEmpty(res.Field)}
		if res.Row != 0 {
			ir.Row = ptr(res.Row)
		}
		switch res.Code {
		case "":
			counts.Invited++
			ir.Outcome = InviteOutcomeInvited
			if dryRun {
				ir.Outcome = InviteOutcomeWouldInvite
				ir.Message = ptr("would invite " + cmp.Or(res.Email, res.Phone))
			}
			ir.Invitation = byID[res.InvitationID]
			ir.Membership = memberships[res.MembershipID]
		default:
			ir.Outcome = InviteOutcomeSkipped
			countSkipped(counts, res.Code)
			code := ErrorCode(res.Code)
			ir.Code = &code
		}
		results[i] = ir
	}
	return results, counts, nil
}

// countSkipped counts a skipped person under the reason's count.
func countSkipped(counts *InviteCounts, code string) {
	switch code {
	case invite.CodeInvalidAddress, invite.CodeInvalidPhone, invite.CodePhoneNotAllowed, invite.CodeInvalidInput:
		counts.Invalid++
	case invite.CodeDuplicate:
		counts.Duplicate++
	case invite.CodeAlreadyMember, "ALREADY_WORKSPACE_MEMBER":
		counts.AlreadyMember++
	case invite.CodeAlreadyInvited:
		counts.AlreadyInvited++
	case invite.CodeDomainNotAllowed:
		counts.DomainNotAllowed++
	case invite.CodeExternalIDTaken:
		counts.ExternalIDTaken++
	}
}

func nonEmpty(s string) *string {
	if s == "" {
		return nil
	}
	return &s
}

// idempotent runs fn once per (organization, operation, key): a retry with
// the same key and request gets the first outcome back and writes nothing;
// the same key with another request is refused. The key row is written
// first, so a concurrent retry waits for the first to finish.
func (r *Resolver) idempotent(ctx context.Context, c *ent.Client, op string, key *string, request any, fn func() (*invite.Outcome, error)) (*invite.Outcome, *UserError, error) {
	if key == nil || *key == "" {
		out, err := fn()
		return out, nil, err
	}
	if len(*key) > 200 {
		return nil, userErrors(ErrorCodeInvalidInput, "input.idempotencyKey", "idempotencyKey must be at most 200 characters")[0], nil
	}
	v := auth.FromContext(ctx)
	if v == nil {
		return nil, nil, errors.New("idempotent: no viewer")
	}
	b, err := json.Marshal(request)
	if err != nil {
		return nil, nil, err
	}
	sum := sha256.Sum256(b)
	hash := hex.EncodeToString(sum[:])
	prev, err := c.IdempotencyKey.Query().
		Where(idempotencykey.Operation(op), idempotencykey.Key(*key)).
		Only(ctx)
	switch {
	case err == nil:
		if prev.RequestHash != hash {
			return nil, userErrors(ErrorCodeIdempotencyKeyReused, "input.idempotencyKey", "this idempotencyKey was used with a different request")[0], nil
		}
		var out invite.Outcome
		if err := json.Unmarshal(prev.Response, &out); err != nil {
			return nil, nil, fmt.Errorf("idempotent: stored response: %w", err)
		}
		return &out, nil, nil
	case !ent.IsNotFound(err):
		return nil, nil, err
	}
	row, err := c.IdempotencyKey.Create().
		SetOrganizationID(v.OrgID).
		SetOperation(op).
		SetKey(*key).
		SetRequestHash(hash).
		Save(ctx)
	if err != nil {
		if ent.IsConstraintError(err) {
			return nil, nil, apperr.New(apperr.Conflict, "a request with this idempotencyKey is in progress; retry it")
		}
		return nil, nil, err
	}
	out, err := fn()
	if err != nil {
		return nil, nil, err
	}
	resp, err := json.Marshal(out)
	if err != nil {
		return nil, nil, err
	}
	return out, nil, c.IdempotencyKey.UpdateOne(row).SetResponse(resp).Exec(ctx)
}

// invitationWhere makes every status predicate of a filter, at any depth,
// mean the status readers see: a pending invitation past its expiry is
// EXPIRED, not PENDING, though its row still says PENDING.
func (r *Resolver) invitationWhere(where *ent.InvitationWhereInput) {
	rewriteStatus(where, r.invites.Now())
}

func rewriteStatus(w *ent.InvitationWhereInput, now time.Time) {
	if w == nil {
		return
	}
	rewriteStatus(w.Not, now)
	for _, sub := range w.And {
		rewriteStatus(sub, now)
	}
	for _, sub := range w.Or {
		rewriteStatus(sub, now)
	}
	anyOf := func(ss []invitation.Status) *ent.InvitationWhereInput {
		or := make([]*ent.InvitationWhereInput, len(ss))
		for i, s := range ss {
			or[i] = readsAs(s, now)
		}
		return &ent.InvitationWhereInput{Or: or}
	}
	var and []*ent.InvitationWhereInput
	if w.Status != nil {
		and = append(and, readsAs(*w.Status, now))
		w.Status = nil
	}
	if w.StatusNEQ != nil {
		and = append(and, &ent.InvitationWhereInput{Not: readsAs(*w.StatusNEQ, now)})
		w.StatusNEQ = nil
	}
	if len(w.StatusIn) > 0 {
		and = append(and, anyOf(w.StatusIn))
		w.StatusIn = nil
	}
	if len(w.StatusNotIn) > 0 {
		and = append(and, &ent.InvitationWhereInput{Not: anyOf(w.StatusNotIn)})
		w.StatusNotIn = nil
	}
	w.And = append(w.And, and...)
}

// readsAs matches invitations whose status reads as s at now.
func readsAs(s invitation.Status, now time.Time) *ent.InvitationWhereInput {
	switch s {
	case invitation.StatusEXPIRED:
		return &ent.InvitationWhereInput{Or: []*ent.InvitationWhereInput{
			{Status: ptr(invitation.StatusEXPIRED)},
			{Status: ptr(invitation.StatusPENDING), ExpiresAtLTE: &now},
		}}
	case invitation.StatusPENDING:
		return &ent.InvitationWhereInput{Status: ptr(invitation.StatusPENDING), ExpiresAtGT: &now}
	default:
		return &ent.InvitationWhereInput{Status: ptr(s)}
	}
}

// userErrorFrom maps a pipeline refusal to a payload error.
func userErrorFrom(err error) (*UserError, bool) {
	ue, ok := invite.AsUserError(err)
	if !ok {
		return nil, false
	}
	e := userErrors(ErrorCode(ue.Code), ue.Field, ue.Message)[0]
	if ue.RetryAfter > 0 {
		e.RetryAfter = &ue.RetryAfter
	}
	return e, true
}

// linkPayload turns a link result into its payload.
func linkPayload(link *ent.InviteLink, err error) (*InviteLinkPayload, error) {
	if ue, ok := userErrorFrom(err); ok {
		return &InviteLinkPayload{Errors: []*UserError{ue}}, nil
	}
	if err != nil {
		return nil, err
	}
	return &InviteLinkPayload{Link: link, Errors: []*UserError{}}, nil
}

// selects reports whether the client's selection under the current field
// reaches path (e.g. results → invitation), so work nobody asked for is
// skipped.
func selects(ctx context.Context, path ...string) bool {
	oc := graphql.GetOperationContext(ctx)
	fields := graphql.CollectFieldsCtx(ctx, nil)
	for _, name := range path {
		var next []graphql.CollectedField
		found := false
		for _, f := range fields {
			if f.Name == name {
				found = true
				next = append(next, graphql.CollectFields(oc, f.Selections, nil)...)
			}
		}
		if !found {
			return false
		}
		fields = next
	}
	return true
}
