// Package workspace holds the workspace paths: flow and group workspaces,
// their link and the join requests it brings, decisions on them, adding and
// inviting members, and resending the invitations of members who have not
// joined. Invitations go through the one pipeline (internal/invite);
// authorization is decided by the ent privacy rules (internal/rule), which
// this package asks before it validates input so that a caller without the
// right learns nothing from validation messages.
package workspace

import (
	"context"
	"fmt"
	"strings"
	"time"
	"unicode/utf8"

	"admit/ent"
	"admit/ent/membership"
	"admit/ent/workspace"
	"admit/internal/apperr"
	"admit/internal/auth"
	"admit/internal/eventlog"
	"admit/internal/invite"
	"admit/internal/rule"
	"admit/internal/secret"
	"admit/internal/txn"
)

// Service holds what the workspace paths need.
type Service struct {
	Keys    *secret.Keyring
	Now     func() time.Time
	Invites *invite.Service
	Events  *eventlog.Log
	// Kick wakes the outbox worker after new messages commit; may be nil.
	Kick func()
	// ConfirmCooldown is the least time between two confirmation emails
	// for one join request (default one minute).
	ConfirmCooldown time.Duration
}

// Payload errors of the workspace paths.
var (
	ErrArchived = userErr("WORKSPACE_ARCHIVED", "", "the workspace is archived: it takes no new members or requests")
)

func userErr(code, field, msg string) *invite.UserError {
	return &invite.UserError{Code: code, Field: field, Message: msg}
}

// CreateInput describes a new workspace.
type CreateInput struct {
	Name        string
	Type        workspace.Type
	Description string
}

// Create makes a workspace owned by the viewer, who becomes its first
// (joined) OWNER.
func (s *Service) Create(ctx context.Context, c *ent.Client, in CreateInput) (*ent.Workspace, error) {
	v := auth.FromContext(ctx)
	if v == nil {
		return nil, rule.ErrUnauthenticated
	}
	if v.Client {
		return nil, rule.Forbidden("clients cannot create workspaces")
	}
	name, err := cleanName(in.Name, "input.name")
	if err != nil {
		return nil, err
	}
	if utf8.RuneCountInString(in.Description) > 2000 {
		return nil, userErr("INVALID_INPUT", "input.description", "description must be at most 2000 characters")
	}
	ws, err := c.Workspace.Create().
		SetOrganizationID(v.OrgID).
		SetName(name).
		SetType(in.Type).
		SetDescription(in.Description).
		SetOwnerID(v.UserID).
		Save(ctx)
	if err != nil {
		return nil, fmt.Errorf("workspace.Create: %w", err)
	}
	m, err := c.Membership.Create().
		SetOrganizationID(v.OrgID).
		SetWorkspaceID(ws.ID).
		SetUserID(v.UserID).
		SetRole(membership.RoleOWNER).
		SetStatus(membership.StatusJOINED).
		Save(ctx)
	if err != nil {
		return nil, fmt.Errorf("workspace.Create: owner: %w", err)
	}
	if err := s.audit(ctx, c, "workspace.created", "Workspace", ws.ID, ws.Name); err != nil {
		return nil, err
	}
	return ws, s.membershipEvent(ctx, m, "ADDED")
}

// UpdateInput changes a workspace; nil fields keep their value.
type UpdateInput struct {
	ID          int
	Name        *string
	Description *string
}

// Update renames a workspace or changes its description.
func (s *Service) Update(ctx context.Context, c *ent.Client, in UpdateInput) (*ent.Workspace, error) {
	ws, err := s.managed(ctx, c, in.ID, "change it")
	if err != nil {
		return nil, err
	}
	if ws.ArchivedAt != nil {
		return nil, ErrArchived
	}
	up := c.Workspace.UpdateOne(ws)
	if in.Name != nil {
		name, err := cleanName(*in.Name, "input.name")
		if err != nil {
			return nil, err
		}
		up.SetName(name)
	}
	if in.Description != nil {
		if utf8.RuneCountInString(*in.Description) > 2000 {
			return nil, userErr("INVALID_INPUT", "input.description", "description must be at most 2000 characters")
		}
		up.SetDescription(*in.Description)
	}
	if ws, err = up.Save(ctx); err != nil {
		return nil, fmt.Errorf("workspace.Update: %w", err)
	}
	return ws, s.audit(ctx, c, "workspace.updated", "Workspace", ws.ID, ws.Name)
}

// Archive closes a workspace to new members and requests; its link stops
// working.
func (s *Service) Archive(ctx context.Context, c *ent.Client, id int) (*ent.Workspace, error) {
	ws, err := s.managed(ctx, c, id, "archive it")
	if err != nil {
		return nil, err
	}
	if ws.ArchivedAt != nil {
		return nil, userErr(ErrArchived.Code, "input.id", "the workspace is already archived")
	}
	if ws, err = c.Workspace.UpdateOne(ws).SetArchivedAt(s.Now()).SetLinkEnabled(false).Save(ctx); err != nil {
		return nil, fmt.Errorf("workspace.Archive: %w", err)
	}
	return ws, s.audit(ctx, c, "workspace.archived", "Workspace", ws.ID, ws.Name)
}

// managed loads a workspace the viewer may see and checks they may manage
// it. A workspace the viewer cannot see reads as missing.
func (s *Service) managed(ctx context.Context, c *ent.Client, id int, what string) (*ent.Workspace, error) {
	if auth.FromContext(ctx) == nil {
		return nil, rule.ErrUnauthenticated
	}
	ws, err := c.Workspace.Get(ctx, id)
	if ent.IsNotFound(err) {
		return nil, notFound("workspace")
	}
	if err != nil {
		return nil, fmt.Errorf("workspace: load %d: %w", id, err)
	}
	if err := rule.CanManageWorkspace(ctx, c, ws.ID, what); err != nil {
		return nil, err
	}
	return ws, nil
}

func (s *Service) audit(ctx context.Context, c *ent.Client, action, targetType string, id int, summary string) error {
	v := auth.FromContext(ctx)
	create := c.AuditEvent.Create().
		SetAction(action).
		SetTargetType(targetType).
		SetTargetID(id).
		SetSummary(clip(summary, 1000))
	if v != nil {
		create.SetOrganizationID(v.OrgID).SetActorID(v.UserID)
		if err := create.Exec(ctx); err != nil {
			return fmt.Errorf("workspace: audit %s: %w", action, err)
		}
		return nil
	}
	return nil
}

func (s *Service) membershipEvent(ctx context.Context, m *ent.Membership, kind string) error {
	return s.Events.Record(ctx, eventlog.Event{
		OrgID: m.OrganizationID, WorkspaceID: m.WorkspaceID, Subject: eventlog.Membership,
		Type: kind, ObjectID: m.ID, UserID: m.UserID,
	})
}

func (s *Service) joinRequestEvent(ctx context.Context, jr *ent.JoinRequest, kind string) error {
	return s.Events.Record(ctx, eventlog.Event{
		OrgID: jr.OrganizationID, WorkspaceID: jr.WorkspaceID, Subject: eventlog.JoinRequest,
		Type: kind, ObjectID: jr.ID,
	})
}

func (s *Service) kickAfterCommit(ctx context.Context) {
	if s.Kick != nil {
		txn.AfterCommit(ctx, s.Kick)
	}
}

func cleanName(name, field string) (string, error) {
	name = strings.Join(strings.Fields(name), " ")
	if name == "" || utf8.RuneCountInString(name) > 200 {
		return "", userErr("INVALID_INPUT", field, "name must be 1 to 200 characters")
	}
	return name, nil
}

func clip(s string, n int) string {
	if utf8.RuneCountInString(s) <= n {
		return s
	}
	return string([]rune(s)[:n])
}

func notFound(what string) error { return apperr.New(apperr.NotFound, what+" not found") }
