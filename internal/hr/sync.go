package hr

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"admit/ent"
	"admit/ent/hrconnection"
	"admit/ent/predicate"
	"admit/ent/role"
	"admit/ent/user"
	"admit/internal/audit"
	"admit/internal/auth"
	"admit/internal/invite"
	"admit/internal/rule"
)

// SyncResult is what one sync did.
type SyncResult struct {
	Succeeded   bool
	Employees   int
	Invited     int
	Deactivated int
	// Problems are the per-person refusals (a leaver ranked above the
	// autopilot admin, say), or the one reason a failed sync failed.
	Problems []string
	// Err is the refusal to show when the sync failed.
	Err *UserError
}

// Sync runs a connection's sync now, as the signed-in admin: read every
// employee, then (in one transaction) store them, invite the new ones when
// autoInvite is on, deactivate leavers when deactivateLeavers is on, and
// record the result on the connection and in the audit log. It takes the
// connection's lease first, so it never overlaps a scheduled run.
func (s *Service) Sync(ctx context.Context, id int) (*SyncResult, error) {
	if err := rule.RequireAdmin(ctx, "sync HR systems"); err != nil {
		return nil, err
	}
	c := s.db(ctx)
	conn, err := c.HRConnection.Get(ctx, id)
	if err != nil {
		return nil, err
	}
	now := s.now()
	until := s.leaseUntil(now)
	n, err := c.HRConnection.Update().
		Where(hrconnection.ID(conn.ID), leaseFree(now)).
		SetSyncLeaseUntil(until).
		Save(ctx)
	if err != nil {
		return nil, fmt.Errorf("hr.Sync: lease: %w", err)
	}
	if n == 0 {
		return nil, userErr(CodeSyncInProgress, "id", "a sync of this connection is already running; try again in a few minutes")
	}
	conn.SyncLeaseUntil = &until
	return s.run(ctx, conn)
}

// leaseFree matches a connection no sync holds (or whose holder's lease
// ran out: it died mid-sync).
func leaseFree(now time.Time) predicate.HRConnection {
	return hrconnection.Or(hrconnection.SyncLeaseUntilIsNil(), hrconnection.SyncLeaseUntilLTE(now))
}

// leaseUntil is the end of a lease taken at now, at the microsecond
// precision PostgreSQL keeps, so the holder can match it exactly.
func (s *Service) leaseUntil(now time.Time) time.Time {
	return now.Add(cmpDur(s.Lease, 10*time.Minute)).Truncate(time.Microsecond)
}

// heldBy matches the connection only while conn's lease is still the one
// on the row: a sync that outlived its lease (another replica took over)
// writes nothing.
func heldBy(conn *ent.HRConnection) predicate.HRConnection {
	if conn.SyncLeaseUntil == nil {
		return hrconnection.SyncLeaseUntilIsNil()
	}
	return hrconnection.SyncLeaseUntilEQ(*conn.SyncLeaseUntil)
}

// errLeaseLost: another replica took the connection over mid-sync.
var errLeaseLost = errors.New("hr: the sync outlived its lease; another replica took over")

// RunDue runs every scheduled sync that is due, each on exactly one
// replica: a replica runs a sync only after its conditional UPDATE of the
// connection's sync_lease_until succeeded. It returns how many it ran.
func (s *Service) RunDue(ctx context.Context) (int, error) {
	sys := rule.System(ctx)
	now := s.now()
	due := []predicate.HRConnection{
		hrconnection.SyncIntervalSecondsGT(0),
		hrconnection.NextSyncAtLTE(now),
		leaseFree(now),
	}
	ids, err := s.Client.HRConnection.Query().Where(due...).Order(hrconnection.ByNextSyncAt()).Limit(100).IDs(sys)
	if err != nil {
		return 0, fmt.Errorf("hr.RunDue: %w", err)
	}
	ran := 0
	for _, id := range ids {
		if ctx.Err() != nil {
			return ran, ctx.Err()
		}
		until := s.leaseUntil(now)
		n, err := s.Client.HRConnection.Update().
			Where(append([]predicate.HRConnection{hrconnection.ID(id)}, due...)...).
			SetSyncLeaseUntil(until).
			Save(sys)
		if err != nil {
			return ran, fmt.Errorf("hr.RunDue: lease: %w", err)
		}
		if n == 0 {
			continue // another replica took it
		}
		ran++
		conn, err := s.Client.HRConnection.Get(sys, id)
		if err != nil {
			return ran, fmt.Errorf("hr.RunDue: %w", err)
		}
		conn.SyncLeaseUntil = &until
		actx, err := s.actor(ctx, conn)
		if err != nil {
			s.fail(rule.System(ctx), conn, err.Error())
			continue
		}
		if _, err := s.run(actx, conn); err != nil {
			s.Log.ErrorContext(ctx, "HR sync failed", "connection", conn.ID, "provider", conn.Provider, "error", err)
		}
	}
	return ran, nil
}

// Run runs due syncs every interval until ctx ends.
func (s *Service) Run(ctx context.Context, every time.Duration) {
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		if _, err := s.RunDue(ctx); err != nil && ctx.Err() == nil {
			s.Log.ErrorContext(ctx, "HR scheduler", "error", err)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// actor is the context a scheduled sync acts in: the administrator who
// last set the connection up, as they are now.
func (s *Service) actor(ctx context.Context, conn *ent.HRConnection) (context.Context, error) {
	if conn.ActorID == nil {
		return nil, errors.New("no administrator is set to run this connection's syncs; update its settings")
	}
	u, err := s.Client.User.Query().
		Where(user.ID(*conn.ActorID), user.OrganizationID(conn.OrganizationID)).
		WithRole().
		Only(rule.System(ctx))
	if err != nil && !ent.IsNotFound(err) {
		return nil, err
	}
	if u == nil || u.Status != user.StatusACTIVE || u.Edges.Role == nil || !u.Edges.Role.Admin {
		return nil, errors.New("the administrator who set up this connection is no longer an active administrator; an administrator must update its settings")
	}
	return auth.NewContext(ctx, &auth.Viewer{
		UserID: u.ID, OrgID: u.OrganizationID, RoleID: u.RoleID, Admin: true, Rank: u.Edges.Role.Rank,
	}), nil
}

// fail records a failed sync: status, reason, the next due time, the
// lease released, and an audit event. ctx bypasses privacy (the scheduler
// may have no viewer). It writes outside any transaction, so the record
// stays, except when the sync runs inside a shared mutation transaction
// (syncHRSystem beside other fields), which its payload error rolls back.
func (s *Service) fail(ctx context.Context, conn *ent.HRConnection, reason string) {
	// Recorded even when ctx ended (shutdown mid-sync), so the lease is
	// released now rather than when it runs out.
	ctx = context.WithoutCancel(ctx)
	c := s.db(ctx)
	now := s.now()
	u := c.HRConnection.Update().
		Where(hrconnection.ID(conn.ID), heldBy(conn)).
		SetLastSyncAt(now).
		SetLastSyncStatus(hrconnection.LastSyncStatusFAILED).
		SetLastSyncError(clipRunes(reason, 1000)).
		SetLastSyncInvited(0).
		SetLastSyncDeactivated(0).
		ClearSyncLeaseUntil()
	if conn.SyncIntervalSeconds > 0 {
		u.SetNextSyncAt(now.Add(time.Duration(conn.SyncIntervalSeconds) * time.Second))
	}
	n, err := u.Save(ctx)
	if err != nil {
		s.Log.ErrorContext(ctx, "HR sync: cannot record failure", "connection", conn.ID, "error", err)
	}
	if err == nil && n == 0 {
		s.Log.WarnContext(ctx, "HR sync failed after another replica took it over", "connection", conn.ID, "reason", reason)
		return
	}
	err = c.AuditEvent.Create().
		SetOrganizationID(conn.OrganizationID).
		SetNillableActorID(conn.ActorID).
		SetAction("hr.sync_failed").
		SetTargetType("HRConnection").
		SetTargetID(conn.ID).
		SetSummary(clipRunes(conn.Provider+": "+reason, 1000)).
		Exec(ctx)
	if err != nil {
		s.Log.ErrorContext(ctx, "HR sync: cannot audit failure", "connection", conn.ID, "error", err)
	}
	s.Log.WarnContext(ctx, "HR sync failed", "connection", conn.ID, "provider", conn.Provider, "reason", reason)
}

// run is one sync of a connection whose lease the caller holds. A fetch
// that fails at any page writes nothing but the failure.
func (s *Service) run(ctx context.Context, conn *ent.HRConnection) (*SyncResult, error) {
	sys := rule.System(ctx)
	spec, ok := Lookup(conn.Provider)
	if !ok {
		s.fail(sys, conn, "unknown provider "+conn.Provider)
		return &SyncResult{Err: userErr(CodeUnknownProvider, "id", "unknown provider "+conn.Provider)}, nil
	}
	creds, err := s.credentials(conn)
	if err != nil {
		s.fail(sys, conn, err.Error())
		return &SyncResult{Err: userErr(CodeSyncFailed, "id", err.Error())}, nil
	}
	emps, err := s.fetch(ctx, s.provider(spec, conn.BaseURL, creds), creds)
	if err != nil {
		ue := providerUserError(err, "id")
		if ue == nil {
			s.fail(sys, conn, "internal error; see the server log")
			return nil, err
		}
		s.fail(sys, conn, ue.Message)
		return &SyncResult{Employees: 0, Problems: []string{ue.Message}, Err: ue}, nil
	}
	res := &SyncResult{Succeeded: true, Employees: len(emps)}
	err = s.write(ctx, func(ctx context.Context, c *ent.Client) error {
		return s.apply(ctx, c, conn, emps, res)
	})
	if err != nil {
		var ue *UserError
		var coded interface{ ErrorCode() string }
		switch {
		case errors.Is(err, errLeaseLost):
			s.Log.WarnContext(ctx, "HR sync discarded", "connection", conn.ID, "error", err)
			return &SyncResult{Err: userErr(CodeSyncInProgress, "id", "another sync of this connection took over; nothing was written")}, nil
		case errors.As(err, &ue):
		case errors.As(err, &coded):
			// The role ceiling, admin rights or a missing role refused
			// the invitations.
			ue = userErr(CodeSyncFailed, "id", err.Error())
		default:
			s.fail(sys, conn, "internal error; see the server log")
			return nil, err
		}
		s.fail(sys, conn, ue.Message)
		return &SyncResult{Problems: []string{ue.Message}, Err: ue}, nil
	}
	s.Log.InfoContext(ctx, "HR sync", "connection", conn.ID, "provider", conn.Provider,
		"employees", res.Employees, "invited", res.Invited, "deactivated", res.Deactivated, "problems", len(res.Problems))
	return res, nil
}

// apply writes a successful fetch, in the caller's transaction.
func (s *Service) apply(ctx context.Context, c *ent.Client, conn *ent.HRConnection, emps []Employee, res *SyncResult) error {
	if err := s.storeEmployees(ctx, c, conn, emps); err != nil {
		return err
	}
	views, err := s.views(ctx, c, conn)
	if err != nil {
		return err
	}
	if conn.AutoInvite {
		var fresh []*View
		for i := range views {
			if views[i].Status == StatusNew {
				fresh = append(fresh, &views[i])
			}
		}
		if len(fresh) > 0 {
			results, out, err := s.invite(ctx, c, fresh, conn.RoleID, "")
			if err != nil {
				return err
			}
			res.Invited = out.Count("")
			for _, r := range results {
				if r.Code != "" && r.Code != invite.CodeAlreadyInvited && r.Code != invite.CodeAlreadyMember {
					res.Problems = append(res.Problems, fmt.Sprintf("%s (%s): %s", r.Name, r.EmployeeID, r.Message))
				}
			}
		}
	}
	if conn.DeactivateLeavers {
		if err := s.deactivateLeavers(ctx, c, conn, views, res); err != nil {
			return err
		}
	}
	now := s.now()
	u := c.HRConnection.Update().
		Where(hrconnection.ID(conn.ID), heldBy(conn)).
		SetLastSyncAt(now).
		SetLastSyncStatus(hrconnection.LastSyncStatusSUCCEEDED).
		SetLastSyncError(clipRunes(strings.Join(res.Problems, "; "), 1000)).
		SetLastSyncEmployees(res.Employees).
		SetLastSyncInvited(res.Invited).
		SetLastSyncDeactivated(res.Deactivated).
		ClearSyncLeaseUntil()
	if conn.SyncIntervalSeconds > 0 {
		u.SetNextSyncAt(now.Add(time.Duration(conn.SyncIntervalSeconds) * time.Second))
	}
	if n, err := u.Save(ctx); err != nil {
		return fmt.Errorf("hr: record sync: %w", err)
	} else if n == 0 {
		return errLeaseLost
	}
	return audit.Record(ctx, c, "hr.synced", "HRConnection", conn.ID, fmt.Sprintf("%s: %d employees, %d invited, %d deactivated, %d problems",
		conn.Provider, res.Employees, res.Invited, res.Deactivated, len(res.Problems)))
}

// deactivateLeavers deactivates the active members whose employment
// ended, ends their sessions, and revokes leavers' pending invitations. It
// never deactivates the admin the sync runs as, nor the organization's
// last active administrator; a member the role ceiling protects is
// reported, not deactivated.
func (s *Service) deactivateLeavers(ctx context.Context, c *ent.Client, conn *ent.HRConnection, views []View, res *SyncResult) error {
	v := auth.FromContext(ctx)
	for _, e := range views {
		if !e.Left {
			continue
		}
		if e.Invitation != nil {
			if _, err := s.Invites.Revoke(ctx, c, e.Invitation.ID); err != nil {
				if _, ok := invite.AsUserError(err); !ok {
					return err
				}
			}
		}
		u := e.User
		if u == nil || u.Status != user.StatusACTIVE {
			continue
		}
		if u.ID == v.UserID {
			res.Problems = append(res.Problems, fmt.Sprintf("%s (%s) left but runs this connection's syncs, so was not deactivated", e.Name, e.EmployeeID))
			continue
		}
		others, err := c.User.Query().
			Where(user.IDNEQ(u.ID), user.StatusEQ(user.StatusACTIVE), user.HasRoleWith(role.Admin(true))).
			Exist(ctx)
		if err != nil {
			return err
		}
		if !others {
			res.Problems = append(res.Problems, fmt.Sprintf("%s (%s) left but is the last active administrator, so was not deactivated", e.Name, e.EmployeeID))
			continue
		}
		_, err = c.User.UpdateOne(u).SetStatus(user.StatusDEACTIVATED).Save(ctx)
		var re *rule.Error
		if errors.As(err, &re) {
			res.Problems = append(res.Problems, fmt.Sprintf("%s (%s) left but was not deactivated: %s", e.Name, e.EmployeeID, re.Message))
			continue
		}
		if err != nil {
			return fmt.Errorf("hr: deactivate: %w", err)
		}
		if err := s.Accounts.EndSessions(ctx, c, u.ID); err != nil {
			return err
		}
		if err := audit.Record(ctx, c, "user.deactivated", "User", u.ID, fmt.Sprintf("employment ended in %s (employee %s)", conn.Provider, e.EmployeeID)); err != nil {
			return err
		}
		res.Deactivated++
	}
	return nil
}
