package workspace

import (
	"context"
	"fmt"
	"slices"

	"admit/ent"
	"admit/ent/workspace"
	"admit/internal/rule"
	"admit/internal/secret"
)

// Link lookup failures, shared with the invite links' codes.
var (
	ErrLinkNotFound  = userErr("LINK_NOT_FOUND", "token", "no workspace link has this address; check that it was copied whole")
	ErrLinkRefreshed = userErr("LINK_REFRESHED", "token", "this workspace link was replaced by a newer one; ask for the current link")
	ErrLinkDisabled  = userErr("LINK_REVOKED", "token", "this workspace link is turned off")
	ErrLinkArchived  = userErr("WORKSPACE_ARCHIVED", "token", "this workspace is archived and takes no new requests")
)

// LinkInput changes the link settings; nil fields keep their value.
type LinkInput struct {
	WorkspaceID   int
	Enabled       *bool
	AllowsViewing *bool
}

// UpdateLink turns the workspace link on or off and sets whether waiting
// requesters may view the workspace. The first time the link is turned on
// it gets its token.
func (s *Service) UpdateLink(ctx context.Context, c *ent.Client, in LinkInput) (*ent.Workspace, error) {
	ws, err := s.managed(ctx, c, in.WorkspaceID, "change its link")
	if err != nil {
		return nil, err
	}
	if ws.ArchivedAt != nil {
		return nil, ErrArchived
	}
	up := c.Workspace.UpdateOne(ws)
	if in.Enabled != nil {
		up.SetLinkEnabled(*in.Enabled)
	}
	if in.AllowsViewing != nil {
		up.SetLinkAllowsViewing(*in.AllowsViewing)
	}
	if ws.LinkGeneration == 0 {
		up.SetLinkTokenNonces([][]byte{secret.NewNonce()}).SetLinkGeneration(1)
	}
	if ws, err = up.Save(ctx); err != nil {
		return nil, fmt.Errorf("workspace.UpdateLink: %w", err)
	}
	return ws, s.audit(ctx, c, "workspace.link_updated", "Workspace", ws.ID, fmt.Sprintf("enabled=%t allowsViewing=%t", ws.LinkEnabled, ws.LinkAllowsViewing))
}

// RefreshLink gives the workspace link a new URL; the old one stops
// working at once.
func (s *Service) RefreshLink(ctx context.Context, c *ent.Client, id int) (*ent.Workspace, error) {
	ws, err := s.managed(ctx, c, id, "change its link")
	if err != nil {
		return nil, err
	}
	if ws.ArchivedAt != nil {
		return nil, ErrArchived
	}
	ws, err = c.Workspace.UpdateOne(ws).
		SetLinkTokenNonces(append(slices.Clone(ws.LinkTokenNonces), secret.NewNonce())).
		SetLinkGeneration(len(ws.LinkTokenNonces) + 1).
		Save(ctx)
	if err != nil {
		return nil, fmt.Errorf("workspace.RefreshLink: %w", err)
	}
	return ws, s.audit(ctx, c, "workspace.link_refreshed", "Workspace", ws.ID, ws.Name)
}

// LinkToken is the workspace link's current token, or "" before the link
// was first turned on. Nothing of it is stored.
func (s *Service) LinkToken(ws *ent.Workspace) string {
	g := ws.LinkGeneration
	if g < 1 || g > len(ws.LinkTokenNonces) {
		return ""
	}
	return s.Keys.Derive(secret.WorkspaceLink, ws.ID, g, ws.LinkTokenNonces[g-1])
}

// LookupLink finds the workspace (with its organization) whose live link a
// token is, checking the token in constant time. It needs no viewer.
func (s *Service) LookupLink(ctx context.Context, c *ent.Client, token string) (*ent.Workspace, error) {
	id, gen, ok := secret.ParseDerived(secret.WorkspaceLink, token)
	if !ok {
		return nil, ErrLinkNotFound
	}
	ws, err := c.Workspace.Query().
		Where(workspace.ID(id)).
		WithOrganization().
		Only(rule.System(ctx))
	if ent.IsNotFound(err) {
		return nil, ErrLinkNotFound
	}
	if err != nil {
		return nil, fmt.Errorf("workspace.LookupLink: %w", err)
	}
	if gen > len(ws.LinkTokenNonces) || !s.Keys.VerifyDerived(secret.WorkspaceLink, token, id, gen, ws.LinkTokenNonces[gen-1]) {
		return nil, ErrLinkNotFound
	}
	switch {
	case gen != ws.LinkGeneration:
		return ws, ErrLinkRefreshed
	case ws.ArchivedAt != nil:
		return ws, ErrLinkArchived
	case !ws.LinkEnabled:
		return ws, ErrLinkDisabled
	}
	return ws, nil
}

// linkRateKey is the per-link rate-limit bucket of a workspace link token.
func linkRateKey(token string) string {
	id, _, _ := secret.ParseDerived(secret.WorkspaceLink, token)
	return fmt.Sprint("wslink:", id)
}
