package graph

import (
	"context"
	"errors"
	"fmt"
	"strconv"

	"admit/ent"
	"admit/ent/invitation"
	"admit/ent/joinrequest"
	"admit/ent/membership"
	"admit/ent/privacy"
	"admit/ent/workspace"
	"admit/internal/account"
	"admit/internal/apperr"
	"admit/internal/auth"
	"admit/internal/eventlog"
	"admit/internal/rule"
	wsvc "admit/internal/workspace"
)

// workspacePayload turns a workspace result into its payload.
func workspacePayload(ws *ent.Workspace, err error) (*WorkspacePayload, error) {
	if ue, ok := userErrorFrom(err); ok {
		return &WorkspacePayload{Errors: []*UserError{ue}}, nil
	}
	if err != nil {
		return nil, err
	}
	return &WorkspacePayload{Workspace: ws, Errors: []*UserError{}}, nil
}

// linkOf is the workspace link as its managers see it.
func (r *Resolver) linkOf(ws *ent.Workspace) *WorkspaceLink {
	l := &WorkspaceLink{Enabled: ws.LinkEnabled, AllowsViewing: ws.LinkAllowsViewing}
	if token := r.workspaces.LinkToken(ws); token != "" {
		l.URL = r.wsLinkURL(token)
	}
	return l
}

func (r *Resolver) workspaceLinkPayload(ws *ent.Workspace, err error) (*WorkspaceLinkPayload, error) {
	if ue, ok := userErrorFrom(err); ok {
		return &WorkspaceLinkPayload{Errors: []*UserError{ue}}, nil
	}
	if err != nil {
		return nil, err
	}
	return &WorkspaceLinkPayload{Link: r.linkOf(ws), Errors: []*UserError{}}, nil
}

// requesterView is a join request as its requester may read it.
func requesterView(v *wsvc.RequesterView) *RequesterJoinRequest {
	jr := v.Request
	out := &RequesterJoinRequest{
		Status: jr.Status, Email: jr.Email, Name: jr.Name, Message: jr.Message,
		DecidedAs: jr.DecidedAs, CreatedAt: jr.CreatedAt,
	}
	if ws := jr.Edges.Workspace; ws != nil {
		out.WorkspaceName = ws.Name
		if v.Viewing {
			view := &RequesterWorkspaceView{Name: ws.Name, Description: ws.Description, Type: ws.Type, Members: []*RequesterWorkspaceMember{}}
			for _, m := range v.Members {
				if u := m.Edges.User; u != nil {
					view.Members = append(view.Members, &RequesterWorkspaceMember{Name: u.Name, Kind: u.Kind, Role: m.Role, Status: m.Status})
				}
			}
			out.Workspace = view
		}
	}
	if org := jr.Edges.Organization; org != nil {
		out.OrganizationName = org.Name
	}
	return out
}

func (r *Resolver) requesterPayload(ctx context.Context, c *ent.Client, jr *ent.JoinRequest, err error) (*RequesterJoinRequestPayload, error) {
	if ue, ok := userErrorFrom(err); ok {
		return &RequesterJoinRequestPayload{Errors: []*UserError{ue}}, nil
	}
	if err != nil {
		return nil, err
	}
	view, err := r.workspaces.ViewOf(ctx, c, jr)
	if err != nil {
		return nil, err
	}
	return &RequesterJoinRequestPayload{Request: requesterView(view), Errors: []*UserError{}}, nil
}

func joinRequestPayload(jr *ent.JoinRequest, m *ent.Membership, err error) (*JoinRequestPayload, error) {
	if ue, ok := userErrorFrom(err); ok {
		return &JoinRequestPayload{Errors: []*UserError{ue}}, nil
	}
	if err != nil {
		return nil, err
	}
	return &JoinRequestPayload{JoinRequest: jr, Membership: m, Errors: []*UserError{}}, nil
}

// workspaceResults turns per-person results into GraphQL results.
func (r *Resolver) workspaceResults(ctx context.Context, c *ent.Client, results []wsvc.Result) ([]*InviteResult, *InviteCounts, error) {
	var ids []int
	for _, res := range results {
		if res.InvitationID != 0 {
			ids = append(ids, res.InvitationID)
		}
	}
	byID := map[int]*ent.Invitation{}
	if len(ids) > 0 && selects(ctx, "results", "invitation") {
		invs, err := c.Invitation.Query().Where(invitation.IDIn(ids...)).All(ctx)
		if err != nil {
			return nil, nil, err
		}
		for _, inv := range invs {
			byID[inv.ID] = inv
		}
	}
	counts := &InviteCounts{Total: len(results)}
	out := make([]*InviteResult, len(results))
	for i, res := range results {
		ir := &InviteResult{Input: res.Input, Email: nonEmpty(res.Email), Phone: nonEmpty(res.Phone), Message: nonEmpty(res.Message),
			Field: nonEmpty(res.Field), Membership: res.Membership, Invitation: byID[res.InvitationID]}
		switch res.Outcome {
		case wsvc.OutcomeAdded:
			ir.Outcome = InviteOutcomeAdded
			counts.Added++
		case wsvc.OutcomeInvited:
			ir.Outcome = InviteOutcomeInvited
			counts.Invited++
		default:
			ir.Outcome = InviteOutcomeSkipped
			countSkipped(counts, res.Code)
			code := ErrorCode(res.Code)
			ir.Code = &code
		}
		out[i] = ir
	}
	return out, counts, nil
}

// parseCursor reads an event cursor; nil means "from now on".
func parseCursor(after *string) (int, error) {
	if after == nil || *after == "" {
		return -1, nil
	}
	n, err := strconv.Atoi(*after)
	if err != nil || n < 0 {
		return 0, apperr.New(apperr.BadUserInput, "after: not a cursor this server gave out")
	}
	return n, nil
}

// follow streams the viewer's organization's events of one subject (and
// workspace, when given), re-checking the subscriber before every event:
// load runs with a context carrying the subscriber as they are now, so a
// demotion, removal, deactivation or sign-out takes effect on the next
// event, and a subscriber whose session ended stops. load returns nil for
// an event the subscriber may not see; send delivers the rest.
func (r *Resolver) follow(ctx context.Context, subject string, workspaceID *int, after *string,
	load func(context.Context, eventlog.Event) (any, error), send func(ev any, memo *memoEvent, cur *auth.Viewer) bool, done func()) error {
	v := auth.FromContext(ctx)
	pos, err := parseCursor(after)
	if err != nil {
		return err
	}
	// Work shared with other subscribers must not fail because this one
	// went away.
	shared := context.WithoutCancel(ctx)
	return r.events.Follow(ctx, r.client, v.OrgID, pos, func(e eventlog.Event) bool {
		if e.Subject != subject || (workspaceID != nil && e.WorkspaceID != *workspaceID) {
			return true
		}
		memo := r.memo.event(eventKey{e.OrgID, e.Position})
		cur, err := memo.session(v.SessionID, func() (*auth.Viewer, error) {
			return r.accounts.Current(shared, r.client, v)
		})
		if err != nil {
			if !errors.Is(err, account.ErrInvalidSession) {
				r.log.ErrorContext(ctx, "workspace events: session check", "error", err)
			}
			return false // signed out, expired or deactivated: the subscription ends
		}
		ev, err := memo.load(cur, func() (any, error) { return load(auth.NewContext(shared, cur), e) })
		if err != nil {
			r.log.ErrorContext(ctx, "workspace events: load", "error", err)
			return true
		}
		return ev == nil || send(ev, memo, cur)
	}, done)
}

// followEvents is a subscription of one subject's events, each loaded by
// load as the subscriber is now (nil: not for this subscriber).
func followEvents[T any](ctx context.Context, r *Resolver, subject string, workspaceID *int, after *string,
	load func(context.Context, eventlog.Event) (*T, error)) (<-chan *T, error) {
	out := make(chan *T, 1)
	frames := framesFrom(ctx)
	stream := streamFrom(ctx)
	v := auth.FromContext(ctx)
	err := r.follow(ctx, subject, workspaceID, after,
		func(vctx context.Context, e eventlog.Event) (any, error) {
			ev, err := load(vctx, e)
			if ev == nil {
				return nil, err // a typed nil would read as an event
			}
			return ev, err
		},
		func(ev any, memo *memoEvent, cur *auth.Viewer) bool {
			push := func() bool {
				select {
				case out <- ev.(*T):
					return true
				case <-ctx.Done():
					return false
				}
			}
			stream.announce()
			if frames == nil {
				return push()
			}
			// Through SharedFrames, which answers with the bytes another
			// subscriber's identical response to this event produced.
			it := frameItem{memo: memo, key: frameKey{op: frames.op, viewer: keyOf(v), current: keyOf(cur)}, push: push}
			select {
			case frames.items <- it:
				return true
			case <-ctx.Done():
				return false
			}
		},
		func() {
			stream.announce()
			close(out)
			if frames != nil {
				close(frames.items)
			}
		})
	if err != nil {
		return nil, err
	}
	stream.claim()
	return out, nil
}

// canFollowJoinRequests checks, at subscription time, that the viewer may
// decide the workspace's requests (or any, without a workspace).
func (r *Resolver) canFollowJoinRequests(ctx context.Context, workspaceID *int) error {
	v := auth.FromContext(ctx)
	if v == nil {
		return rule.ErrUnauthenticated
	}
	if workspaceID == nil {
		return rule.RequireAdminOrOwner(ctx, r.client, "follow join requests")
	}
	if exists, err := r.client.Workspace.Query().Where(workspace.ID(*workspaceID)).Exist(ctx); err != nil {
		return err
	} else if !exists {
		return apperr.New(apperr.NotFound, "workspace not found")
	}
	return rule.CanManageWorkspace(ctx, r.client, *workspaceID, "follow its join requests")
}

func (r *Resolver) canFollowMembers(ctx context.Context, workspaceID *int) error {
	if auth.FromContext(ctx) == nil {
		return rule.ErrUnauthenticated
	}
	if workspaceID == nil {
		return nil // each event is shown only to members of its workspace
	}
	exists, err := r.client.Workspace.Query().Where(workspace.ID(*workspaceID)).Exist(ctx)
	if err != nil {
		return err
	}
	if !exists {
		return apperr.New(apperr.NotFound, "workspace not found")
	}
	return nil
}

func cursorOf(e eventlog.Event) string { return fmt.Sprint(e.Position) }

// loadJoinRequestEvent loads the request of e as the subscriber (through
// the privacy rules: admins and the workspace's owners only).
func (r *Resolver) loadJoinRequestEvent(ctx context.Context, e eventlog.Event) (*JoinRequestEvent, error) {
	jr, err := r.client.JoinRequest.Query().Where(joinrequest.ID(e.ObjectID)).Only(ctx)
	if ent.IsNotFound(err) || isDenied(err) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	return &JoinRequestEvent{Type: JoinRequestEventType(e.Type), JoinRequest: jr, Cursor: cursorOf(e), At: e.At}, nil
}

// loadMembershipEvent loads the membership (or, once removed, the
// workspace) of e as the subscriber: members of the workspace only.
func (r *Resolver) loadMembershipEvent(ctx context.Context, e eventlog.Event) (*MembershipEvent, error) {
	ws, err := r.client.Workspace.Query().Where(workspace.ID(e.WorkspaceID)).Only(ctx)
	if ent.IsNotFound(err) || isDenied(err) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	out := &MembershipEvent{Type: MembershipEventType(e.Type), MembershipID: e.ObjectID, Workspace: ws, Cursor: cursorOf(e), At: e.At}
	if e.Type != "REMOVED" {
		m, err := r.client.Membership.Query().Where(membership.ID(e.ObjectID)).Only(ctx)
		if err != nil && !ent.IsNotFound(err) {
			return nil, err
		}
		out.Membership = m
	}
	if e.UserID != 0 {
		if out.User, err = r.client.User.Get(ctx, e.UserID); err != nil && !ent.IsNotFound(err) {
			return nil, err
		}
	}
	return out, nil
}

func isDenied(err error) bool { return err != nil && errors.Is(err, privacy.Deny) }
