// Package audit appends to the audit log inside the caller's transaction, so
// an action and its record commit or roll back together.
package audit

import (
	"context"
	"fmt"

	"admit/ent"
	"admit/internal/auth"
)

// Record writes one audit event for the viewer in ctx. targetID may be 0
// when the action has no single target.
func Record(ctx context.Context, c *ent.Client, action, targetType string, targetID int, summary string) error {
	v := auth.FromContext(ctx)
	if v == nil {
		return fmt.Errorf("audit.Record(%q): no viewer", action)
	}
	q := c.AuditEvent.Create().
		SetOrganizationID(v.OrgID).
		SetActorID(v.UserID).
		SetAction(action).
		SetTargetType(targetType).
		SetSummary(summary)
	if targetID != 0 {
		q.SetTargetID(targetID)
	}
	if err := q.Exec(ctx); err != nil {
		return fmt.Errorf("audit.Record(%q): %w", action, err)
	}
	return nil
}
